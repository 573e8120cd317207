"""Speaker ids from file names."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from audio_transfer.errors import ConfigError

# Naming conventions recognised by default, tried in this order on the file name without its extension.
SPEAKER_PATTERNS: dict[str, re.Pattern[str]] = {
    # Speech Commands: <speaker>_nohash_<n>.wav (yes/0a7c2a8d_nohash_0.wav)
    "speech_commands": re.compile(r"(?P<speaker>.+?)_nohash_\d+"),
    # LibriSpeech: <speaker>-<chapter>-<utterance>.flac (19/198/19-198-0001.flac)
    "librispeech": re.compile(r"(?P<speaker>\d+)-\d+-\d+"),
    # Free Spoken Digit Dataset: <label>_<speaker>_<n>.wav (0_jackson_0.wav). Only when <label> is the clip's
    # label: any "a_b_1.wav" would match otherwise ("bark_take_2.wav" is no speaker "take").
    "fsdd": re.compile(r"(?P<label>[^_]+)_(?P<speaker>[^_]+)_\d+"),
}


def compile_speaker_pattern(speaker_pattern: str | re.Pattern[str] | None) -> re.Pattern[str] | None:
    """Compile a user's speaker regex and check it has a ``speaker`` group.

    Raises:
        ConfigError: the regex does not compile or lacks a ``(?P<speaker>...)`` group.
    """
    if speaker_pattern is None:
        return None
    try:
        pattern = re.compile(speaker_pattern)
    except re.error as error:
        raise ConfigError(
            f"speaker_pattern {speaker_pattern!r} is not a valid regular expression: {error}."
        ) from None
    if "speaker" not in pattern.groupindex:
        raise ConfigError(
            f"speaker_pattern {pattern.pattern!r} has no group named 'speaker'. Mark the speaker id with "
            r"(?P<speaker>...), e.g. r'(?P<speaker>[^/_]+)_\d+\.wav$'."
        )
    return pattern


def parse_speaker(
    relative_path: str, *, label: str | None = None, speaker_pattern: re.Pattern[str] | None = None
) -> str | None:
    """The speaker id in a clip's path, or ``None``.

    Args:
        relative_path: the clip's path relative to its dataset folder or manifest, ``/``-separated.
        label: the clip's label; patterns with a ``label`` group (FSDD's) match only when it is equal.
        speaker_pattern: a compiled user regex with a ``speaker`` group, searched (``re.search``) in the whole
            ``relative_path`` so that it can read speaker folders too (``r'^[^/]+/(?P<speaker>[^/]+)/'``).
            When given, the default conventions are not tried.

    Returns:
        the ``speaker`` group of the user pattern, else of the first of :data:`SPEAKER_PATTERNS` that
        matches the whole file stem (and ``label``); ``None`` when nothing matches.

    Example:
        >>> parse_speaker("yes/0a7c2a8d_nohash_0.wav")
        '0a7c2a8d'
        >>> parse_speaker("19/198/19-198-0001.flac")
        '19'
        >>> parse_speaker("recordings/7_jackson_32.wav", label="7")
        'jackson'
    """
    if speaker_pattern is not None:
        match = speaker_pattern.search(relative_path)
        return (match.group("speaker") or None) if match else None
    stem = PurePosixPath(relative_path).stem
    for pattern in SPEAKER_PATTERNS.values():
        match = pattern.fullmatch(stem)
        if match and ("label" not in pattern.groupindex or match.group("label") == label):
            return match.group("speaker")
    return None

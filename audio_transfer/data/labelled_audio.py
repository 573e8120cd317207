"""A labelled audio dataset found on disk, with Speech Commands' conventions."""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from audio_transfer.audio import audio_info
from audio_transfer.checks import is_number
from audio_transfer.data._discovery import discover
from audio_transfer.data.audio_example import SILENCE_LABEL, UNKNOWN_LABEL, AudioExample
from audio_transfer.data.skipped_file import SkippedFile
from audio_transfer.data.speakers import compile_speaker_pattern
from audio_transfer.errors import AudioDecodeError, ConfigError, DatasetError

logger = logging.getLogger(__name__)

# Generated silence is a noise excerpt scaled by a gain drawn uniformly from this range: from near digital
# silence to the noise recording's own level.
SILENCE_GAIN_RANGE: tuple[float, float] = (0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class LabelledAudio:
    """Labelled clips found in a folder or manifest, before any decoding.

    Args:
        examples: the clips in discovery order (class folders and paths sorted, or manifest order), with
            ``_unknown_`` and then generated ``_silence_`` clips last.
        labels: class names; ``_silence_`` and ``_unknown_`` first when present, then the keywords in the
            order given, or every class in sorted order.
        noise_files: the noise bank (files of ``_background_noise_``), never a class.
        skipped: files left out while discovering (broken links, manifest rows naming missing files, noise
            files whose header cannot be read).
        source: the folder or manifest.
    """

    examples: list[AudioExample]
    labels: list[str]
    noise_files: list[Path]
    skipped: list[SkippedFile]
    source: Path

    def counts(self) -> dict[str, int]:
        """Number of examples per label, in ``labels`` order."""
        counts = collections.Counter(example.label for example in self.examples)
        return {label: counts[label] for label in self.labels}

    @property
    def speakers(self) -> set[str]:
        """The distinct known speaker ids."""
        return {example.speaker for example in self.examples if example.speaker}


def load_labelled_audio(
    source: str | os.PathLike,
    *,
    keywords: Sequence[str] | None = None,
    unknown_fraction: float | None = None,
    silence_fraction: float = 0.0,
    speaker_pattern: str | re.Pattern[str] | None = None,
    noise_files: Sequence[str | os.PathLike] | None = None,
    seed: int = 0,
) -> LabelledAudio:
    """Find labelled clips in a folder-per-class tree or a CSV/TSV manifest.

    Sources:

    - a folder ``ROOT/<label>/**/*.{wav,flac,ogg,opus,mp3,aiff}``: each sub-folder holding audio is a class;
      files may lie in nested folders and may be symbolic links; hidden files and folders are ignored;
    - a ``.csv`` or ``.tsv`` manifest with rows ``path,label[,speaker]`` (an optional header naming the
      columns ``path``, ``label`` and ``speaker`` may put them in any order); relative paths are relative
      to the manifest's folder; rows whose file is missing are skipped and reported.

    Speech Commands' conventions: a ``_background_noise_`` folder (or manifest label) is never a class, its
    files form the noise bank. ``silence_fraction > 0`` adds a generated ``_silence_`` class (excerpts of
    noise-bank files at a random offset and gain, see :class:`AudioExample`). With ``keywords``, the other
    classes merge into ``_unknown_``: all of them by default (training balances classes by weight, and
    a detector learns what to ignore from every non-keyword clip it sees), or a seeded random sample of
    ``unknown_fraction`` when given.

    Speaker ids come from the manifest's ``speaker`` column, else from the file name (see
    :func:`~audio_transfer.data.speakers.parse_speaker`).

    Args:
        source: the dataset folder or manifest.
        keywords: the classes to recognise; ``None`` keeps every class.
        unknown_fraction: caps the ``_unknown_`` clips at this fraction of the keyword clips (Speech
            Commands' ``unknown_percentage / 100``: 0.1 reproduces its recipe); ``None`` keeps every
            non-keyword clip. Only with ``keywords``.
        silence_fraction: number of generated ``_silence_`` clips as a fraction of the keyword clips (all
            clips without ``keywords``). Digital silence when the noise bank is empty.
        speaker_pattern: a regex with a ``(?P<speaker>...)`` group, searched in each clip's path relative to
            ``source``; replaces the default naming conventions.
        noise_files: noise bank to use instead of the source's ``_background_noise_`` files.
        seed: seed of the ``_unknown_`` sampling and the ``_silence_`` offsets and gains.

    Returns:
        a :class:`LabelledAudio`.

    Raises:
        DatasetError: ``source`` is missing, holds no labelled audio, or a keyword is not one of its classes.
        ConfigError: a fraction is negative or ``speaker_pattern`` is invalid.

    Example:
        >>> data = load_labelled_audio(  # doctest: +SKIP
        ...     "speech_commands", keywords=["yes", "no"], silence_fraction=0.1
        ... )
        >>> data.labels  # doctest: +SKIP
        ['_silence_', '_unknown_', 'yes', 'no']
    """
    fractions = (("unknown_fraction", unknown_fraction), ("silence_fraction", silence_fraction))
    for name, value in fractions:
        if value is None and name == "unknown_fraction":
            continue
        if not (is_number(value) and math.isfinite(value) and value >= 0):
            raise ConfigError(f"{name} must be a number >= 0, received {value!r}.")
    source = Path(source)
    found = discover(source, compile_speaker_pattern(speaker_pattern))
    if noise_files is not None:
        found.noise_files = [Path(path) for path in noise_files]
    if not found.examples:
        skipped = f" Skipped {len(found.skipped)} entries, e.g. {found.skipped[0]}." if found.skipped else ""
        raise DatasetError(
            f"Found no labelled audio in {os.fspath(source)!r}. A dataset folder needs one sub-folder of "
            "audio files (.wav, .flac, .ogg, .mp3) per class; a manifest needs rows path,label[,speaker]."
            + skipped
        )
    noise_durations = _readable_noise(found.noise_files, found.skipped)
    rng = np.random.default_rng(seed)
    classes = sorted({example.label for example in found.examples})
    examples = found.examples
    special: list[str] = []
    if keywords is not None:
        examples = _keep_keywords(examples, list(keywords), classes, unknown_fraction, rng, source)
        classes = list(keywords)
        special = [UNKNOWN_LABEL] if any(example.label == UNKNOWN_LABEL for example in examples) else []
    if silence_fraction > 0:
        word_count = sum(example.label != UNKNOWN_LABEL for example in examples)
        examples = [
            *examples,
            *_silence_examples(math.ceil(silence_fraction * word_count), noise_durations, rng),
        ]
        special.insert(0, SILENCE_LABEL)
    labels = special + [label for label in classes if label not in special]
    return LabelledAudio(
        examples=examples,
        labels=labels,
        noise_files=list(noise_durations),
        skipped=found.skipped,
        source=source,
    )


def _readable_noise(noise_files: list[Path], skipped: list[SkippedFile]) -> dict[Path, float]:
    """Duration of each noise file whose header reads and holds audio; the others go to ``skipped``."""
    durations = {}
    for path in noise_files:
        try:
            info = audio_info(path)
        except AudioDecodeError as error:
            logger.warning("Skipping noise file %s: %s", path, error)
            skipped.append(SkippedFile(os.fspath(path), str(error)))
            continue
        if info.num_samples == 0:
            skipped.append(SkippedFile(os.fspath(path), "the noise file holds no audio (0 samples)"))
            continue
        durations[path] = info.duration_seconds
    return durations


def _keep_keywords(
    examples: list[AudioExample],
    keywords: list[str],
    classes: list[str],
    unknown_fraction: float | None,
    rng: np.random.Generator,
    source: Path,
) -> list[AudioExample]:
    """Keyword clips as they are plus the others relabelled ``_unknown_``: all of them, or a seeded sample
    of ``unknown_fraction`` times the keyword clips."""
    missing = [keyword for keyword in keywords if keyword not in classes]
    if missing or not keywords or len(set(keywords)) != len(keywords):
        raise DatasetError(
            f"keywords must be distinct classes of {os.fspath(source)!r}; received {keywords!r}"
            + (f", and {missing!r} are not among its classes" if missing else "")
            + f". Its classes: {', '.join(classes)}."
        )
    kept = [example for example in examples if example.label in keywords]
    others = [example for example in examples if example.label not in keywords]
    if unknown_fraction is None:
        return kept + [dataclasses.replace(example, label=UNKNOWN_LABEL) for example in others]
    count = min(len(others), math.ceil(unknown_fraction * len(kept)))
    chosen = np.sort(rng.choice(len(others), size=count, replace=False)) if count else []
    return kept + [dataclasses.replace(others[index], label=UNKNOWN_LABEL) for index in chosen]


def _silence_examples(
    count: int, noise_durations: dict[Path, float], rng: np.random.Generator
) -> list[AudioExample]:
    """``count`` generated ``_silence_`` clips: excerpts of noise files, or zeros without any."""
    sources = list(noise_durations)
    if not sources:
        logger.warning("No usable background-noise files: the %d _silence_ clips are digital silence.", count)
        return [
            AudioExample(None, SILENCE_LABEL, None, f"{SILENCE_LABEL}/{index:05d}", generated=True)
            for index in range(count)
        ]
    examples = []
    for index in range(count):
        path = sources[rng.integers(len(sources))]
        examples.append(
            AudioExample(
                path,
                SILENCE_LABEL,
                None,
                f"{SILENCE_LABEL}/{index:05d}",
                generated=True,
                offset_seconds=round(float(rng.uniform(0.0, noise_durations[path])), 4),
                gain=round(float(rng.uniform(*SILENCE_GAIN_RANGE)), 4),
            )
        )
    return examples

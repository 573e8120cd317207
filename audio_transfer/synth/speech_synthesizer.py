"""The interface every text-to-speech backend implements."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath

import numpy as np

from audio_transfer.checks import is_int
from audio_transfer.errors import ConfigError

# eSpeak NG's accepted ranges (speak_lib.h: espeakRATE_MINIMUM/MAXIMUM; pitch and range 0..100, 50 normal).
RATE_WPM_LIMITS: tuple[int, int] = (80, 450)
PITCH_LIMITS: tuple[int, int] = (0, 100)
# How many available voices an unknown-voice error lists.
_LISTED_IN_ERRORS = 12


def split_voice(voice: str) -> tuple[str, str | None]:
    """``"en-us+m3"`` → ``("en-us", "m3")``; ``"en-us"`` → ``("en-us", None)``."""
    base, _, variant = voice.partition("+")
    return base, variant or None


class SpeechSynthesizer(abc.ABC):
    """A text-to-speech engine that renders text with a named voice, rate, pitch and pitch range.

    Voices are eSpeak NG names: a language voice (``"en-us"``, ``"en-gb-x-rp"``) optionally followed by
    ``+`` and a variant that changes the speaker's formants, pitch and voicing (``"en-us+m3"``,
    ``"en+f2"``, ``"en-029+klatt"``). Language voices are matched case-insensitively, variants exactly (they
    are file names).

    Subclasses pass what the engine offers to ``__init__`` and implement :meth:`render`;
    :meth:`synthesize` checks the arguments and calls :meth:`render`.

    Args:
        sample_rate: rate in Hz of what the engine speaks.
        voice_files: the engine's language voice files, as eSpeak names them (``"gmw/en-US"``); MBROLA
            voices (``"mb/..."``, which need the separate mbrola program) are left out.
        variant_files: its variant files (``"!v/m3"``).
    """

    #: short name used in reports (``"espeak-library"``, ``"espeak-command"``).
    name: str = ""

    def __init__(self, *, sample_rate: int, voice_files: Iterable[str], variant_files: Iterable[str]):
        self._sample_rate = int(sample_rate)
        self._voices = sorted(
            {PurePosixPath(file).name.lower() for file in voice_files if not file.startswith("mb/")}
        )
        self._variants = sorted({PurePosixPath(file).name for file in variant_files})

    @property
    def sample_rate(self) -> int:
        """Rate in Hz of what :meth:`synthesize` returns."""
        return self._sample_rate

    def list_voices(self) -> list[str]:
        """Language voice names, lower case, sorted (``["af", ..., "en-us", ...]``)."""
        return list(self._voices)

    def list_variants(self) -> list[str]:
        """Variant names, sorted (``["Alex", ..., "f1", ..., "m3", ...]``)."""
        return list(self._variants)

    @abc.abstractmethod
    def render(self, text: str, *, voice: str, rate_wpm: int, pitch: int, pitch_range: int) -> np.ndarray:
        """Speak ``text`` with checked arguments; int16 ``(samples,)`` at :attr:`sample_rate`."""

    def synthesize(
        self, text: str, *, voice: str = "en-us", rate_wpm: int = 175, pitch: int = 50, pitch_range: int = 50
    ) -> np.ndarray:
        """Speak ``text`` once.

        Args:
            text: what to say (UTF-8; punctuation changes the intonation: ``"yes?"`` rises).
            voice: ``"<language voice>[+<variant>]"``, e.g. ``"en-us+m3"``.
            rate_wpm: speaking rate in words per minute, 80 to 450 (eSpeak's default is 175).
            pitch: base pitch, 0 to 100 (50 is the voice's own).
            pitch_range: intonation range, 0 (monotone) to 100 (50 is the voice's own).

        Returns:
            int16 ``(samples,)`` at :attr:`sample_rate`, with eSpeak's short leading and trailing silence.

        Raises:
            ConfigError: empty text, unknown voice or variant (the message lists available ones), or a rate,
                pitch or range out of bounds.
        """
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"text must be a non-empty string, received {text!r}.")
        self.check_voice(voice)
        for name, value, (low, high) in (
            ("rate_wpm", rate_wpm, RATE_WPM_LIMITS),
            ("pitch", pitch, PITCH_LIMITS),
            ("pitch_range", pitch_range, PITCH_LIMITS),
        ):
            if not (is_int(value) and low <= value <= high):
                raise ConfigError(f"{name} must be an integer from {low} to {high}, received {value!r}.")
        return self.render(
            text, voice=voice, rate_wpm=int(rate_wpm), pitch=int(pitch), pitch_range=int(pitch_range)
        )

    @abc.abstractmethod
    def render_phonemes(self, texts: list[str], *, voice: str) -> list[str]:
        """eSpeak's phoneme mnemonics of each checked text (see :meth:`phonemes`)."""

    def phonemes(self, texts: Sequence[str], *, voice: str = "en-us") -> list[str]:
        """How ``voice`` pronounces each text, in eSpeak NG's phoneme mnemonics: phonemes separated by
        ``_`` (a stress mark ``'`` or ``,`` starts a stressed syllable's vowel), words by spaces. Wrapped in
        ``[[ ]]`` (without the ``_``), such a string is spoken as written by :meth:`synthesize`.

        Raises:
            ConfigError: an empty text, or an unknown voice.

        Example:
            >>> get_synthesizer("library").phonemes(["marvin"])  # doctest: +SKIP
            ["m_'A@_v_I_n"]
        """
        if isinstance(texts, str) or not all(isinstance(text, str) and text.strip() for text in texts):
            raise ConfigError(f"texts must be a list of non-empty strings, received {texts!r}.")
        self.check_voice(voice)
        return self.render_phonemes(list(texts), voice=voice) if texts else []

    def check_voice(self, voice: str) -> str:
        """Return ``voice`` when its language voice and variant exist, else raise a ConfigError."""
        if not isinstance(voice, str):
            raise ConfigError(f"voice must be a string such as 'en-us+m3', received {voice!r}.")
        base, variant = split_voice(voice)
        voices = self.list_voices()
        if base.lower() not in voices:
            english = [name for name in self.list_voices() if name.startswith("en")]
            raise ConfigError(
                f"Unknown eSpeak NG voice {base!r} in {voice!r} ({self.name}). Available English voices: "
                f"{', '.join(english)}; {len(voices)} voices in all (see list_voices())."
            )
        variants = self.list_variants()
        if variant is not None and variant not in variants:
            raise ConfigError(
                f"Unknown eSpeak NG variant {variant!r} in {voice!r} ({self.name}; variants are "
                f"case-sensitive). Some available: {', '.join(variants[:_LISTED_IN_ERRORS])}, ... "
                f"({len(variants)} in all, see list_variants())."
            )
        return voice

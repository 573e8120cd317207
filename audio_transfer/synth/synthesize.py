"""Pick a text-to-speech backend and speak one text."""

from __future__ import annotations

import functools
import shutil

import numpy as np

from audio_transfer.audio import resample
from audio_transfer.errors import ConfigError
from audio_transfer.synth.espeak_command import EspeakCommand
from audio_transfer.synth.espeak_library import EspeakLibrary
from audio_transfer.synth.speech_synthesizer import SpeechSynthesizer

BACKENDS: tuple[str, ...] = ("auto", "library", "command")
_PCM16_SCALE = 2.0**15


@functools.cache
def _shared_backend(backend: str) -> SpeechSynthesizer:
    if backend == "library":
        return EspeakLibrary()
    if backend == "command":
        return EspeakCommand()
    return EspeakCommand() if shutil.which("espeak-ng") else EspeakLibrary()


def get_synthesizer(backend: str | SpeechSynthesizer = "auto") -> SpeechSynthesizer:
    """The text-to-speech backend to use, created once per process and name.

    Args:
        backend: ``"auto"`` (the ``espeak-ng`` program when it is on ``PATH``, else eSpeak NG's library from
            the ``espeakng-loader`` package), ``"library"``, ``"command"``, or a ready
            :class:`SpeechSynthesizer`, returned as it is.

    Raises:
        ConfigError: an unknown backend name.
        DependencyError: the backend's library or program is missing; the message says how to install it.

    Example:
        >>> get_synthesizer("library").name
        'espeak-library'
    """
    if isinstance(backend, SpeechSynthesizer):
        return backend
    if backend not in BACKENDS:
        raise ConfigError(
            f"backend must be one of {', '.join(BACKENDS)} or a SpeechSynthesizer, received {backend!r}."
        )
    return _shared_backend(backend)


def synthesize(
    text: str,
    *,
    voice: str = "en-us",
    rate_wpm: int = 175,
    pitch: int = 50,
    pitch_range: int = 50,
    sample_rate: int = 16000,
    backend: str | SpeechSynthesizer = "auto",
) -> np.ndarray:
    """Speak ``text`` with eSpeak NG and return the waveform at ``sample_rate``.

    The same arguments give the same samples (see :class:`EspeakLibrary` for how).

    Args:
        text: what to say; punctuation changes the intonation (``"yes?"`` rises).
        voice: ``"<language voice>[+<variant>]"``: ``"en-us"``, ``"en-gb-x-rp+f2"``, ``"en-029+m3"``;
            :meth:`SpeechSynthesizer.list_voices` and :meth:`~SpeechSynthesizer.list_variants` list them.
        rate_wpm: speaking rate in words per minute, 80 to 450.
        pitch: base pitch, 0 to 100 (50 is the voice's own).
        pitch_range: intonation range, 0 (monotone) to 100 (50 is the voice's own).
        sample_rate: rate in Hz of the result (eSpeak speaks at 22,050 Hz; resampled with soxr HQ).
        backend: see :func:`get_synthesizer`.

    Returns:
        float32 ``(samples,)`` in [-1, 1] at ``sample_rate``, including eSpeak's short silences at both ends.

    Raises:
        ConfigError: unknown voice or variant (the message lists available ones), empty text, or an argument
            out of range.
        DependencyError: eSpeak NG is not installed; the message says how to install it.

    Example:
        >>> waveform = synthesize("seven", voice="en-us+f2", rate_wpm=150)
        >>> waveform.dtype, 0.3 < len(waveform) / 16000 < 1.0
        (dtype('float32'), True)
    """
    engine = get_synthesizer(backend)
    samples = engine.synthesize(text, voice=voice, rate_wpm=rate_wpm, pitch=pitch, pitch_range=pitch_range)
    waveform = samples.astype(np.float32) / _PCM16_SCALE
    waveform = resample(waveform, orig_sample_rate=engine.sample_rate, target_sample_rate=sample_rate)
    return np.clip(waveform, -1.0, 1.0)

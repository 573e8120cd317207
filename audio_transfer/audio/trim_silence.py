"""Cut the quiet ends off a waveform."""

from __future__ import annotations

import numpy as np

from audio_transfer.checks import is_positive_int
from audio_transfer.errors import ConfigError, InputShapeError


def trim_silence(
    waveform: np.ndarray, *, sample_rate: int, top_db: float = 40.0, frame_seconds: float = 0.01
) -> np.ndarray:
    """Remove leading and trailing frames quieter than ``top_db`` below the loudest frame.

    Like ``librosa.effects.trim`` (same ``top_db`` meaning) with non-overlapping frames, without importing
    librosa.

    Args:
        waveform: float array ``(samples,)``.
        sample_rate: rate in Hz.
        top_db: threshold in dB below the loudest frame's RMS; frames under it at either end are cut.
        frame_seconds: frame length in seconds; the cut points fall on frame boundaries.

    Returns:
        the part of ``waveform`` from the first to the last loud frame (a view); an empty array for an
        all-zero or empty input.

    Example:
        >>> quiet, loud = np.zeros(800, np.float32), np.ones(1600, np.float32)
        >>> trim_silence(np.concatenate([quiet, loud, quiet]), sample_rate=16000).shape
        (1600,)
    """
    if np.ndim(waveform) != 1:
        raise InputShapeError(
            f"trim_silence expects a (samples,) waveform, received shape {np.shape(waveform)}."
        )
    if not is_positive_int(sample_rate):
        raise ConfigError(f"sample_rate must be a positive integer number of Hz, received {sample_rate!r}.")
    if not (top_db > 0 and frame_seconds > 0):
        raise ConfigError(
            f"top_db and frame_seconds must be positive, received {top_db!r} and {frame_seconds!r}."
        )
    frame_length = max(1, round(frame_seconds * sample_rate))
    num_frames = -(-len(waveform) // frame_length)
    padded = np.pad(np.asarray(waveform, dtype=np.float64), (0, num_frames * frame_length - len(waveform)))
    rms = np.sqrt(np.mean(padded.reshape(num_frames, frame_length) ** 2, axis=1))
    if num_frames == 0 or rms.max() == 0:
        return waveform[:0]
    loud = np.flatnonzero(rms >= rms.max() * 10.0 ** (-top_db / 20.0))
    return waveform[loud[0] * frame_length : min((loud[-1] + 1) * frame_length, len(waveform))]

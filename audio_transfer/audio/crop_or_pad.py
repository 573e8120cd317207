"""Fit a waveform to a fixed number of samples."""

from __future__ import annotations

import numpy as np

from audio_transfer.checks import is_positive_int
from audio_transfer.errors import ConfigError


def crop_or_pad(waveform: np.ndarray, *, num_samples: int) -> np.ndarray:
    """Centre-crop or centre-zero-pad the last axis of ``waveform`` to ``num_samples``.

    Args:
        waveform: array ``(..., samples)``.
        num_samples: length of the result's last axis.

    Returns:
        array ``(..., num_samples)`` of the same dtype: the middle ``num_samples`` of a longer waveform, or a
        shorter waveform centred between zeros (the extra zero, when the padding is odd, goes at the end).

    Example:
        >>> crop_or_pad(np.ones(3, np.float32), num_samples=6)
        array([0., 1., 1., 1., 0., 0.], dtype=float32)
    """
    if not is_positive_int(num_samples):
        raise ConfigError(f"num_samples must be a positive integer, received {num_samples!r}.")
    length = waveform.shape[-1]
    if length >= num_samples:
        start = (length - num_samples) // 2
        return waveform[..., start : start + num_samples]
    before = (num_samples - length) // 2
    padding = [(0, 0)] * (waveform.ndim - 1) + [(before, num_samples - length - before)]
    return np.pad(waveform, padding)

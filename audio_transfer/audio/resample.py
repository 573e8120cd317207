"""Change the sample rate of a waveform."""

from __future__ import annotations

import numpy as np
import soxr

from audio_transfer.checks import is_positive_int
from audio_transfer.errors import ConfigError


def resample(waveform: np.ndarray, *, orig_sample_rate: int, target_sample_rate: int) -> np.ndarray:
    """Resample the last axis of ``waveform`` with soxr's high-quality mode.

    soxr "HQ" is what ``librosa.resample(res_type="soxr_hq")`` runs (bit-identical, without librosa's final
    zero pad to ``ceil(length * ratio)``); calling it directly spares importing librosa and numba (seconds).

    Args:
        waveform: float array ``(samples,)`` or ``(channels, samples)``.
        orig_sample_rate: rate of ``waveform`` in Hz.
        target_sample_rate: rate of the result in Hz.

    Returns:
        float32 array ``(..., round(samples * target_sample_rate / orig_sample_rate))``; ``waveform`` itself
        (as float32) when the rates are equal. Values are not clipped: full-scale input can overshoot ±1
        by a hair.

    Raises:
        ConfigError: a rate is not a positive integer.

    Example:
        >>> resample(np.zeros(22050, np.float32), orig_sample_rate=22050, target_sample_rate=16000).shape
        (16000,)
    """
    for name, rate in (("orig_sample_rate", orig_sample_rate), ("target_sample_rate", target_sample_rate)):
        if not is_positive_int(rate):
            raise ConfigError(f"{name} must be a positive integer number of Hz, received {rate!r}.")
    waveform = np.asarray(waveform, dtype=np.float32)
    if orig_sample_rate == target_sample_rate:
        return waveform
    # soxr works on (samples, channels).
    return np.asarray(soxr.resample(waveform.T, orig_sample_rate, target_sample_rate, quality="HQ").T)

"""Numpy constructors of the fixed matrices behind the front-ends: windows, DFT kernels, mel and DCT.

Everything here runs once, in float64, when a layer is created; the layers hold the float32 results as
graph constants. The mel filterbanks follow ``librosa.filters.mel`` (Slaney or HTK scale, triangles in Hz,
optional Slaney area normalisation) or ``tf.signal.linear_to_mel_weight_matrix`` (HTK scale, triangles in
mel, DC bin dropped), which YAMNet uses.
"""

from __future__ import annotations

import librosa
import numpy as np

WINDOWS = ("hann", "hamming")
MEL_FILTERBANKS = ("librosa", "tensorflow")
MEL_SCALES = ("slaney", "htk")

# The raised-cosine coefficients a - b*cos(2*pi*n/N) of each window.
_WINDOW_COEFFICIENTS = {"hann": (0.5, 0.5), "hamming": (0.54, 0.46)}


def stft_window(window: str, *, frame_length: int, periodic: bool) -> np.ndarray:
    """A Hann or Hamming window of ``frame_length`` samples, float64.

    Periodic windows (``scipy.signal.get_window(..., fftbins=True)``, librosa's and ``tf.signal``'s
    default) divide by ``frame_length``; symmetric ones by ``frame_length - 1``.
    """
    a, b = _WINDOW_COEFFICIENTS[window]
    if frame_length == 1:
        return np.ones(1)
    denominator = frame_length if periodic else frame_length - 1
    return a - b * np.cos(2.0 * np.pi * np.arange(frame_length) / denominator)


def window_offset(*, frame_length: int, fft_length: int, window_placement: str) -> int:
    """Where the window starts inside the FFT frame: centred as ``librosa.util.pad_center``, or at 0."""
    return (fft_length - frame_length) // 2 if window_placement == "center" else 0


def dft_kernel(window: np.ndarray, *, fft_length: int, offset: int, bins: np.ndarray) -> np.ndarray:
    """Windowed real-DFT kernel ``(len(window), 2 * len(bins))``: cosine columns, then minus-sine columns.

    ``frames @ kernel`` gives the real and imaginary parts of ``rfft(frame placed at offset, fft_length)``
    at ``bins`` for frames holding only the ``len(window)`` samples under the window.
    """
    n = np.arange(len(window)) + offset
    phase = 2.0 * np.pi * np.outer(n, bins) / fft_length
    return np.concatenate([window[:, None] * np.cos(phase), -window[:, None] * np.sin(phase)], axis=1)


def mel_filterbank(
    *,
    sample_rate: int,
    fft_length: int,
    num_mel_bins: int,
    lower_edge_hz: float,
    upper_edge_hz: float,
    mel_scale: str,
    mel_norm: str | None,
    mel_filterbank: str,
) -> np.ndarray:
    """Mel weights ``(fft_length // 2 + 1, num_mel_bins)``: a power or magnitude spectrum times it is mel.

    ``mel_filterbank="librosa"`` is exactly ``librosa.filters.mel(...).T`` (float32, as librosa returns
    it); ``"tensorflow"`` reproduces ``tf.signal.linear_to_mel_weight_matrix`` in float64 (HTK scale, no
    normalisation; the caller has checked those).
    """
    if mel_filterbank == "librosa":
        weights = librosa.filters.mel(
            sr=sample_rate,
            n_fft=fft_length,
            n_mels=num_mel_bins,
            fmin=lower_edge_hz,
            fmax=upper_edge_hz,
            htk=mel_scale == "htk",
            norm=mel_norm,
        )
        return weights.T.astype(np.float64)
    return _tensorflow_mel_filterbank(
        sample_rate=sample_rate,
        num_spectrogram_bins=fft_length // 2 + 1,
        num_mel_bins=num_mel_bins,
        lower_edge_hz=lower_edge_hz,
        upper_edge_hz=upper_edge_hz,
    )


def _tensorflow_mel_filterbank(
    *,
    sample_rate: int,
    num_spectrogram_bins: int,
    num_mel_bins: int,
    lower_edge_hz: float,
    upper_edge_hz: float,
) -> np.ndarray:
    """``tf.signal.linear_to_mel_weight_matrix``: triangles in HTK mel, the DC bin's row all zero."""

    def hz_to_mel(hz):
        return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)

    spectrogram_mel = hz_to_mel(np.linspace(0.0, sample_rate / 2.0, num_spectrogram_bins)[1:])[:, None]
    edges = np.linspace(hz_to_mel(lower_edge_hz), hz_to_mel(upper_edge_hz), num_mel_bins + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    lower_slopes = (spectrogram_mel - lower) / (center - lower)
    upper_slopes = (upper - spectrogram_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(lower_slopes, upper_slopes))
    return np.pad(weights, [[1, 0], [0, 0]])


def dct_matrix(*, num_mel_bins: int, num_mfcc: int) -> np.ndarray:
    """Orthonormal DCT-II ``(num_mel_bins, num_mfcc)``, as librosa's MFCC (``scipy.fft.dct`` ortho)."""
    n = np.arange(num_mel_bins)[:, None]
    k = np.arange(num_mfcc)[None, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * num_mel_bins)) * np.sqrt(2.0 / num_mel_bins)
    basis[:, 0] /= np.sqrt(2.0)
    return basis

"""Numpy constructors of the fixed matrices behind the front-ends: windows, DFT kernels, mel and DCT.

Everything here runs once, in float64, when a layer is created; the layers hold the float32 results as
graph constants. The mel filterbanks follow ``librosa.filters.mel`` (Slaney or HTK scale, triangles in Hz,
optional Slaney area normalisation) or ``tf.signal.linear_to_mel_weight_matrix`` (HTK scale, triangles in
mel, DC bin dropped), which YAMNet uses.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class TwoStageDFT:
    """Constants of a windowed real DFT split in two stages (Cooley-Tukey), for a band of FFT bins.

    With ``fft_length = outer * inner`` and frame sample ``n = inner * a + b``, the DFT of a frame placed
    at ``offset`` is, at bin ``k = c + outer * m``, ``X[k] = sum_b exp(-2j pi k (b + offset) / fft_length)
    * Z[b, c]`` with ``Z[b, c] = sum_a x[inner * a + b] * exp(-2j pi c a / outer)``. Stage 1 is one
    matrix product over ``a`` for every residue ``c`` the bins need; stage 2 one small matrix product
    over ``b`` per residue (a batched product). On ``speech_embedding``'s band this takes about a third
    of the multiplications of a one-stage DFT and a tenth of its constants.

    Attributes:
        inner: ``b``'s range, a divisor of ``fft_length``; ``outer = fft_length // inner``.
        steps: ``a``'s range, ``ceil(frame_length / inner)`` (frames are zero-padded to ``steps *
            inner`` samples).
        stage1: ``(steps, 2 * residues)``: for each residue ``c``, the columns ``cos`` and ``-sin`` of
            ``2 pi c a / outer``.
        stage2: ``(residues, 2 * inner, 2 * multiples)``: for residue ``c``, rows ``(b, real/imag)`` of
            ``Z``, columns ``(m, real/imag)`` of ``X`` at ``k = c + outer * (first_multiple + m)``.
        output_index: ``(len(bins),)``: where each bin is in stage 2's output flattened as
            ``(multiples, residues)``.
    """

    inner: int
    steps: int
    stage1: np.ndarray
    stage2: np.ndarray
    output_index: np.ndarray

    @property
    def residues(self) -> int:
        return self.stage2.shape[0]

    @property
    def multiples(self) -> int:
        return self.stage2.shape[2] // 2

    @property
    def multiplications(self) -> int:
        """Multiplications per frame: stage 1 over every ``b``, stage 2 over every residue."""
        return self.inner * self.stage1.size + self.stage2.size

    @property
    def num_constants(self) -> int:
        return self.stage1.size + self.stage2.size

    @classmethod
    def create(cls, *, frame_length: int, fft_length: int, offset: int, bins: np.ndarray) -> TwoStageDFT:
        """The split among the divisors of ``fft_length`` with the fewest multiplications per frame plus
        constants (a device pays for both: time and flash)."""
        splits = (
            cls.split(inner, frame_length=frame_length, fft_length=fft_length, offset=offset, bins=bins)
            for inner in range(1, fft_length + 1)
            if fft_length % inner == 0
        )
        return min(splits, key=lambda dft: dft.multiplications + dft.num_constants)

    @classmethod
    def split(
        cls, inner: int, *, frame_length: int, fft_length: int, offset: int, bins: np.ndarray
    ) -> TwoStageDFT:
        """The constants of the split with ``inner`` (a divisor of ``fft_length``)."""
        outer = fft_length // inner
        steps = -(-frame_length // inner)
        residues, residue_index = np.unique(bins % outer, return_inverse=True)
        first = bins.min() // outer
        multiples = bins.max() // outer - first + 1
        phase = 2.0 * np.pi * np.outer(np.arange(steps), residues) / outer
        stage1 = np.stack([np.cos(phase), -np.sin(phase)], axis=-1).reshape(steps, 2 * len(residues))
        # k[c, m] and the twiddle angle theta[c, b, m] = 2 pi k (b + offset) / fft_length.
        k = residues[:, None] + outer * (first + np.arange(multiples))[None, :]
        theta = 2.0 * np.pi * (np.arange(inner)[None, :, None] + offset) * k[:, None, :] / fft_length
        cos, sin = np.cos(theta), np.sin(theta)
        # (cos - i sin)(re + i im) = (cos re + sin im) + i (cos im - sin re).
        stage2 = np.stack([np.stack([cos, -sin], axis=-1), np.stack([sin, cos], axis=-1)], axis=2).reshape(
            len(residues), 2 * inner, 2 * multiples
        )
        output_index = (bins // outer - first) * len(residues) + residue_index
        return cls(
            inner=inner, steps=steps, stage1=stage1, stage2=stage2, output_index=output_index.astype(np.int32)
        )


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

    ``mel_filterbank="librosa"`` is exactly ``librosa.filters.mel(...).T`` (float32 values, as librosa
    returns them, without importing librosa); ``"tensorflow"`` reproduces
    ``tf.signal.linear_to_mel_weight_matrix`` in float64 (HTK scale, no normalisation; the caller has
    checked those).
    """
    if mel_filterbank == "librosa":
        return _librosa_mel_filterbank(
            sample_rate=sample_rate,
            fft_length=fft_length,
            num_mel_bins=num_mel_bins,
            lower_edge_hz=lower_edge_hz,
            upper_edge_hz=upper_edge_hz,
            mel_scale=mel_scale,
            mel_norm=mel_norm,
        )
    return _tensorflow_mel_filterbank(
        sample_rate=sample_rate,
        num_spectrogram_bins=fft_length // 2 + 1,
        num_mel_bins=num_mel_bins,
        lower_edge_hz=lower_edge_hz,
        upper_edge_hz=upper_edge_hz,
    )


# librosa's Slaney mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above.
_SLANEY_HZ_PER_MEL = 200.0 / 3
_SLANEY_LOG_HZ = 1000.0
_SLANEY_LOG_MEL = _SLANEY_LOG_HZ / _SLANEY_HZ_PER_MEL
_SLANEY_LOG_STEP = np.log(6.4) / 27.0


def hz_to_mel(hz, *, mel_scale: str) -> np.ndarray:
    """``librosa.hz_to_mel`` (Slaney, or HTK with ``2595 * log10(1 + hz / 700)``), float64."""
    hz = np.asarray(hz, dtype=np.float64)
    if mel_scale == "htk":
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    log_part = _SLANEY_LOG_MEL + np.log(np.maximum(hz, _SLANEY_LOG_HZ) / _SLANEY_LOG_HZ) / _SLANEY_LOG_STEP
    return np.where(hz >= _SLANEY_LOG_HZ, log_part, hz / _SLANEY_HZ_PER_MEL)


def mel_to_hz(mel, *, mel_scale: str) -> np.ndarray:
    """``librosa.mel_to_hz``, the inverse of :func:`hz_to_mel`, float64."""
    mel = np.asarray(mel, dtype=np.float64)
    if mel_scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    log_part = _SLANEY_LOG_HZ * np.exp(_SLANEY_LOG_STEP * (mel - _SLANEY_LOG_MEL))
    return np.where(mel >= _SLANEY_LOG_MEL, log_part, _SLANEY_HZ_PER_MEL * mel)


def _librosa_mel_filterbank(
    *,
    sample_rate: int,
    fft_length: int,
    num_mel_bins: int,
    lower_edge_hz: float,
    upper_edge_hz: float,
    mel_scale: str,
    mel_norm: str | None,
) -> np.ndarray:
    """``librosa.filters.mel(...).T`` bit for bit (librosa rounds to float32 twice; so does this)."""
    fft_hz = np.fft.rfftfreq(n=fft_length, d=1.0 / sample_rate)
    edges_hz = mel_to_hz(
        np.linspace(
            hz_to_mel(lower_edge_hz, mel_scale=mel_scale),
            hz_to_mel(upper_edge_hz, mel_scale=mel_scale),
            num_mel_bins + 2,
        ),
        mel_scale=mel_scale,
    )
    widths_hz = np.diff(edges_hz)
    ramps = np.subtract.outer(edges_hz, fft_hz)
    lower = -ramps[:-2] / widths_hz[:-1, None]
    upper = ramps[2:] / widths_hz[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper)).astype(np.float32)
    if mel_norm == "slaney":
        weights = (weights * (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]).astype(np.float32)
    return weights.T.astype(np.float64)


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

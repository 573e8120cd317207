"""LogMelSpectrogram: waveform to (log-)mel spectrogram with TFLite builtin ops only."""

from __future__ import annotations

import functools
import math

import keras
import numpy as np
import tensorflow as tf

from audio_transfer import checks
from audio_transfer.errors import ConfigError, InputShapeError
from audio_transfer.features import filters

WINDOW_PLACEMENTS = ("center", "left")
PAD_MODES = ("constant", "reflect")
LOG_MODES = ("log", "db", "none")
MEL_NORMS = ("slaney", None)

# Floor under the squared magnitude before its square root: keeps the gradient of sqrt finite at silence
# and is far below any audible level (sqrt gives 1e-15 on a [-1, 1] scale).
_POWER_FLOOR = 1e-30


@keras.saving.register_keras_serializable(package="audio_transfer")
class LogMelSpectrogram(keras.layers.Layer):
    """Mel spectrogram of a waveform, with an optional log, computed in the graph with builtin ops only.

    The short-time Fourier transform is a real DFT with precomputed windowed cosine and sine constants (no
    RFFT, ComplexAbs or Flex ops), restricted to the FFT bins the mel filters use: one strided convolution
    by default (fastest in TensorFlow), or, with :attr:`compact_dft` (set by the TFLite exporters through
    :func:`compact_dft`), two stages of small matrix products (Cooley-Tukey) whose constants are a tenth
    the size, for the same numbers within float32 rounding. Either way a model holding this layer exports
    to TFLite with builtin ops only and needs no DSP code on the device. Every constant is computed in
    numpy when the layer is created (it has no weights).

    Framing: with ``window_placement="center"`` each frame spans ``fft_length`` samples and the window
    sits in its middle (librosa's convention); with ``"left"`` a frame spans ``frame_length`` samples
    and is zero-padded at the end to ``fft_length`` (``tf.signal.stft``'s convention). Frame ``t`` starts
    at sample ``t * frame_step`` of the (centre-padded, when ``center``) input, and only whole frames are
    produced: ``frames = 1 + (samples - span) // frame_step``, see :meth:`num_frames`.

    Args:
        sample_rate: rate of the input waveform in Hz.
        frame_length: window length in samples (librosa's ``win_length``).
        frame_step: hop between frames in samples (librosa's ``hop_length``).
        fft_length: FFT size in samples (librosa's ``n_fft``), at least ``frame_length``.
        window: ``"hann"`` or ``"hamming"``.
        window_periodic: periodic window (librosa's and ``tf.signal``'s default) or symmetric.
        window_placement: ``"center"`` or ``"left"`` inside the FFT frame (see Framing above).
        center: pad ``fft_length // 2`` samples on both sides first, as librosa's ``center=True``.
        pad_mode: ``"constant"`` (zeros) or ``"reflect"`` for that padding.
        num_mel_bins: number of mel bands.
        lower_edge_hz: lowest mel filter edge in Hz.
        upper_edge_hz: highest mel filter edge in Hz; ``None`` means ``sample_rate / 2``.
        mel_scale: ``"slaney"`` or ``"htk"`` (librosa's ``htk=False``/``True``).
        mel_norm: ``"slaney"`` (filters of equal area, librosa's default) or ``None``.
        mel_filterbank: ``"librosa"`` (``librosa.filters.mel``: triangles in Hz) or ``"tensorflow"``
            (``tf.signal.linear_to_mel_weight_matrix``: triangles in HTK mel, DC bin dropped; needs
            ``mel_scale="htk"`` and ``mel_norm=None``).
        power: 2.0 for the power spectrum, 1.0 for the magnitude.
        log_mode: ``"log"`` for ``ln(mel + log_offset)``, ``"db"`` for ``10 * log10(max(mel, amin))``
            (then clipped to ``top_db`` below each example's maximum when ``top_db`` is set), ``"none"``.
        log_offset: added before the natural log (``log_mode="log"``).
        amin: floor before the decibel log (``log_mode="db"``).
        top_db: dynamic range kept per example in dB (``log_mode="db"`` only), or ``None``.
        input_scale: the waveform is multiplied by it first (32767.0 for models trained on int16 values).
        output_scale: the features are multiplied by it last.
        output_offset: added after ``output_scale``.
        **kwargs: ``keras.layers.Layer`` arguments (``name``; ``dtype`` defaults to float32, since
            the STFT loses too much precision in float16).

    Shapes:
        input ``(batch, samples)`` float32 in [-1, 1] at ``sample_rate``; output
        ``(batch, frames, num_mel_bins)`` float32. Any batch size and number of samples.

    Example:
        >>> layer = LogMelSpectrogram(num_mel_bins=40, lower_edge_hz=20.0, upper_edge_hz=7600.0)
        >>> layer(np.zeros((2, 16000), "float32")).shape
        TensorShape([2, 97, 40])
    """

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        frame_length: int = 400,
        frame_step: int = 160,
        fft_length: int = 512,
        window: str = "hann",
        window_periodic: bool = True,
        window_placement: str = "center",
        center: bool = False,
        pad_mode: str = "constant",
        num_mel_bins: int = 40,
        lower_edge_hz: float = 0.0,
        upper_edge_hz: float | None = None,
        mel_scale: str = "slaney",
        mel_norm: str | None = "slaney",
        mel_filterbank: str = "librosa",
        power: float = 2.0,
        log_mode: str = "log",
        log_offset: float = 1e-6,
        amin: float = 1e-10,
        top_db: float | None = None,
        input_scale: float = 1.0,
        output_scale: float = 1.0,
        output_offset: float = 0.0,
        **kwargs,
    ) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.sample_rate = checks.positive_int("sample_rate", sample_rate)
        self.frame_length = checks.positive_int("frame_length", frame_length)
        self.frame_step = checks.positive_int("frame_step", frame_step)
        self.fft_length = checks.positive_int("fft_length", fft_length)
        if fft_length < frame_length:
            raise ConfigError(
                f"fft_length must be at least frame_length ({frame_length}), received {fft_length}."
            )
        self.window = checks.choice("window", window, filters.WINDOWS)
        self.window_periodic = checks.boolean("window_periodic", window_periodic)
        self.window_placement = checks.choice("window_placement", window_placement, WINDOW_PLACEMENTS)
        self.center = checks.boolean("center", center)
        self.pad_mode = checks.choice("pad_mode", pad_mode, PAD_MODES)
        self.num_mel_bins = checks.positive_int("num_mel_bins", num_mel_bins)
        nyquist_hz = sample_rate / 2.0
        self.lower_edge_hz = checks.number("lower_edge_hz", lower_edge_hz, at_least=0.0)
        self.upper_edge_hz = (
            nyquist_hz if upper_edge_hz is None else checks.number("upper_edge_hz", upper_edge_hz)
        )
        if not self.lower_edge_hz < self.upper_edge_hz <= nyquist_hz:
            raise ConfigError(
                f"Need 0 <= lower_edge_hz < upper_edge_hz <= sample_rate / 2 = {nyquist_hz}; received "
                f"lower_edge_hz={lower_edge_hz!r}, upper_edge_hz={upper_edge_hz!r}."
            )
        self.mel_scale = checks.choice("mel_scale", mel_scale, filters.MEL_SCALES)
        self.mel_norm = checks.choice("mel_norm", mel_norm, MEL_NORMS)
        self.mel_filterbank = checks.choice("mel_filterbank", mel_filterbank, filters.MEL_FILTERBANKS)
        if mel_filterbank == "tensorflow" and (mel_scale != "htk" or mel_norm is not None):
            raise ConfigError(
                "mel_filterbank='tensorflow' (tf.signal.linear_to_mel_weight_matrix) needs mel_scale='htk' "
                f"and mel_norm=None; received mel_scale={mel_scale!r}, mel_norm={mel_norm!r}."
            )
        self.power = float(checks.choice("power", power, (1.0, 2.0)))
        self.log_mode = checks.choice("log_mode", log_mode, LOG_MODES)
        self.log_offset = checks.number("log_offset", log_offset, above=0.0)
        self.amin = checks.number("amin", amin, above=0.0)
        if top_db is not None:
            top_db = checks.number("top_db", top_db, above=0.0)
            if log_mode != "db":
                raise ConfigError(
                    f"top_db applies to log_mode='db' only; received log_mode={log_mode!r} with "
                    f"top_db={top_db!r} (pass top_db=None)."
                )
        self.top_db = top_db
        self.input_scale = checks.number("input_scale", input_scale)
        if self.input_scale == 0.0:
            raise ConfigError("input_scale must not be 0, received 0.")
        self.output_scale = checks.number("output_scale", output_scale)
        self.output_offset = checks.number("output_offset", output_offset)

        mel = filters.mel_filterbank(
            sample_rate=self.sample_rate,
            fft_length=self.fft_length,
            num_mel_bins=self.num_mel_bins,
            lower_edge_hz=self.lower_edge_hz,
            upper_edge_hz=self.upper_edge_hz,
            mel_scale=self.mel_scale,
            mel_norm=self.mel_norm,
            mel_filterbank=self.mel_filterbank,
        )
        used = np.flatnonzero(mel.any(axis=1))
        if used.size == 0:
            raise ConfigError(
                f"No FFT bin of fft_length={fft_length} at sample_rate={sample_rate} falls inside "
                f"[{lower_edge_hz}, {upper_edge_hz}] Hz; widen the band or raise fft_length."
            )
        # Only the bins some mel filter uses are transformed: the DFT is the dominant cost.
        bins = np.arange(used[0], used[-1] + 1)
        self._window_offset = filters.window_offset(
            frame_length=self.frame_length, fft_length=self.fft_length, window_placement=self.window_placement
        )
        window_values = filters.stft_window(
            self.window, frame_length=self.frame_length, periodic=self.window_periodic
        )
        self._dft_kernel = filters.dft_kernel(
            window_values, fft_length=self.fft_length, offset=self._window_offset, bins=bins
        ).astype(np.float32)[:, None, :]
        self._window = window_values.astype(np.float32)
        #: Compute the DFT in two stages (compact constants, for TFLite files); not part of the config.
        self.compact_dft = False
        self._bins = bins
        mel = mel[bins]
        # For the power spectrum, [re, im]**2 @ [[mel], [mel]] sums re**2 + im**2 inside the mel matmul.
        self._mel_weights = (np.concatenate([mel, mel]) if self.power == 2.0 else mel).astype(np.float32)
        self._num_bins = len(bins)

    @property
    def frame_span(self) -> int:
        """Samples one frame covers: ``fft_length`` for centred windows, ``frame_length`` for left ones."""
        return self.fft_length if self.window_placement == "center" else self.frame_length

    @property
    def min_samples(self) -> int:
        """Shortest input that gives one frame."""
        return max(1, self.frame_span - (2 * (self.fft_length // 2) if self.center else 0))

    def num_frames(self, num_samples: int) -> int:
        """Number of output frames for an input of ``num_samples`` samples."""
        padded = num_samples + (2 * (self.fft_length // 2) if self.center else 0)
        return max(0, 1 + (padded - self.frame_span) // self.frame_step)

    def build(self, input_shape) -> None:
        if len(input_shape) != 2:
            raise InputShapeError(
                f"{type(self).__name__} {self.name!r} takes a (batch, samples) waveform; received an input "
                f"of shape {tuple(input_shape)}."
            )
        super().build(input_shape)

    def compute_output_shape(self, input_shape) -> tuple:
        samples = input_shape[1]
        frames = None if samples is None else self.num_frames(samples)
        return (input_shape[0], frames, self.num_mel_bins)

    def call(self, inputs):
        waveform = tf.cast(inputs, self.compute_dtype)
        if self.input_scale != 1.0:
            waveform = waveform * self.input_scale
        mel = self._mel(self._stft(waveform))
        return self._log(mel)

    def _stft(self, waveform):
        """Real and imaginary parts ``(batch, frames, 2 * bins)`` of the used FFT bins."""
        if self.center:
            pad = self.fft_length // 2
            waveform = tf.pad(waveform, [[0, 0], [pad, pad]], mode=self.pad_mode.upper())
        num_frames = tf.maximum(0, 1 + (tf.shape(waveform)[1] - self.frame_span) // self.frame_step)
        if self.compact_dft:
            # Frame t holds samples [t * frame_step, t * frame_step + frame_length) after the window offset.
            frames = self._frames(waveform[:, self._window_offset :], num_frames) * self._window
            return self._dft_stages(frames)
        # Keep the samples under the windows of the whole frames, and at least one window's worth: the
        # zeros appended first are never inside a whole frame, they only let an input too short for one
        # frame convolve to a single frame that the final slice drops. (oneDNN's convolution, TensorFlow's
        # default on x86 CPUs, returns a wrongly shaped tensor or fails for an input shorter than its kernel,
        # seen with TensorFlow 2.21.)
        waveform = tf.pad(waveform, [[0, 0], [0, self.frame_span]])
        start = self._window_offset
        stop = start + tf.maximum(num_frames - 1, 0) * self.frame_step + self.frame_length
        frames = tf.nn.conv1d(
            tf.expand_dims(waveform[:, start:stop], -1),
            self._dft_kernel,
            stride=self.frame_step,
            padding="VALID",
        )
        return frames[:, :num_frames]

    def _frames(self, waveform, num_frames):
        """``(batch, frames, frame_length)``: rows of ``frame_step`` samples, each frame the concatenation
        of the ``ceil(frame_length / frame_step)`` rows from its own (slices and a concatenation, which
        every TFLite runtime has, where ``tf.signal.frame`` would need a gather of index tensors)."""
        rows_per_frame = -(-self.frame_length // self.frame_step)
        num_rows = num_frames - 1 + rows_per_frame
        samples = tf.maximum(0, num_rows * self.frame_step)
        waveform = tf.pad(waveform, [[0, 0], [0, tf.maximum(0, samples - tf.shape(waveform)[1])]])
        rows = tf.reshape(waveform[:, :samples], [tf.shape(waveform)[0], -1, self.frame_step])
        frames = tf.concat([rows[:, first : first + num_frames] for first in range(rows_per_frame)], axis=-1)
        return frames[..., : self.frame_length]

    @functools.cached_property
    def _dft(self) -> filters.TwoStageDFT:
        """The two-stage DFT's constants, computed on first use (exports only)."""
        return filters.TwoStageDFT.create(
            frame_length=self.frame_length,
            fft_length=self.fft_length,
            offset=self._window_offset,
            bins=self._bins,
        )

    def _dft_stages(self, frames):
        """Real and imaginary parts ``(batch, frames, 2 * bins)`` of windowed frames, in two stages (see
        :class:`~audio_transfer.features.filters.TwoStageDFT`): matrix products, transposes and a
        gather of the bins, with small intermediates."""
        dft = self._dft
        padding = dft.steps * dft.inner - self.frame_length
        if padding:
            frames = tf.pad(frames, [[0, 0], [0, 0], [0, padding]])
        batch, num_frames = tf.shape(frames)[0], tf.shape(frames)[1]
        # (rows, steps, inner) -> (rows, inner, steps) @ (steps, 2 * residues).
        grid = tf.transpose(tf.reshape(frames, [-1, dft.steps, dft.inner]), [0, 2, 1])
        stage1 = tf.matmul(grid, dft.stage1.astype(np.float32))
        # (rows, inner, residues, 2) -> (residues, rows, 2 * inner) @ (residues, 2 * inner, 2 * multiples).
        stage1 = tf.transpose(tf.reshape(stage1, [-1, dft.inner, dft.residues, 2]), [2, 0, 1, 3])
        stage2 = tf.matmul(
            tf.reshape(stage1, [dft.residues, -1, 2 * dft.inner]), dft.stage2.astype(np.float32)
        )
        # (residues, rows, multiples, 2) -> (rows, 2, multiples * residues), then the bins in order.
        spectrum = tf.transpose(tf.reshape(stage2, [dft.residues, -1, dft.multiples, 2]), [1, 3, 2, 0])
        spectrum = tf.gather(
            tf.reshape(spectrum, [-1, 2, dft.multiples * dft.residues]), dft.output_index, axis=2
        )
        return tf.reshape(spectrum, [batch, num_frames, 2 * self._num_bins])

    def _mel(self, stft):
        if self.power == 2.0:
            spectrum = tf.square(stft)
        else:
            real, imag = stft[..., : self._num_bins], stft[..., self._num_bins :]
            spectrum = tf.sqrt(tf.maximum(real * real + imag * imag, _POWER_FLOOR))
        return tf.matmul(spectrum, self._mel_weights)

    def _log(self, mel):
        if self.log_mode == "log":
            features = tf.math.log(mel + self.log_offset)
        elif self.log_mode == "db":
            features = (10.0 / math.log(10.0)) * tf.math.log(tf.maximum(mel, self.amin))
            if self.top_db is not None:
                peak = tf.reduce_max(features, axis=[1, 2], keepdims=True)
                features = tf.maximum(features, peak - self.top_db)
        else:
            features = mel
        if self.output_scale != 1.0:
            features = features * self.output_scale
        if self.output_offset != 0.0:
            features = features + self.output_offset
        return features

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            sample_rate=self.sample_rate,
            frame_length=self.frame_length,
            frame_step=self.frame_step,
            fft_length=self.fft_length,
            window=self.window,
            window_periodic=self.window_periodic,
            window_placement=self.window_placement,
            center=self.center,
            pad_mode=self.pad_mode,
            num_mel_bins=self.num_mel_bins,
            lower_edge_hz=self.lower_edge_hz,
            upper_edge_hz=self.upper_edge_hz,
            mel_scale=self.mel_scale,
            mel_norm=self.mel_norm,
            mel_filterbank=self.mel_filterbank,
            power=self.power,
            log_mode=self.log_mode,
            log_offset=self.log_offset,
            amin=self.amin,
            top_db=self.top_db,
            input_scale=self.input_scale,
            output_scale=self.output_scale,
            output_offset=self.output_offset,
        )
        return config

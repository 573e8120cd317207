"""Per-clip loudness normalisation to a target RMS level in dBFS."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from audio_transfer import checks
from audio_transfer.errors import ConfigError

# RMS below which a clip counts as digital silence: its gain is computed as if its RMS were this (−200 dBFS).
_SILENCE_RMS = 1e-10


@keras.saving.register_keras_serializable(package="audio_transfer")
class VolumeNormalization(keras.layers.Layer):
    """Scale each clip so that its RMS level is ``target_dbfs``, like Resemblyzer's ``normalize_volume``.

    The level of a clip is ``20 * log10(rms)`` dBFS over all its samples (full scale = 1.0), so the gain is
    ``10 ** (target_dbfs / 20) / rms``. With ``increase_only=True`` (Resemblyzer's ``preprocess_wav``
    setting) clips already louder than the target are left unchanged. A clip of digital silence stays
    silent instead of becoming NaN. The level is measured over the whole input: zero padding added before
    this layer lowers it, so normalise before padding.

    Args:
        target_dbfs: RMS level to reach, in dBFS (negative; full scale = 0 dBFS).
        increase_only: only amplify quiet clips, never attenuate loud ones.

    Shapes:
        input ``(batch, samples)`` float32; output the same shape.

    Example:
        >>> layer = VolumeNormalization(target_dbfs=-30.0)
        >>> louder = layer(0.001 * tf.ones((2, 16000)))  # every sample becomes 10 ** (-30 / 20)
    """

    def __init__(self, *, target_dbfs: float = -30.0, increase_only: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        if not (checks.is_number(target_dbfs) and math.isfinite(target_dbfs) and target_dbfs <= 0):
            raise ConfigError(f"target_dbfs must be a finite level <= 0 dBFS, received {target_dbfs!r}.")
        checks.boolean("increase_only", increase_only)
        self.target_dbfs = float(target_dbfs)
        self.increase_only = increase_only

    def call(self, waveform):
        rms = tf.sqrt(tf.reduce_mean(tf.square(waveform), axis=-1, keepdims=True))
        gain = 10.0 ** (self.target_dbfs / 20.0) / tf.maximum(rms, _SILENCE_RMS)
        if self.increase_only:
            gain = tf.maximum(gain, 1.0)
        return waveform * gain

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(target_dbfs=self.target_dbfs, increase_only=self.increase_only)
        return config

"""MFCC: cepstral coefficients of a LogMelSpectrogram, with TFLite builtin ops only."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from audio_transfer import checks
from audio_transfer.errors import ConfigError
from audio_transfer.features.filters import dct_matrix
from audio_transfer.features.log_mel_spectrogram import LogMelSpectrogram


@keras.saving.register_keras_serializable(package="audio_transfer")
class MFCC(LogMelSpectrogram):
    """Mel-frequency cepstral coefficients: an orthonormal DCT-II of the log-mel bands.

    The log-mel spectrogram (every :class:`LogMelSpectrogram` argument, including ``output_scale`` and
    ``output_offset``, which apply to it before the DCT) is multiplied by a precomputed DCT matrix, so the
    layer stays builtin-only in TFLite. With the defaults (dB, 80 dB range per example) it matches
    ``librosa.feature.mfcc`` on the same mel settings, except that librosa takes the 80 dB range over
    the whole input it is given.

    Args:
        num_mfcc: number of coefficients kept, at most ``num_mel_bins`` (librosa's ``n_mfcc``).
        log_mode: as in :class:`LogMelSpectrogram`; defaults to ``"db"`` as librosa's MFCC.
        top_db: as in :class:`LogMelSpectrogram`; defaults to 80.0 as ``librosa.power_to_db``.
        **kwargs: the other :class:`LogMelSpectrogram` arguments.

    Shapes:
        input ``(batch, samples)`` float32 in [-1, 1]; output ``(batch, frames, num_mfcc)`` float32.

    Example:
        >>> layer = MFCC(num_mfcc=13, num_mel_bins=40)
        >>> layer(np.zeros((2, 16000), "float32")).shape
        TensorShape([2, 97, 13])
    """

    def __init__(
        self, *, num_mfcc: int = 13, log_mode: str = "db", top_db: float | None = 80.0, **kwargs
    ) -> None:
        super().__init__(log_mode=log_mode, top_db=top_db, **kwargs)
        self.num_mfcc = checks.positive_int("num_mfcc", num_mfcc)
        if num_mfcc > self.num_mel_bins:
            raise ConfigError(
                f"num_mfcc must be at most num_mel_bins ({self.num_mel_bins}), received {num_mfcc}."
            )
        self._dct = dct_matrix(num_mel_bins=self.num_mel_bins, num_mfcc=num_mfcc).astype(np.float32)

    def compute_output_shape(self, input_shape) -> tuple:
        return (*super().compute_output_shape(input_shape)[:2], self.num_mfcc)

    def call(self, inputs):
        return tf.matmul(super().call(inputs), self._dct)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_mfcc": self.num_mfcc}

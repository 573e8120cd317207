"""Attentive statistics pooling (Okabe et al., 2018): attention-weighted mean and standard deviation."""

from __future__ import annotations

import keras
from keras import ops

from audio_transfer.heads.attention_pooling import AttentionPooling


@keras.saving.register_keras_serializable(package="audio_transfer")
class AttentiveStatisticsPooling(AttentionPooling):
    """Attention-weighted mean and standard deviation of frame embeddings, concatenated.

    The standard deviation carries how a voice varies over the clip, which helps tell speakers apart.
    Scores are computed as in :class:`AttentionPooling` (zero-initialised, so training starts from the
    plain mean and standard deviation).

    Args:
        hidden_units: size of the scoring network's hidden layer.
        epsilon: floor of the variance before the square root, for a stable gradient.

    Shapes:
        input ``(batch, windows, dim)``; output ``(batch, 2 * dim)`` as ``[mean, std]``.

    Example:
        >>> pooled = AttentiveStatisticsPooling()(keras.ops.ones((2, 12, 256)))  # (2, 512)
    """

    def __init__(self, *, hidden_units: int = 64, epsilon: float = 1e-6, **kwargs) -> None:
        super().__init__(hidden_units=hidden_units, **kwargs)
        self.epsilon = float(epsilon)

    def call(self, inputs):
        weights = self.attention_weights(inputs)
        mean = ops.sum(weights * inputs, axis=1)
        variance = ops.sum(weights * ops.square(inputs), axis=1) - ops.square(mean)
        std = ops.sqrt(ops.maximum(variance, self.epsilon))
        return ops.concatenate([mean, std], axis=-1)

    def compute_output_shape(self, input_shape):
        dim = input_shape[-1]
        return (input_shape[0], None if dim is None else 2 * dim)

    def get_config(self) -> dict:
        return {**super().get_config(), "epsilon": self.epsilon}

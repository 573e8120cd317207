"""Learned attention-weighted mean over time."""

from __future__ import annotations

import keras
from keras import ops

from audio_transfer import checks
from audio_transfer.errors import InputShapeError


@keras.saving.register_keras_serializable(package="audio_transfer")
class AttentionPooling(keras.layers.Layer):
    """Weighted mean of frame embeddings with weights a small network learns.

    Each window gets a score ``v · tanh(W x + b)``; the softmax of the scores over time weights the mean.
    ``v`` starts at zero, so an untrained layer is the plain mean and training only moves away from it.

    Args:
        hidden_units: size of the scoring network's hidden layer.

    Shapes:
        input ``(batch, windows, dim)``; output ``(batch, dim)``.

    Example:
        >>> pooled = AttentionPooling(hidden_units=32)(keras.ops.ones((2, 12, 96)))  # (2, 96)
    """

    def __init__(self, *, hidden_units: int = 64, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hidden_units = checks.positive_int("hidden_units", hidden_units)
        self.hidden = keras.layers.Dense(hidden_units, activation="tanh", name="hidden")
        self.score = keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros", name="score")

    def build(self, input_shape) -> None:
        if len(input_shape) != 3:
            raise InputShapeError(
                f"{type(self).__name__} expects (batch, windows, dim) embeddings, received shape "
                f"{tuple(input_shape)}."
            )
        self.hidden.build(input_shape)
        self.score.build((*input_shape[:-1], self.hidden_units))

    def attention_weights(self, inputs):
        """Softmax weights over time, ``(batch, windows, 1)``."""
        scores = self.score(self.hidden(inputs))
        if scores.shape[1] == 1:
            # One window (a clip no longer than the base's window, e.g. a 0.4 s speaker clip): the weight
            # is 1, and ops.softmax would warn on every call about a softmax over a size-1 axis. Written as
            # the softmax of one score, exp(s - s), so the scorer keeps its (zero) gradient and training
            # does not warn that it has none.
            return ops.exp(scores - scores)
        return ops.softmax(scores, axis=1)

    def call(self, inputs):
        return ops.sum(self.attention_weights(inputs) * inputs, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self) -> dict:
        return {**super().get_config(), "hidden_units": self.hidden_units}

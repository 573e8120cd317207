"""Mean and max over time, concatenated."""

from __future__ import annotations

import keras
from keras import ops

from audio_transfer.errors import InputShapeError


@keras.saving.register_keras_serializable(package="audio_transfer")
class TemporalMeanMaxPooling(keras.layers.Layer):
    """Pools frame embeddings over time into their mean and maximum, concatenated.

    The mean summarises the whole clip; the max keeps a short event (a keyword inside a longer clip) from
    being averaged away. The layer has no weights.

    Shapes:
        input ``(batch, windows, dim)``; output ``(batch, 2 * dim)`` as ``[mean, max]``.

    Example:
        >>> pooled = TemporalMeanMaxPooling()(keras.ops.ones((2, 12, 96)))  # (2, 192)
    """

    def build(self, input_shape) -> None:
        if len(input_shape) != 3:
            raise InputShapeError(
                f"{type(self).__name__} expects (batch, windows, dim) embeddings, received shape "
                f"{tuple(input_shape)}."
            )

    def call(self, inputs):
        return ops.concatenate([ops.mean(inputs, axis=1), ops.max(inputs, axis=1)], axis=-1)

    def compute_output_shape(self, input_shape):
        dim = input_shape[-1]
        return (input_shape[0], None if dim is None else 2 * dim)

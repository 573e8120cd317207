"""Additive angular margin softmax (ArcFace, Deng et al., 2019) for training speaker embeddings."""

from __future__ import annotations

import math

import keras
from keras import ops

from audio_transfer import checks
from audio_transfer.errors import ConfigError, InputShapeError


@keras.saving.register_keras_serializable(package="audio_transfer")
class AdditiveAngularMarginSoftmax(keras.layers.Layer):
    """Logits ``scale · cos(θ + margin)`` for the true class and ``scale · cos θ`` for the others.

    ``θ`` is the angle between the L2-normalised embedding and the class's L2-normalised weight vector.
    Adding the margin to the true class's angle forces each speaker's embeddings into a tighter cone than
    plain softmax does, which is what makes cosine scoring of unseen speakers work. The layer returns
    logits; pair it with ``SparseCategoricalCrossentropy(from_logits=True)``. The margin is applied only
    when ``labels`` are passed (training and validation loss), never at inference.

    Args:
        num_classes: number of training speakers (>= 2).
        margin: additive angle in radians, in [0, π/2).
        scale: logit scale ``s`` (ArcFace uses 30–64).

    Shapes:
        inputs ``(batch, dim)`` embeddings and optional ``(batch,)`` integer labels;
        output ``(batch, num_classes)`` logits.

    Example:
        >>> aam = AdditiveAngularMarginSoftmax(40, margin=0.2, scale=30.0)
        >>> logits = aam(keras.ops.ones((8, 256)), labels=keras.ops.zeros((8,), "int32"))
    """

    def __init__(self, num_classes: int, *, margin: float = 0.2, scale: float = 30.0, **kwargs) -> None:
        super().__init__(**kwargs)
        num_classes = checks.integer("num_classes", num_classes, at_least=2)
        if not 0.0 <= margin < math.pi / 2:
            raise ConfigError(f"margin must be an angle in [0, π/2) radians, received {margin!r}.")
        if not scale > 0:
            raise ConfigError(f"scale must be positive, received {scale!r}.")
        self.num_classes = num_classes
        self.margin = float(margin)
        self.scale = float(scale)

    def build(self, input_shape) -> None:
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise InputShapeError(
                f"{type(self).__name__} expects (batch, dim) embeddings, received shape {tuple(input_shape)}."
            )
        self.class_weights = self.add_weight(
            shape=(input_shape[-1], self.num_classes), initializer="glorot_uniform", name="class_weights"
        )

    def call(self, inputs, labels=None):
        embeddings = ops.normalize(inputs, axis=-1)
        centres = ops.normalize(self.class_weights, axis=0)
        cosine = ops.clip(ops.matmul(embeddings, centres), -1.0, 1.0)
        if labels is None or self.margin == 0.0:
            return self.scale * cosine
        sine = ops.sqrt(ops.maximum(1.0 - ops.square(cosine), 0.0))
        with_margin = cosine * math.cos(self.margin) - sine * math.sin(self.margin)
        # Past θ = π - margin, cos(θ + m) would increase again; fall back to a linear penalty there.
        with_margin = ops.where(
            cosine > math.cos(math.pi - self.margin),
            with_margin,
            cosine - math.sin(math.pi - self.margin) * self.margin,
        )
        target = ops.one_hot(ops.cast(ops.reshape(labels, (-1,)), "int32"), self.num_classes)
        return self.scale * (target * with_margin + (1.0 - target) * cosine)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "margin": self.margin,
            "scale": self.scale,
        }

"""Pooling, dropout and a dense softmax over classes: the head of every classification task."""

from __future__ import annotations

import keras

from audio_transfer import checks
from audio_transfer.errors import ConfigError
from audio_transfer.heads.pooling import get_pooling


@keras.saving.register_keras_serializable(package="audio_transfer")
class ClassificationHead(keras.layers.Layer):
    """Maps a clip's frame embeddings to class probabilities.

    ``pooling -> [layer norm] -> dropout -> [dense relu -> dropout] -> dense softmax``. Small on purpose:
    trained on a few hundred clips, a linear layer on well-pooled pretrained embeddings generalises better
    than a deep head.

    Args:
        num_classes: number of outputs (>= 2).
        pooling: one of :data:`~audio_transfer.heads.pooling.POOLING_NAMES`.
        hidden_units: size of an optional hidden ReLU layer; 0 for none.
        dropout: dropout rate in [0, 1) before each dense layer.
        normalize: layer-normalise the pooled vector, which makes the head indifferent to the base's
            embedding scale.
        attention_units: hidden size of the attention scorer (attention poolings only).

    Shapes:
        input ``(batch, windows, dim)`` float32; output ``(batch, num_classes)`` probabilities.

    Example:
        >>> head = ClassificationHead(12, pooling="mean_max")
        >>> head(keras.ops.ones((4, 12, 96))).shape
        (4, 12)
    """

    def __init__(
        self,
        num_classes: int,
        *,
        pooling: str = "mean_max",
        hidden_units: int = 0,
        dropout: float = 0.3,
        normalize: bool = True,
        attention_units: int = 64,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        num_classes = checks.integer("num_classes", num_classes, at_least=2)
        hidden_units = checks.integer("hidden_units", hidden_units, at_least=0)
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), received {dropout!r}.")
        self.num_classes = num_classes
        self.pooling_name = pooling
        self.hidden_units = hidden_units
        self.dropout_rate = float(dropout)
        self.normalize = bool(normalize)
        self.attention_units = attention_units
        self.pooling = get_pooling(pooling, hidden_units=attention_units)
        self.norm = keras.layers.LayerNormalization(name="norm") if normalize else None
        self.dropout = keras.layers.Dropout(dropout, name="dropout")
        self.hidden = (
            keras.layers.Dense(hidden_units, activation="relu", name="hidden") if hidden_units else None
        )
        self.hidden_dropout = keras.layers.Dropout(dropout, name="hidden_dropout") if hidden_units else None
        self.classifier = keras.layers.Dense(num_classes, activation="softmax", name="classifier")

    def build(self, input_shape) -> None:
        self.pooling.build(input_shape)
        shape = self.pooling.compute_output_shape(input_shape)
        if self.norm is not None:
            self.norm.build(shape)
        if self.hidden is not None:
            self.hidden.build(shape)
            shape = (shape[0], self.hidden_units)
        self.classifier.build(shape)

    def call(self, inputs, training=None):
        x = self.pooling(inputs)
        if self.norm is not None:
            x = self.norm(x)
        x = self.dropout(x, training=training)
        if self.hidden is not None:
            x = self.hidden_dropout(self.hidden(x), training=training)
        return self.classifier(x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "pooling": self.pooling_name,
            "hidden_units": self.hidden_units,
            "dropout": self.dropout_rate,
            "normalize": self.normalize,
            "attention_units": self.attention_units,
        }

"""Pooling, an optional projection and L2 normalisation: the head of speaker verification."""

from __future__ import annotations

import keras

from audio_transfer import checks
from audio_transfer.errors import ConfigError
from audio_transfer.heads.pooling import get_pooling


@keras.saving.register_keras_serializable(package="audio_transfer")
class EmbeddingHead(keras.layers.Layer):
    """Maps a clip's frame embeddings to one unit-length clip embedding, compared by cosine similarity.

    ``pooling -> [dropout -> dense projection] -> L2 normalise``. Without a projection (the default), the
    head has no weights and the clip embedding is the normalised mean of the base's frame embeddings, which
    is how GE2E-style bases score speakers out of the box. The projection starts as the identity on the
    first pooled features (the mean), so training starts from that untrained behaviour.

    Args:
        projection_dim: size of the projected embedding; ``None`` for no projection.
        pooling: one of :data:`~audio_transfer.heads.pooling.POOLING_NAMES`.
        dropout: dropout rate in [0, 1) before the projection.
        attention_units: hidden size of the attention scorer (attention poolings only).

    Shapes:
        input ``(batch, windows, dim)``; output ``(batch, projection_dim or pooled dim)``, unit L2 norm.

    Example:
        >>> EmbeddingHead()(keras.ops.ones((2, 5, 256))).shape
        (2, 256)
    """

    def __init__(
        self,
        projection_dim: int | None = None,
        *,
        pooling: str = "mean",
        dropout: float = 0.0,
        attention_units: int = 64,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if projection_dim is not None and not checks.is_positive_int(projection_dim):
            raise ConfigError(
                f"projection_dim must be a positive integer or None, received {projection_dim!r}."
            )
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), received {dropout!r}.")
        self.projection_dim = None if projection_dim is None else int(projection_dim)
        self.pooling_name = pooling
        self.dropout_rate = float(dropout)
        self.attention_units = attention_units
        self.pooling = get_pooling(pooling, hidden_units=attention_units)
        self.dropout = keras.layers.Dropout(dropout, name="dropout")
        self.projection = (
            keras.layers.Dense(
                projection_dim, use_bias=False, kernel_initializer="identity", name="projection"
            )
            if projection_dim
            else None
        )
        self.normalization = keras.layers.UnitNormalization(name="l2_normalize")

    @property
    def has_weights(self) -> bool:
        """Whether the head has anything to train (a projection or attention pooling)."""
        return self.projection is not None or self.pooling_name in ("attention", "attentive_statistics")

    def build(self, input_shape) -> None:
        self.pooling.build(input_shape)
        if self.projection is not None:
            self.projection.build(self.pooling.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        x = self.pooling(inputs)
        if self.projection is not None:
            x = self.projection(self.dropout(x, training=training))
        return self.normalization(x)

    def compute_output_shape(self, input_shape):
        if self.projection_dim:
            return (input_shape[0], self.projection_dim)
        return self.pooling.compute_output_shape(input_shape)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "projection_dim": self.projection_dim,
            "pooling": self.pooling_name,
            "dropout": self.dropout_rate,
            "attention_units": self.attention_units,
        }

"""Heads: small Keras layers that turn a base's frame embeddings into task outputs.

Pooling layers reduce ``(batch, windows, dim)`` to one vector per clip; heads add dropout and dense
layers (:class:`LinearHead`: the standardized linear probe, fitted to convergence by
:func:`fit_softmax_regression`); :class:`AdditiveAngularMarginSoftmax` trains speaker embeddings for
verification.
"""

from audio_transfer.heads.additive_angular_margin_softmax import AdditiveAngularMarginSoftmax
from audio_transfer.heads.attention_pooling import AttentionPooling
from audio_transfer.heads.attentive_statistics_pooling import AttentiveStatisticsPooling
from audio_transfer.heads.classification_head import ClassificationHead
from audio_transfer.heads.embedding_head import EmbeddingHead
from audio_transfer.heads.linear_head import LINEAR_POOLING_NAMES, LinearHead
from audio_transfer.heads.pooling import POOLING_NAMES, get_pooling
from audio_transfer.heads.softmax_regression import fit_softmax_regression
from audio_transfer.heads.temporal_mean_max_pooling import TemporalMeanMaxPooling

__all__ = [
    "LINEAR_POOLING_NAMES",
    "POOLING_NAMES",
    "AdditiveAngularMarginSoftmax",
    "AttentionPooling",
    "AttentiveStatisticsPooling",
    "ClassificationHead",
    "EmbeddingHead",
    "LinearHead",
    "TemporalMeanMaxPooling",
    "fit_softmax_regression",
    "get_pooling",
]

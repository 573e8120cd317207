"""Temporal pooling layers by name, for heads and task configs."""

from __future__ import annotations

import keras

from audio_transfer.errors import ConfigError
from audio_transfer.heads.attention_pooling import AttentionPooling
from audio_transfer.heads.attentive_statistics_pooling import AttentiveStatisticsPooling
from audio_transfer.heads.temporal_mean_max_pooling import TemporalMeanMaxPooling

POOLING_NAMES = ("mean", "mean_max", "attention", "attentive_statistics")


def get_pooling(name: str, *, hidden_units: int = 64) -> keras.layers.Layer:
    """A fresh pooling layer ``(batch, windows, dim) -> (batch, features)``.

    Args:
        name: ``"mean"`` (dim), ``"mean_max"`` (2·dim), ``"attention"`` (dim) or
            ``"attentive_statistics"`` (2·dim).
        hidden_units: hidden size of the attention scorer (attention poolings only).
    """
    if name == "mean":
        return keras.layers.GlobalAveragePooling1D(name="pooling")
    if name == "mean_max":
        return TemporalMeanMaxPooling(name="pooling")
    if name == "attention":
        return AttentionPooling(hidden_units=hidden_units, name="pooling")
    if name == "attentive_statistics":
        return AttentiveStatisticsPooling(hidden_units=hidden_units, name="pooling")
    raise ConfigError(f"pooling must be one of {', '.join(POOLING_NAMES)}; received {name!r}.")

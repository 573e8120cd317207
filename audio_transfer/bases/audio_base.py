"""The contract every pretrained audio base fulfils."""

from __future__ import annotations

import keras
import tensorflow as tf

from audio_transfer import checks
from audio_transfer.bases._keras_compat import nested_layers, set_own_trainable_flag
from audio_transfer.errors import ConfigError, InputShapeError


def _set_trainable(layer: keras.layers.Layer, trainable: bool) -> None:
    """Set ``trainable`` on ``layer`` and on every layer inside it.

    A plain ``layer.trainable = value`` is skipped when ``layer.trainable`` already holds ``value`` (Keras's
    trackable ``__setattr__`` short-circuits ``self.x = self.x``), leaving any sublayer frozen earlier frozen.
    """
    for sublayer in nested_layers(layer):
        keras.layers.Layer.trainable.fset(sublayer, trainable)


@keras.saving.register_keras_serializable(package="audio_transfer")
class AudioBase(keras.Model):
    """A pretrained audio embedding model: raw waveform in, frame embeddings out.

    The feature front-end is inside the model, so an exported model takes raw audio. Input shorter than
    ``min_samples`` is zero-padded at the end to ``min_samples`` rather than rejected.

    Subclasses build their layers in ``__init__`` (architecture only: pretrained weights are loaded by
    :func:`audio_transfer.bases.load_base`, so ``from_config`` rebuilds a base without any weight file),
    implement ``embed(waveform, training)`` on the padded waveform and return their trainable units,
    bottom to top, from ``blocks``. Blocks must be direct children of the base.

    A base that can also run one hop of audio at a time (for keyword detection over long audio and the
    streaming TFLite export) implements :class:`~audio_transfer.bases.StreamableBase` as well.

    Args:
        sample_rate: rate in Hz the input waveform must have.
        embedding_dim: size of each output embedding.
        min_samples: shortest input that yields one window; shorter input is padded.
        window_seconds: span of audio behind one embedding, in seconds.
        hop_seconds: time between consecutive embeddings, in seconds.

    Shapes:
        input ``(batch, samples)`` float32 in [-1, 1]; output ``(batch, windows, embedding_dim)``.
    """

    #: How many bottom blocks an int8 TFLite export keeps in float32 beside the feature front-end, where
    #: quantizing them costs too much agreement for the bytes saved (measured per base; see subclasses).
    int8_float_blocks: int = 0

    def __init__(
        self,
        *,
        sample_rate: int,
        embedding_dim: int,
        min_samples: int,
        window_seconds: float,
        hop_seconds: float,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.sample_rate = checks.positive_int("sample_rate", sample_rate)
        self.embedding_dim = checks.positive_int("embedding_dim", embedding_dim)
        self.min_samples = checks.positive_int("min_samples", min_samples)
        self.window_seconds = checks.number("window_seconds", window_seconds, above=0.0)
        self.hop_seconds = checks.number("hop_seconds", hop_seconds, above=0.0)

    # -- contract for subclasses -------------------------------------------------------------
    @property
    def blocks(self) -> list[keras.layers.Layer]:
        """Trainable units, bottom (closest to the input) to top."""
        raise NotImplementedError(f"{type(self).__name__} must list its blocks.")

    def embed(self, waveform: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        """Map a padded ``(batch, samples)`` waveform to ``(batch, windows, embedding_dim)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement embed().")

    # -- shared behaviour ----------------------------------------------------------------------
    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    def call(self, waveform, training=None):
        return self.embed(self.pad_to_min_samples(waveform), training=training)

    def pad_to_min_samples(self, waveform):
        """Check the rank and zero-pad the end of ``waveform`` to at least ``min_samples``."""
        waveform = tf.convert_to_tensor(waveform, dtype=tf.float32)
        if waveform.shape.rank != 2:
            raise InputShapeError(
                f"{type(self).__name__} expects a waveform of shape (batch, samples), received shape "
                f"{tuple(waveform.shape)}. Add a batch axis with waveform[None, :] for one clip."
            )
        shortfall = tf.maximum(self.min_samples - tf.shape(waveform)[1], 0)
        return tf.pad(waveform, [[0, 0], [0, shortfall]])

    def set_trainable(self, trainable: bool | int) -> None:
        """Freeze the base, unfreeze it entirely, or unfreeze only its top ``n`` blocks.

        Args:
            trainable: ``False`` freezes every weight, ``True`` trains every weight, an int ``n`` in
                ``[0, num_blocks]`` trains the top ``n`` blocks and freezes everything else. Frozen batch
                normalization layers run in inference mode.
        """
        if isinstance(trainable, bool):
            _set_trainable(self, trainable)
            return
        if not checks.is_int(trainable):
            raise ConfigError(
                f"trainable must be True, False or a number of top blocks, received {trainable!r}."
            )
        blocks = self.blocks
        if not 0 <= trainable <= len(blocks):
            raise ConfigError(
                f"Cannot unfreeze the top {trainable} blocks of {type(self).__name__}: it has "
                f"{len(blocks)} blocks. Pass a number from 0 to {len(blocks)}, or True for all."
            )
        _set_trainable(self, False)
        set_own_trainable_flag(self, True)  # a model whose own flag is off reports no trainable weights
        for block in blocks[len(blocks) - trainable :]:
            _set_trainable(block, True)

    def num_windows(self, num_samples: int) -> int:
        """Number of embeddings the base returns for ``num_samples`` of audio."""
        window = round(self.window_seconds * self.sample_rate)
        hop = round(self.hop_seconds * self.sample_rate)
        return 1 + max(max(num_samples, self.min_samples) - window, 0) // hop

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            sample_rate=self.sample_rate,
            embedding_dim=self.embedding_dim,
            min_samples=self.min_samples,
            window_seconds=self.window_seconds,
            hop_seconds=self.hop_seconds,
        )
        return config

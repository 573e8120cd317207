"""Any Keras 3 model that maps a waveform to embeddings, as an :class:`AudioBase`."""

from __future__ import annotations

import keras
import tensorflow as tf

from audio_transfer.bases.audio_base import AudioBase
from audio_transfer.bases.frame_embeddings import as_frame_embeddings
from audio_transfer.errors import ConfigError


@keras.saving.register_keras_serializable(package="audio_transfer")
class KerasModelBase(AudioBase):
    """Wrap a ``keras.Model`` (from a ``.keras`` file or a function that builds it) as a base.

    The wrapped model takes ``(batch, samples)`` float32 at ``sample_rate`` and returns ``(batch, dim)`` (one
    embedding per clip, returned as ``(batch, 1, dim)``), ``(batch, frames, dim)`` or ``(batch, frames, 1,
    dim)``. Its layers that own weights are the blocks, bottom to top, so ``set_trainable(n)`` unfreezes its
    top ``n`` such layers. ``get_config`` embeds the wrapped model's own config, so a task saved to ``.keras``
    needs neither the original file nor the function.

    Args:
        model: the Keras model to wrap (a serialized model config is accepted too, for ``from_config``).
        sample_rate: rate in Hz the model expects.
        embedding_dim: size of each embedding the model returns.
        min_samples: shortest input; shorter waveforms are zero-padded.
        window_seconds: span of audio behind one embedding, in seconds.
        hop_seconds: time between embeddings, in seconds.

    Shapes:
        input ``(batch, samples)`` float32 in [-1, 1]; output ``(batch, frames, embedding_dim)``.

    Example:
        >>> inputs = keras.Input((16000,))
        >>> encoder = keras.Model(inputs, keras.layers.Dense(8)(keras.layers.Reshape((100, 160))(inputs)))
        >>> base = KerasModelBase(model=encoder, sample_rate=16000, embedding_dim=8, min_samples=16000,
        ...     window_seconds=0.01, hop_seconds=0.01)
        >>> base(tf.zeros([2, 16000])).shape
        TensorShape([2, 100, 8])
    """

    def __init__(
        self,
        *,
        model: keras.Model | dict,
        sample_rate: int,
        embedding_dim: int,
        min_samples: int,
        window_seconds: float,
        hop_seconds: float,
        **kwargs,
    ) -> None:
        super().__init__(
            sample_rate=sample_rate,
            embedding_dim=embedding_dim,
            min_samples=min_samples,
            window_seconds=window_seconds,
            hop_seconds=hop_seconds,
            **kwargs,
        )
        if isinstance(model, dict):
            model = keras.saving.deserialize_keras_object(model)
        if not isinstance(model, keras.Model):
            raise ConfigError(f"model must be a keras.Model, received {type(model).__name__}.")
        self.model = model
        self.model.trainable = self.trainable

    @property
    def blocks(self) -> list[keras.layers.Layer]:
        return [layer for layer in self.model.layers if layer.weights]

    def set_trainable(self, trainable: bool | int) -> None:
        """As :meth:`AudioBase.set_trainable`, with the wrapped model's weighted layers as the blocks."""
        super().set_trainable(trainable)
        if isinstance(trainable, bool):
            return
        # The blocks sit inside the wrapped model, which the base class froze as a direct child: unfreeze it,
        # then freeze all its layers again but the top ``trainable`` blocks.
        blocks = self.blocks
        self.model.trainable = True
        for layer in self.model.layers:
            layer.trainable = False
        for block in blocks[len(blocks) - trainable :]:
            block.trainable = True

    def embed(self, waveform: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        return as_frame_embeddings(
            self.model(waveform, training=training),
            embedding_dim=self.embedding_dim,
            source=f"Model {self.model.name!r}",
        )

    def get_config(self) -> dict:
        config = super().get_config()
        config["model"] = keras.saving.serialize_keras_object(self.model)
        return config

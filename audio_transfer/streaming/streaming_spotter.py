"""A speech_embedding keyword spotter as one step per 80 ms hop, its history carried as an explicit state."""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from audio_transfer.bases.speech_embedding_base import (
    HOP_FRAMES,
    NUM_MEL_BINS,
    WINDOW_FRAMES,
    SpeechEmbeddingBase,
)
from audio_transfer.errors import ConfigError
from audio_transfer.streaming import _hops
from audio_transfer.tasks import Classifier

AUDIO_NAME = "audio"
STATE_NAME = "state"
SCORES_NAME = "scores"
NEXT_STATE_NAME = "next_state"


def _is_time_conv(layer: keras.layers.Layer) -> bool:
    """A convolution spanning more than one frame in time (the network's only layers with time history)."""
    return isinstance(layer, keras.layers.Conv2D) and layer.kernel_size[0] > 1


# TensorFlow Lite for Microcontrollers' CONCATENATION takes at most 10 inputs.
_MAX_CONCAT_INPUTS = 10


def _concat_flat(parts: list[tf.Tensor]) -> tf.Tensor:
    """``tf.concat(parts, axis=1)`` as a tree of concatenations of at most 10 inputs each."""
    while len(parts) > _MAX_CONCAT_INPUTS:
        parts = [
            tf.concat(parts[i : i + _MAX_CONCAT_INPUTS], axis=1)
            for i in range(0, len(parts), _MAX_CONCAT_INPUTS)
        ]
    return tf.concat(parts, axis=1)


class StreamingSpotter(tf.Module):
    """One step per 80 ms hop of a speech_embedding keyword spotter: ``(hop, state) -> (scores, next state)``.

    Each step takes the next 1,280 samples and the state the previous step returned, and computes each
    piece of the spotter once:

    - log-mel: the 8 frames the hop completes, from the hop and the last 640 samples of the previous one
      (see ``audio_transfer/streaming/_hops.py``);
    - the network: every time convolution (kernel 3 in time, 11 of them) gets the last 2 rows of its input
      from the state, so each layer computes only its new rows; the time pools then pair exactly the rows a
      run over the whole spectrogram pairs, so one new embedding comes out per hop;
    - the head: it runs on the last ``windows_per_clip`` embeddings (those of a training clip with the
      task's ``context_seconds`` on both sides, here the audio around it), the older ones kept in the state.

    The state is one float32 vector (:attr:`state_size` values; start from :meth:`initial_state`, zeros):
    a device keeps one buffer and copies ``next_state`` into ``state`` after each step. Builtin TFLite ops
    only, so LiteRT and TensorFlow Lite for Microcontrollers run it.

    Step ``j`` (0-based) returns the scores of window ``j - warmup_hops``: the clip starting at
    ``(j - warmup_hops) * 0.08 + context_seconds`` s, heard with ``context_seconds`` of audio on both sides
    (so a keyword is reported ``context_seconds`` after it ends, plus under 0.08 s). The first
    :attr:`warmup_hops` steps have not heard a whole window yet and are to be ignored. The scores are those
    of the spotter's base and head on that window, apart from the log-mel floor (taken per hop, see
    ``_hops.py``); :class:`~audio_transfer.streaming.KeywordDetector` computes the same numbers offline.

    Args:
        spotter: a trained classifier on the ``speech_embedding`` base.
        clip_seconds: its training clip length.

    Example:
        >>> streaming = StreamingSpotter(spotter, clip_seconds=1.0)
        >>> state = streaming.initial_state()
        >>> for hop in hops:  # (1, 1280) float32 each
        ...     outputs = streaming.step(hop, state)
        ...     scores, state = outputs["scores"], outputs["next_state"]
    """

    def __init__(self, spotter: Classifier, *, clip_seconds: float) -> None:
        super().__init__(name="streaming_spotter")
        if not isinstance(spotter, Classifier) or not isinstance(spotter.base, SpeechEmbeddingBase):
            base = getattr(spotter, "base", None)
            raise ConfigError(
                "A streaming model is made for classifiers on the speech_embedding base only; received a "
                f"{type(spotter).__name__} on {type(base).__name__}."
            )
        self.spotter = spotter
        # tf.Module does not see Keras 3 variables; tracking their TensorFlow values lets a SavedModel store
        # them and the TFLite converter freeze them into constants.
        self.keras_variables = [variable.value for variable in spotter.variables]
        self.base = spotter.base
        self.labels = tuple(spotter.labels)
        self.sample_rate = self.base.sample_rate
        self.hop_samples = _hops.hop_samples(self.base)
        window_samples = round(clip_seconds * self.sample_rate) + 2 * spotter.context_samples
        self.windows_per_clip = self.base.num_windows(window_samples)
        self._layers = [layer for block in self.base.blocks for layer in block.layers]
        self._state_shapes = self._layout()
        self._state_sizes = [math.prod(shape) for shape in self._state_shapes]
        self.step = tf.function(
            self._step,
            input_signature=[
                tf.TensorSpec((1, self.hop_samples), tf.float32, name=AUDIO_NAME),
                tf.TensorSpec((1, self.state_size), tf.float32, name=STATE_NAME),
            ],
        )

    @property
    def state_size(self) -> int:
        """Length of the state vector."""
        return sum(self._state_sizes)

    @property
    def warmup_hops(self) -> int:
        """Steps before the first whole clip window: the scores of step ``j`` are those of window
        ``j - warmup_hops``."""
        return (WINDOW_FRAMES - HOP_FRAMES + _hops.LEAD_FRAMES) // HOP_FRAMES + self.windows_per_clip - 1

    def initial_state(self) -> np.ndarray:
        """The state before the first hop: ``(1, state_size)`` zeros."""
        return np.zeros((1, self.state_size), np.float32)

    def _layout(self) -> list[tuple[int, ...]]:
        """Shapes (without batch) of the state's parts: audio, each time convolution's input rows, the
        earlier embeddings of the clip."""
        shapes: list[tuple[int, ...]] = [(_hops.lead_samples(self.base),)]
        x = tf.zeros((1, HOP_FRAMES, NUM_MEL_BINS, 1))
        for layer in self._layers:
            if _is_time_conv(layer):
                history = (layer.kernel_size[0] - 1, *x.shape[2:])
                shapes.append(history)
                x = tf.concat([tf.zeros((1, *history)), x], axis=1)
            x = layer(x)
        if self.windows_per_clip > 1:
            shapes.append((self.windows_per_clip - 1, self.base.embedding_dim))
        return shapes

    def _step(self, audio: tf.Tensor, state: tf.Tensor) -> dict[str, tf.Tensor]:
        parts = [
            tf.reshape(part, (1, *shape))
            for part, shape in zip(
                tf.split(state, self._state_sizes, axis=1), self._state_shapes, strict=True
            )
        ]
        next_parts = []
        samples = tf.concat([parts.pop(0), audio], axis=1)
        next_parts.append(samples[:, -_hops.lead_samples(self.base) :])
        buffers = samples[:, tf.newaxis, : _hops.buffer_samples(self.base)]
        x = tf.expand_dims(_hops.hop_log_mel(self.base, buffers), axis=-1)
        for layer in self._layers:
            if _is_time_conv(layer):
                x = tf.concat([parts.pop(0), x], axis=1)
                next_parts.append(x[:, -(layer.kernel_size[0] - 1) :])
            x = layer(x, training=False)
        embeddings = tf.reshape(x, (1, 1, self.base.embedding_dim))
        if parts:
            embeddings = tf.concat([parts.pop(0), embeddings], axis=1)
            next_parts.append(embeddings[:, 1:])
        scores = self.spotter.head(embeddings, training=False)
        next_state = _concat_flat([tf.reshape(part, (1, -1)) for part in next_parts])
        return {SCORES_NAME: scores, NEXT_STATE_NAME: next_state}

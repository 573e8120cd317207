"""A keyword spotter as one step per hop of its base, its history carried as an explicit state."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from audio_transfer.bases.streamable_base import as_streamable
from audio_transfer.errors import ConfigError
from audio_transfer.tasks import Classifier, Task

AUDIO_NAME = "audio"
STATE_NAME = "state"
SCORES_NAME = "scores"
NEXT_STATE_NAME = "next_state"


class StreamingSpotter(tf.Module):
    """One step per hop of a keyword spotter on a streaming base: ``(hop, state) -> (scores, next state)``.

    Each step takes the base's next :attr:`hop_samples` samples and the state the previous step returned,
    and computes each piece of the spotter once:

    - the base: its :meth:`~audio_transfer.bases.StreamableBase.stream_step` turns the hop into the next
      embedding (for speech_embedding, 80 ms hops and each convolution's new rows only);
    - the head: it runs on the last ``windows_per_clip`` embeddings (those of a training clip with the
      task's ``context_seconds`` on both sides, here the audio around it), the older ones kept in the state.

    The state is one float32 vector (:attr:`state_size` values: the base's state, then the earlier
    embeddings; start from :meth:`initial_state`, zeros): a device keeps one buffer and copies
    ``next_state`` into ``state`` after each step. Builtin TFLite ops only where the base's step uses them,
    so LiteRT and TensorFlow Lite for Microcontrollers run it.

    Step ``j`` (0-based) returns the scores of window ``j - warmup_hops``: the clip starting at
    ``(j - warmup_hops) * hop + context_seconds``, heard with ``context_seconds`` of audio on both sides
    (so a keyword is reported ``context_seconds`` after it ends, plus under a hop). The first
    :attr:`warmup_hops` steps have not heard a whole window yet and are to be ignored. The scores are those
    of the spotter's base and head on that window, apart from what the base documents as its streaming
    difference (speech_embedding: the log-mel floor, taken per hop);
    :class:`~audio_transfer.streaming.KeywordDetector` computes the same numbers offline.

    Args:
        spotter: a trained classifier on a base that streams
            (:class:`~audio_transfer.bases.StreamableBase`, e.g. ``speech_embedding``).
        clip_seconds: its training clip length.

    Raises:
        ConfigError: ``spotter`` is no classifier, or its base does not stream.

    Example:
        >>> streaming = StreamingSpotter(spotter, clip_seconds=1.0)
        >>> state = streaming.initial_state()
        >>> for hop in hops:  # (1, streaming.hop_samples) float32 each
        ...     outputs = streaming.step(hop, state)
        ...     scores, state = outputs["scores"], outputs["next_state"]
    """

    def __init__(self, spotter: Classifier, *, clip_seconds: float) -> None:
        super().__init__(name="streaming_spotter")
        if not (isinstance(spotter, Task) and spotter.evaluation == "classification"):
            raise ConfigError(
                f"A streaming model is made for classifiers (KeywordSpotter, AudioClassifier); received a "
                f"{type(spotter).__name__}."
            )
        self.base = as_streamable(spotter.base, purpose="A streaming model")
        self.spotter = spotter
        # tf.Module does not see Keras 3 variables; tracking their TensorFlow values lets a SavedModel store
        # them and the TFLite converter freeze them into constants.
        self.keras_variables = [variable.value for variable in spotter.variables]
        self.labels = tuple(spotter.labels)
        self.sample_rate = self.base.sample_rate
        self.hop_samples = self.base.stream_hop_samples
        # The audio one set of scores covers: the clip with the task's context on both sides.
        self.window_samples = round(clip_seconds * self.sample_rate) + 2 * spotter.context_samples
        self.windows_per_clip = self.base.num_windows(self.window_samples)
        self._base_state_size = self.base.stream_state_size
        self.step = tf.function(
            self._step,
            input_signature=[
                tf.TensorSpec((1, self.hop_samples), tf.float32, name=AUDIO_NAME),
                tf.TensorSpec((1, self.state_size), tf.float32, name=STATE_NAME),
            ],
        )

    @property
    def state_size(self) -> int:
        """Length of the state vector: the base's state and the clip's earlier embeddings."""
        return self._base_state_size + (self.windows_per_clip - 1) * self.base.embedding_dim

    @property
    def warmup_hops(self) -> int:
        """Steps before the first whole clip window: the scores of step ``j`` are those of window
        ``j - warmup_hops``."""
        return self.base.stream_warmup_hops + self.windows_per_clip - 1

    def initial_state(self) -> np.ndarray:
        """The state before the first hop: ``(1, state_size)`` zeros."""
        return np.zeros((1, self.state_size), np.float32)

    def _step(self, audio: tf.Tensor, state: tf.Tensor) -> dict[str, tf.Tensor]:
        if self.windows_per_clip == 1:
            embeddings, next_state = self.base.stream_step(audio, state)
        else:
            base_state, earlier = tf.split(state, [self._base_state_size, -1], axis=1)
            embedding, next_base_state = self.base.stream_step(audio, base_state)
            earlier = tf.reshape(earlier, (1, self.windows_per_clip - 1, self.base.embedding_dim))
            embeddings = tf.concat([earlier, embedding], axis=1)
            next_state = tf.concat([next_base_state, tf.reshape(embeddings[:, 1:], (1, -1))], axis=1)
        scores = self.spotter.head(embeddings, training=False)
        return {SCORES_NAME: scores, NEXT_STATE_NAME: next_state}

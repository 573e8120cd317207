"""The hop interface of a base that streams: one hop of new audio and a state in, new embeddings out."""

from __future__ import annotations

import importlib

import numpy as np
import tensorflow as tf

from audio_transfer.checks import is_int
from audio_transfer.errors import ConfigError, InputShapeError


class StreamableBase:
    """Mixin for an :class:`~audio_transfer.bases.AudioBase` that can run one hop of audio at a time.

    Streaming is a mode a base provides (as in kws_streaming): the base says how many samples a hop has,
    how many floats it keeps between hops, how one hop turns into the next embedding, and how many hops
    pass before its first embedding is whole. Keyword detection over long audio, stream evaluation and the
    streaming TFLite export use these members only, so any base that implements them streams.

    A subclass (``class MyBase(StreamableBase, AudioBase)``) implements:

    - :attr:`stream_hop_samples`: samples per hop; one embedding comes out per hop.
    - :attr:`stream_state_size`: floats the step keeps between hops (audio, layer histories, ...).
    - :attr:`stream_warmup_hops`: step ``j`` (0-based, from :meth:`initial_stream_state`) returns
      embedding ``j - stream_warmup_hops``; earlier steps return nothing valid.
    - :meth:`stream_step`: one hop, as TensorFlow/Keras ops (exported into a streaming TFLite file).

    Embedding ``k`` of a stream is the base's embedding of the audio window that starts at sample
    ``k * stream_hop_samples``: the same numbers ``base(window)`` gives on that window alone, up to float
    rounding and whatever the base documents as its streaming difference.

    :meth:`stream_embeddings` runs the step over whole streams; a base overrides it where it has a faster
    equivalent (speech_embedding runs its network over the whole spectrogram).

    Example:
        >>> state = base.initial_stream_state()
        >>> for hop in hops:  # (1, base.stream_hop_samples) float32 each
        ...     embedding, state = base.stream_step(hop, state)  # (1, 1, embedding_dim), (1, state_size)
    """

    @property
    def stream_hop_samples(self) -> int:
        """Samples per hop (at the base's ``sample_rate``); one embedding per hop."""
        raise NotImplementedError(f"{type(self).__name__} must give stream_hop_samples.")

    @property
    def stream_state_size(self) -> int:
        """Floats kept between hops: the length of the state vector."""
        raise NotImplementedError(f"{type(self).__name__} must give stream_state_size.")

    @property
    def stream_warmup_hops(self) -> int:
        """Steps before the first whole embedding: step ``j`` returns embedding ``j - stream_warmup_hops``."""
        raise NotImplementedError(f"{type(self).__name__} must give stream_warmup_hops.")

    def stream_step(self, audio: tf.Tensor, state: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """One hop: the next samples and the previous step's state in, the next embedding and state out.

        Args:
            audio: ``(batch, stream_hop_samples)`` float32 samples in [-1, 1].
            state: ``(batch, stream_state_size)`` float32, zeros before the first hop.

        Returns:
            ``(embedding, next_state)``: ``(batch, 1, embedding_dim)`` and ``(batch, stream_state_size)``.
            TensorFlow ops with static shapes in all but the batch axis, builtin TFLite operators only.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement stream_step().")

    def initial_stream_state(self, batch_size: int = 1) -> np.ndarray:
        """The state before the first hop: ``(batch_size, stream_state_size)`` float32 zeros."""
        return np.zeros((batch_size, self.stream_state_size), np.float32)

    def stream_embeddings(self, waveforms: np.ndarray, *, count: int) -> np.ndarray:
        """The first ``count`` embeddings of each stream, as :meth:`stream_step` computes them.

        Args:
            waveforms: ``(batch, samples)`` float32; audio after the end is taken as zeros.
            count: embeddings per stream.

        Returns:
            ``(batch, count, embedding_dim)`` float32: embedding ``k`` of the window starting at sample
            ``k * stream_hop_samples``.
        """
        waveforms = self._stream_input(waveforms, count=count)
        hop, warmup = self.stream_hop_samples, self.stream_warmup_hops
        num_hops = count + warmup
        waveforms = waveforms[:, : num_hops * hop]
        padded = np.zeros((len(waveforms), num_hops * hop), np.float32)
        padded[:, : waveforms.shape[1]] = waveforms
        hops = padded.reshape(len(waveforms), num_hops, hop)
        embeddings = _run_steps(self, hops, self.initial_stream_state(len(waveforms)))
        return embeddings.numpy()[:, warmup:]

    def _stream_input(self, waveforms: np.ndarray, *, count: int) -> np.ndarray:
        """``waveforms`` as a ``(batch, samples)`` float32 array, after checking it and ``count``."""
        waveforms = np.asarray(waveforms, np.float32)
        if waveforms.ndim != 2:
            raise InputShapeError(
                f"{type(self).__name__}.stream_embeddings takes streams of shape (batch, samples), received "
                f"shape {waveforms.shape}."
            )
        if not is_int(count) or count < 1:
            raise ConfigError(f"count must be a positive number of embeddings, received {count!r}.")
        return waveforms


@tf.function(reduce_retracing=True)
def _run_steps(base: StreamableBase, hops: tf.Tensor, state: tf.Tensor) -> tf.Tensor:
    """``base.stream_step`` over ``(batch, hops, hop_samples)`` from ``state``: ``(batch, hops, dim)``."""

    def step(carried, hop):
        embedding, next_state = base.stream_step(hop, carried[1])
        return embedding[:, 0], next_state

    first = tf.zeros((tf.shape(hops)[0], base.embedding_dim))
    embeddings, _ = tf.scan(step, tf.transpose(hops, (1, 0, 2)), initializer=(first, state))
    return tf.transpose(embeddings, (1, 0, 2))


def streamable_base_names() -> list[str]:
    """Names of the preset bases that stream (see :func:`~audio_transfer.bases.list_bases`)."""
    from audio_transfer.bases.registry import list_bases

    names = []
    for info in list_bases():
        module_name, class_name = info.class_path.split(":")
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError):  # a preset whose module cannot load does not stream here
            continue
        if issubclass(cls, StreamableBase):
            names.append(info.name)
    return names


def as_streamable(base: object, *, purpose: str) -> StreamableBase:
    """``base`` itself when it streams, else a :class:`ConfigError` naming it and the bases that stream.

    Also checks that the base's hop is its ``hop_seconds``: embedding ``k`` of a stream is then the one of
    the window at ``k * hop_seconds``, as the base computes on whole clips.

    Args:
        base: the base of a task.
        purpose: what needs streaming, for the message (e.g. ``"A streaming TFLite model"``).

    Example:
        >>> as_streamable(spotter.base, purpose="A streaming TFLite model").stream_hop_samples
        1280
    """
    if not isinstance(base, StreamableBase):
        raise ConfigError(
            f"{purpose} needs a base that streams (implements StreamableBase); {type(base).__name__} does "
            f"not. Bases that stream: {', '.join(streamable_base_names()) or 'none'}; train on one of them."
        )
    declared = round(base.hop_seconds * base.sample_rate)
    if base.stream_hop_samples != declared:
        raise ConfigError(
            f"{type(base).__name__} streams hops of {base.stream_hop_samples} samples but declares "
            f"hop_seconds={base.hop_seconds} ({declared} samples); its stream_hop_samples and hop_seconds "
            "must agree."
        )
    return base

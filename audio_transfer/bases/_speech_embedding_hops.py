"""The hop grid of the streaming speech_embedding base, and the state packing its step uses.

A device hears 80 ms hops (1,280 samples = 8 log-mel frames of 160 samples). For hop ``h`` it computes the
log-mel frames ``8h - 4 .. 8h + 3`` from the samples ``[1280h - 640, 1280h + 992)`` (1,632 samples, the last
640 of them kept for the next hop), with the front-end's 80 dB floor taken below the loudest of those
8 frames, as openWakeWord's streaming front-end does. The lead of 4 frames is the one offset at which the
network's three time pools of stride 2 pair the same frames as a run over the whole spectrogram, so the
streaming network needs no pool state (see :meth:`SpeechEmbeddingBase.stream_step`).

The 80 dB floor is the only difference from running the front-end on a whole clip: there it is taken
below the clip's loudest frame, which a causal model cannot know. Where the audio stays within 80 dB of
that (no stretch of near-digital silence), both give the same frames.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

LEAD_FRAMES = 4
# TensorFlow Lite for Microcontrollers' CONCATENATION takes at most 10 inputs.
_MAX_CONCAT_INPUTS = 10


def hop_log_mel(frontend: keras.layers.Layer, buffers: tf.Tensor, *, frames_per_hop: int) -> tf.Tensor:
    """Log-mel frames of consecutive hop buffers, as one spectrogram.

    Args:
        frontend: the speech_embedding front-end.
        buffers: ``(batch, hops, buffer_samples)`` float32: hop ``h``'s buffer is samples
            ``[1280h - 640, 1280h + 992)`` of the stream.
        frames_per_hop: log-mel frames per hop (8).

    Returns:
        ``(batch, hops * 8, 32)``: frames ``8h0 - 4 ..`` in order, ``h0`` the first hop given.
    """
    shape = tf.shape(buffers)
    frames = frontend(tf.reshape(buffers, (-1, buffers.shape[-1])))
    return tf.reshape(frames, (shape[0], shape[1] * frames_per_hop, frames.shape[-1]))


def hop_buffers(
    waveforms: np.ndarray, *, hop: int, lead: int, span: int, first_hop: int, num_hops: int
) -> np.ndarray:
    """``(batch, num_hops, span)`` buffers of hops ``first_hop ..`` of ``(batch, samples)`` audio.

    Hop ``h``'s buffer is samples ``[h * hop - lead, h * hop - lead + span)``; samples before the start and
    after the end are zeros.
    """
    start = first_hop * hop - lead
    stop = (first_hop + num_hops - 1) * hop - lead + span
    excerpt = np.zeros((waveforms.shape[0], stop - start), np.float32)
    available = waveforms[:, max(start, 0) : stop]
    offset = max(-start, 0)
    excerpt[:, offset : offset + available.shape[1]] = available
    windows = np.lib.stride_tricks.sliding_window_view(excerpt, span, axis=1)[:, ::hop]
    return np.ascontiguousarray(windows[:, :num_hops])


def is_time_conv(layer: keras.layers.Layer) -> bool:
    """A convolution spanning more than one frame in time (the network's only layers with time history)."""
    return isinstance(layer, keras.layers.Conv2D) and layer.kernel_size[0] > 1


def concat_flat(parts: list[tf.Tensor]) -> tf.Tensor:
    """``tf.concat(parts, axis=1)`` as a tree of concatenations of at most 10 inputs each."""
    while len(parts) > _MAX_CONCAT_INPUTS:
        parts = [
            tf.concat(parts[i : i + _MAX_CONCAT_INPUTS], axis=1)
            for i in range(0, len(parts), _MAX_CONCAT_INPUTS)
        ]
    return tf.concat(parts, axis=1)

"""The hop grid shared by the streaming speech_embedding spotter and the detector that emulates it.

A device hears 80 ms hops (1,280 samples = 8 log-mel frames of 160 samples). For hop ``h`` it computes the
log-mel frames ``8h - 4 .. 8h + 3`` from the samples ``[1280h - 640, 1280h + 992)`` (1,632 samples, the last
640 of them kept for the next hop), with the front-end's 80 dB floor taken below the loudest of those
8 frames, as openWakeWord's streaming front-end does. The lead of 4 frames is the one offset at which the
network's three time pools of stride 2 pair the same frames as a run over the whole spectrogram, so the
streaming network needs no pool state (see :class:`~audio_transfer.streaming.StreamingSpotter`).

The 80 dB floor is the only difference from running the front-end on a whole clip: there it is taken
below the clip's loudest frame, which a causal model cannot know. Where the audio stays within 80 dB of
that (no stretch of near-digital silence), both give the same frames.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from audio_transfer.bases.speech_embedding_base import HOP_FRAMES, SpeechEmbeddingBase

LEAD_FRAMES = 4


def hop_samples(base: SpeechEmbeddingBase) -> int:
    """Samples per hop (1,280): one new embedding window per hop."""
    return HOP_FRAMES * base.frontend.frame_step


def lead_samples(base: SpeechEmbeddingBase) -> int:
    """Samples of the previous hop that a hop's frames reach back to (640)."""
    return LEAD_FRAMES * base.frontend.frame_step


def buffer_samples(base: SpeechEmbeddingBase) -> int:
    """Samples the front-end reads per hop (1,632: 8 frames of 512 samples every 160)."""
    return base.frontend.frame_span + (HOP_FRAMES - 1) * base.frontend.frame_step


def hop_log_mel(base: SpeechEmbeddingBase, buffers: tf.Tensor) -> tf.Tensor:
    """Log-mel frames of consecutive hop buffers, as one spectrogram.

    Args:
        base: the speech_embedding base whose front-end to run.
        buffers: ``(batch, hops, buffer_samples)`` float32: hop ``h``'s buffer is samples
            ``[1280h - 640, 1280h + 992)`` of the stream.

    Returns:
        ``(batch, hops * 8, 32)``: frames ``8h0 - 4 ..`` in order, ``h0`` the first hop given.
    """
    shape = tf.shape(buffers)
    frames = base.frontend(tf.reshape(buffers, (-1, buffers.shape[-1])))
    return tf.reshape(frames, (shape[0], shape[1] * HOP_FRAMES, frames.shape[-1]))


def hop_buffers(
    waveforms: np.ndarray, base: SpeechEmbeddingBase, *, first_hop: int, num_hops: int
) -> np.ndarray:
    """``(batch, num_hops, buffer_samples)`` buffers of hops ``first_hop ..`` of ``(batch, samples)`` audio.

    Samples before the start (hop 0 reaches 640 samples back) and after the end are zeros.
    """
    hop, lead, span = hop_samples(base), lead_samples(base), buffer_samples(base)
    start = first_hop * hop - lead
    stop = (first_hop + num_hops - 1) * hop - lead + span
    excerpt = np.zeros((waveforms.shape[0], stop - start), np.float32)
    available = waveforms[:, max(start, 0) : stop]
    offset = max(-start, 0)
    excerpt[:, offset : offset + available.shape[1]] = available
    windows = np.lib.stride_tricks.sliding_window_view(excerpt, span, axis=1)[:, ::hop]
    return np.ascontiguousarray(windows[:, :num_hops])

"""A second base that streams, to prove the StreamableBase interface: 20 ms frames, a time convolution over
5 of them, a projection; random weights, no pretrained file.
"""

from __future__ import annotations

import functools

import keras
import tensorflow as tf
from streaming_support import LABELS, fit_head, training_clips

from audio_transfer.bases.audio_base import AudioBase
from audio_transfer.bases.streamable_base import StreamableBase
from audio_transfer.tasks import KeywordSpotter

SAMPLE_RATE = 16000
HOP_SAMPLES = 320
FRAME_FEATURES = 12
KERNEL_FRAMES = 5
EMBEDDING_DIM = 8
CONTEXT_SECONDS = 0.1


@keras.saving.register_keras_serializable(package="audio_transfer_tests")
class TinyStreamingBase(StreamableBase, AudioBase):
    """16 kHz waveform → ``(batch, windows, 8)``: 0.1 s windows every 20 ms.

    Whole clips: the waveform cut into 320-sample frames, a ReLU dense layer per frame, a ReLU time
    convolution over 5 frames ('valid'), a dense projection. Streaming: each hop is one frame; the state
    keeps the features of the last 4 frames, so embedding ``k`` comes out at step ``k + 4``.

    Blocks: ``frame_features``, ``time_conv``, ``project``.
    """

    def __init__(self, **kwargs) -> None:
        window = KERNEL_FRAMES * HOP_SAMPLES
        super().__init__(
            sample_rate=SAMPLE_RATE,
            embedding_dim=EMBEDDING_DIM,
            min_samples=window,
            window_seconds=window / SAMPLE_RATE,
            hop_seconds=HOP_SAMPLES / SAMPLE_RATE,
            **kwargs,
        )
        self.frame_features = keras.layers.Dense(FRAME_FEATURES, activation="relu", name="frame_features")
        self.time_conv = keras.layers.Conv1D(
            FRAME_FEATURES, KERNEL_FRAMES, padding="valid", activation="relu", name="time_conv"
        )
        self.project = keras.layers.Dense(EMBEDDING_DIM, name="project")

    @property
    def blocks(self) -> list[keras.layers.Layer]:
        return [self.frame_features, self.time_conv, self.project]

    def embed(self, waveform, training=None):
        frames = tf.shape(waveform)[1] // HOP_SAMPLES
        framed = tf.reshape(waveform[:, : frames * HOP_SAMPLES], (tf.shape(waveform)[0], -1, HOP_SAMPLES))
        return self.project(self.time_conv(self.frame_features(framed)))

    @property
    def stream_hop_samples(self) -> int:
        return HOP_SAMPLES

    @property
    def stream_state_size(self) -> int:
        return (KERNEL_FRAMES - 1) * FRAME_FEATURES

    @property
    def stream_warmup_hops(self) -> int:
        return KERNEL_FRAMES - 1

    def stream_step(self, audio, state):
        earlier = tf.reshape(state, (-1, KERNEL_FRAMES - 1, FRAME_FEATURES))
        features = tf.concat([earlier, self.frame_features(audio[:, tf.newaxis])], axis=1)
        embedding = self.project(self.time_conv(features))
        return embedding, tf.reshape(features[:, 1:], (-1, self.stream_state_size))

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable}


def tiny_streaming_base(seed: int = 0) -> TinyStreamingBase:
    """A built TinyStreamingBase with weights drawn from ``seed``."""
    keras.utils.set_random_seed(seed)
    base = TinyStreamingBase()
    base(tf.zeros((1, KERNEL_FRAMES * HOP_SAMPLES)))
    return base


@functools.cache
def tiny_spotter() -> KeywordSpotter:
    """A chirp spotter (streaming_support's labels, 0.1 s of context) on TinyStreamingBase, its head fitted
    so that its scores move."""
    keras.utils.set_random_seed(0)
    spotter = KeywordSpotter(tiny_streaming_base(), LABELS, dropout=0.0, context_seconds=CONTEXT_SECONDS)
    fit_head(spotter, *training_clips(per_label=12), epochs=15)
    return spotter

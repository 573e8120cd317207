"""A tiny AudioBase for fast tests: three small blocks over framed raw waveform, no pretrained weights.

``clips_embedded`` counts the clips the base has run on, so tests can check that a cache avoids reruns.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from audio_transfer.bases.audio_base import AudioBase

WINDOW_SAMPLES = 1600
HOP_SAMPLES = 800


@keras.saving.register_keras_serializable(package="audio_transfer_tests")
class TinyConvBase(AudioBase):
    """16 kHz waveform → ``(batch, windows, 8)``; 0.1 s windows every 0.05 s; blocks conv1, conv2, project.

    Per window: two strided ReLU convolutions, the log of their mean activation (so loudness is an offset),
    then a dense projection.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(
            sample_rate=16000,
            embedding_dim=8,
            min_samples=WINDOW_SAMPLES,
            window_seconds=WINDOW_SAMPLES / 16000,
            hop_seconds=HOP_SAMPLES / 16000,
            **kwargs,
        )
        self.conv1 = keras.layers.Conv1D(8, 32, strides=16, activation="relu", name="conv1")
        self.conv2 = keras.layers.Conv1D(8, 5, strides=2, activation="relu", name="conv2")
        self.project = keras.layers.Dense(8, name="project")
        self.clips_embedded = self.add_weight(
            shape=(), dtype="int64", initializer="zeros", trainable=False, name="clips_embedded"
        )

    @property
    def blocks(self) -> list[keras.layers.Layer]:
        return [self.conv1, self.conv2, self.project]

    def embed(self, waveform, training=None):
        self.clips_embedded.assign_add(tf.cast(tf.shape(waveform)[0], "int64"))
        frames = tf.signal.frame(waveform, WINDOW_SAMPLES, HOP_SAMPLES)
        batch, windows = tf.shape(frames)[0], tf.shape(frames)[1]
        x = tf.reshape(frames, (-1, WINDOW_SAMPLES, 1))
        x = tf.math.log(1e-3 + tf.reduce_mean(self.conv2(self.conv1(x)), axis=1))
        return tf.reshape(self.project(x), (batch, windows, self.embedding_dim))

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable}


def tiny_base(seed: int = 0) -> TinyConvBase:
    """A built TinyConvBase with weights drawn from ``seed``."""
    keras.utils.set_random_seed(seed)
    base = TinyConvBase()
    base(tf.zeros((1, WINDOW_SAMPLES)))
    base.clips_embedded.assign(0)
    return base

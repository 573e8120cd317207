"""Tiny waveform classifiers and tone data for the export tests.

The front-end is a builtin-only layer of the tests' own (framing, then a fixed cosine/sine projection and
magnitudes): every op it needs has int8 kernels in LiteRT and in TensorFlow Lite for Microcontrollers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.tools import flatbuffer_utils

from audio_transfer.export import export_tflite
from audio_transfer.features import get_frontend

SAMPLE_RATE = 16000
NUM_SAMPLES = 4000  # 0.25 s
LABELS = ("low", "mid", "high")
FREQUENCIES_HZ = (300.0, 1200.0, 3000.0)


@keras.saving.register_keras_serializable(package="audio_transfer_tests")
class FrameSpectrum(keras.layers.Layer):
    """Magnitudes of a few fixed frequencies per frame: ``(batch, samples)`` → ``(batch, frames, bins)``."""

    def __init__(
        self, *, frame_length: int = 80, num_bins: int = 16, sample_rate: int = SAMPLE_RATE, **kwargs
    ):
        super().__init__(**kwargs)
        self.frame_length, self.num_bins, self.sample_rate = frame_length, num_bins, sample_rate
        time = np.arange(frame_length)[:, np.newaxis] / sample_rate
        frequencies = np.linspace(100.0, 0.45 * sample_rate, num_bins)[np.newaxis, :]
        phases = 2 * np.pi * frequencies * time
        self.basis = np.concatenate([np.cos(phases), np.sin(phases)], axis=1).astype(np.float32)

    def call(self, waveform):
        frames = keras.ops.reshape(waveform, (-1, waveform.shape[1] // self.frame_length, self.frame_length))
        projection = keras.ops.abs(keras.ops.matmul(frames, self.basis))
        return projection[..., : self.num_bins] + projection[..., self.num_bins :]

    def get_config(self):
        return {
            **super().get_config(),
            "frame_length": self.frame_length,
            "num_bins": self.num_bins,
            "sample_rate": self.sample_rate,
        }


@keras.saving.register_keras_serializable(package="audio_transfer_tests")
class CumprodFrames(keras.layers.Layer):
    """Running products over frames: TensorFlow's Cumprod has no TFLite builtin kernel (it needs Flex)."""

    def call(self, waveform):
        return tf.math.cumprod(tf.reshape(waveform, (-1, waveform.shape[1] // 80, 80)), axis=-1)


@keras.saving.register_keras_serializable(package="audio_transfer_tests")
class OddLengthSpectrum(keras.layers.Layer):
    """FFT magnitudes of 80-sample frames: it converts (RFFT2D) but LiteRT's RFFT2D needs a power of two."""

    def call(self, waveform):
        return tf.abs(tf.signal.rfft(tf.reshape(waveform, (-1, waveform.shape[1] // 80, 80))))


def build_classifier(
    *, frontend: keras.layers.Layer | None = None, num_classes: int = len(LABELS)
) -> keras.Model:
    """Front-end, a small dense layer per frame, average over frames, softmax."""
    waveform = keras.Input((NUM_SAMPLES,), name="waveform")
    features = (frontend or FrameSpectrum())(waveform)
    hidden = keras.layers.Dense(16, activation="relu")(features)
    pooled = keras.layers.GlobalAveragePooling1D()(hidden)
    probabilities = keras.layers.Dense(num_classes, activation="softmax")(pooled)
    return keras.Model(waveform, probabilities, name="tiny_classifier")


class AnyLengthClassifier(keras.Model):
    """A subclassed model that takes clips of any length, as the task models do (no declared inputs)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(len(LABELS), activation="softmax")

    def call(self, waveform, training=None):
        frames = keras.ops.reshape(waveform, (keras.ops.shape(waveform)[0], -1, 80))
        return self.dense(keras.ops.mean(keras.ops.abs(frames), axis=1))


def tone_clips(count: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` noisy tones of random phase and level, one class per frequency; float32 and int labels."""
    rng = np.random.default_rng(seed)
    label_indices = rng.integers(0, len(LABELS), count)
    time = np.arange(NUM_SAMPLES) / SAMPLE_RATE
    frequencies = np.asarray(FREQUENCIES_HZ)[label_indices][:, np.newaxis] * rng.uniform(
        0.95, 1.05, (count, 1)
    )
    phases = rng.uniform(0, 2 * np.pi, (count, 1))
    levels = rng.uniform(0.1, 0.6, (count, 1))
    waveforms = levels * np.sin(2 * np.pi * frequencies * time + phases)
    waveforms += 0.02 * rng.standard_normal((count, NUM_SAMPLES))
    return waveforms.astype(np.float32), label_indices.astype(np.int64)


# Each test "speaker" of a verifier export is a pitch; three clips each, a little apart.
SPEAKER_PITCHES_HZ = {"ann": 300.0, "bob": 900.0, "eve": 2000.0, "joe": 3500.0}
SPEAKER_CLIP_SAMPLES = 8000  # 0.5 s


def speaker_tones() -> tuple[np.ndarray, list[str]]:
    """Three 0.5 s tones per "speaker" of ``SPEAKER_PITCHES_HZ``: float32 ``(12, 8000)`` and the speakers."""
    time = np.arange(SPEAKER_CLIP_SAMPLES) / SAMPLE_RATE
    clips, speakers = [], []
    for speaker, pitch in SPEAKER_PITCHES_HZ.items():
        for k in range(3):
            clips.append(0.5 * np.sin(2 * np.pi * (pitch + 15 * k) * time))
            speakers.append(speaker)
    return np.stack(clips).astype(np.float32), speakers


@functools.cache
def trained_classifier() -> keras.Model:
    """A classifier trained to near-perfect accuracy on tones (built once per test session)."""
    return _trained(build_classifier)


@functools.cache
def trained_log_mel_classifier() -> keras.Model:
    """The same on the library's ``log_mel_40`` front-end (a LogMelSpectrogram layer)."""
    return _trained(lambda: build_classifier(frontend=get_frontend("log_mel_40")))


def _trained(build: Callable[[], keras.Model]) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = build()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    waveforms, label_indices = tone_clips(240, seed=0)
    model.fit(waveforms, label_indices, epochs=8, batch_size=32, verbose=0)
    return model


def export_tones(model: keras.Model, out, **kwargs):
    """:func:`export_tflite` of a tone classifier (its labels and sample rate filled in)."""
    return export_tflite(model, labels=LABELS, sample_rate=SAMPLE_RATE, out=out, **kwargs)


def operator_output_types(content: bytes) -> set[tuple[str, str]]:
    """``(operator name, output tensor type)`` pairs of a TFLite flatbuffer's main subgraph."""
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    subgraph = model.subgraphs[0]
    return {
        (
            flatbuffer_utils.opcode_to_name(model, op.opcodeIndex),
            flatbuffer_utils.type_to_name(subgraph.tensors[op.outputs[0]].type),
        )
        for op in subgraph.operators
    }

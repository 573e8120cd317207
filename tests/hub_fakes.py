"""Tiny SavedModels with the calling conventions of real TF Hub audio models, for hub-base tests.

Each frames the waveform into 400-sample windows every 200 samples (25 ms / 12.5 ms at 16 kHz) and projects
every window with a small trainable matrix, so the tests can check shapes, values and fine-tuning.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

FRAME_LENGTH = 400
FRAME_STEP = 200

# HubBase arguments for the SavedModel of save_yamnet_like().
YAMNET_LIKE_CONFIG = {
    "call_convention": "unbatched",
    "output_key": 1,
    "sample_rate": 16000,
    "embedding_dim": 16,
    "min_samples": 400,
    "window_seconds": 0.025,
    "hop_seconds": 0.0125,
}


def _frames(waveform: tf.Tensor) -> tf.Tensor:
    return tf.signal.frame(waveform, FRAME_LENGTH, FRAME_STEP)


class YamnetLike(tf.Module):
    """YAMNet's convention: one unbatched waveform -> (scores, embeddings (frames, dim), log_mel)."""

    def __init__(self, embedding_dim: int) -> None:
        rng = np.random.default_rng(1)
        self.kernel = tf.Variable(rng.normal(size=(FRAME_LENGTH, embedding_dim)).astype("float32") * 0.05)
        self.moving_mean = tf.Variable(tf.zeros([embedding_dim]), trainable=False)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def __call__(self, waveform):
        frames = _frames(waveform)
        embeddings = tf.nn.relu(tf.matmul(frames, self.kernel) - self.moving_mean)
        scores = tf.sigmoid(embeddings[:, :3])
        log_mel = tf.math.log(tf.abs(frames[:, :8]) + 1e-3)
        return scores, embeddings, log_mel


class TrillLike(tf.Module):
    """TRILL's convention: samples (batch, n) + sample_rate -> {'embedding': ..., 'layer19': ...}."""

    def __init__(self) -> None:
        rng = np.random.default_rng(2)
        self.kernel = tf.Variable(rng.normal(size=(FRAME_LENGTH, 12)).astype("float32") * 0.05)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([], tf.int32)])
    def __call__(self, samples, sample_rate):
        hidden = tf.matmul(_frames(samples), self.kernel) * tf.cast(sample_rate, tf.float32) / 16000.0
        return {"embedding": hidden, "layer19": tf.concat([hidden, hidden], axis=-1)}


def save_yamnet_like(path: Path, *, embedding_dim: int = 16) -> Path:
    tf.saved_model.save(YamnetLike(embedding_dim), str(path))
    return path


def save_trill_like(path: Path) -> Path:
    tf.saved_model.save(TrillLike(), str(path))
    return path


def save_reusable_with_training_argument(path: Path) -> Path:
    """A Reusable SavedModel: declared ``variables``/``trainable_variables`` and a ``training`` argument.

    ``scale`` has its trainable flag set but is not in ``trainable_variables``; with ``training=True`` the
    output is doubled, as dropout or batch norm would change it.
    """
    module = tf.__internal__.tracking.AutoTrackable()
    module.kernel = tf.Variable(tf.ones([FRAME_LENGTH, 4]) * 0.01)
    module.scale = tf.Variable(1.0)
    module.variables = [module.kernel, module.scale]
    module.trainable_variables = [module.kernel]

    @tf.function
    def call(waveform, training=False):
        outputs = tf.matmul(_frames(waveform), module.kernel) * module.scale
        return outputs * 2.0 if training else outputs

    for training in (False, True):
        call.get_concrete_function(tf.TensorSpec([None, None], tf.float32), training=training)
    module.__call__ = call
    tf.saved_model.save(module, str(path))
    return path


def save_tf1_hub_module(path: Path) -> Path:
    """A TF1 Hub format module like speech_embedding/1: 'default' signature -> (batch, frames, 1, 6)."""
    with tf.Graph().as_default():
        waveform = tf.compat.v1.placeholder(tf.float32, [None, None])
        kernel = tf.compat.v1.get_variable("kernel", initializer=tf.ones([FRAME_LENGTH, 6]) * 0.01)
        embeddings = tf.matmul(_frames(waveform), kernel)[:, :, tf.newaxis, :]
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            builder = tf.compat.v1.saved_model.Builder(str(path))
            signature = tf.compat.v1.saved_model.predict_signature_def(
                {"default": waveform}, {"default": embeddings}
            )
            builder.add_meta_graph_and_variables(session, [], signature_def_map={"default": signature})
            builder.save()
    (path / "tfhub_module.pb").write_bytes(b"")
    return path

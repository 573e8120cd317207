"""Local bases: a .keras file, a SavedModel directory or a function returning a keras.Model."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from audio_transfer.bases import AudioBase, HubBase, KerasModelBase, load_base
from audio_transfer.errors import BaseNotFoundError, ConfigError, InputShapeError

SAMPLES = 1600


def frame_encoder(*, pooled: bool = False) -> keras.Model:
    """(batch, 1600) -> 10 frames of 160 samples -> Dense 8 -> BatchNorm -> Dense 8 (optionally pooled)."""
    inputs = keras.Input((SAMPLES,))
    x = keras.layers.Reshape((10, 160))(inputs)
    x = keras.layers.Dense(8, activation="relu", name="low")(x)
    x = keras.layers.BatchNormalization(name="norm")(x)
    x = keras.layers.Dense(8, name="high")(x)
    if pooled:
        x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, x, name="encoder")


def waveforms(batch: int = 2) -> np.ndarray:
    return np.random.default_rng(0).uniform(-0.5, 0.5, (batch, SAMPLES)).astype("float32")


def test_function_returning_a_model_serves_as_a_base():
    base = load_base(frame_encoder, sample_rate=16000, embedding_dim=8, min_samples=SAMPLES)
    assert isinstance(base, KerasModelBase)
    assert base(waveforms()).shape == (2, 10, 8)
    assert base.window_seconds == pytest.approx(0.1) and base.hop_seconds == pytest.approx(0.1)


def test_one_embedding_per_clip_becomes_one_window():
    base = load_base(frame_encoder(pooled=True), sample_rate=16000, embedding_dim=8)
    assert base(waveforms()).shape == (2, 1, 8)
    assert base.min_samples == SAMPLES  # default: the model's fixed input length


def test_variable_length_model_is_padded_to_one_second_by_default():
    inputs = keras.Input((None,))
    outputs = keras.layers.Dense(4)(keras.layers.Reshape((-1, 160))(inputs))
    base = load_base(keras.Model(inputs, outputs), sample_rate=16000, embedding_dim=4)
    assert base.min_samples == 16000
    assert base(waveforms()).shape == (2, 100, 4)
    assert base(np.zeros((1, 32000), "float32")).shape == (1, 200, 4)


def test_keras_file_serves_as_a_base(tmp_path):
    model = frame_encoder()
    path = tmp_path / "encoder.keras"
    model.save(path)
    base = load_base(str(path), sample_rate=16000, embedding_dim=8, min_samples=SAMPLES)
    np.testing.assert_allclose(base(waveforms()).numpy(), model(waveforms()).numpy(), atol=1e-6)


def test_keras_export_savedmodel_directory_serves_as_a_base(tmp_path):
    model = frame_encoder()
    model.export(tmp_path / "exported", verbose=False)
    base = load_base(tmp_path / "exported", sample_rate=16000, embedding_dim=8, min_samples=SAMPLES)
    assert isinstance(base, HubBase)
    np.testing.assert_allclose(base(waveforms()).numpy(), model(waveforms()).numpy(), atol=1e-5)
    base.set_trainable(True)
    assert len(base.trainable_weights) == len(model.trainable_weights)


def test_top_n_blocks_are_the_wrapped_models_weighted_layers():
    base = load_base(frame_encoder, trainable=1, sample_rate=16000, embedding_dim=8)
    assert [block.name for block in base.blocks] == ["low", "norm", "high"]
    assert {w.path.split("/")[-2] for w in base.trainable_weights} == {"high"}
    base.set_trainable(2)
    trainable = {w.path.split("/")[-2] for w in base.trainable_weights}
    assert trainable == {"high", "norm"}
    base.set_trainable(False)
    assert base.trainable_weights == []
    base.set_trainable(True)
    assert len(base.trainable_weights) == 6


def test_too_many_blocks_reports_the_count():
    with pytest.raises(ConfigError, match=r"top 4 blocks.*it has 3 blocks"):
        load_base(frame_encoder, trainable=4, sample_rate=16000, embedding_dim=8)


def test_fine_tuning_top_block_leaves_lower_blocks_and_frozen_batchnorm_alone():
    base = load_base(frame_encoder, trainable=1, sample_rate=16000, embedding_dim=8, min_samples=SAMPLES)
    inputs = keras.Input((SAMPLES,))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(base(inputs))))
    model.compile(keras.optimizers.SGD(0.5), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = {w.path: w.numpy().copy() for w in base.weights}
    model.train_on_batch(waveforms(4), np.array([0, 1, 0, 1]))
    changed = {w.path for w in base.weights if not np.array_equal(w.numpy(), before[w.path])}
    assert changed == {"high/kernel", "high/bias"}  # moving statistics of 'norm' unchanged


def test_task_with_a_keras_model_base_round_trips(tmp_path):
    base = load_base(frame_encoder, trainable=True, sample_rate=16000, embedding_dim=8, min_samples=SAMPLES)
    inputs = keras.Input((SAMPLES,))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(base(inputs))))
    path = tmp_path / "task.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)  # safe mode: a Keras model config only
    np.testing.assert_allclose(reloaded(waveforms()).numpy(), model(waveforms()).numpy(), atol=1e-6)
    assert isinstance(reloaded.layers[1], KerasModelBase)


def test_saved_base_file_loads_back_as_that_base(tmp_path):
    base = load_base(frame_encoder, sample_rate=16000, embedding_dim=8, min_samples=SAMPLES)
    path = tmp_path / "base.keras"
    base.save(path)
    reloaded = load_base(path)
    assert isinstance(reloaded, AudioBase) and reloaded.embedding_dim == 8
    np.testing.assert_allclose(reloaded(waveforms()).numpy(), base(waveforms()).numpy(), atol=1e-6)
    with pytest.raises(ConfigError, match=r"complete base.*sample_rate"):
        load_base(path, sample_rate=8000)


def test_local_base_needs_declared_rate_and_size():
    with pytest.raises(ConfigError, match=r"declare the rate.*Missing: sample_rate, embedding_dim"):
        load_base(frame_encoder)


def test_declared_size_must_match_the_model():
    with pytest.raises(ConfigError, match=r"embeddings of size 8, but embedding_dim=96 was declared"):
        load_base(frame_encoder, sample_rate=16000, embedding_dim=96)


def test_function_must_return_a_keras_model():
    with pytest.raises(ConfigError, match=r"must give a keras.Model, but gave Dense"):
        load_base(lambda: keras.layers.Dense(3), sample_rate=16000, embedding_dim=3)


def test_unreadable_keras_file_is_reported(tmp_path):
    path = tmp_path / "broken.keras"
    path.write_bytes(b"not a zip")
    with pytest.raises(BaseNotFoundError, match=r"Cannot load the Keras model .*broken.keras"):
        load_base(path, sample_rate=16000, embedding_dim=8)


def test_unsupported_output_layout_is_reported():
    def image_like():
        inputs = keras.Input((SAMPLES,))
        return keras.Model(inputs, keras.layers.Reshape((4, 5, 8, 10))(inputs))

    with pytest.raises(InputShapeError, match=r"returned embeddings of shape \(1, 4, 5, 8, 10\)"):
        load_base(image_like, sample_rate=16000, embedding_dim=10)


def test_waveform_of_wrong_rank_reports_its_shape():
    base = load_base(frame_encoder, sample_rate=16000, embedding_dim=8)
    with pytest.raises(InputShapeError, match=r"received shape \(2, 1600, 1\)"):
        base(tf.zeros([2, SAMPLES, 1]))

import math
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from audio_transfer.errors import ConfigError, InputShapeError
from audio_transfer.heads import (
    AdditiveAngularMarginSoftmax,
    AttentionPooling,
    AttentiveStatisticsPooling,
    ClassificationHead,
    EmbeddingHead,
    TemporalMeanMaxPooling,
    get_pooling,
)


def _frames(rng, batch=3, windows=7, dim=5):
    return rng.normal(size=(batch, windows, dim)).astype("float32")


def test_mean_max_pooling_concatenates_mean_then_max(rng):
    x = _frames(rng)
    out = keras.ops.convert_to_numpy(TemporalMeanMaxPooling()(x))
    np.testing.assert_allclose(out, np.concatenate([x.mean(1), x.max(1)], -1), rtol=1e-5, atol=1e-6)


def test_attention_pooling_starts_as_plain_mean_and_weights_sum_to_one(rng):
    x = _frames(rng)
    layer = AttentionPooling(hidden_units=4)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), x.mean(1), rtol=1e-5, atol=1e-6)
    layer.score.kernel.assign(rng.normal(size=(4, 1)).astype("float32"))
    weights = keras.ops.convert_to_numpy(layer.attention_weights(x))
    np.testing.assert_allclose(weights.sum(1), 1.0, rtol=1e-5)
    assert weights.std() > 0


def test_attention_pooling_of_one_window_returns_it_without_a_softmax_warning(rng):
    # A 0.4 s speaker clip gives the ge2e base one window; Keras warns on a softmax over a size-1 axis.
    x = _frames(rng, windows=1)
    for layer in (AttentionPooling(hidden_units=4), AttentiveStatisticsPooling(hidden_units=4)):
        layer.build(x.shape)
        layer.score.kernel.assign(rng.normal(size=(4, 1)).astype("float32"))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            layer(keras.Input((1, 5)))  # symbolic, as inside a task's model
            out = keras.ops.convert_to_numpy(layer(x))
        np.testing.assert_allclose(out[:, :5], x[:, 0], rtol=1e-6)
        with tf.GradientTape() as tape:
            weights = layer.attention_weights(tf.constant(x))
        gradients = tape.gradient(weights, layer.trainable_variables)
        assert all(gradient is not None and not np.any(gradient) for gradient in gradients)


def test_attentive_statistics_pooling_is_mean_and_std_when_untrained(rng):
    x = _frames(rng)
    out = keras.ops.convert_to_numpy(AttentiveStatisticsPooling()(x))
    np.testing.assert_allclose(out[:, :5], x.mean(1), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out[:, 5:], x.std(1), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("layer", [TemporalMeanMaxPooling(), AttentionPooling()])
def test_pooling_rejects_unbatched_frames_with_the_shape(layer):
    with pytest.raises(InputShapeError, match=r"\(7, 5\)"):
        layer(np.zeros((7, 5), "float32"))


def test_unknown_pooling_name_lists_the_choices():
    with pytest.raises(ConfigError, match=r"mean_max.*received 'median'"):
        get_pooling("median")


@pytest.mark.parametrize("pooling", ["mean", "mean_max", "attention", "attentive_statistics"])
def test_classification_head_outputs_probabilities_and_round_trips_config(rng, pooling):
    head = ClassificationHead(4, pooling=pooling, hidden_units=8)
    x = _frames(rng)
    probs = keras.ops.convert_to_numpy(head(x))
    assert probs.shape == (3, 4)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    clone = ClassificationHead.from_config(head.get_config())
    clone.build(x.shape)
    clone.set_weights(head.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone(x)), probs, rtol=1e-5)


def test_classification_head_validates_arguments():
    with pytest.raises(ConfigError, match="received 1"):
        ClassificationHead(1)
    with pytest.raises(ConfigError, match=r"dropout.*received 1\.5"):
        ClassificationHead(3, dropout=1.5)


def test_embedding_head_without_projection_is_normalised_mean(rng):
    x = _frames(rng)
    head = EmbeddingHead()
    out = keras.ops.convert_to_numpy(head(x))
    expected = x.mean(1) / np.linalg.norm(x.mean(1), axis=-1, keepdims=True)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert not head.has_weights and not head.weights


def test_embedding_head_projection_starts_as_identity_on_the_mean(rng):
    x = _frames(rng)
    head = EmbeddingHead(5, pooling="attentive_statistics")
    out = keras.ops.convert_to_numpy(head(x))
    expected = x.mean(1) / np.linalg.norm(x.mean(1), axis=-1, keepdims=True)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    assert head.has_weights


def test_aam_softmax_applies_margin_to_the_true_class_only(rng):
    layer = AdditiveAngularMarginSoftmax(3, margin=0.3, scale=10.0)
    x = rng.normal(size=(4, 6)).astype("float32")
    labels = np.array([0, 1, 2, 1])
    plain = keras.ops.convert_to_numpy(layer(x))
    margin = keras.ops.convert_to_numpy(layer(x, labels=labels))
    cos = np.clip(plain / 10.0, -1, 1)
    rows = np.arange(4)
    theta = np.arccos(cos[rows, labels])
    expected_true = np.where(
        cos[rows, labels] > math.cos(math.pi - 0.3),
        np.cos(theta + 0.3),
        cos[rows, labels] - math.sin(math.pi - 0.3) * 0.3,
    )
    np.testing.assert_allclose(margin[rows, labels] / 10.0, expected_true, rtol=1e-4, atol=1e-5)
    mask = np.ones_like(cos, bool)
    mask[rows, labels] = False
    np.testing.assert_allclose(margin[mask], plain[mask], rtol=1e-5)
    assert np.all(margin[rows, labels] < plain[rows, labels])
    assert np.all(np.abs(plain) <= 10.0 + 1e-4)


def test_aam_softmax_validates_margin():
    with pytest.raises(ConfigError, match=r"margin.*received 2\.0"):
        AdditiveAngularMarginSoftmax(3, margin=2.0)


def test_heads_round_trip_through_keras_file_in_safe_mode(tmp_path, rng):
    frames = keras.Input((None, 5))
    labels = keras.Input((), dtype="int32")
    embedding = EmbeddingHead(4, pooling="attention")(frames)
    logits = AdditiveAngularMarginSoftmax(3)(embedding, labels=labels)
    probs = ClassificationHead(3, pooling="attentive_statistics")(frames)
    model = keras.Model([frames, labels], [logits, probs])
    x, y = _frames(rng), np.array([0, 2, 1], "int32")
    before = model.predict([x, y], verbose=0)
    path = tmp_path / "heads.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    for a, b in zip(before, loaded.predict([x, y], verbose=0), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

"""The linear head: standardization from the training embeddings, a softmax layer fitted to convergence (the
logistic-regression probe), choosing it with ``head=linear``, saving, loading and exporting it."""

import contextlib
import io
import json

import keras
import numpy as np
import pytest
from audio_files import write_pitch_classes
from tiny_conv_base import tiny_base

from audio_transfer.cli.main import main
from audio_transfer.errors import ConfigError, InputShapeError
from audio_transfer.export import export_tflite
from audio_transfer.heads import LinearHead, fit_softmax_regression, softmax_regression
from audio_transfer.tasks import KeywordSpotter, SpeakerVerifier
from audio_transfer.training import TrainConfig, Trainer

LABELS = ["low", "mid", "high"]
FREQUENCIES_HZ = (300.0, 1000.0, 3000.0)
NUM_SAMPLES = 8000


def tones(per_class: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy 0.5 s tones, one frequency band per class, random level and phase: (waveforms, labels)."""
    rng = np.random.default_rng(seed)
    t = np.arange(NUM_SAMPLES) / 16000
    waveforms, labels = [], []
    for label, frequency in enumerate(FREQUENCIES_HZ):
        for _ in range(per_class):
            tone = rng.uniform(0.2, 0.8) * np.sin(
                2 * np.pi * frequency * rng.uniform(0.8, 1.2) * t + rng.uniform(0, 6)
            )
            waveforms.append(tone + rng.normal(scale=0.05, size=t.size))
            labels.append(label)
    return np.asarray(waveforms, np.float32), np.asarray(labels)


@pytest.fixture(scope="module")
def frames():
    """Frame embeddings of the tiny base on tones, and their labels."""
    waveforms, labels = tones(20, seed=0)
    return keras.ops.convert_to_numpy(tiny_base()(waveforms)), labels


def regularised_gradient(pooled, labels, head, *, inverse_regularization=1.0):
    """Gradient of mean cross-entropy + ||kernel||² / (2·C·n) at the head's weights, in NumPy (float64)."""
    x = (pooled - head.mean.numpy()) * head.scale.numpy()
    kernel, bias = head.kernel.numpy().astype(np.float64), head.bias.numpy().astype(np.float64)
    logits = x @ kernel + bias
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    error = (probabilities - np.eye(kernel.shape[1])[labels]) / len(x)
    return x.T @ error + kernel / (inverse_regularization * len(x)), error.sum(axis=0)


def test_standardization_is_the_training_embeddings_mean_and_std(frames):
    x, labels = frames
    head = LinearHead(3)
    head.fit(x, labels)
    pooled = head.pool(x)
    assert pooled.shape == (len(x), 16)  # mean and max of 8-dim frames
    np.testing.assert_allclose(head.mean.numpy(), pooled.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(head.scale.numpy(), 1 / pooled.std(axis=0), rtol=1e-4)
    standardized = (pooled - head.mean.numpy()) * head.scale.numpy()
    np.testing.assert_allclose(standardized.std(axis=0), 1.0, atol=1e-4)
    assert not head.mean.trainable and not head.scale.trainable


def test_a_constant_feature_keeps_scale_one():
    head = LinearHead(2, pooling="mean")
    head.build((None, None, 2))
    head.adapt(np.array([[1.0, 5.0], [3.0, 5.0]]))
    np.testing.assert_allclose(head.scale.numpy(), [1.0, 1.0])
    np.testing.assert_allclose(head.mean.numpy(), [2.0, 5.0])


def test_the_fit_reaches_the_minimum_of_the_regularised_loss(frames):
    x, labels = frames
    for c in (1.0, 0.05):
        head = LinearHead(3)
        metrics = head.fit(x, labels, inverse_regularization=c)
        kernel_gradient, bias_gradient = regularised_gradient(
            head.pool(x), labels, head, inverse_regularization=c
        )
        assert np.abs(kernel_gradient).max() < 1e-4 and np.abs(bias_gradient).max() < 1e-4
        assert 0 < metrics["steps"] < 1000 and metrics["loss"] > metrics["cross_entropy"]
    # Stronger regularisation (smaller C) gives a smaller kernel.
    strong, weak = LinearHead(3), LinearHead(3)
    strong.fit(x, labels, inverse_regularization=0.01)
    weak.fit(x, labels, inverse_regularization=1.0)
    assert np.linalg.norm(strong.kernel.numpy()) < np.linalg.norm(weak.kernel.numpy())


def test_the_fit_matches_scikit_learns_standard_scaler_and_logistic_regression(frames):
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    linear_model = pytest.importorskip("sklearn.linear_model")
    x, labels = frames
    head = LinearHead(3)
    head.fit(x, labels)
    pooled = head.pool(x).astype(np.float64)
    scaler = preprocessing.StandardScaler().fit(pooled)
    probe = linear_model.LogisticRegression(C=1.0, max_iter=5000, tol=1e-10).fit(
        scaler.transform(pooled), labels
    )
    np.testing.assert_allclose(head.mean.numpy(), scaler.mean_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(head.scale.numpy(), 1 / scaler.scale_, rtol=1e-4)
    np.testing.assert_allclose(head.kernel.numpy(), probe.coef_.T, atol=2e-3)
    probabilities = keras.ops.convert_to_numpy(head(x))
    np.testing.assert_allclose(probabilities, probe.predict_proba(scaler.transform(pooled)), atol=1e-3)


def test_sample_weights_count_an_example_that_many_times():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(12, 4)), np.arange(12) % 3
    weighted = fit_softmax_regression(x, y, num_classes=3, l2=0.05, sample_weight=np.where(y == 0, 2.0, 1.0))
    doubled = np.concatenate([x, x[y == 0]]), np.concatenate([y, y[y == 0]])
    repeated = fit_softmax_regression(*doubled, num_classes=3, l2=0.05 * 12 / 16)
    # The same objective up to the factor 16/12, hence the same minimiser.
    np.testing.assert_allclose(weighted["kernel"], repeated["kernel"], atol=1e-5)


def test_the_fit_reads_its_rows_in_chunks_with_the_same_result(monkeypatch):
    rng = np.random.default_rng(2)
    x = rng.normal(loc=3.0, scale=2.0, size=(50, 6)).astype(np.float32)
    y, weights = np.arange(50) % 4, rng.uniform(0.5, 2.0, size=50)
    center, scale = x.mean(axis=0), 1 / x.std(axis=0)
    standardized = ((x - center) * scale).astype(np.float64)
    whole = fit_softmax_regression(standardized, y, num_classes=4, l2=0.01, sample_weight=weights)
    monkeypatch.setattr(softmax_regression, "_CHUNK_ROWS", 7)  # 8 chunks, the last one short
    chunked = fit_softmax_regression(
        x, y, num_classes=4, l2=0.01, sample_weight=weights, center=center, scale=scale
    )
    np.testing.assert_allclose(chunked["kernel"], whole["kernel"], atol=1e-6)
    np.testing.assert_allclose(chunked["bias"], whole["bias"], atol=1e-6)
    assert chunked["accuracy"] == whole["accuracy"] and chunked["loss"] == pytest.approx(whole["loss"])
    mean, std = softmax_regression.column_statistics(x)
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(std, x.astype(np.float64).std(axis=0), rtol=1e-12)
    with pytest.raises(InputShapeError, match=r"center and scale must hold one value per feature \(6\)"):
        fit_softmax_regression(x, y, num_classes=4, l2=0.01, center=center[:3])


def test_bad_arguments_are_named():
    with pytest.raises(ConfigError, match=r"pooling must be one of 'mean', 'mean_max'; received 'attention'"):
        LinearHead(3, pooling="attention")
    with pytest.raises(ConfigError, match="num_classes"):
        LinearHead(1)
    head = LinearHead(3)
    with pytest.raises(InputShapeError, match=r"expects \(batch, windows, dim\).*received shape \(4, 8\)"):
        head.build((4, 8))
    with pytest.raises(ConfigError, match=r"labels must be in \[0, 2\].*from 0 to 5"):
        head.fit(np.ones((2, 3, 4)), np.array([0, 5]))
    with pytest.raises(ConfigError, match="inverse_regularization must be greater than 0"):
        head.fit(np.ones((2, 3, 4)), np.array([0, 1]), inverse_regularization=0.0)
    with pytest.raises(InputShapeError, match="one integer label per clip"):
        head.fit(np.ones((2, 3, 4)), np.array([0.0, 1.0]))
    with pytest.raises(ConfigError, match="max_steps"):
        fit_softmax_regression(np.ones((2, 3)), np.array([0, 1]), num_classes=2, l2=0.1, max_steps=0)


def test_bad_settings_are_refused_by_name():
    with pytest.raises(ConfigError, match=r"head must be one of auto, mlp, linear; received 'deep'"):
        TrainConfig(head="deep")
    with pytest.raises(ConfigError, match=r"linear_c must be a positive number, received 0"):
        TrainConfig(linear_c=0)
    with pytest.raises(ConfigError, match="linear_max_steps must be a positive integer"):
        TrainConfig(linear_max_steps=0)
    with pytest.raises(ConfigError, match="linear_tolerance must be a number >= 0"):
        TrainConfig(linear_tolerance=-1.0)
    with pytest.raises(ConfigError, match=r"hidden_units is for the mlp head.*hidden_units=8"):
        KeywordSpotter.from_settings(
            tiny_base(), LABELS, TrainConfig(head="linear", hidden_units=8).to_dict()
        )
    with pytest.raises(ConfigError, match="a speaker verifier trains an embedding"):
        SpeakerVerifier.from_settings(tiny_base(), LABELS, {"head": "linear"})
    with pytest.raises(ConfigError, match="head_family must be one of"):
        KeywordSpotter(tiny_base(), LABELS, head_family="deep")


def test_the_linear_head_defaults_to_mean_max_pooling_for_every_task():
    assert TrainConfig(task="speaker-id", head="linear").resolved().pooling == "mean_max"
    assert TrainConfig(task="speaker-id", head="mlp").resolved().pooling == "attentive_statistics"
    assert TrainConfig().head == "auto"  # chosen by cross-validation (tests/test_head_selection.py)


@pytest.fixture(scope="module")
def trained():
    """A keyword spotter with a linear head trained by the Trainer (full-batch), and its validation clips."""
    x, y = tones(12, seed=1)
    x_val, y_val = tones(4, seed=2)
    config = TrainConfig(head="linear", augment=False)
    spotter = KeywordSpotter.from_settings(tiny_base(), LABELS, config.to_dict())
    result = Trainer(spotter, config, verbose=0).fit(x, y, validation=(x_val, y_val))
    return spotter, result, (x_val, y_val)


def test_the_trainer_fits_a_linear_head_full_batch_as_one_epoch(trained):
    spotter, result, (x_val, y_val) = trained
    assert isinstance(spotter.head, LinearHead) and spotter.head_family == "linear"
    assert result.best_epochs == {"head": 1}
    (row,) = result.history
    assert row["stage"] == "head" and row["steps"] > 0
    assert row["accuracy"] >= 0.9 and row["val_accuracy"] >= 0.9
    predicted = spotter.predict_waveforms(x_val).argmax(axis=1)
    assert row["val_accuracy"] == pytest.approx(np.mean(predicted == y_val))


def test_a_linear_head_saves_and_loads(trained, tmp_path):
    spotter, _, (x_val, _) = trained
    spotter.save(tmp_path / "linear.keras")
    loaded = keras.saving.load_model(tmp_path / "linear.keras", safe_mode=True)
    assert isinstance(loaded.head, LinearHead) and loaded.head_family == "linear"
    assert loaded.get_config()["pooling"] == "mean_max" and "hidden_units" not in loaded.get_config()
    np.testing.assert_allclose(loaded.head.mean.numpy(), spotter.head.mean.numpy())
    np.testing.assert_allclose(loaded.predict_waveforms(x_val), spotter.predict_waveforms(x_val), atol=1e-6)


def test_a_linear_head_exports_to_tflite_float_and_int8(trained, tmp_path):
    spotter, _, held_out = trained
    float32 = export_tflite(spotter, num_samples=NUM_SAMPLES, held_out=held_out, out=tmp_path / "f.tflite")
    assert float32.report.max_abs_probability_difference < 1e-4
    calibration = tones(8, seed=3)[0]
    int8 = export_tflite(
        spotter,
        num_samples=NUM_SAMPLES,
        quantize="int8",
        representative_data=calibration,
        held_out=held_out,
        out=tmp_path / "q.tflite",
    )
    assert int8.report.top1_agreement >= 0.9 and int8.report.max_abs_probability_difference < 0.15


def test_train_with_set_head_linear_through_the_cli(tmp_path):
    data = write_pitch_classes(tmp_path / "data", {"low": 300.0, "mid": 1000.0, "high": 3000.0})
    tiny_base().save(tmp_path / "tiny_base.keras")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(
            [
                "train", str(data), "--task", "kws", "--base", str(tmp_path / "tiny_base.keras"),
                "--out", str(tmp_path / "run"), "--set", "head=linear", "--set", "linear_c=0.5", "--json",
            ]
        )  # fmt: skip
    result = json.loads(stdout.getvalue())
    assert code == 0, result
    assert result["best_epochs"] == {"head": 1}
    loaded = keras.saving.load_model(tmp_path / "run" / "model.keras", safe_mode=True)
    assert isinstance(loaded.head, LinearHead)
    history = (tmp_path / "run" / "history.csv").read_text().splitlines()
    assert len(history) == 2 and "steps" in history[0]


def test_a_resumed_fit_refits_the_linear_head_to_the_same_weights(tmp_path):
    x, y = tones(6, seed=4)
    config = TrainConfig(head="linear", augment=False, fine_tune_blocks=1, fine_tune_epochs=1)
    weights, histories = [], []
    for _ in range(2):  # the second fit finds the first one's checkpoints and resumes from them
        spotter = KeywordSpotter.from_settings(tiny_base(), LABELS, config.to_dict())
        result = Trainer(spotter, config, verbose=0, checkpoint_dir=tmp_path / "checkpoints").fit(x, y)
        weights.append(spotter.head.get_weights())
        histories.append([row["stage"] for row in result.history])
    assert histories[0] == histories[1] == ["head", "fine_tune"]
    for first, second in zip(*weights, strict=True):
        np.testing.assert_allclose(first, second)

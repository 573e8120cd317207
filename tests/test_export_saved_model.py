"""SavedModel export: a serving signature with scores and labels, labels as an asset, atomic directory."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from export_support import LABELS, NUM_SAMPLES, SAMPLE_RATE, build_classifier, tone_clips, trained_classifier
from tiny_conv_base import tiny_base

from audio_transfer.errors import ExportError
from audio_transfer.export import export_saved_model
from audio_transfer.tasks import AudioClassifier


@pytest.fixture(scope="module")
def held_out():
    return tone_clips(20, seed=1)


@pytest.fixture(scope="module")
def exported(held_out, tmp_path_factory):
    out = tmp_path_factory.mktemp("saved") / "classifier"
    return export_saved_model(
        trained_classifier(), labels=LABELS, sample_rate=SAMPLE_RATE, out=out, held_out=held_out
    )


def test_serving_signature_returns_scores_and_labels_for_any_batch(exported, held_out):
    loaded = tf.saved_model.load(str(exported.path))
    serving = loaded.signatures["serving_default"]
    outputs = serving(waveform=tf.constant(held_out[0][:5]))
    assert [label.decode() for label in outputs["labels"].numpy()] == list(LABELS)
    np.testing.assert_allclose(
        outputs["scores"].numpy(), trained_classifier().predict(held_out[0][:5], verbose=0), atol=1e-5
    )
    assert serving.structured_input_signature[1]["waveform"].shape.as_list() == [None, NUM_SAMPLES]


def test_labels_asset_and_audio_attributes_travel_with_the_model(exported):
    loaded = tf.saved_model.load(str(exported.path))
    assert (exported.path / "assets" / "labels.txt").read_text().splitlines() == list(LABELS)
    assert tf.io.read_file(loaded.labels_file).numpy().decode().splitlines() == list(LABELS)
    assert (int(loaded.sample_rate.numpy()), int(loaded.num_samples.numpy())) == (SAMPLE_RATE, NUM_SAMPLES)


def test_parity_report_is_written_beside_the_directory(exported):
    report = exported.report
    assert report.max_abs_probability_difference <= 1e-5 and report.top1_agreement == 1.0
    assert report.size_bytes == exported.size_bytes > 0
    assert exported.report_path == exported.path.with_name("classifier.report.json")
    assert json.loads(exported.report_path.read_text())["format"] == "saved_model"


def test_int16_signature_takes_pcm(held_out, tmp_path):
    result = export_saved_model(
        trained_classifier(), labels=LABELS, sample_rate=SAMPLE_RATE, out=tmp_path / "pcm", input_type="int16"
    )
    serving = tf.saved_model.load(str(result.path)).signatures["serving_default"]
    pcm = np.round(held_out[0][:3] * 32768).astype(np.int16)
    scores = serving(waveform=tf.constant(pcm))["scores"].numpy()
    np.testing.assert_allclose(scores, trained_classifier().predict(pcm / 32768.0, verbose=0), atol=1e-5)
    assert result.input_dtype == "int16"


def test_existing_directory_is_replaced_and_a_failed_export_keeps_it(tmp_path, monkeypatch):
    out = tmp_path / "model"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    (tmp_path / "model.report.json").write_text("{}")  # describes the old export, not the new one
    result = export_saved_model(build_classifier(), labels=LABELS, sample_rate=SAMPLE_RATE, out=out)
    assert not (out / "stale.txt").exists() and (out / "saved_model.pb").is_file()
    assert result.report_path is None and not (tmp_path / "model.report.json").exists()

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tf.saved_model, "save", fail)
    with pytest.raises(ExportError, match="No space left"):
        export_saved_model(build_classifier(), labels=LABELS, sample_rate=SAMPLE_RATE, out=out)
    assert (out / "saved_model.pb").is_file()
    assert [entry.name for entry in tmp_path.iterdir()] == ["model"]


def test_output_that_is_a_file_is_refused(tmp_path):
    out = tmp_path / "model"
    out.write_bytes(b"")
    with pytest.raises(ExportError, match="is a file"):
        export_saved_model(build_classifier(), labels=LABELS, sample_rate=SAMPLE_RATE, out=out)


def test_a_task_supplies_its_labels_and_sample_rate(tmp_path):
    classifier = AudioClassifier(tiny_base(), ["dog", "rain"])
    result = export_saved_model(classifier, num_samples=NUM_SAMPLES, out=tmp_path / "task")
    assert (result.labels, result.sample_rate) == (classifier.labels, classifier.sample_rate)
    loaded = tf.saved_model.load(str(result.path))
    assert int(loaded.sample_rate.numpy()) == classifier.sample_rate
    labels = loaded.signatures["serving_default"](waveform=tf.zeros((1, NUM_SAMPLES)))["labels"].numpy()
    assert [label.decode() for label in labels] == ["dog", "rain"]

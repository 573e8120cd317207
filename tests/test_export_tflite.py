"""TFLite export: parity with Keras per quantization, builtin-ops check, calibration, atomic writes."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from export_support import (
    LABELS,
    NUM_SAMPLES,
    SAMPLE_RATE,
    AnyLengthClassifier,
    CumprodFrames,
    OddLengthSpectrum,
    build_classifier,
    export_tones,
    operator_output_types,
    tone_clips,
    trained_classifier,
    trained_log_mel_classifier,
)
from tiny_conv_base import tiny_base

from audio_transfer._tflite import non_builtin_operators, tflite_operator_names
from audio_transfer.errors import ConfigError, ExportError, InputShapeError
from audio_transfer.export import (
    ParityReport,
    TFLiteClassifier,
    TFLiteMetadata,
    check_builtin_ops,
    export_tflite,
)
from audio_transfer.features import get_frontend
from audio_transfer.tasks import KeywordSpotter


@pytest.fixture(scope="module")
def model():
    return trained_classifier()


@pytest.fixture(scope="module")
def held_out():
    return tone_clips(60, seed=1)


@pytest.fixture(scope="module")
def calibration():
    return tone_clips(100, seed=2)[0]


@pytest.fixture(scope="module")
def float32_export(model, held_out, tmp_path_factory):
    out = tmp_path_factory.mktemp("float32") / "model.tflite"
    return export_tones(model, out, held_out=held_out)


def test_float32_matches_keras_within_1e4(model, held_out, float32_export):
    report = float32_export.report
    assert report.max_abs_probability_difference <= 1e-4
    assert report.top1_agreement == 1.0
    assert report.keras_accuracy == report.exported_accuracy >= 0.95
    classifier = TFLiteClassifier.from_file(float32_export.path)
    expected = model.predict(held_out[0][:4], verbose=0)
    np.testing.assert_allclose(classifier.predict(held_out[0][:4]), expected, atol=1e-4)


def test_report_is_written_beside_the_file(float32_export):
    result, report = float32_export, float32_export.report
    assert result.report_path == result.path.with_name("model.tflite.report.json")
    assert json.loads(result.report_path.read_text()) == report.to_dict()
    assert report.num_clips == 60 and report.size_bytes == result.path.stat().st_size == result.size_bytes
    assert report.mean_latency_ms > 0 and report.runtime == "ai_edge_litert, 1 thread"
    assert (result.input_dtype, result.output_dtype, result.num_samples) == (
        "float32",
        "float32",
        NUM_SAMPLES,
    )


def test_op_list_is_read_from_the_written_file(float32_export):
    written = float32_export.path.read_bytes()
    assert sorted(set(tflite_operator_names(written))) == list(float32_export.ops)
    assert {"FULLY_CONNECTED", "SOFTMAX", "ABS"} <= set(float32_export.ops)
    assert non_builtin_operators(written) == []


@pytest.mark.parametrize("quantize", ["float16", "dynamic"])
def test_float16_and_dynamic_run_and_shrink_the_file(model, held_out, float32_export, quantize, tmp_path):
    out = tmp_path / f"{quantize}.tflite"
    result = export_tones(model, out, quantize=quantize, held_out=held_out)
    assert result.report.top1_agreement >= 0.95
    assert result.report.max_abs_probability_difference < 0.05
    assert result.size_bytes < float32_export.size_bytes
    assert result.input_dtype == "float32"


@pytest.mark.parametrize(
    ("input_type", "int8_io", "dtypes"),
    [("float32", False, ("float32", "float32")), ("int16", True, ("int16", "int8"))],
)
def test_int8_agrees_with_keras_on_a_trained_model(
    model, held_out, calibration, float32_export, input_type, int8_io, dtypes, tmp_path
):
    result = export_tones(
        model,
        tmp_path / "int8.tflite",
        quantize="int8",
        input_type=input_type,
        int8_io=int8_io,
        representative_data=calibration,
        held_out=held_out,
    )
    assert result.report.top1_agreement >= 0.95
    assert result.report.exported_accuracy >= result.report.keras_accuracy - 0.05
    assert (result.input_dtype, result.output_dtype) == dtypes
    assert result.size_bytes < float32_export.size_bytes


def test_int16_input_takes_pcm_and_scales_inside(model, held_out, tmp_path):
    out = tmp_path / "pcm.tflite"
    result = export_tones(model, out, input_type="int16", held_out=held_out)
    assert result.input_dtype == "int16" and "CAST" in result.ops
    assert result.report.max_abs_probability_difference <= 1e-4
    pcm = np.round(held_out[0][:2] * 32768).astype(np.int16)
    np.testing.assert_array_equal(TFLiteClassifier.from_file(out).encode_input(held_out[0][:2]), pcm)


def test_int8_without_calibration_data_is_an_error_and_writes_nothing(model, tmp_path):
    out = tmp_path / "int8.tflite"
    with pytest.raises(ExportError, match="calibration data"):
        export_tones(model, out, quantize="int8")
    assert list(tmp_path.iterdir()) == []


def test_model_with_flex_ops_fails_naming_them_and_leaves_nothing(tmp_path):
    model = build_classifier(frontend=CumprodFrames())
    out = tmp_path / "flex.tflite"
    out.write_bytes(b"previous export")
    with pytest.raises(ExportError, match=r"ops Cumprod .*--format saved_model"):
        export_tones(model, out)
    assert out.read_bytes() == b"previous export"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["flex.tflite"]


def test_model_that_converts_but_does_not_run_in_litert_is_refused(tmp_path):
    model = build_classifier(frontend=OddLengthSpectrum())
    out = tmp_path / "fft.tflite"
    with pytest.raises(ExportError, match=r"RFFT2D.*--format saved_model"):
        export_tones(model, out)
    assert list(tmp_path.iterdir()) == []


def test_op_check_names_flex_ops_in_a_converted_file():
    model = build_classifier(frontend=CumprodFrames())
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    flatbuffer = converter.convert()
    assert {"CUSTOM:FlexCumprod", "FULLY_CONNECTED"} <= set(tflite_operator_names(flatbuffer))
    assert non_builtin_operators(flatbuffer) == ["CUSTOM:FlexCumprod"]
    with pytest.raises(ExportError, match=r"FlexCumprod.*--format saved_model"):
        check_builtin_ops(flatbuffer)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_folder_is_an_error_and_leaves_nothing(model, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ExportError, match="not writable"):
            export_tones(model, locked / "model.tflite")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_missing_folder_is_an_error(model, tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        export_tones(model, tmp_path / "absent" / "model.tflite")


def test_failure_while_writing_leaves_nothing(model, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(ExportError, match="No space left"):
        export_tones(model, tmp_path / "model.tflite")
    assert list(tmp_path.iterdir()) == []


def test_subclassed_model_of_any_length_exports_at_the_given_length(held_out, tmp_path):
    model = AnyLengthClassifier()
    with pytest.raises(ConfigError, match="pass num_samples"):
        export_tones(model, tmp_path / "m.tflite")
    result = export_tones(
        model,
        tmp_path / "m.tflite",
        num_samples=NUM_SAMPLES,
        held_out=held_out,
    )
    assert result.num_samples == NUM_SAMPLES
    assert result.report.max_abs_probability_difference <= 1e-4


def test_labels_must_match_the_model_output(model, tmp_path):
    with pytest.raises(ConfigError, match="3 outputs but 2 labels"):
        export_tflite(model, labels=LABELS[:2], sample_rate=SAMPLE_RATE, out=tmp_path / "m.tflite")


def test_bad_arguments_are_refused_before_converting(model, held_out, tmp_path):
    out = tmp_path / "m.tflite"
    with pytest.raises(ConfigError, match="quantize"):
        export_tones(model, out, quantize="int4")
    with pytest.raises(ConfigError, match="input_type"):
        export_tones(model, out, input_type="int8")
    with pytest.raises(ConfigError, match="int8_io"):
        export_tones(model, out, int8_io=True)
    with pytest.raises(InputShapeError, match=f"\\(clips, {NUM_SAMPLES}\\)"):
        export_tones(
            model,
            out,
            held_out=(held_out[0][:, :100], held_out[1]),
        )
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def log_mel_model():
    return trained_log_mel_classifier()


def test_int8_keeps_the_feature_front_end_in_float(log_mel_model, held_out, calibration, tmp_path):
    result = export_tones(
        log_mel_model,
        tmp_path / "kws.tflite",
        quantize="int8",
        representative_data=calibration,
        held_out=held_out,
    )
    frontend = log_mel_model.layers[1].name
    assert result.float_layers == (frontend,)
    assert result.report.top1_agreement >= 0.95
    assert result.report.max_abs_probability_difference < 0.1
    types = operator_output_types(result.path.read_bytes())
    assert ("LOG", "FLOAT32") in types and ("BATCH_MATMUL", "FLOAT32") in types  # front-end DFT and log
    assert ("FULLY_CONNECTED", "INT8") in types and ("SOFTMAX", "INT8") in types  # the head


def test_int8_keeps_the_waveform_float_on_its_way_to_the_front_end(calibration, tmp_path):
    # As in the task models, which pad the clip with context silence before the base's front-end: quantized,
    # that padding would hand the float front-end an 8-bit waveform.
    waveform = keras.Input((NUM_SAMPLES,), name="waveform")
    padded = keras.ops.pad(waveform, [[0, 0], [800, 800]])
    features = get_frontend("log_mel_40")(padded)
    pooled = keras.layers.GlobalAveragePooling1D()(features)
    model = keras.Model(waveform, keras.layers.Dense(len(LABELS), activation="softmax")(pooled))
    result = export_tones(model, tmp_path / "padded.tflite", quantize="int8", representative_data=calibration)
    types = operator_output_types(result.path.read_bytes())
    assert ("PAD", "FLOAT32") in types and ("PAD", "INT8") not in types
    assert ("LOG", "FLOAT32") in types and ("FULLY_CONNECTED", "INT8") in types


def test_full_integer_int8_quantizes_the_front_end_too(log_mel_model, calibration, tmp_path):
    result = export_tones(
        log_mel_model,
        tmp_path / "full.tflite",
        quantize="int8",
        representative_data=calibration,
        float_layers=(),
    )
    types = operator_output_types(result.path.read_bytes())
    assert result.float_layers == () and ("LOG", "INT8") in types
    assert ("BATCH_MATMUL", "FLOAT32") not in types and ("FULLY_CONNECTED", "FLOAT32") not in types


def test_float_layers_must_name_layers_of_the_model(model, calibration, tmp_path):
    with pytest.raises(ConfigError, match="No TFLite ops belong"):
        export_tones(
            model,
            tmp_path / "m.tflite",
            quantize="int8",
            representative_data=calibration,
            float_layers=("no_such_layer",),
        )
    assert list(tmp_path.iterdir()) == []


def test_parity_report_counts_the_disagreements_keras_called_close():
    keras_probabilities = np.array([[0.52, 0.48], [0.9, 0.1], [0.3, 0.7]])
    exported_probabilities = np.array([[0.45, 0.55], [0.2, 0.8], [0.32, 0.68]])
    report = ParityReport.compare(
        keras_probabilities=keras_probabilities,
        exported_probabilities=exported_probabilities,
        label_indices=np.array([0, 0, 1]),
        size_bytes=1,
        seconds_per_clip=0.001,
        format="tflite",
        quantize="int8",
        input_dtype="float32",
        output_dtype="float32",
        runtime="test",
    )
    assert report.top1_agreement == pytest.approx(1 / 3) and report.close_call_disagreements == 1
    assert report.max_abs_probability_difference == pytest.approx(0.7)
    assert report.mean_max_abs_probability_difference == pytest.approx((0.07 + 0.7 + 0.02) / 3)
    assert "(1 of 2 differing clips close calls)" in report.summary()


def test_a_task_supplies_its_labels_and_sample_rate_and_arguments_override(tmp_path):
    spotter = KeywordSpotter(tiny_base(), ["_silence_", "beep", "boop"])
    result = export_tflite(spotter, num_samples=NUM_SAMPLES, out=tmp_path / "task.tflite")
    assert (result.labels, result.sample_rate) == (spotter.labels, spotter.sample_rate)
    assert TFLiteMetadata.read(result.path.read_bytes()).labels == spotter.labels
    renamed = export_tflite(
        spotter, labels=("a", "b", "c"), sample_rate=8000, num_samples=NUM_SAMPLES, out=tmp_path / "o.tflite"
    )
    assert (renamed.labels, renamed.sample_rate) == (("a", "b", "c"), 8000)
    # A task runs on any length and does not record its training clip length: the error says what to pass.
    with pytest.raises(ConfigError, match=r"does not record the clip length.*pass num_samples"):
        export_tflite(spotter, out=tmp_path / "m.tflite")


def test_a_plain_keras_model_needs_labels_and_sample_rate(model, tmp_path):
    with pytest.raises(ConfigError, match=r"does not carry labels .*pass labels="):
        export_tflite(model, sample_rate=SAMPLE_RATE, out=tmp_path / "m.tflite")
    with pytest.raises(ConfigError, match=r"does not carry sample_rate .*pass sample_rate="):
        export_tflite(model, labels=LABELS, out=tmp_path / "m.tflite")
    assert list(tmp_path.iterdir()) == []

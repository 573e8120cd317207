"""``audio-transfer export``: a tiny run folder built here, exported to TFLite and SavedModel."""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import soundfile as sf
import yaml
from export_support import LABELS, NUM_SAMPLES, SAMPLE_RATE, SPEAKER_CLIP_SAMPLES, speaker_tones, tone_clips
from tiny_conv_base import tiny_base

from audio_transfer.cli.main import main
from audio_transfer.export import TFLiteMetadata
from audio_transfer.tasks import SpeakerVerifier

# main() points the package logger at the captured stderr: undone after every test.
pytestmark = pytest.mark.usefixtures("restore_package_logger")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Folder per class of tone clips (wav, 16 kHz)."""
    root = tmp_path_factory.mktemp("tones")
    waveforms, label_indices = tone_clips(36, seed=7)
    for index, (waveform, label_index) in enumerate(zip(waveforms, label_indices, strict=True)):
        folder = root / LABELS[label_index]
        folder.mkdir(exist_ok=True)
        sf.write(folder / f"clip{index:02d}.wav", waveform, SAMPLE_RATE)
    return root


@pytest.fixture(scope="module")
def run_dir(data_dir, tmp_path_factory):
    """What a training run leaves: model.keras (builtin Keras layers only), labels.txt, config.yaml."""
    keras.utils.set_random_seed(0)
    waveform = keras.Input((NUM_SAMPLES,))
    frames = keras.layers.Reshape((NUM_SAMPLES // 80, 80))(waveform)
    hidden = keras.layers.Dense(8, activation="relu")(frames)
    probabilities = keras.layers.Dense(len(LABELS), activation="softmax")(
        keras.layers.GlobalAveragePooling1D()(hidden)
    )
    model = keras.Model(waveform, probabilities)
    run = tmp_path_factory.mktemp("run")
    model.save(run / "model.keras")
    (run / "labels.txt").write_text("\n".join(LABELS) + "\n")
    config = {
        "task": "classify",
        "data_dir": str(data_dir),
        "sample_rate": SAMPLE_RATE,
        "clip_seconds": NUM_SAMPLES / SAMPLE_RATE,
        "validation_fraction": 0.3,
        "seed": 0,
    }
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    return run


def _export_json(capsys, *args) -> tuple[int, dict]:
    code = main(["export", *map(str, args), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_tflite_export_with_the_runs_data_reports_parity(run_dir, tmp_path, capsys):
    out = tmp_path / "model.tflite"
    code, data = _export_json(capsys, run_dir, "--format", "tflite", "--out", out)
    assert code == 0
    assert data["path"] == str(out) and data["labels"] == list(LABELS) and data["num_samples"] == NUM_SAMPLES
    report = data["report"]
    assert report["num_clips"] > 0 and report["max_abs_probability_difference"] <= 1e-4
    assert json.loads((tmp_path / "model.tflite.report.json").read_text()) == report
    metadata = TFLiteMetadata.read(out.read_bytes())
    assert (metadata.labels, metadata.sample_rate) == (LABELS, SAMPLE_RATE)


def test_int8_with_data_flag_and_int16_input(run_dir, data_dir, tmp_path, capsys):
    out = tmp_path / "int8.tflite"
    options = ["--quantize", "int8", "--input-type", "int16", "--int8-io", "--data", str(data_dir)]
    code = main(["export", str(run_dir), "--format", "tflite", *options, "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert f"Wrote {out} (tflite, quantize int8" in text and "int16 at 16000 Hz" in text and "Parity:" in text
    assert out.is_file()


def test_int8_without_any_data_is_an_error_that_names_the_fix(run_dir, tmp_path, capsys):
    bare_run = tmp_path / "run"
    bare_run.mkdir()
    for name in ("model.keras", "labels.txt"):
        (bare_run / name).write_bytes((run_dir / name).read_bytes())
    (bare_run / "config.yaml").write_text(yaml.safe_dump({"sample_rate": SAMPLE_RATE, "clip_seconds": 0.25}))
    out = tmp_path / "int8.tflite"
    code, data = _export_json(capsys, bare_run, "--format", "tflite", "--quantize", "int8", "--out", out)
    assert code == 2
    assert data["error"] == "ExportError" and "--data" in data["message"]
    assert not out.exists()


def test_saved_model_export(run_dir, tmp_path, capsys):
    out = tmp_path / "saved"
    code, data = _export_json(capsys, run_dir, "--format", "saved_model", "--out", out)
    assert code == 0
    assert data["format"] == "saved_model" and (out / "assets" / "labels.txt").is_file()
    assert data["report"]["top1_agreement"] == 1.0


def test_quantize_with_saved_model_and_missing_run_files_are_refused(run_dir, tmp_path, capsys):
    code, data = _export_json(
        capsys, run_dir, "--format", "saved_model", "--quantize", "int8", "--out", tmp_path / "x"
    )
    assert code == 2 and "--format tflite only" in data["message"]
    code, data = _export_json(capsys, tmp_path, "--format", "tflite", "--out", tmp_path / "x.tflite")
    assert code == 2 and "model.keras" in data["message"]


def test_float_blocks_needs_int8_without_full_integer_and_a_base_with_that_many_blocks(
    run_dir, tmp_path, capsys
):
    tflite = ["--format", "tflite", "--out", tmp_path / "m.tflite"]
    code, data = _export_json(capsys, run_dir, *tflite, "--float-blocks", "1")
    assert (
        code == 2
        and "--quantize int8" in data["message"]
        and "received --format tflite --quantize none" in data["message"]
    )
    code, data = _export_json(
        capsys, run_dir, *tflite, "--quantize", "int8", "--full-integer", "--float-blocks", "1"
    )
    assert code == 2 and "--full-integer" in data["message"]
    code, data = _export_json(capsys, run_dir, *tflite, "--quantize", "int8", "--float-blocks", "1")
    assert code == 2 and data["error"] == "ConfigError" and "from 0 to 0" in data["message"]
    assert not (tmp_path / "m.tflite").exists()


def test_console_entry_point_exports_in_a_fresh_process(run_dir, tmp_path):
    out = tmp_path / "model.tflite"
    command = [sys.executable, "-m", "audio_transfer", "export", str(run_dir), "--format", "tflite"]
    result = subprocess.run(
        [*command, "--out", str(out), "--held-out-clips", "0", "--json"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["report"] is None and data["size_bytes"] == out.stat().st_size
    assert np.isclose(data["num_samples"] / data["sample_rate"], 0.25)


@pytest.fixture(scope="module")
def exported_file(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("exported") / "model.tflite"
    assert (
        main(["export", str(run_dir), "--format", "tflite", "--out", str(out), "--held-out-clips", "0"]) == 0
    )
    return out


def test_evaluate_scores_a_tflite_file_as_keras_scores_the_run(exported_file, run_dir, data_dir, capsys):
    code = main(["evaluate", str(exported_file), "--data", str(data_dir), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["labels"] == list(LABELS) and result["num_examples"] == 36
    waveforms, label_indices = tone_clips(36, seed=7)
    keras_predictions = keras.saving.load_model(run_dir / "model.keras").predict(waveforms, verbose=0)
    assert result["accuracy"] == pytest.approx(np.mean(keras_predictions.argmax(-1) == label_indices))


def test_evaluate_refuses_a_tflite_file_for_unknown_classes_or_verification(
    exported_file, data_dir, tmp_path, capsys
):
    extra = tmp_path / "data"
    extra.mkdir()
    for label in LABELS:
        (extra / label).symlink_to(data_dir / label, target_is_directory=True)
    (extra / "whistle").mkdir()
    sf.write(extra / "whistle" / "w.wav", np.zeros(NUM_SAMPLES, "float32"), SAMPLE_RATE)
    assert main(["evaluate", str(exported_file), "--data", str(extra)]) != 0
    assert "classes the model does not know: whistle" in capsys.readouterr().err
    assert (
        main(["evaluate", str(exported_file), "--data", str(data_dir), "--task", "speaker-verification"]) != 0
    )
    assert "is a classifier" in capsys.readouterr().err


@pytest.fixture(scope="module")
def verification_run(tmp_path_factory):
    """A speaker-verification run folder (tiny base) and a folder of clips per held-out speaker."""
    data = tmp_path_factory.mktemp("speakers")
    clips, speakers = speaker_tones()
    for index, (clip, speaker) in enumerate(zip(clips, speakers, strict=True)):
        (data / speaker).mkdir(exist_ok=True)
        sf.write(data / speaker / f"clip{index:02d}.wav", clip, SAMPLE_RATE)
    run = tmp_path_factory.mktemp("run")
    SpeakerVerifier(tiny_base(seed=3)).save(run / "model.keras")
    (run / "labels.txt").write_text("ann\nbob\n")
    config = {"task": "speaker-verification", "sample_rate": SAMPLE_RATE, "clip_seconds": 0.5}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    return run, data


def test_cli_exports_a_verification_run_with_its_measured_threshold(verification_run, tmp_path, capsys):
    run, data = verification_run
    (run / "metrics.json").write_text(json.dumps({"eer_threshold": 0.625}))
    try:
        code = main(["export", str(run), "--format", "tflite", "--out", str(tmp_path / "v.tflite"),
                     "--data", str(data), "--json"])  # fmt: skip
    finally:
        (run / "metrics.json").unlink()
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert result["description"]["threshold"] == 0.625 and result["description"]["embedding_dim"] == 8
    assert result["report"]["num_speakers"] == 4 and result["report"]["threshold"] == 0.625
    description = json.loads((tmp_path / "v.tflite.verifier.json").read_text())
    assert description["threshold"] == 0.625 and "training" in description["threshold_source"]
    assert description["num_samples"] == SPEAKER_CLIP_SAMPLES


def test_cli_verification_run_without_threshold_or_data_names_the_fix(verification_run, tmp_path, capsys):
    run, _ = verification_run
    code = main(["export", str(run), "--format", "tflite", "--out", str(tmp_path / "v.tflite")])
    assert code == 2
    assert "--data DIR" in capsys.readouterr().err
    code = main(
        ["export", str(run), "--format", "tflite", "--quantize", "int8", "--out", str(tmp_path / "v")]
    )
    assert code == 2 and "speaker-verification run" in capsys.readouterr().err


def test_a_run_without_recorded_splits_splits_its_data_again_and_says_so(run_dir, tmp_path, capsys):
    code = main(["export", str(run_dir), "--format", "saved_model", "--out", str(tmp_path / "saved")])
    captured = capsys.readouterr()
    assert code == 0 and "Parity:" in captured.out
    assert f"{run_dir} has no splits.csv" in captured.err and "splitting" in captured.err

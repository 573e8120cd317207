"""Speaker verifier export: a tiny verifier to TFLite (run in LiteRT) and SavedModel, with its description
and the EER parity report, through the Python API and ``audio-transfer export``."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf
import yaml
from ai_edge_litert.interpreter import Interpreter
from conftest import make_tone
from tiny_conv_base import tiny_base

from audio_transfer._tflite import non_builtin_operators, tflite_operator_names
from audio_transfer.cli.main import main
from audio_transfer.errors import ConfigError
from audio_transfer.export import export_verifier
from audio_transfer.tasks import SpeakerVerifier

SAMPLE_RATE = 16000
NUM_SAMPLES = 8000
# Each "speaker" is a pitch; three clips each, a little apart.
SPEAKER_PITCHES_HZ = {"ann": 300.0, "bob": 900.0, "eve": 2000.0, "joe": 3500.0}


def _speaker_clips() -> tuple[np.ndarray, list[str]]:
    clips, speakers = [], []
    for speaker, pitch in SPEAKER_PITCHES_HZ.items():
        for k in range(3):
            clips.append(make_tone(frequency_hz=pitch + 15 * k, duration_seconds=NUM_SAMPLES / SAMPLE_RATE))
            speakers.append(speaker)
    return np.stack(clips).astype(np.float32), speakers


@pytest.fixture(autouse=True)
def _restore_package_logger():
    """main() points the "audio_transfer" logger at the captured stderr; undo that for later tests."""
    logger = logging.getLogger("audio_transfer")
    saved = logger.handlers[:], logger.level, logger.propagate
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.fixture(scope="module")
def verifier():
    return SpeakerVerifier(tiny_base(seed=3))


@pytest.fixture(scope="module")
def exported(verifier, tmp_path_factory):
    clips, speakers = _speaker_clips()
    out = tmp_path_factory.mktemp("verifier") / "verifier.tflite"
    return export_verifier(verifier, out=out, num_samples=NUM_SAMPLES, held_out=(clips, speakers))


def test_tflite_embeddings_match_keras_in_litert_with_builtin_ops_only(verifier, exported):
    content = exported.path.read_bytes()
    assert non_builtin_operators(content) == []
    assert not any("Flex" in name or name.startswith("CUSTOM") for name in tflite_operator_names(content))
    interpreter = Interpreter(model_content=content, num_threads=1)
    interpreter.allocate_tensors()
    (inputs,), (outputs,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert list(inputs["shape"]) == [1, NUM_SAMPLES] and list(outputs["shape"]) == [1, verifier.embedding_dim]
    clips, _ = _speaker_clips()
    embeddings = []
    for clip in clips:
        interpreter.set_tensor(inputs["index"], clip[np.newaxis])
        interpreter.invoke()
        embeddings.append(interpreter.get_tensor(outputs["index"])[0])
    np.testing.assert_allclose(np.stack(embeddings), verifier.embed_clips(clips), atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-4)


def test_report_compares_eer_of_export_and_keras_on_every_pair(exported):
    report = exported.report
    assert (report.num_clips, report.num_speakers) == (12, 4)
    assert (report.num_target_trials, report.num_nontarget_trials) == (4 * 3, 66 - 12)
    assert report.exported_eer == pytest.approx(report.keras_eer, abs=1e-9)
    assert report.decision_agreement == 1.0 and report.min_embedding_cosine > 0.9999
    saved = json.loads(exported.report_path.read_text())
    assert exported.report_path.name == "verifier.tflite.report.json"
    assert saved["keras_eer"] == report.keras_eer and saved["threshold"] == exported.threshold


def test_description_ships_threshold_input_and_enrollments_format(verifier, exported):
    description = json.loads(exported.description_path.read_text())
    assert exported.description_path.name == "verifier.tflite.verifier.json"
    assert description == exported.description
    assert description["format"] == "audio_transfer.verifier" and description["model"] == "verifier.tflite"
    assert (description["sample_rate"], description["num_samples"]) == (SAMPLE_RATE, NUM_SAMPLES)
    assert description["embedding_dim"] == verifier.embedding_dim and description["score"] == "cosine"
    # Without a given threshold, the export's EER threshold on the held-out speakers is shipped.
    assert description["threshold"] == exported.report.exported_eer_threshold == exported.threshold
    assert description["enrollments"] == {"format": "audio_transfer.enrollments", "version": 1}


def test_enrollments_written_by_the_verifier_score_like_the_export(verifier, exported, tmp_path):
    """A device following the description (centroid of enrolled embeddings, cosine, threshold) decides as
    the Keras verifier does."""
    clips = _speaker_clips()[0]
    verifier.enroll("ann", clips[:2])
    enrollments = json.loads(verifier.save_enrollments(tmp_path / "enrollments.json").read_text())
    verifier.remove("ann")
    rows = np.asarray(enrollments["speakers"]["ann"])
    assert enrollments["format"] == exported.description["enrollments"]["format"]
    centroid = rows.mean(axis=0) / np.linalg.norm(rows.mean(axis=0))
    interpreter = Interpreter(model_content=exported.path.read_bytes())
    interpreter.allocate_tensors()
    (inputs,), (outputs,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.set_tensor(inputs["index"], clips[2:3])
    interpreter.invoke()
    score = float(interpreter.get_tensor(outputs["index"])[0] @ centroid)
    verifier.enroll("ann", clips[:2])
    assert score == pytest.approx(verifier.verify(clips[2], "ann"), abs=1e-4)
    verifier.remove("ann")


def test_saved_model_serves_the_embedding_with_the_given_threshold(verifier, tmp_path):
    clips, speakers = _speaker_clips()
    result = export_verifier(
        verifier,
        out=tmp_path / "verifier_saved_model",
        format="saved_model",
        num_samples=NUM_SAMPLES,
        threshold=0.5,
        held_out=(clips, speakers),
        input_type="int16",
    )
    serving = tf.saved_model.load(str(result.path)).signatures["serving_default"]
    pcm = np.round(clips[:3] * 32768).clip(-32768, 32767).astype(np.int16)
    embedding = serving(waveform=tf.constant(pcm))["embedding"].numpy()
    np.testing.assert_allclose(embedding, verifier.embed_clips(pcm / np.float32(32768)), atol=1e-5)
    assert result.description["threshold"] == 0.5 and result.description["threshold_source"] == "given"
    assert result.description["input_dtype"] == "int16" and result.report.threshold == 0.5


def test_a_threshold_is_required_and_held_out_needs_pairs_of_both_kinds(verifier, tmp_path):
    clips = _speaker_clips()[0]
    with pytest.raises(ConfigError, match="threshold="):
        export_verifier(verifier, out=tmp_path / "v.tflite", num_samples=NUM_SAMPLES)
    with pytest.raises(ConfigError, match="two speakers"):
        export_verifier(
            verifier, out=tmp_path / "v.tflite", num_samples=NUM_SAMPLES, held_out=(clips[:3], ["a"] * 3)
        )
    with pytest.raises(ConfigError, match="quantize"):
        export_verifier(
            verifier, out=tmp_path / "v.tflite", num_samples=NUM_SAMPLES, threshold=0.5, quantize="int8"
        )
    with pytest.raises(ConfigError, match="num_samples"):
        export_verifier(verifier, out=tmp_path / "v.tflite", threshold=0.5)
    assert not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def verification_run(verifier, tmp_path_factory):
    """A speaker-verification run folder (tiny base) and a folder of clips per held-out speaker."""
    data = tmp_path_factory.mktemp("speakers")
    clips, speakers = _speaker_clips()
    for index, (clip, speaker) in enumerate(zip(clips, speakers, strict=True)):
        (data / speaker).mkdir(exist_ok=True)
        sf.write(data / speaker / f"clip{index:02d}.wav", clip, SAMPLE_RATE)
    run = tmp_path_factory.mktemp("run")
    verifier.save(run / "model.keras")
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
    assert result["threshold"] == 0.625 and result["embedding_dim"] == 8
    assert result["report"]["num_speakers"] == 4 and result["report"]["threshold"] == 0.625
    description = json.loads((tmp_path / "v.tflite.verifier.json").read_text())
    assert description["threshold"] == 0.625 and "training" in description["threshold_source"]
    assert description["num_samples"] == NUM_SAMPLES


def test_cli_verification_run_without_threshold_or_data_names_the_fix(verification_run, tmp_path, capsys):
    run, _ = verification_run
    code = main(["export", str(run), "--format", "tflite", "--out", str(tmp_path / "v.tflite")])
    assert code == 2
    assert "--data DIR" in capsys.readouterr().err
    code = main(
        ["export", str(run), "--format", "tflite", "--quantize", "int8", "--out", str(tmp_path / "v")]
    )
    assert code == 2 and "speaker-verification run" in capsys.readouterr().err

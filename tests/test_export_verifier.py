"""Speaker verifier export: a tiny verifier to TFLite (run in LiteRT) and SavedModel, with its description
and the EER parity report (``audio-transfer export`` of a verification run: tests/test_export_cli.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from export_support import SAMPLE_RATE, speaker_tones
from export_support import SPEAKER_CLIP_SAMPLES as CLIP_SAMPLES
from tiny_conv_base import tiny_base

from audio_transfer._tflite import non_builtin_operators, tflite_operator_names
from audio_transfer.bases import load_base
from audio_transfer.errors import ConfigError
from audio_transfer.export import export_verifier
from audio_transfer.tasks import SpeakerVerifier


@pytest.fixture(scope="module")
def verifier():
    return SpeakerVerifier(tiny_base(seed=3))


@pytest.fixture(scope="module")
def exported(verifier, tmp_path_factory):
    clips, speakers = speaker_tones()
    out = tmp_path_factory.mktemp("verifier") / "verifier.tflite"
    return export_verifier(verifier, out=out, num_samples=CLIP_SAMPLES, held_out=(clips, speakers))


def test_tflite_embeddings_match_keras_in_litert_with_builtin_ops_only(verifier, exported):
    content = exported.path.read_bytes()
    assert non_builtin_operators(content) == []
    assert not any("Flex" in name or name.startswith("CUSTOM") for name in tflite_operator_names(content))
    interpreter = Interpreter(model_content=content, num_threads=1)
    interpreter.allocate_tensors()
    (inputs,), (outputs,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert list(inputs["shape"]) == [1, CLIP_SAMPLES] and list(outputs["shape"]) == [
        1,
        verifier.embedding_dim,
    ]
    clips, _ = speaker_tones()
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
    assert saved["keras_eer"] == report.keras_eer and saved["threshold"] == exported.description["threshold"]


def test_description_ships_threshold_input_and_enrollments_format(verifier, exported):
    description = json.loads(exported.description_path.read_text())
    assert exported.description_path.name == "verifier.tflite.verifier.json"
    assert description == exported.description
    assert description["format"] == "audio_transfer.verifier" and description["model"] == "verifier.tflite"
    assert (description["sample_rate"], description["num_samples"]) == (SAMPLE_RATE, CLIP_SAMPLES)
    assert description["embedding_dim"] == verifier.embedding_dim and description["score"] == "cosine"
    # Without a given threshold, the export's EER threshold on the held-out speakers is shipped.
    assert description["threshold"] == exported.report.exported_eer_threshold == exported.report.threshold
    assert description["enrollments"] == {"format": "audio_transfer.enrollments", "version": 1}


def test_enrollments_written_by_the_verifier_score_like_the_export(verifier, exported, tmp_path):
    """A device following the description (centroid of enrolled embeddings, cosine, threshold) decides as
    the Keras verifier does."""
    clips = speaker_tones()[0]
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
    clips, speakers = speaker_tones()
    result = export_verifier(
        verifier,
        out=tmp_path / "verifier_saved_model",
        format="saved_model",
        num_samples=CLIP_SAMPLES,
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
    clips = speaker_tones()[0]
    with pytest.raises(ConfigError, match="threshold="):
        export_verifier(verifier, out=tmp_path / "v.tflite", num_samples=CLIP_SAMPLES)
    with pytest.raises(ConfigError, match="two speakers"):
        export_verifier(
            verifier,
            out=tmp_path / "v.tflite",
            num_samples=CLIP_SAMPLES,
            held_out=(clips[:3], ["a"] * 3),
        )
    with pytest.raises(ConfigError, match="quantize"):
        export_verifier(
            verifier,
            out=tmp_path / "v.tflite",
            num_samples=CLIP_SAMPLES,
            threshold=0.5,
            quantize="int8",
        )
    with pytest.raises(ConfigError, match="num_samples"):
        export_verifier(verifier, out=tmp_path / "v.tflite", threshold=0.5)
    assert not list(tmp_path.iterdir())


def test_ge2e_verifier_exports_its_log_mel_front_end_with_builtin_ops(tmp_path):
    """The real speaker base: its front-end's DFT (RFFT would need Flex) converts to builtin ops."""
    verifier = SpeakerVerifier(load_base("ge2e_speaker"))
    clips, speakers = speaker_tones()
    clips = np.tile(clips, (1, 2))  # 1 s: GE2E's shortest input is 1.6 s, padded inside the model
    result = export_verifier(verifier, out=tmp_path / "ge2e.tflite", num_samples=2 * CLIP_SAMPLES,
                             held_out=(clips, speakers))  # fmt: skip
    operators = set(tflite_operator_names(result.path))
    assert non_builtin_operators(result.path) == [] and "RFFT2D" not in operators
    assert result.report.min_embedding_cosine > 0.999
    assert result.report.exported_eer == pytest.approx(result.report.keras_eer, abs=1 / 12)

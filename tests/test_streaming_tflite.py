"""The streaming TFLite spotter: builtin ops only, 80 ms hops, explicit state, the spotter's own scores."""

import contextlib
import importlib.util
import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from streaming_support import (
    CLIP_SECONDS,
    SAMPLE_RATE,
    background,
    chirp,
    chirp_spotter,
    plant,
    save_run,
    window_posteriors,
)
from tiny_conv_base import tiny_base

from audio_transfer._tflite import non_builtin_operators, tflite_operator_names
from audio_transfer.cli.main import main
from audio_transfer.errors import ConfigError, ExportError
from audio_transfer.streaming import (
    STREAMING_FILE,
    DetectionSettings,
    KeywordDetector,
    StreamingSpotter,
    TFLiteStreamingSpotter,
    export_streaming_tflite,
)
from audio_transfer.tasks import KeywordSpotter

# A 1 s clip with 0.5 s of context each side spans 16 embeddings; embedding k is complete 9 hops after hop
# k: step j scores window j - 24.
WARMUP_HOPS = 24


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run_dir = save_run(chirp_spotter(), tmp_path_factory.mktemp("streaming") / "run")
    DetectionSettings(threshold=0.8, smoothing_seconds=0.16).write(run_dir / STREAMING_FILE)
    return run_dir


@pytest.fixture(scope="module")
def exported(run_dir):
    """``audio-transfer export RUN_DIR --format tflite --streaming``'s JSON result."""
    out = run_dir.parent / "kws_stream.tflite"
    with _stdout() as stdout:
        code = main(
            ["export", str(run_dir), "--format", "tflite", "--streaming", "--out", str(out), "--json"]
        )
    assert code == 0
    result = json.loads(stdout.getvalue())
    assert result["path"] == str(out)
    return SimpleNamespace(
        path=out, description_path=Path(result["description_path"]), ops=result["ops"], data=result
    )


def _stdout():
    return contextlib.redirect_stdout(io.StringIO())


def _audio():
    """Chirps in noise, then digital silence with a chirp in it (there the log-mel floor binds)."""
    noisy = plant(
        plant(background(5.0, seed=7), chirp("rise"), at_seconds=1.2), chirp("fall"), at_seconds=3.1
    )
    silent = plant(np.zeros(3 * SAMPLE_RATE, np.float32), chirp("rise", level=0.3), at_seconds=1.0)
    return noisy, np.concatenate([noisy, silent])


def test_streaming_model_uses_builtin_operators_only_and_no_variables(exported):
    content = exported.path.read_bytes()
    assert non_builtin_operators(content) == []
    ops = set(tflite_operator_names(content))
    assert {"CONV_2D", "MAX_POOL_2D", "CONCATENATION", "SOFTMAX"} <= ops
    assert not ops & {"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE"}  # weights frozen, state explicit
    assert set(exported.ops) == ops


def test_description_beside_the_model_says_how_to_drive_it(exported):
    description = json.loads(exported.description_path.read_text())
    assert exported.description_path.name == "kws_stream.tflite.streaming.json"
    streaming = StreamingSpotter(chirp_spotter(), clip_seconds=CLIP_SECONDS)
    assert description["hop_samples"] == 1280 and description["sample_rate"] == SAMPLE_RATE
    assert (
        description["state_size"]
        == streaming.state_size
        == TFLiteStreamingSpotter(exported.path.read_bytes()).state_size
    )
    assert description["warmup_hops"] == streaming.warmup_hops == WARMUP_HOPS
    assert description["labels"] == ["_silence_", "rise", "fall"] and description["keywords"] == [
        "rise",
        "fall",
    ]
    assert sorted(description["inputs"].values()) == [0, 1] and set(description["inputs"]) == {
        "audio",
        "state",
    }
    assert set(description["outputs"]) == {"scores", "next_state"}
    assert description["detection"]["threshold"] == 0.8


def test_streaming_scores_equal_the_detector_on_every_window(exported):
    _, audio = _audio()
    streamed = TFLiteStreamingSpotter.from_file(exported.path).run(audio)
    expected = KeywordDetector(chirp_spotter(), clip_seconds=CLIP_SECONDS).posteriors(audio)
    assert len(streamed) == -(-len(audio) // 1280)
    aligned = streamed[WARMUP_HOPS : WARMUP_HOPS + len(expected)]
    assert aligned.shape == expected.shape
    np.testing.assert_allclose(aligned, expected, atol=1e-4)


def test_streaming_scores_equal_the_non_streaming_spotter_on_each_window(exported):
    noisy, _ = _audio()
    streamed = TFLiteStreamingSpotter.from_file(exported.path).run(noisy)
    expected = window_posteriors(chirp_spotter(), noisy, stride_samples=1280)
    aligned = streamed[WARMUP_HOPS : WARMUP_HOPS + len(expected)]
    assert len(aligned) == len(expected)
    np.testing.assert_allclose(aligned, expected, atol=1e-4)
    assert aligned[:, 1].max() > 0.9 and aligned[:, 2].max() > 0.9  # both chirps were heard


def test_reset_forgets_the_audio_heard(exported):
    spotter = TFLiteStreamingSpotter.from_file(exported.path)
    noisy, _ = _audio()
    first = spotter.run(noisy[: 20 * 1280])
    spotter.step(noisy[:1280])
    np.testing.assert_array_equal(spotter.run(noisy[: 20 * 1280]), first)


def test_streaming_needs_a_base_that_streams(tmp_path):
    with pytest.raises(ConfigError, match="speech_embedding"):
        export_streaming_tflite(
            KeywordSpotter(tiny_base(), ["_silence_", "beep"]), clip_seconds=1.0, out=tmp_path / "x.tflite"
        )
    assert not (tmp_path / "x.tflite").exists()


def test_unwritable_output_fails_before_converting(tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        export_streaming_tflite(chirp_spotter(), clip_seconds=1.0, out=tmp_path / "missing" / "x.tflite")


@pytest.mark.skipif(importlib.util.find_spec("tflite_micro") is None, reason="tflite-micro is not installed")
def test_streaming_model_runs_under_tflite_micro_like_litert(exported):
    from tflite_micro import runtime

    description = json.loads(exported.description_path.read_text())
    micro = runtime.Interpreter.from_bytes(exported.path.read_bytes())
    audio_at, state_at = description["inputs"]["audio"], description["inputs"]["state"]
    scores_at, next_state_at = description["outputs"]["scores"], description["outputs"]["next_state"]
    noisy, _ = _audio()
    hops = noisy[: 16 * 1280].reshape(16, 1280)
    state = np.zeros((1, description["state_size"]), np.float32)
    micro_scores = []
    for hop in hops:
        micro.set_input(hop[np.newaxis], audio_at)
        micro.set_input(state, state_at)
        micro.invoke()
        micro_scores.append(micro.get_output(scores_at)[0])
        state = micro.get_output(next_state_at)
    litert = TFLiteStreamingSpotter.from_file(exported.path).run(hops.reshape(-1))
    np.testing.assert_allclose(np.stack(micro_scores), litert, atol=1e-4)


def test_cli_export_result_and_refusals(exported, run_dir, tmp_path, capsys):
    assert exported.data["state_size"] > 0 and exported.data["detection"]["smoothing_seconds"] == 0.16
    code = main(
        [
            "export",
            str(run_dir),
            "--format",
            "tflite",
            "--streaming",
            "--quantize",
            "float16",
            "--out",
            str(tmp_path / "q.tflite"),
            "--json",
        ]
    )
    assert code == 2 and "none or int8" in json.loads(capsys.readouterr().out)["message"]
    assert not (tmp_path / "q.tflite").exists()


def test_cli_export_copies_the_runs_detection_settings_beside_a_plain_export(run_dir, tmp_path, capsys):
    out = tmp_path / "saved_model"
    code = main(
        [
            "export",
            str(run_dir),
            "--format",
            "saved_model",
            "--out",
            str(out),
            "--held-out-clips",
            "0",
            "--json",
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["streaming_settings_path"] == str(tmp_path / "saved_model.streaming.json")
    assert DetectionSettings.read(data["streaming_settings_path"]).threshold == 0.8

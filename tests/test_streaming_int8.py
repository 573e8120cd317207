"""The int8 streaming spotter: int8 inside with a float32 state, run by TFLite Micro as by LiteRT, close to
the float32 model in stream terms (the parity report), its tensor arena measured, its C source compiling."""

import importlib.util
import json
import shutil
import subprocess
from types import SimpleNamespace

import numpy as np
import pytest
from streaming_support import KEYWORDS, LABELS, background, chirp, plant, save_run, training_clips, write_wav
from tiny_streaming_base import tiny_spotter

from audio_transfer._tflite import non_builtin_operators
from audio_transfer.cli.main import main
from audio_transfer.errors import ConfigError
from audio_transfer.export import TensorArena
from audio_transfer.streaming import (
    DetectionSettings,
    StreamParityReport,
    TFLiteStreamingSpotter,
    export_streaming_tflite,
    keyword_streams,
    pick_detections,
    smooth_posteriors,
)

needs_micro = pytest.mark.skipif(
    importlib.util.find_spec("tflite_micro") is None, reason="tflite-micro is not installed"
)
SETTINGS = DetectionSettings(threshold=0.4, smoothing_seconds=0.04)
STREAM_KEYWORDS = list(KEYWORDS) * 4


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The tiny spotter exported float32 and int8 (with held-out streams), once."""
    folder = tmp_path_factory.mktemp("int8")
    spotter = tiny_spotter()
    negatives = [background(20.0, seed=3)]
    streams = keyword_streams([chirp(word) for word in STREAM_KEYWORDS], negatives, sample_rate=16000)
    float_export = export_streaming_tflite(
        spotter, clip_seconds=1.0, out=folder / "float.tflite", settings=SETTINGS
    )
    int8_export = export_streaming_tflite(
        spotter,
        clip_seconds=1.0,
        out=folder / "int8.tflite",
        settings=SETTINGS,
        quantize="int8",
        calibration=training_clips(per_label=12, seed=5)[0],
        held_out=(streams, STREAM_KEYWORDS, negatives),
        held_out_audio="chirps in white noise",
    )
    return SimpleNamespace(float=float_export, int8=int8_export)


def _stream():
    return plant(plant(background(6.0, seed=7), chirp("rise"), at_seconds=1.2), chirp("fall"), at_seconds=3.1)


def test_int8_model_is_builtin_int8_inside_with_float32_audio_state_and_scores(exported):
    content = exported.int8.path.read_bytes()
    assert non_builtin_operators(content) == []
    assert {"QUANTIZE", "DEQUANTIZE"} <= set(exported.int8.ops)
    assert exported.int8.size_bytes < 0.7 * exported.float.size_bytes  # int8 weights
    runner = TFLiteStreamingSpotter(content)
    assert runner.state_size == exported.float.description["state_size"]
    described = exported.int8.description
    assert described["quantize"] == "int8" and described["state_dtype"] == "float32"
    assert exported.float.description["quantize"] == "none"
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    details = interpreter.get_input_details() + interpreter.get_output_details()
    assert {detail["dtype"] for detail in details} == {np.float32}
    internal = {detail["dtype"] for detail in interpreter.get_tensor_details()}
    assert np.int8 in internal


def test_int8_scores_track_the_float_model_and_detect_the_same_keywords(exported):
    stream = _stream()
    float_scores = TFLiteStreamingSpotter.from_file(exported.float.path).run(stream)
    int8_scores = TFLiteStreamingSpotter.from_file(exported.int8.path).run(stream)
    assert np.abs(float_scores - int8_scores).max() < 0.15
    warmup = exported.float.description["warmup_hops"]

    def detections(scores):
        smoothed = smooth_posteriors(scores[warmup:], window=SETTINGS.smoothing_windows(stride_seconds=0.02))
        picked = pick_detections(smoothed, threshold=SETTINGS.threshold, refractory=60, classes=[1, 2])
        return [(LABELS[column], row) for row, column, _ in picked]

    expected = detections(float_scores)  # the tiny base is random: not every planted chirp fires
    assert "rise" in [label for label, _ in expected]
    found = detections(int8_scores)
    assert [label for label, _ in found] == [label for label, _ in expected]
    assert all(abs(a - b) <= 2 for (_, a), (_, b) in zip(expected, found, strict=True))  # within 40 ms


def test_parity_report_compares_detections_at_the_threshold(exported):
    report = exported.int8.parity
    assert isinstance(report, StreamParityReport)
    written = json.loads(exported.int8.parity_path.read_text())
    assert exported.int8.parity_path.name == "int8.tflite.parity.json"
    assert written == report.to_dict()
    assert written["threshold"] == 0.4 and written["smoothing_seconds"] == 0.04
    assert written["num_keyword_streams"] == len(STREAM_KEYWORDS)
    assert written["negative_hours"] == pytest.approx(20.0 / 3600)
    for results in (written["float_results"], written["int8_results"]):
        assert set(results) == {
            "false_rejects",
            "false_reject_rate",
            "false_accepts",
            "false_accepts_per_hour",
        }
        assert results["false_reject_rate"] == results["false_rejects"] / len(STREAM_KEYWORDS)
    increase = written["int8_results"]["false_reject_rate"] - written["float_results"]["false_reject_rate"]
    assert written["max_false_reject_rate_increase"] == 0.01
    assert written["passed"] == (increase <= 0.01)
    assert 0 < written["max_abs_score_difference"] < 0.15
    assert written["float_size_bytes"] == exported.float.size_bytes
    assert written["int8_size_bytes"] == exported.int8.size_bytes
    assert written["audio"] == "chirps in white noise"
    summary = exported.int8.to_dict()["parity"]
    assert summary["passed"] == report.passed and "FRR float" in summary["summary"]
    assert exported.float.parity is None and exported.float.to_dict()["parity"] is None


def test_parity_report_counts_misses_and_false_accepts(exported):
    """A model whose scores never move misses every keyword and accepts nothing: the gate fails against a
    model that detects."""
    stream = _stream()
    content = exported.int8.path.read_bytes()
    report = StreamParityReport.measure(
        exported.float.path.read_bytes(),
        content,
        keyword_streams=[stream],
        stream_keywords=["rise"],
        negative_streams=[background(10.0, seed=1)],
        labels=LABELS,
        settings=DetectionSettings(threshold=1.0),  # nothing reaches 1.0 after smoothing
        warmup_hops=exported.int8.description["warmup_hops"],
        window_samples=exported.int8.description["window_samples"],
        sample_rate=16000,
        audio="one stream",
    )
    assert report.float_results["false_rejects"] == report.int8_results["false_rejects"] == 1
    assert report.float_results["false_accepts"] == 0 and report.passed
    with pytest.raises(ConfigError, match="not keywords"):
        StreamParityReport.measure(
            content,
            content,
            keyword_streams=[stream],
            stream_keywords=["_silence_"],
            negative_streams=[stream],
            labels=LABELS,
            settings=SETTINGS,
            warmup_hops=0,
            window_samples=1,
            sample_rate=16000,
            audio="",
        )


@needs_micro
def test_int8_model_runs_under_tflite_micro_like_litert_builtin_kernels(exported):
    from tflite_micro import runtime

    described = exported.int8.description
    content = exported.int8.path.read_bytes()
    micro = runtime.Interpreter.from_bytes(content, arena_size=described["tensor_arena"]["bytes"])
    audio_at, state_at = described["inputs"]["audio"], described["inputs"]["state"]
    scores_at, next_state_at = described["outputs"]["scores"], described["outputs"]["next_state"]
    hop_samples = described["hop_samples"]
    hops = _stream()[: 120 * hop_samples].reshape(120, hop_samples)
    litert = TFLiteStreamingSpotter(content, use_xnnpack=False)
    state = np.zeros((1, described["state_size"]), np.float32)
    micro_scores, litert_scores = [], []
    for hop in hops:
        micro.set_input(hop[np.newaxis], audio_at)
        micro.set_input(state, state_at)
        micro.invoke()
        state = micro.get_output(next_state_at)
        micro_scores.append(micro.get_output(scores_at)[0])
        litert_scores.append(litert.step(hop))
        # The same int8 kernels; the float32 state's dequantization may round the last bit differently.
        np.testing.assert_allclose(state, litert.state, rtol=1e-5, atol=1e-7)
    difference = np.abs(np.stack(micro_scores) - np.stack(litert_scores))
    assert difference.max() <= 1 / 256 + 1e-6  # within one step of the int8 softmax output
    assert np.mean(difference < 1e-6) > 0.95  # and almost always the same step


@needs_micro
def test_reported_arena_is_the_least_tflite_micro_runs_the_model_with(exported):
    from tflite_micro import runtime

    arena = exported.int8.description["tensor_arena"]
    content = exported.int8.path.read_bytes()
    assert arena["bytes"] >= 1.1 * arena["min_bytes"] and arena["bytes"] % 16 == 0
    runtime.Interpreter.from_bytes(content, arena_size=arena["min_bytes"]).invoke()
    assert TensorArena.runs(content, arena_size=arena["min_bytes"])
    assert not TensorArena.runs(content, arena_size=arena["min_bytes"] - 1)  # TFLM may crash there


def test_int8_needs_calibration_clips_and_a_known_mode(tmp_path):
    with pytest.raises(ConfigError, match="calibration clips"):
        export_streaming_tflite(tiny_spotter(), clip_seconds=1.0, out=tmp_path / "q.tflite", quantize="int8")
    with pytest.raises(ConfigError, match="none or int8"):
        export_streaming_tflite(
            tiny_spotter(), clip_seconds=1.0, out=tmp_path / "q.tflite", quantize="float16"
        )
    assert list(tmp_path.iterdir()) == []


CC = shutil.which("gcc")


@needs_micro
@pytest.mark.skipif(CC is None, reason="no C compiler (gcc)")
def test_cli_int8_streaming_export_as_c_compiles_and_sizes_the_arena(tmp_path, capsys):
    """`export RUN --streaming --quantize int8 --format c --data DIR`: calibration and held-out streams
    from DIR (one folder per label, _background_noise_ for the negatives)."""
    run_dir = save_run(tiny_spotter(), tmp_path / "run")
    data = tmp_path / "data"
    waveforms, label_indices = training_clips(per_label=10, seed=9)
    for index, (waveform, label) in enumerate(zip(waveforms, label_indices, strict=True)):
        write_wav(data / LABELS[label] / f"clip_{index}.wav", waveform)
    write_wav(data / "_background_noise_" / "noise.wav", background(15.0, seed=2))
    out = tmp_path / "kws_int8"
    code = main(
        [
            *["export", str(run_dir), "--format", "c", "--streaming", "--quantize", "int8"],
            *["--data", str(data), "--out", str(out), "--json"],
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["quantize"] == "int8" and result["parity"]["path"].endswith("kws_int8.tflite.parity.json")
    parity = json.loads((tmp_path / "kws_int8.tflite.parity.json").read_text())
    assert parity["num_keyword_streams"] > 0 and "_background_noise_" in parity["audio"]
    header = (tmp_path / "kws_int8.h").read_text()
    arena = result["tensor_arena"]
    assert f"#define KWS_INT8_TENSOR_ARENA_BYTES {arena['bytes']}" in header
    for name in (
        "tensor_arena_bytes",
        "tensor_arena_min_bytes",
        "state_size",
        "hop_samples",
        "smoothing_hops",
    ):
        assert f"extern const int kws_int8_{name};" in header
    assert "extern const char* const kws_int8_quantize;" in header
    program = tmp_path / "arena.c"
    program.write_text(
        '#include "kws_int8.h"\n_Alignas(16) unsigned char arena[KWS_INT8_TENSOR_ARENA_BYTES];\n'
        "int arena_bytes(void) { return (int)sizeof(arena) + kws_int8_tensor_arena_min_bytes; }\n"
    )
    for source, language in ((tmp_path / "kws_int8.cc", "c++"), (program, "c")):
        subprocess.run(
            [CC, "-x", language, "-Wall", "-Werror", f"-I{tmp_path}", "-c", str(source), "-o", f"{source}.o"],
            check=True,
        )

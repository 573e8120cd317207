"""`audio-transfer demo`: synthesize or take a folder, split by speaker, train, test, export int8."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import soundfile as sf
from audio_files import noise
from conftest import make_tone
from export_support import operator_output_types

from audio_transfer.cli.demo import TEST_FRACTION, VALIDATION_FRACTION
from audio_transfer.cli.main import main
from audio_transfer.data import which_split


def run_demo(capsys, *args: str) -> dict:
    assert main(["demo", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def manifest_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def speakers_for_every_split(count: int) -> list[str]:
    """``count`` speaker ids the demo splits into train, one validation speaker and one test speaker."""
    chosen: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    wanted = {"train": count - 2, "validation": 1, "test": 1}
    index = 0
    while any(len(chosen[name]) < wanted[name] for name in wanted):
        speaker = f"spk{index:03d}"
        split = which_split(speaker, validation_fraction=VALIDATION_FRACTION, test_fraction=TEST_FRACTION)
        if len(chosen[split]) < wanted[split]:
            chosen[split].append(speaker)
        index += 1
    return [speaker for names in chosen.values() for speaker in names]


@pytest.fixture(scope="module")
def tone_words(tmp_path_factory) -> Path:
    """Two "words" (low and high tones) said by 6 speakers, and a background-noise file."""
    root = tmp_path_factory.mktemp("tone_words")
    for word, frequency in (("low", 300.0), ("high", 1200.0)):
        for number, speaker in enumerate(speakers_for_every_split(6)):
            clip = make_tone(frequency_hz=frequency * (1 + 0.03 * number)) + noise(seed=number) * 0.05
            path = root / word / f"{speaker}_nohash_0.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, clip, 16000, subtype="PCM_16")
    (root / "_background_noise_").mkdir()
    sf.write(root / "_background_noise_" / "hum.wav", noise(duration_seconds=2.0), 16000)
    return root


def test_demo_on_a_folder_splits_by_speaker_trains_tests_and_exports(tone_words, tmp_path, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / ".audio-transfer-demo").touch()  # an earlier demo's folder may be reused
    summary = run_demo(capsys, "--data", str(tone_words), "--out", str(out), "--epochs", "2")

    assert summary["data"]["synthesized"] is False and sorted(summary["data"]["labels"]) == ["high", "low"]
    assert summary["data"]["splits"] == {
        "train": {"clips": 8, "speakers": 4},
        "validation": {"clips": 2, "speakers": 1},
        "test": {"clips": 2, "speakers": 1},
    }
    rows = {name: manifest_rows(out / "splits" / f"{name}.csv") for name in ("train", "validation", "test")}
    speakers = {name: {row["speaker"] for row in split if row["speaker"]} for name, split in rows.items()}
    assert not speakers["train"] & speakers["test"] and not speakers["validation"] & speakers["test"]
    assert [row["label"] for row in rows["train"]].count("_background_noise_") == 1  # noise for training

    test = summary["test"]
    assert test["num_examples"] == 2 and test["num_speakers"] == 1 and 0.0 <= test["accuracy"] <= 1.0
    metrics = json.loads((out / "run" / "metrics.json").read_text())
    assert metrics["evaluated_on"] == "test" and metrics["num_examples"] == 2
    for name in ("model.keras", "labels.txt", "config.yaml", "history.csv", "confusion_matrix.png"):
        assert (out / "run" / name).is_file()

    exported = summary["export"]
    assert Path(exported["path"]) == out / "kws_int8.tflite" and exported["quantize"] == "int8"
    assert exported["size_bytes"] == (out / "kws_int8.tflite").stat().st_size
    parity = json.loads(Path(exported["report_path"]).read_text())
    assert parity["num_clips"] == 2 and parity["quantize"] == "int8" and parity["mean_latency_ms"] > 0
    # speech_embedding keeps its front-end and its first block (stage_1) float under int8, the rest int8.
    assert exported["float_layers"] == ["speech_embedding_frontend", "stage_1"]
    types = operator_output_types((out / "kws_int8.tflite").read_bytes())
    assert ("CONV_2D", "FLOAT32") in types and ("CONV_2D", "INT8") in types
    assert json.loads((out / "demo.json").read_text()) == summary
    assert summary["seconds"]["wall"] > 0 and summary["seconds"]["cpu"] > 0

    # --float-blocks 2 keeps stage_2 float too: its weights in float32, more float convolutions.
    wider = out / "kws_int8_2.tflite"
    options = ["--format", "tflite", "--quantize", "int8", "--float-blocks", "2", "--held-out-clips", "0"]
    assert main(["export", str(out / "run"), *options, "--out", str(wider), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["float_layers"] == ["speech_embedding_frontend", "stage_1", "stage_2"]
    assert result["size_bytes"] > exported["size_bytes"] + 40_000


@pytest.mark.slow  # end to end (synthesis or a whole example script); a fast variant stays in the default run
def test_demo_synthesizes_keywords_and_prints_a_report(tmp_path, capsys):
    pytest.importorskip("espeakng_loader")
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--words", "yes,no", "--per-word", "16", "--epochs", "1"])
    assert code == 0
    text = capsys.readouterr().out
    summary = json.loads((out / "demo.json").read_text())
    assert summary["data"]["synthesized"] is True and summary["data"]["words"] == ["yes", "no"]
    assert sorted(path.name for path in (out / "data").iterdir() if path.is_dir()) == ["no", "yes"]
    counts = summary["data"]["splits"]
    assert sum(split["clips"] for split in counts.values()) == 32
    assert counts["test"]["speakers"] >= 1 and counts["train"]["speakers"] >= 1
    # The report names the accuracy, the int8 file's size and latency, and where the files went.
    assert f"{summary['test']['accuracy']:.1%}" in text
    assert f"{summary['export']['size_bytes'] / 1024:.0f} KB" in text
    assert "ms per clip" in text and str(out / "kws_int8.tflite") in text and str(out / "run") in text


def test_demo_refuses_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["demo", "--out", str(tmp_path), "--data", str(tmp_path)]) == 2
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_demo_says_when_there_are_too_few_speakers_to_hold_some_out(tmp_path, caplog):
    data = tmp_path / "data"
    for word in ("a", "b"):
        path = data / word / "onlyone_nohash_0.wav"
        path.parent.mkdir(parents=True)
        sf.write(path, make_tone(), 16000)
    assert main(["demo", "--data", str(data), "--out", str(tmp_path / "out")]) == 2
    assert "speaker-disjoint" in caplog.text and "test split is empty" in caplog.text


@pytest.mark.slow
def test_default_demo_reaches_useful_accuracy(tmp_path, capsys):
    pytest.importorskip("espeakng_loader")
    summary = run_demo(capsys, "--out", str(tmp_path / "demo"))
    assert summary["test"]["accuracy"] >= 0.8
    assert summary["export"]["parity"]["top1_agreement"] >= 0.9
    assert summary["seconds"]["wall"] < 600

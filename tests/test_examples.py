"""The example scripts in examples/, run end to end with tiny settings on a tiny dataset made here.

Their ``audio-transfer`` calls are served in this process (see ``cli_server``), so a script pays for its
commands, not for a fresh TensorFlow per command. The slow tests run scripts through real
``python -m audio_transfer`` processes on the Speech Commands subset.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audio_files import noise
from cli_server import CliServer
from conftest import REPO_ROOT, make_tone
from export_support import operator_output_types

EXAMPLES = REPO_ROOT / "examples"
SCRIPTS = sorted(path.name for path in EXAMPLES.glob("*.sh") if not path.name.startswith("_"))
WORDS = {"yes": 300.0, "no": 700.0, "up": 1500.0}
SPEAKERS = ("aa11", "bb22", "cc33", "dd44")


@pytest.fixture(scope="module")
def tiny_speech_commands(tmp_path_factory) -> Path:
    """Speech Commands layout: 3 words x 4 speakers x 2 clips of 1 s tones, and _background_noise_."""
    root = tmp_path_factory.mktemp("tiny_speech_commands")
    rng = np.random.default_rng(0)
    for word, frequency in WORDS.items():
        for number, speaker in enumerate(SPEAKERS):
            for index in range(2):
                tone = make_tone(frequency_hz=frequency * (1 + 0.05 * number) + 10 * index)
                clip = tone * rng.uniform(0.3, 1.0) + noise(seed=index + 10 * number) * 0.1
                path = root / word / f"{speaker}_nohash_{index}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, clip, 16000, subtype="PCM_16")
    (root / "_background_noise_").mkdir()
    sf.write(root / "_background_noise_" / "noise.wav", noise(duration_seconds=3.0), 16000)
    return root


@pytest.fixture(scope="module")
def cli_server():
    with CliServer() as server:
        yield server


def run_script(name: str, *args, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["bash", str(EXAMPLES / name), *map(str, args)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stderr[-5000:]}"
    return result


def served(
    server: CliServer, name: str, *args, **env: str
) -> tuple[list[list[str]], subprocess.CompletedProcess]:
    """Run a script against the in-process CLI; returns the argvs it called and the finished process."""
    before = len(server.calls)
    result = run_script(name, *args, env={**server.environment, "EPOCHS": "1", **env})
    return server.calls[before:], result


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_explains_itself_without_arguments(name):
    result = subprocess.run(["bash", str(EXAMPLES / name)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert f"Usage: examples/{name}" in result.stderr
    assert os.access(EXAMPLES / name, os.X_OK)


def test_keyword_spotting(cli_server, tiny_speech_commands, tmp_path):
    calls, result = served(
        cli_server, "keyword_spotting.sh", tiny_speech_commands, tmp_path, "yes,no", tiny_speech_commands
    )
    assert [call[0] for call in calls] == ["train", "evaluate", "export", "predict"]
    assert calls[0][calls[0].index("--keywords") + 1] == "yes,no"
    assert "$ " in result.stderr and " train " in result.stderr  # each command is printed before it runs
    labels = (tmp_path / "run" / "labels.txt").read_text().split()
    assert set(labels) == {"_silence_", "_unknown_", "yes", "no"}
    evaluated = json.loads((tmp_path / "test" / "metrics.json").read_text())
    assert set(evaluated["per_class"]) <= set(labels) and evaluated["num_examples"] > 0
    # Too few clips per class for training to hold any out: export compares on the clips the run held
    # out (splits.csv), so it writes no parity report rather than one on clips the model trained on.
    operators = operator_output_types((tmp_path / "kws_int8.tflite").read_bytes())
    assert ("FULLY_CONNECTED", "INT8") in operators  # the head runs in int8
    assert not (tmp_path / "kws_int8.tflite.report.json").exists()
    assert ",validation," not in (tmp_path / "run" / "splits.csv").read_text()


@pytest.mark.slow  # end to end (synthesis or a whole example script); a fast variant stays in the default run
def test_speaker_identification(cli_server, tiny_speech_commands, tmp_path):
    calls, _ = served(cli_server, "speaker_identification.sh", tiny_speech_commands, tmp_path, 3)
    assert [call[0] for call in calls] == ["info", "train", "predict"]
    assert {path.name for path in (tmp_path / "speakers").iterdir()} == set(SPEAKERS)
    assert set((tmp_path / "run" / "labels.txt").read_text().split()) == set(SPEAKERS)
    assert calls[1][calls[1].index("--base") + 1] == "ge2e_speaker"


def test_speaker_verification(cli_server, tiny_speech_commands, tmp_path):
    calls, result = served(cli_server, "speaker_verification.sh", tiny_speech_commands, tmp_path, 3)
    assert [call[0] for call in calls] == ["evaluate", "enroll", "verify"]
    metrics = json.loads((tmp_path / "verification" / "metrics.json").read_text())
    assert 0.0 <= metrics["eer"] <= 1.0 and metrics["num_speakers"] == len(SPEAKERS)
    enrolled = calls[1][calls[1].index("--name") + 1]
    assert enrolled == SPEAKERS[0] and (tmp_path / "enrollments.json").is_file()
    verified = calls[2][-2:]
    assert f"/{SPEAKERS[0]}/" in verified[0] and f"/{SPEAKERS[1]}/" in verified[1]
    assert verified[0] not in calls[1]  # verified on a clip that was not enrolled
    assert "rejected" in result.stdout or "accepted" in result.stdout


@pytest.mark.slow  # end to end (synthesis or a whole example script); a fast variant stays in the default run
def test_sound_classification_with_a_tf_hub_base(cli_server, tiny_speech_commands, tmp_path, monkeypatch):
    from hub_fakes import save_yamnet_like

    from audio_transfer.bases.hub_resolver import hub_cache_path

    # A YAMNet-like SavedModel where tensorflow_hub would have cached google/yamnet/1.
    cache = tmp_path / "tfhub_cache"
    save_yamnet_like(hub_cache_path("https://tfhub.dev/google/yamnet/1", cache), embedding_dim=1024)
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache))
    calls, _ = served(cli_server, "sound_classification.sh", tiny_speech_commands, tmp_path / "out")
    assert [call[0] for call in calls] == ["train", "export", "predict"]
    assert calls[0][calls[0].index("--base") + 1] == "hub:https://tfhub.dev/google/yamnet/1"
    assert "--no-safe-mode" in calls[1] and "--no-safe-mode" in calls[2]
    assert (tmp_path / "out" / "saved_model" / "saved_model.pb").is_file()


def test_synthetic_keywords_tested_on_real_folders(cli_server, tiny_speech_commands, tmp_path):
    pytest.importorskip("espeakng_loader")
    calls, _ = served(
        cli_server, "synthetic_keywords.sh", tiny_speech_commands, tmp_path, "yes,no", PER_WORD="3"
    )
    assert [call[0] for call in calls] == ["synth", "train", "evaluate"]
    assert {path.name for path in (tmp_path / "synth").iterdir() if path.is_dir()} == {"yes", "no"}
    assert sorted(path.name for path in (tmp_path / "real").iterdir()) == ["no", "yes"]
    metrics = json.loads((tmp_path / "real_test" / "metrics.json").read_text())
    assert metrics["num_examples"] == 2 * len(SPEAKERS) * 2


def real_cli(**env: str) -> dict[str, str]:
    return {"AUDIO_TRANSFER_CLI": f"{sys.executable} -m audio_transfer", **env}


@pytest.mark.slow
def test_keyword_spotting_on_speech_commands_through_the_real_cli(speech_commands_dir, tmp_path):
    run_script("keyword_spotting.sh", speech_commands_dir, tmp_path, env=real_cli(EPOCHS="30"))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["num_examples"] > 0 and metrics["accuracy"] >= 0.5
    report = json.loads((tmp_path / "kws_int8.tflite.report.json").read_text())
    assert report["top1_agreement"] >= 0.8


def slice_recordings(recordings: Path, out: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, str(EXAMPLES / "slice_recordings.py"), str(recordings), str(out), *args],
        check=True,
        capture_output=True,
        timeout=120,
    )


def test_slice_recordings_names_each_stretch_of_clips_as_a_speaker(tmp_path):
    from audio_transfer.data import load_labelled_audio

    recordings = tmp_path / "recordings"
    recordings.mkdir()
    sf.write(recordings / "hum.wav", make_tone(frequency_hz=100.0, duration_seconds=5.5), 16000)
    (recordings / "rain").mkdir()
    for take in ("a", "b"):
        sf.write(recordings / "rain" / f"{take}.wav", noise(duration_seconds=3.0), 16000)
    slice_recordings(recordings, tmp_path / "clips", "--block-clips", "2", "--start-seconds", "1")
    names = sorted(
        path.relative_to(tmp_path / "clips").as_posix() for path in (tmp_path / "clips").rglob("*")
    )
    assert names == [
        "hum",
        *(f"hum/hum-b{n // 2:03d}_nohash_{n}.wav" for n in range(1, 5)),
        "rain",
        *(f"rain/{take}-b{n // 2:03d}_nohash_{n}.wav" for take in "ab" for n in (1, 2)),
    ]
    data = load_labelled_audio(tmp_path / "clips")
    assert data.labels == ["hum", "rain"]
    assert data.speakers == {"hum-b000", "hum-b001", "hum-b002", "a-b000", "a-b001", "b-b000", "b-b001"}
    assert sf.info(tmp_path / "clips" / "hum" / "hum-b000_nohash_1.wav").frames == 16000


@pytest.mark.slow
def test_sound_classification_of_sliced_noise_recordings_with_keras_yamnet_and_coral_weights(
    speech_commands_dir, coral_yamnet_dir, tmp_path
):
    # Six sound classes (dishes, cat, exercise bike, pink noise, running tap, white noise): 40 clips of 1 s
    # from each recording, validation clips from other 5 s stretches than the training clips.
    slice_recordings(speech_commands_dir / "_background_noise_", tmp_path / "sounds", "--max-clips", "40")
    weights = coral_yamnet_dir / "yamnet_spectra_in.tflite"
    run_script(
        "sound_classification.sh",
        tmp_path / "sounds",
        tmp_path / "out",
        "yamnet",
        weights,
        env=real_cli(EPOCHS="5"),
    )
    config = (tmp_path / "out" / "run" / "config.yaml").read_text()
    assert f"base_weights: {weights}" in config
    metrics = json.loads((tmp_path / "out" / "run" / "metrics.json").read_text())
    assert metrics["num_examples"] >= 20 and metrics["accuracy"] >= 0.9
    assert (tmp_path / "out" / "sounds_int8.tflite").is_file()
    report = json.loads((tmp_path / "out" / "sounds_int8.tflite.report.json").read_text())
    assert report["quantize"] == "int8" and report["num_clips"] == metrics["num_examples"]
    assert report["top1_agreement"] >= 0.9 and report["exported_accuracy"] >= 0.9

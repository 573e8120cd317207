"""``audio-transfer info``: audio files, dataset folders and manifests, as text and JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from audio_files import write_corrupt_flac, write_speech_commands_tree, write_tone, write_truncated_wav

from audio_transfer.audio import verify_audio
from audio_transfer.cli.main import main

# main() points the package logger at the captured stderr: undone after every test.
pytestmark = pytest.mark.usefixtures("restore_package_logger")


def _info_json(capsys, *args: str) -> tuple[int, dict]:
    code = main(["info", *args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_info_on_a_file(tmp_path, capsys):
    path = write_tone(tmp_path / "tone.flac", sample_rate=22050, channels=2, subtype="PCM_24")

    code, data = _info_json(capsys, str(path))
    assert code == 0
    assert data == {"kind": "audio_file", **verify_audio(path).to_dict()}
    assert (data["sample_rate"], data["channels"], data["subtype"]) == (22050, 2, "PCM_24")

    assert main(["info", str(path)]) == 0
    assert capsys.readouterr().out.strip() == f"{path}: 1.000 s, 22050 Hz, 2 channels, FLAC PCM_24"


def test_missing_file_is_one_json_error_object(tmp_path):
    missing = tmp_path / "missing.wav"
    result = subprocess.run(
        [sys.executable, "-m", "audio_transfer", "info", str(missing), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stdout.count("\n") == 1  # exactly one line: one JSON object
    error = json.loads(result.stdout)
    assert error == {
        "error": "AudioDecodeError",
        "message": f"Cannot read {str(missing)!r}: no such file. Check the path.",
    }
    assert "no such file" in result.stderr


def test_corrupt_file_is_a_json_error(tmp_path, capsys):
    path = write_corrupt_flac(tmp_path / "corrupt.flac")
    assert main(["info", str(path), "--json"]) == 2
    error = json.loads(capsys.readouterr().out)
    assert error["error"] == "AudioDecodeError"
    assert "lost sync" in error["message"] and str(path) in error["message"]


def test_info_on_a_folder_with_corrupt_files_among_good_ones(tmp_path, capsys):
    root = write_speech_commands_tree(tmp_path / "data", words=("yes", "no"), speakers=3, noise_files=2)
    bad = [
        write_corrupt_flac(root / "yes" / "bad1_nohash_0.flac"),
        write_truncated_wav(root / "no" / "bad2_nohash_0.wav"),
        write_truncated_wav(root / "_background_noise_" / "cut.wav"),
    ]

    code, data = _info_json(capsys, str(root))

    assert code == 0
    assert data["kind"] == "dataset"
    assert data["num_classes"] == 2 and data["classes"] == {"no": 3, "yes": 3}
    assert data["num_examples"] == 6 and data["num_speakers"] == 3
    assert data["duration_seconds"] == pytest.approx(6.0)
    assert data["sample_rates"] == {"16000": 8}
    assert data["num_noise_files"] == 2
    assert data["num_skipped"] == 3
    assert sorted(item["path"] for item in data["skipped"]) == sorted(map(str, bad))
    assert all(item["reason"] for item in data["skipped"])

    assert main(["info", str(root)]) == 0
    text = capsys.readouterr().out
    assert "2 classes, 6 clips, 3 speakers" in text and "skipped 3 files" in text
    for path in bad:
        assert str(path) in text


def test_info_on_a_manifest(tmp_path, capsys):
    write_tone(tmp_path / "a" / "0_jackson_0.wav")
    write_tone(tmp_path / "a" / "1_theo_0.wav", sample_rate=8000)
    (tmp_path / "m.csv").write_text("path,label\na/0_jackson_0.wav,0\na/1_theo_0.wav,1\na/gone.wav,1\n")

    code, data = _info_json(capsys, str(tmp_path / "m.csv"))

    assert code == 0
    assert data["classes"] == {"0": 1, "1": 1}
    assert data["num_speakers"] == 2
    assert data["sample_rates"] == {"8000": 1, "16000": 1}
    assert data["num_skipped"] == 1 and "no such file" in data["skipped"][0]["reason"]


def test_empty_folder_is_a_dataset_error(tmp_path, capsys):
    code, data = _info_json(capsys, str(tmp_path))
    assert code == 2
    assert data["error"] == "DatasetError" and "Found no labelled audio" in data["message"]


def test_speech_commands_subset(speech_commands_dir, capsys):
    code, data = _info_json(capsys, str(speech_commands_dir))

    assert code == 0
    assert data["num_classes"] == 30
    assert data["num_examples"] == 300 and sum(data["classes"].values()) == 300
    assert data["num_speakers"] == 41
    assert data["num_noise_files"] == 6
    assert "_background_noise_" not in data["classes"]
    assert all("_background_noise_" in path for path in data["noise_files"])
    assert data["num_skipped"] == 0

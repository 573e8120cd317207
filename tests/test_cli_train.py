"""The train / evaluate / predict / enroll / verify verbs, through the CLI entry point, on synthetic tones."""

import contextlib
import io
import json
import shutil

import numpy as np
import pytest
import yaml
from tiny_conv_base import tiny_base

from audio_transfer.audio import save_audio
from audio_transfer.cli.main import main

SAMPLE_RATE = 16000
KEYWORD_TONES_HZ = {"low": 300.0, "mid": 1000.0, "high": 3000.0}
SPEAKER_TONES_HZ = {"ann": 200.0, "bob": 700.0, "eve": 2500.0}
OTHER_SPEAKER_TONES_HZ = {"dan": 450.0, "fay": 1500.0}
SPEAKERS = [f"{name}{i}" for name in ("ab", "cd", "ef", "gh", "ij") for i in range(2)]


def run_cli(*args: str) -> tuple[int, dict]:
    """Run the CLI with --json; stdout must be exactly one JSON object."""
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main([*args, "--json"])
    return code, json.loads(stdout.getvalue())


def _tone(rng, frequency_hz, seconds=0.5):
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f = frequency_hz * rng.uniform(0.92, 1.08)
    tone = rng.uniform(0.2, 0.7) * np.sin(2 * np.pi * f * t + rng.uniform(0, 6))
    return (tone + rng.normal(scale=0.03, size=t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A keyword folder (class per folder, speakers in file names), a speaker folder and a tiny base file."""
    root = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    for label, frequency in KEYWORD_TONES_HZ.items():
        for speaker in SPEAKERS:
            save_audio(
                root / "kws" / label / f"{speaker}_nohash_0.wav", _tone(rng, frequency), sample_rate=16000
            )
    for folder, tones in (("speakers", SPEAKER_TONES_HZ), ("other_speakers", OTHER_SPEAKER_TONES_HZ)):
        for speaker, frequency in tones.items():
            for n in range(10):
                save_audio(root / folder / speaker / f"clip{n}.wav", _tone(rng, frequency), sample_rate=16000)
    tiny_base().save(root / "tiny_base.keras")
    (root / "settings.yaml").write_text("epochs: 9\nseed: 3\ndropout: 0.1\naugment_copies: 1\n")
    return root


@pytest.fixture(scope="module")
def kws_run(workspace):
    run_dir = workspace / "kws_run"
    code, result = run_cli(
        "train", str(workspace / "kws"), "--task", "kws", "--base", str(workspace / "tiny_base.keras"),
        "--out", str(run_dir), "--epochs", "4", "--config", str(workspace / "settings.yaml"),
    )  # fmt: skip
    assert code == 0, result
    return run_dir, result


def test_train_writes_the_run_folder(kws_run, workspace):
    run_dir, result = kws_run
    for name in ("model.keras", "labels.txt", "config.yaml", "metrics.json", "history.csv", "report.txt"):
        assert (run_dir / name).is_file(), name
    assert result["task"] == "kws" and result["labels"] == ["high", "low", "mid"]
    assert (run_dir / "labels.txt").read_text().splitlines() == result["labels"]
    assert result["evaluated_on"] == "validation" and result["num_validation_clips"] > 0
    assert result["num_train_clips"] + result["num_validation_clips"] == 30
    # augment_copies: 1 from the file, when head: auto kept augmentation (config.yaml records its choice).
    augment = yaml.safe_load((run_dir / "config.yaml").read_text())["augment"]
    assert result["num_augmented_clips"] == result["num_train_clips"] * augment
    assert 0.0 <= result["metrics"]["accuracy"] <= 1.0

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["accuracy"] == result["metrics"]["accuracy"] and metrics["task"] == "kws"
    history = (run_dir / "history.csv").read_text().splitlines()
    assert history[0].startswith("stage,epoch") and 1 <= len(history) - 1 <= 4


def test_config_file_values_are_overridden_by_flags(kws_run, workspace):
    run_dir, _ = kws_run
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["epochs"] == 4  # flag over file
    assert (config["seed"], config["dropout"], config["augment_copies"]) == (3, 0.1, 1)  # file over defaults
    assert config["task"] == "kws" and config["base"] == str(workspace / "tiny_base.keras")
    assert (config["sample_rate"], config["clip_seconds"]) == (16000, 0.5)  # measured: 0.5 s files
    assert config["data_dir"] == str((workspace / "kws").resolve())


def test_evaluate_reports_accuracy_per_class(kws_run, workspace):
    run_dir, _ = kws_run
    code, result = run_cli("evaluate", str(run_dir), "--data", str(workspace / "kws"))
    assert code == 0
    assert result["num_examples"] == 30
    assert set(result["per_class"]) == {"high", "low", "mid"}
    assert 0.0 <= result["balanced_accuracy"] <= 1.0 and "accuracy" in result


def test_evaluate_names_the_labels_the_model_does_not_know(kws_run, workspace, tmp_path):
    run_dir, _ = kws_run
    data = tmp_path / "data"
    shutil.copytree(workspace / "kws", data)
    shutil.copytree(data / "low", data / "whistle")
    code, result = run_cli("evaluate", str(run_dir), "--data", str(data))
    assert code == 2 and result["error"] == "DatasetError"
    assert "does not know: whistle" in result["message"]


def test_predict_files_and_folders_with_top_k(kws_run, workspace, tmp_path):
    run_dir, _ = kws_run
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio")
    one = workspace / "kws" / "low" / f"{SPEAKERS[0]}_nohash_0.wav"
    code, result = run_cli(
        "predict", str(run_dir / "model.keras"), str(one), str(workspace / "kws" / "high"), str(broken),
        "--top-k", "2",
    )  # fmt: skip
    assert code == 0
    assert len(result["predictions"]) == 1 + len(SPEAKERS)
    first = result["predictions"][0]
    assert first["file"] == str(one) and len(first["top_k"]) == 2
    assert first["label"] == first["top_k"][0]["label"] in KEYWORD_TONES_HZ
    assert first["top_k"][0]["score"] >= first["top_k"][1]["score"]
    assert [item["path"] for item in result["skipped"]] == [str(broken)]


def test_train_speaker_identification(workspace, tmp_path):
    code, result = run_cli(
        "train", str(workspace / "speakers"), "--task", "speaker-id",
        "--base", str(workspace / "tiny_base.keras"), "--out", str(tmp_path / "run"), "--epochs", "3",
    )  # fmt: skip
    assert code == 0, result
    assert result["labels"] == ["ann", "bob", "eve"]
    # Speakers are the classes: validation holds out 20% of each speaker's clips.
    assert result["evaluated_on"] == "validation" and result["num_validation_clips"] == 6
    assert "accuracy" in result["metrics"]


def test_train_speaker_verification_validates_on_other_speakers(workspace, tmp_path):
    code, result = run_cli(
        "train", str(workspace / "speakers"), "--task", "speaker-verification",
        "--base", str(workspace / "tiny_base.keras"), "--out", str(tmp_path / "run"), "--epochs", "3",
        "--val-data", str(workspace / "other_speakers"),
    )  # fmt: skip
    assert code == 0, result
    assert (tmp_path / "run" / "labels.txt").read_text().split() == ["ann", "bob", "eve"]
    assert result["evaluated_on"] == "validation" and result["num_validation_clips"] == 20
    assert {"eer", "min_dcf", "eer_threshold"} <= set(result["metrics"])
    assert result["metrics"]["num_trials"] == 20 * 19 // 2
    code, evaluated = run_cli("evaluate", str(tmp_path / "run"), "--data", str(workspace / "speakers"))
    assert code == 0 and evaluated["num_trials"] == 30 * 29 // 2
    # The run records the speakers it validated on; export measures its EER parity on them.
    code, exported = run_cli(
        "export", str(tmp_path / "run"), "--format", "tflite", "--out", str(tmp_path / "verifier.tflite")
    )
    assert code == 0, exported
    assert exported["report"]["num_speakers"] == 2


def test_evaluate_verification_with_a_bare_base(workspace):
    code, result = run_cli(
        "evaluate", str(workspace / "tiny_base.keras"), "--data", str(workspace / "speakers"),
        "--task", "speaker-verification",
    )  # fmt: skip
    assert code == 0
    assert result["num_trials"] == 30 * 29 // 2 and result["num_speakers"] == 3
    assert 0.0 <= result["eer"] <= 0.5 and result["min_dcf"] >= 0.0


def test_enroll_then_verify(workspace, tmp_path):
    base = str(workspace / "tiny_base.keras")
    enrollments = tmp_path / "voices.json"
    for name in ("ann", "eve"):
        clips = [str(workspace / "speakers" / name / f"clip{n}.wav") for n in range(3)]
        code, result = run_cli("enroll", base, "--name", name, "--enrollments", str(enrollments), *clips)
        assert code == 0 and result["num_clips"] == 3
    assert result["enrolled"] == ["ann", "eve"]

    probe = str(workspace / "speakers" / "ann" / "clip9.wav")
    code, result = run_cli("verify", base, "--enrollments", str(enrollments), probe, "--threshold", "0.5")
    assert result["threshold"] == 0.5 and result["threshold_from"] == "--threshold"
    (match,) = result["results"]
    assert match["speaker"] == "ann" and set(match["scores"]) == {"ann", "eve"}
    assert match["accepted"] == (match["score"] >= 0.5)
    assert code == (0 if match["accepted"] else 1)  # 1: rejected
    code, result = run_cli("verify", base, "--enrollments", str(enrollments), probe, "--threshold", "1.01")
    assert code == 1 and not result["results"][0]["accepted"]

    code, result = run_cli("verify", base, "--enrollments", str(enrollments), probe, "--name", "bob")
    assert code == 2 and "'bob' is not enrolled (enrolled: ann, eve)" in result["message"]


def test_verify_uses_the_threshold_evaluate_measured_for_a_bare_base(workspace, tmp_path, capsys):
    base = str(workspace / "tiny_base.keras")
    code, evaluated = run_cli(
        "evaluate", base, "--data", str(workspace / "speakers"), "--task", "speaker-verification",
        "--out", str(tmp_path / "eval"),
    )  # fmt: skip
    assert code == 0
    enrollments = str(tmp_path / "voices.json")
    clips = [str(workspace / "speakers" / "bob" / f"clip{n}.wav") for n in range(3)]
    assert run_cli("enroll", base, "--name", "bob", "--enrollments", enrollments, *clips)[0] == 0
    probes = [str(workspace / "speakers" / name / "clip9.wav") for name in ("bob", "eve")]

    code, result = run_cli(
        "verify", base, "--enrollments", enrollments, *probes, "--threshold-from", str(tmp_path / "eval")
    )
    assert result["threshold"] == evaluated["eer_threshold"]
    assert result["threshold_from"] == str(tmp_path / "eval" / "metrics.json")
    assert code == (0 if all(r["accepted"] for r in result["results"]) else 1)
    metrics_file = str(tmp_path / "eval" / "metrics.json")
    assert (
        run_cli("verify", base, "--enrollments", enrollments, *probes, "--threshold-from", metrics_file)[1]
        == result
    )
    capsys.readouterr()

    main(["verify", base, "--enrollments", enrollments, probes[0]])  # nothing measured: the default
    captured = capsys.readouterr()
    assert captured.out.rstrip().endswith("from default)")
    assert "--threshold-from EVAL_DIR" in captured.err

    code, result = run_cli(
        "verify", base, "--enrollments", enrollments, probes[0], "--threshold-from", enrollments
    )
    assert code == 2 and result["error"] == "ConfigError" and "has no eer_threshold" in result["message"]


def test_train_on_a_missing_folder_is_one_json_error(tmp_path, workspace):
    code, result = run_cli(
        "train", str(tmp_path / "nowhere"), "--base", str(workspace / "tiny_base.keras"),
        "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert code == 2 and result["error"] == "DatasetError"


# -- real speech, real bases (slow) ------------------------------------------------------------------------
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _link_split(source, target, words, *, test_speakers):
    """Symlinked train/ and test/ folders of ``words`` from Speech Commands, split by speaker."""
    for word in words:
        for clip in sorted((source / word).glob("*.wav")):
            split = "test" if clip.name.split("_nohash_")[0] in test_speakers else "train"
            (target / split / word).mkdir(parents=True, exist_ok=True)
            (target / split / word / clip.name).symlink_to(clip)
    return target / "train", target / "test"


def _speaker_folders(source, target, *, min_clips):
    """Symlinked folder-per-speaker tree of the speakers with at least ``min_clips`` clips."""
    clips = {}
    for clip in sorted(source.glob("*/*_nohash_*.wav")):
        clips.setdefault(clip.name.split("_nohash_")[0], []).append(clip)
    for speaker, files in clips.items():
        if len(files) >= min_clips:
            (target / speaker).mkdir(parents=True)
            for clip in files:
                (target / speaker / f"{clip.parent.name}_{clip.name}").symlink_to(clip)
    return target


def _every_other_speaker(source, words):
    speakers = sorted({c.name.split("_nohash_")[0] for w in words for c in (source / w).glob("*.wav")})
    return set(speakers[::2])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("task", "words", "floor"),
    [("kws", DIGITS, 0.8), ("classify", ("bird", "cat", "dog", "house", "tree"), 0.6)],
)
def test_real_speech_classification_on_unseen_speakers(speech_commands_dir, tmp_path, task, words, floor):
    test_speakers = _every_other_speaker(speech_commands_dir, words)
    train, test = _link_split(speech_commands_dir, tmp_path, words, test_speakers=test_speakers)
    code, trained = run_cli("train", str(train), "--task", task, "--out", str(tmp_path / "run"))
    assert code == 0, trained
    code, result = run_cli("evaluate", str(tmp_path / "run"), "--data", str(test))
    assert code == 0
    assert result["accuracy"] >= floor, (result["accuracy"], result["per_class"])


@pytest.mark.slow
def test_real_speech_speaker_identification(speech_commands_dir, tmp_path):
    speakers = _speaker_folders(speech_commands_dir, tmp_path / "speakers", min_clips=17)
    code, trained = run_cli("train", str(speakers), "--task", "speaker-id", "--out", str(tmp_path / "run"))
    assert code == 0, trained
    assert trained["evaluated_on"] == "validation" and len(trained["labels"]) == 8
    assert trained["metrics"]["accuracy"] >= 0.85, trained["metrics"]


@pytest.mark.slow
def test_real_speech_speaker_verification(speech_commands_dir, tmp_path):
    speakers = _speaker_folders(speech_commands_dir, tmp_path / "speakers", min_clips=11)
    code, bare = run_cli(
        "evaluate", "ge2e_speaker", "--data", str(speakers), "--task", "speaker-verification"
    )
    assert code == 0
    assert bare["num_speakers"] == 11 and bare["eer"] <= 0.2, bare
    code, trained = run_cli(
        "train", str(speakers), "--task", "speaker-verification", "--out", str(tmp_path / "run")
    )
    assert code == 0, trained
    assert trained["metrics"]["eer"] <= 0.25, trained["metrics"]

"""Hostile input to the command line (issue 17 §5, 6, 8, 10, 12): every case ends in a typed error naming the
file or flag (exit 2) or a clean interruption (exit 130), never a traceback or a payload run."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import pytest
from audio_files import write_tone
from conftest import REPO_ROOT

from audio_transfer.cli import main as cli_main
from audio_transfer.cli.output import EXIT_INTERRUPTED, EXIT_USAGE, terminal_safe
from audio_transfer.cli.train import resolve_config
from audio_transfer.data import decode_examples, load_labelled_audio, memory_bound
from audio_transfer.errors import BaseNotFoundError, ConfigError
from audio_transfer.tasks import load_task
from audio_transfer.tasks.task_loading import SERIALIZABLE_MODULES, is_task_file
from audio_transfer.training import TrainConfig


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    """A two-class folder of short tones (3 files each)."""
    root = tmp_path_factory.mktemp("tones")
    for label, frequency_hz in (("low", 300.0), ("high", 3000.0)):
        for index in range(3):
            write_tone(
                root / label / f"{index}.wav", frequency_hz=frequency_hz + 10 * index, duration_seconds=0.3
            )
    return root


# -- §5 raw tracebacks ---------------------------------------------------------------------------------------
def test_evaluate_a_garbage_tflite_names_the_file(tmp_path, tones, capsys):
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(bytes(range(256)) * 2)
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(b"\x18\x00\x00\x00TFL3" + b"\xff" * 40)
    for model in (garbage, truncated):
        code = cli_main.main(["evaluate", str(model), "--data", str(tones), "--json"])
        result = _json(capsys)
        assert code == EXIT_USAGE and result["error"] == "ExportError", result
        assert str(model) in result["message"] and "audio-transfer export" in result["message"]


@pytest.mark.parametrize(
    ("yaml_bytes", "message"),
    [
        (b"keywords: 5\n", "keywords must be a list of words, received 5"),
        (b"clip_seconds: 1e8\n", "clip_seconds must be at most 600 s, received 1e+08"),
        (b"context_seconds: 1e9\n", "context_seconds must be at most 600 s"),
        (b"\xd4\x00\xff\xfe binary \x89PNG", "Give a UTF-8 YAML file"),
    ],
)
def test_a_bad_config_file_is_a_config_error(tmp_path, capsys, yaml_bytes, message):
    config = tmp_path / "config.yaml"
    config.write_bytes(yaml_bytes)
    argv = ["train", str(tmp_path), "--out", str(tmp_path / "run"), "--config", str(config), "--json"]
    code = cli_main.main(argv)
    result = _json(capsys)
    assert code == EXIT_USAGE and result["error"] == "ConfigError" and message in result["message"], result
    assert not (tmp_path / "run").exists()


def test_a_huge_clip_length_says_how_much_memory_it_needs(tmp_path, capsys):
    argv = ["train", str(tmp_path), "--out", str(tmp_path / "run"), "--clip-seconds", "1e7", "--json"]
    assert cli_main.main(argv) == EXIT_USAGE
    assert "596.0 GiB of float32 samples at 16000 Hz" in _json(capsys)["message"]
    assert TrainConfig(clip_seconds=600.0).clip_seconds == 600.0  # the bound itself is allowed


def test_decoding_more_clips_than_memory_holds_is_refused_before_decoding(tones, monkeypatch):
    examples = load_labelled_audio(tones).examples
    monkeypatch.setattr(memory_bound, "available_memory_bytes", lambda: 1_000_000)
    with pytest.raises(ConfigError, match=r"Decoding 6 clips of 60 s at 16000 Hz needs 22\.0 MiB of memory"):
        decode_examples(examples, sample_rate=16000, clip_seconds=60.0)
    assert decode_examples(examples, sample_rate=16000, clip_seconds=0.1).waveforms.shape == (6, 1600)


# -- §5, §6 hostile .keras files -----------------------------------------------------------------------------
def _crafted_keras(path, *, module: str, class_name: str):
    config = {
        "module": module,
        "class_name": class_name,
        "config": {"name": "x"},
        "registered_name": class_name,
    }
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("metadata.json", json.dumps({"keras_version": keras.__version__}))
        archive.writestr("model.weights.h5", b"")
    return path


@pytest.mark.parametrize(
    ("module", "class_name"),
    [
        ("audio_transfer.__main__", "main"),
        ("os", "system"),
        ("subprocess", "run"),
        ("audio_transfer.cli.demo", "X"),
    ],
)
def test_a_keras_file_cannot_make_the_host_import_a_module(tmp_path, monkeypatch, module, class_name):
    path = _crafted_keras(tmp_path / "crafted.keras", module=module, class_name=class_name)
    monkeypatch.setattr(sys, "argv", ["host", "--version"])  # what the CLI's parser would act on
    package_module = module.startswith("audio_transfer.")
    if package_module:  # not imported yet, so an import by the loader would show
        monkeypatch.delitem(sys.modules, module, raising=False)
    assert is_task_file(path) is False
    with pytest.raises(ConfigError, match="is not a safe audio_transfer model"):
        load_task(path)
    if package_module:
        assert module not in sys.modules


def test_a_crafted_keras_file_is_refused_by_the_cli(tmp_path, tones, capsys):
    path = _crafted_keras(tmp_path / "crafted.keras", module="audio_transfer.__main__", class_name="main")
    assert cli_main.main(["predict", str(path), str(tones), "--json"]) == EXIT_USAGE
    assert "audio_transfer.__main__" not in sys.modules and str(path) in _json(capsys)["message"]


def test_the_module_allow_list_is_every_module_that_registers_classes():
    registering = {
        ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
        for path in (REPO_ROOT / "audio_transfer").rglob("*.py")
        if re.search(r"^@keras\.saving\.register_keras_serializable\(", path.read_text(), re.MULTILINE)
    }
    assert registering == SERIALIZABLE_MODULES


def test_running_the_package_module_is_guarded():
    source = (REPO_ROOT / "audio_transfer" / "__main__.py").read_text()
    assert 'if __name__ == "__main__":' in source


def test_a_keras_file_with_a_lambda_is_a_typed_error(tmp_path):
    inputs = keras.Input((3,))
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs)).save(path)
    with pytest.raises(ConfigError, match=r"lambda\.keras is not a safe audio_transfer model.*Lambda"):
        load_task(path)


def test_a_keras_file_whose_config_is_not_a_mapping_is_a_typed_error(tmp_path):
    path = tmp_path / "list.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "[1, 2]")
    with pytest.raises(BaseNotFoundError, match="is not a Keras model file"):
        load_task(path)


# -- §8 control characters from files ----------------------------------------------------------------------
HOSTILE_LABELS = ("_silence_", "yes\x1b[2J\x1b]0;pwned\x07", "no\rFAKE: yes (1.000)\x1b[1A")


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """A run folder whose labels hold escape sequences, and a folder with a file name holding a newline."""
    from streaming_support import save_run

    from audio_transfer.bases import load_base
    from audio_transfer.tasks import KeywordSpotter

    root = tmp_path_factory.mktemp("hostile")
    run_dir = save_run(KeywordSpotter(load_base("speech_embedding"), HOSTILE_LABELS), root / "run")
    write_tone(root / "audio" / "one\nFAKE: yes (1.000).wav", duration_seconds=1.0)
    (root / "audio" / "bad\x1b[2J.wav").write_bytes(b"not audio")
    return run_dir, root / "audio"


def _has_control_characters(text: str) -> bool:
    return any((ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F for c in text)


def test_predict_text_escapes_labels_and_file_names(hostile_run, capsys, restore_package_logger):
    run_dir, audio = hostile_run
    assert cli_main.main(["predict", str(run_dir), str(audio), "--top-k", "3"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 2  # one prediction and one skipped file: the newline in a name splits nothing
    assert not _has_control_characters(captured.out) and not _has_control_characters(captured.err)
    assert "one\\nFAKE: yes (1.000).wav: " in lines[0] and "yes\\x1b[2J\\x1b]0;pwned\\x07" in lines[0]
    assert "no\\rFAKE: yes (1.000)\\x1b[1A" in lines[0]
    assert lines[1].startswith(f"{audio}/bad\\x1b[2J.wav: skipped (")
    assert "bad\\x1b[2J.wav" in captured.err  # the warning naming it is escaped too


def test_json_output_keeps_the_data_as_it_is(hostile_run, capsys):
    run_dir, audio = hostile_run
    assert cli_main.main(["predict", str(run_dir), str(audio), "--top-k", "3", "--json"]) == 0
    result = _json(capsys)
    assert {entry["label"] for entry in result["predictions"][0]["top_k"]} == set(HOSTILE_LABELS)
    assert result["predictions"][0]["file"].endswith("one\nFAKE: yes (1.000).wav")


def test_terminal_safe_escapes_every_control_character():
    assert terminal_safe("a\x00b\x1bc\x7fd\x9be\u202ef\tg\nh") == "a\\x00b\\x1bc\\x7fd\\x9be\\u202ef\\tg\\nh"
    assert terminal_safe("a\nb\x1b", keep_newlines=True) == "a\nb\\x1b"
    assert terminal_safe("plain text, ümlauts and 日本語") == "plain text, ümlauts and 日本語"


# -- §10 predict lists the links it cannot follow -----------------------------------------------------------
def test_predict_lists_dangling_and_looping_links_as_skipped(hostile_run, tmp_path, capsys):
    run_dir, _ = hostile_run
    folder = tmp_path / "clips"
    write_tone(folder / "good.wav", duration_seconds=1.0)
    (folder / "dangling.wav").symlink_to(tmp_path / "missing.wav")
    (folder / "loop.wav").symlink_to(folder / "loop.wav")
    assert cli_main.main(["predict", str(run_dir), str(folder), "--json"]) == 0
    result = _json(capsys)
    assert [Path(p["file"]).name for p in result["predictions"]] == ["good.wav"]
    assert sorted(Path(s["path"]).name for s in result["skipped"]) == ["dangling.wav", "loop.wav"]
    info = cli_main.main(["info", str(tmp_path), "--json"])  # the same files, as info sees the folder
    assert info == 0 and sorted(Path(s["path"]).name for s in _json(capsys)["skipped"]) == [
        "dangling.wav",
        "loop.wav",
    ]


# -- §12 one count of corrupt files, and a flag to change the limit ------------------------------------------
def test_the_corrupt_file_limit_counts_the_dataset_as_info_does(tmp_path, capsys):
    data = tmp_path / "data"
    for label, frequency_hz in (("low", 300.0), ("high", 3000.0)):
        for index in range(12):
            write_tone(data / label / f"{label}{index}.wav", frequency_hz=frequency_hz, duration_seconds=0.3)
    for index in range(4):
        (data / "low" / f"low{index}.wav").write_bytes(b"not audio")
    assert cli_main.main(["info", str(data), "--json"]) == 0
    summary = _json(capsys)
    total = summary["num_examples"] + summary["num_skipped"]
    argv = [
        "train",
        str(data),
        "--out",
        str(tmp_path / "run"),
        "--task",
        "classify",
        "--base",
        "ge2e_speaker",
    ]
    assert cli_main.main([*argv, "--json"]) == EXIT_USAGE
    message = _json(capsys)["message"]
    assert f"{summary['num_skipped']} of {total} audio files failed to decode" in message, message
    assert "`--max-failure-fraction 0.17` on train, evaluate and export" in message
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("verb", ["train", "evaluate", "export"])
def test_every_verb_that_decodes_a_dataset_takes_the_limit(tmp_path, verb):
    argv = {
        "train": ["train", str(tmp_path), "--out", str(tmp_path / "run")],
        "evaluate": ["evaluate", str(tmp_path), "--data", str(tmp_path)],
        "export": ["export", str(tmp_path), "--out", str(tmp_path / "m.tflite"), "--format", "tflite"],
    }[verb]
    args = cli_main.build_parser().parse_args([*argv, "--max-failure-fraction", "0.5"])
    assert args.max_failure_fraction == 0.5
    if verb == "train":
        assert resolve_config(args).max_failure_fraction == 0.5


# -- §5 Ctrl-C -----------------------------------------------------------------------------------------------
def test_ctrl_c_during_training_prints_one_line_and_exits_130(tones, tmp_path):
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "audio_transfer", "train", str(tones), "--out", str(run_dir)]
    python_path = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(python_path)}
    process = subprocess.Popen(
        # head: mlp trains in epochs (auto may choose the linear head, fitted in one step)
        [*command, "--epochs", "100000", "--set", "head=mlp"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    seen = ""
    while "Epoch 3/" not in seen:  # Keras's epoch lines: training is under way
        line = process.stderr.readline()
        assert line, f"train ended before training: {seen}"
        seen += line
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == EXIT_INTERRUPTED and out == ""
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().splitlines()[-1] == (
        f"ERROR audio_transfer: Interrupted; nothing written to {run_dir}. The training so far is kept: run "
        "the same command with --resume to continue it."
    )
    assert not run_dir.exists()
    assert list(tmp_path.glob(".run.*.tmp/checkpoint/head.json"))


def test_ctrl_c_says_which_output_may_be_partly_written(
    tmp_path, monkeypatch, capsys, restore_package_logger
):
    from audio_transfer.cli import info

    def write_then_interrupt(args):
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "half.json").write_text("{")
        raise KeyboardInterrupt

    monkeypatch.setattr(info, "run", write_then_interrupt)
    monkeypatch.setattr(info, "add_parser", _with_out(info.add_parser))
    assert cli_main.main(["info", str(tmp_path), "--out", str(tmp_path / "out")]) == EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"ERROR audio_transfer: Interrupted while writing {tmp_path / 'out'}: it may hold a partial result; "
        "run the command again to replace it."
    ]


def _with_out(add_parser):
    def add_parser_with_out(subparsers):
        parser = add_parser(subparsers)
        parser.add_argument("--out")
        return parser

    return add_parser_with_out


LAMBDA_BASE = {
    "module": "keras.layers",
    "class_name": "Lambda",
    "config": {
        "name": "payload",
        "function": {
            "class_name": "__lambda__",
            "config": {"code": "4wAAAAAAAAAAAAAAAAEAAAADAAAA", "defaults": None, "closure": None},
        },
    },
    "registered_name": None,
}
EVAL_BASE = {"module": "builtins", "class_name": "function", "config": "eval", "registered_name": "function"}


@pytest.mark.parametrize("base", [LAMBDA_BASE, EVAL_BASE], ids=["lambda", "eval"])
def test_a_task_file_holding_code_is_not_a_safe_model(hostile_run, tmp_path, tones, capsys, base):
    run_dir, _ = hostile_run
    with zipfile.ZipFile(run_dir / "model.keras") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["base"] = base
    members["config.json"] = json.dumps(config).encode()
    shutil.copytree(run_dir, tmp_path / "run")
    with zipfile.ZipFile(tmp_path / "run" / "model.keras", "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    assert cli_main.main(["predict", str(tmp_path / "run"), str(tones), "--json"]) == EXIT_USAGE
    result = _json(capsys)
    assert result["error"] == "ConfigError" and "is not a safe audio_transfer model" in result["message"]

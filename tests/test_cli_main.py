"""What every verb shares: --set, exit codes, progress on stderr, TensorFlow's start-up lines kept quiet."""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import platform
import re
import subprocess
import sys

import pytest
from conftest import REPO_ROOT, make_tone
from streaming_support import LABELS, save_run, write_wav

from audio_transfer.audio import save_audio
from audio_transfer.cli import main as cli_main
from audio_transfer.cli._progress_line import ProgressLine
from audio_transfer.cli.output import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_NO, EXIT_USAGE
from audio_transfer.cli.train import resolve_config
from audio_transfer.progress import progress_hook, track
from audio_transfer.training import TrainConfig

PACKAGE = REPO_ROOT / "audio_transfer"


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


# -- --set ---------------------------------------------------------------------------------------------------
def _train_args(tmp_path, *flags: str):
    settings = tmp_path / "settings.yaml"
    settings.write_text("epochs: 9\nseed: 3\ndropout: 0.1\nlearning_rate: 1e-3\n")
    argv = ["train", str(tmp_path), "--out", str(tmp_path / "run"), "--config", str(settings), *flags]
    return cli_main.build_parser().parse_args(argv)


def test_set_goes_over_the_config_file_and_under_the_flags(tmp_path):
    config = resolve_config(
        _train_args(
            tmp_path,
            "--set", "epochs=5", "--set", "dropout=0.25", "--set", "keywords=[up, down]",
            "--set", "max_failure_fraction=0.5", "--set", "weight_decay=1e-5", "--epochs", "4",
        )
    )  # fmt: skip
    assert config.epochs == 4  # the flag over --set
    assert (config.dropout, config.keywords, config.max_failure_fraction) == (0.25, ["up", "down"], 0.5)
    assert config.weight_decay == 1e-5  # read as YAML, floats as the config file reads them
    assert (config.seed, config.learning_rate) == (3, 1e-3)  # the file over the defaults


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("fine_tune_blok=1", "--set has unknown settings fine_tune_blok; known settings:"),
        ("dropout=2", "dropout must be a number in [0, 1), received 2"),
        ("max_failure_fraction=1.5", "max_failure_fraction must be a number in [0, 1], received 1.5"),
    ],
)
def test_set_is_checked_as_the_config_file_is(tmp_path, capsys, setting, message):
    code = cli_main.main(["train", str(tmp_path), "--out", str(tmp_path / "run"), "--set", setting, "--json"])
    result = _json(capsys)
    assert code == EXIT_USAGE and result["error"] == "ConfigError" and message in result["message"]


def test_set_without_an_equals_sign_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main(["train", str(tmp_path), "--out", str(tmp_path / "run"), "--set", "epochs"])
    assert exit_info.value.code == EXIT_USAGE
    assert "expected KEY=VALUE, received 'epochs'" in capsys.readouterr().err


def test_demo_takes_set_but_not_for_what_it_fixes(tmp_path, capsys):
    code = cli_main.main(["demo", "--out", str(tmp_path / "demo"), "--set", "task=classify", "--json"])
    assert code == EXIT_USAGE and "demo trains a keyword spotter" in _json(capsys)["message"]
    assert not (tmp_path / "demo").exists()


def _message_texts() -> list[tuple[str, str]]:
    """(file, text) of every string in the package, an f-string's literal parts joined."""
    texts = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.JoinedStr):
                parts = [v.value if isinstance(v, ast.Constant) else "{}" for v in node.values]
                texts.append((path.name, "".join(parts)))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                texts.append((path.name, node.value))
    return texts


def _accepted_flags() -> set[str]:
    parser = cli_main.build_parser()
    flags = set(parser._option_string_actions)
    (subparsers,) = [action for action in parser._actions if action.choices and "train" in action.choices]
    for sub in subparsers.choices.values():
        flags |= set(sub._option_string_actions)
    return flags


# Modules whose strings hold another program's flags (eSpeak NG's command line).
OTHER_PROGRAMS = {"espeak_command.py"}
# `audio-transfer embed` hands what follows `--` to Apache Beam: these files may name Beam's options.
BEAM_FILES = {"embed.py", "embed_pipeline.py"}


def _beam_flags() -> set[str]:
    """Every option string of Apache Beam's pipeline options (empty without Beam)."""
    try:
        from apache_beam.options.pipeline_options import PipelineOptions
    except ImportError:
        return set()
    parser, pending = argparse.ArgumentParser(), [PipelineOptions]
    while pending:
        options = pending.pop()
        pending += options.__subclasses__()
        if "_add_argparse_args" in vars(options):
            options._add_argparse_args(parser)
    return set(parser._option_string_actions)


def test_every_setting_or_flag_a_message_suggests_is_accepted():
    """Messages name settings as `--set name=value` with a TrainConfig field, and flags that a verb takes;
    advice such as "raise max_failure_fraction" alone names nothing the command line accepts."""
    fields = set(TrainConfig.__dataclass_fields__)
    flags = _accepted_flags()
    texts = _message_texts()
    suggested = {(f, name) for f, text in texts for name in re.findall(r"--set '?([a-z_]+)=", text)}
    assert suggested, "no message suggests --set: the pattern is stale"
    assert {(f, name) for f, name in suggested if name not in fields} == set()
    named_flags = {
        (f, flag)
        for f, text in texts
        if f not in OTHER_PROGRAMS
        for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]+", text)
    }
    assert ("verify.py", "--threshold-from") in named_flags, "the flag pattern is stale"
    beam_flags = _beam_flags()
    unknown = {(f, flag) for f, flag in named_flags if flag not in flags}
    # The pattern stops at "_": `--temp_location` is read as `--temp`.
    assert {
        (f, flag)
        for f, flag in unknown
        if not (f in BEAM_FILES and any(option.startswith(flag) for option in beam_flags))
    } == set()
    advice = re.compile(r"\b(?:raise|lower|increase|reduce|set)\s+(?:the\s+)?([a-z]+_[a-z_]+)\b")
    bare = {
        (f, m) for f, text in texts for m in advice.findall(text) if m in fields and f"--set {m}=" not in text
    }
    assert bare == set()


# -- exit codes ----------------------------------------------------------------------------------------------
def _failing_info(monkeypatch, error: Exception) -> None:
    def run(args):
        raise error

    monkeypatch.setattr("audio_transfer.cli.info.run", run)


def test_an_unexpected_exception_exits_3_with_one_line(tmp_path, monkeypatch, capsys):
    _failing_info(monkeypatch, TypeError("unsupported operand"))
    assert cli_main.main(["info", str(tmp_path)]) == EXIT_INTERNAL
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert "TypeError: unsupported operand" in line and "--verbose" in line
    assert captured.out == ""

    assert cli_main.main(["info", str(tmp_path), "--json"]) == EXIT_INTERNAL
    assert _json(capsys) == {"error": "TypeError", "message": "unsupported operand"}

    assert cli_main.main(["-v", "info", str(tmp_path)]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "TypeError: unsupported operand" in err


def test_file_system_errors_exit_2(tmp_path, monkeypatch, capsys):
    _failing_info(monkeypatch, PermissionError(13, "Permission denied", str(tmp_path / "out")))
    assert cli_main.main(["info", str(tmp_path), "--json"]) == EXIT_USAGE
    assert _json(capsys)["error"] == "PermissionError"


def test_ctrl_c_exits_130_without_a_traceback(tmp_path, monkeypatch, capsys):
    _failing_info(monkeypatch, KeyboardInterrupt())
    assert cli_main.main(["info", str(tmp_path)]) == EXIT_INTERRUPTED
    assert capsys.readouterr().err.splitlines() == ["ERROR audio_transfer: Interrupted; nothing written."]


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main(["train", "--no-such-flag"])
    assert exit_info.value.code == EXIT_USAGE
    assert cli_main.main([]) == EXIT_USAGE
    capsys.readouterr()


def test_detect_exits_1_when_no_keyword_is_detected(tmp_path, capsys):
    from audio_transfer.bases import load_base
    from audio_transfer.tasks import KeywordSpotter

    run_dir = save_run(KeywordSpotter(load_base("speech_embedding"), LABELS), tmp_path / "run")
    audio = write_wav(tmp_path / "quiet.wav", 0.01 * make_tone(duration_seconds=2.0))
    code = cli_main.main(["detect", str(run_dir), str(audio), "--threshold", "0.999999", "--json"])
    assert code == EXIT_NO and _json(capsys)["detections"] == []


# -- progress ------------------------------------------------------------------------------------------------
def test_track_reports_the_outermost_loop_only():
    events = []
    with progress_hook(lambda *event: events.append(event)):
        for _ in track(range(2), "outer"):
            list(track([1, 2, 3], "inner"))
    assert events == [
        ("outer", 0, 2, False),
        ("outer", 1, 2, False),
        ("outer", 2, 2, False),
        ("outer", 2, 2, True),
    ]
    assert list(track(range(3), "no hook")) == [0, 1, 2]


def test_a_loop_left_by_an_exception_does_not_silence_the_next():
    events = []
    with progress_hook(lambda *event: events.append(event)):
        with pytest.raises(ValueError):
            for _ in track(range(3), "failing"):
                raise ValueError
        list(track(range(1), "next"))
    assert ("next", 1, 1, True) in events


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_redraws_on_a_terminal(monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    line = ProgressLine()
    for done in range(3):
        line("Embedding clips", done, 2, False)
    line("Embedding clips", 2, 2, True)
    text = terminal.getvalue()
    assert text.startswith("\rEmbedding clips    0% (0/2)") and text.endswith("100% (2/2)\x1b[K\n")


def test_progress_is_one_line_per_stage_on_stderr_under_json(tmp_path, capsys):
    for index in range(3):
        save_audio(tmp_path / "yes" / f"s{index}_nohash_0.wav", make_tone(), sample_rate=16000)
    assert cli_main.main(["info", str(tmp_path), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["num_examples"] == 3
    assert captured.err.splitlines() == ["Decoding audio files..."]


# -- TensorFlow's start-up lines -----------------------------------------------------------------------------
NATIVE_NOISE = re.compile(r"oneDNN|cudart|cuInit|cuda drivers|This TensorFlow binary|absl::InitializeLog")


def _cli_stderr(*args: str) -> str:
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-m", "audio_transfer", *args, "bases", "--json"],
        capture_output=True, text=True, env=env, timeout=300, check=True,
    )  # fmt: skip
    assert json.loads(result.stdout)  # stdout is the result alone
    return result.stderr


def test_tensorflow_start_up_lines_only_with_verbose():
    assert NATIVE_NOISE.findall(_cli_stderr()) == []
    if platform.machine().lower() in ("x86_64", "amd64"):  # TensorFlow's x86 builds announce oneDNN
        assert "oneDNN" in _cli_stderr("--verbose")

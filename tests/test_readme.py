"""README.md says what the code does: its commands, its Python example, its tables."""

from __future__ import annotations

import json
import re

import pytest
import soundfile as sf
from audio_files import noise
from conftest import REPO_ROOT, make_tone

import audio_transfer
from audio_transfer.bases import list_bases
from audio_transfer.cli.bases import markdown_table
from audio_transfer.cli.main import COMMANDS, build_parser

README = (REPO_ROOT / "README.md").read_text()


def section(title: str) -> str:
    """The text of the ``## title`` section."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, flags=re.S | re.M)
    assert match, f"README has no section {title!r}"
    return match.group(1)


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def test_quickstart_is_the_two_commands():
    (block,) = code_blocks(section("Quickstart"), "bash")
    assert block.splitlines() == [
        "pip install -e . && audio-transfer demo",
        "pip install -e '.[dev]' && python -m pytest",
    ]


def test_bases_table_is_generated_from_list_bases():
    match = re.search(r"<!-- bases-table:[^\n]*-->\n(.*?)\n<!-- /bases-table -->", README, flags=re.S)
    assert match, "README lacks the generated bases table between its markers"
    assert match.group(1) == markdown_table(list_bases()), (
        "README's bases table is stale: replace it with the output of `audio-transfer bases --markdown`"
    )


def test_command_table_lists_every_verb():
    listed = re.findall(r"^\| `([a-z-]+)` \|", section("Command line"), flags=re.M)
    assert sorted(listed) == sorted(COMMANDS)


def test_command_line_flags_and_exit_codes_are_the_cli_s():
    from audio_transfer.cli import output

    text = section("Command line")
    parser = build_parser()
    (verbs,) = [action for action in parser._actions if action.choices and "train" in action.choices]
    accepted = set(parser._option_string_actions).union(
        *(sub._option_string_actions for sub in verbs.choices.values())
    )
    flags = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]+", text))
    assert {"--set", "--threshold-from", "--json"} <= flags and flags <= accepted
    codes = {output.EXIT_OK: "success", output.EXIT_NO: "the answer is no", output.EXIT_USAGE: "usage"}
    codes[output.EXIT_INTERNAL] = "internal failure"
    for code, meaning in codes.items():
        assert re.search(rf"\b{code} [^;]*{meaning}", text), (code, meaning)


def test_examples_table_lists_every_script():
    listed = re.findall(r"^\| `([a-z_]+\.sh) ", section("Examples"), flags=re.M)
    scripts = sorted(p.name for p in (REPO_ROOT / "examples").glob("*.sh") if not p.name.startswith("_"))
    assert sorted(listed) == scripts


def python_examples() -> list[str]:
    """The Python section's two examples: the parts by hand, then ``train_run`` → ``export_run``."""
    blocks = code_blocks(section("Python"), "python")
    assert len(blocks) == 2
    return blocks


@pytest.mark.parametrize("index", [0, 1])
def test_python_examples_import_public_names(index):
    code = python_examples()[index]
    imported = {
        name.strip()
        for names in re.findall(r"^from audio_transfer import (.+)$", code, flags=re.M)
        for name in names.split(",")
    }
    assert imported and imported <= set(audio_transfer.__all__)
    assert len(code.strip().splitlines()) <= 12


def test_python_example_runs(tmp_path, monkeypatch):
    """The README's example, on two tone "words" instead of Speech Commands and with one epoch."""
    data = tmp_path / "speech_commands"
    for word, frequency in (("yes", 400.0), ("no", 900.0), ("up", 1600.0)):
        for index in range(3):
            path = data / word / f"s{index}_nohash_0.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, make_tone(frequency_hz=frequency + 20 * index), 16000)
    (data / "_background_noise_").mkdir()
    sf.write(data / "_background_noise_" / "noise.wav", noise(duration_seconds=2.0), 16000)
    code = python_examples()[0]
    assert "epochs=30" in code
    monkeypatch.chdir(tmp_path)
    exec(compile(code.replace("epochs=30", "epochs=1"), "README.md", "exec"), {})
    assert (tmp_path / "kws.tflite").stat().st_size > 100_000


def test_python_run_example_trains_and_exports_a_run(tmp_path, monkeypatch, capsys):
    """The README's train_run → export_run example, on two tone "words" from 12 speakers and one epoch: the
    int8 file is calibrated and compared on the run's own recorded clips."""
    data = tmp_path / "speech_commands"
    for word, frequency in (("yes", 400.0), ("no", 900.0)):
        for speaker in range(12):
            path = data / word / f"s{speaker}_nohash_0.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, make_tone(frequency_hz=frequency + 10 * speaker), 16000)
    sf.write(tmp_path / "clip.wav", make_tone(frequency_hz=400.0), 16000)
    code = python_examples()[1]
    assert "epochs=30" in code
    monkeypatch.chdir(tmp_path)
    exec(compile(code.replace("epochs=30", "epochs=1"), "README.md", "exec"), {})
    assert (tmp_path / "runs" / "kws" / "splits.csv").is_file()
    report = json.loads((tmp_path / "kws_int8.tflite.report.json").read_text())
    held_out = [
        line for line in (tmp_path / "runs/kws/splits.csv").read_text().splitlines() if ",validation," in line
    ]
    assert report["num_clips"] == len(held_out) > 0
    assert "agreement" in capsys.readouterr().out


@pytest.mark.parametrize("name", audio_transfer.__all__)
def test_public_names_have_docstrings(name):
    value = getattr(audio_transfer, name)
    if name != "__version__":
        assert (value.__doc__ or "").strip(), f"audio_transfer.{name} has no docstring"

"""A run folder is a transaction (issue 17, items 1-4): written whole or not at all, one writer at a time,
nothing of an older run surviving a retrain, and outputs checked before any work."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
from tiny_conv_base import tiny_base

from audio_transfer.cli.main import main
from audio_transfer.errors import OutputError
from audio_transfer.tasks import KeywordSpotter
from audio_transfer.training import RunFolder, RunLock, TrainConfig

pytestmark = pytest.mark.usefixtures("restore_package_logger")


@pytest.fixture(scope="module")
def task():
    return KeywordSpotter(tiny_base(), ["no", "yes"])


def write_run(path, task, labels):
    with RunFolder.staged(path) as folder:
        folder.write(task=task, labels=labels, config=TrainConfig(task="kws", clip_seconds=1.0))


def snapshot(path) -> dict[str, bytes]:
    return {item.name: item.read_bytes() for item in sorted(path.iterdir())}


def test_a_retrain_replaces_the_run_whole_and_drops_the_files_of_the_older_run(tmp_path, task):
    run = tmp_path / "run"
    write_run(run, task, ["no", "yes"])
    (run / "streaming.json").write_text('{"threshold": 0.9}')  # chosen for the older model
    write_run(run, task, ["down", "up"])
    assert (run / "labels.txt").read_text() == "down\nup\n"
    assert not (run / "streaming.json").exists()
    assert sorted(item.name for item in tmp_path.iterdir()) == [".run.lock", "run"]


def test_a_write_that_fails_at_any_rename_leaves_the_older_run_as_it_was(tmp_path, task, monkeypatch):
    run = tmp_path / "run"
    write_run(run, task, ["no", "yes"])
    before = snapshot(run)
    real_replace = os.replace
    calls = []

    def counting(source, target):
        calls.append(target)
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", counting)
    write_run(tmp_path / "count", task, ["down", "up"])
    renames = len(calls)
    assert renames >= 4  # model, labels, config, and the folder itself

    for failing in range(renames):
        seen = []

        def interrupted(source, target, failing=failing, seen=seen):
            seen.append(target)
            if len(seen) == failing + 1:
                raise KeyboardInterrupt  # as if the process were stopped at this rename
            return real_replace(source, target)

        monkeypatch.setattr(os, "replace", interrupted)
        with pytest.raises(KeyboardInterrupt):
            write_run(run, task, ["down", "up"])
        monkeypatch.setattr(os, "replace", real_replace)
        assert snapshot(run) == before, f"rename {failing + 1} of {renames} left a mix"
        assert not [item for item in tmp_path.iterdir() if item.name.startswith(".run.") and item.is_dir()]


def test_a_partial_run_a_killed_writer_left_is_reported_and_removed(tmp_path, task, caplog):
    partial = tmp_path / ".run.k1ll3d.tmp"
    partial.mkdir()
    (partial / "model.keras").write_bytes(b"half a model")
    with caplog.at_level(logging.WARNING, logger="audio_transfer"):
        write_run(tmp_path / "run", task, ["no", "yes"])
    assert not partial.exists()
    assert any("partial run" in record.getMessage() for record in caplog.records)


def test_a_second_writer_is_refused_with_the_holders_pid_and_a_dead_holders_lock_is_taken_over(
    tmp_path, task
):
    run = tmp_path / "run"
    script = (
        "import sys, time\n"
        "from audio_transfer.training.run_lock import RunLock\n"
        "with RunLock(sys.argv[1]):\n"
        "    print('locked', flush=True)\n"
        "    time.sleep(120)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputError, match=rf"pid {holder.pid}\).*choose another --out"):
            write_run(run, task, ["no", "yes"])
    finally:
        holder.kill()
        holder.wait(timeout=30)
    write_run(run, task, ["no", "yes"])  # the killed holder's lock is free again
    assert (run / "model.keras").is_file()


def test_the_cli_refuses_a_run_folder_another_train_is_writing(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    with RunLock(tmp_path / "run"):
        code = main(["train", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--json"])
    assert code == 2
    assert f"pid {os.getpid()}" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["under a file", "an existing file", "a folder that is not a run", "/proc"])
def test_an_output_train_cannot_write_is_an_error_before_any_work(tmp_path, monkeypatch, capsys, case):
    (tmp_path / "a_file.txt").write_text("not a folder")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    out = {
        "under a file": tmp_path / "a_file.txt" / "run",
        "an existing file": tmp_path / "a_file.txt",
        "a folder that is not a run": tmp_path / "notes",
        "/proc": "/proc/audio_transfer_run/run",
    }[case]

    def no_training(*args, **kwargs):
        raise AssertionError("training started before the output was checked")

    monkeypatch.setattr("audio_transfer.training.training_run._train", no_training)
    code = main(["train", str(tmp_path), "--out", str(out), "--json"])
    assert code == 2
    assert str(out) in capsys.readouterr().err
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"
    assert (tmp_path / "a_file.txt").read_text() == "not a folder"


def test_evaluate_synth_and_the_cache_folder_check_their_outputs_first(tmp_path, capsys):
    (tmp_path / "a_file.txt").write_text("not a folder")
    blocked = tmp_path / "a_file.txt" / "out"
    assert main(["synth", "--words", "yes", "--out", str(blocked), "--json"]) == 2
    assert main(["evaluate", str(tmp_path), "--data", str(tmp_path), "--out", str(blocked), "--json"]) == 2
    code = main(
        ["train", str(tmp_path), "--out", str(tmp_path / "run"), "--cache-dir", str(blocked), "--json"]
    )
    assert code == 2
    assert capsys.readouterr().err.count(f"Cannot write {blocked}:") == 3
    assert not (tmp_path / "run").exists()

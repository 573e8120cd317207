"""Training under tf.distribute: TF_CONFIG validation, the `auto` choice, and two workers on loopback."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import pytest
import tensorflow as tf
from audio_files import write_pitch_classes
from conftest import REPO_ROOT
from tiny_conv_base import tiny_base

from audio_transfer.cli.main import build_parser, main
from audio_transfer.cli.train import resolve_config
from audio_transfer.errors import ConfigError
from audio_transfer.training import EpochCheckpoint, TrainConfig, train_run
from audio_transfer.training.distribution import (
    cluster_config,
    distribution_strategy,
    is_chief,
    num_workers,
    strategy_name,
)
from audio_transfer.training.run_folder import latest_checkpoint

# `python -m audio_transfer` with the tests' tiny base registered (its .keras file names the class).
RUN_CLI = (
    "import runpy, tiny_conv_base; runpy.run_module('audio_transfer', run_name='__main__', alter_sys=True)"
)
WORKERS_TIMEOUT_SECONDS = 240
RUN_FOLDER_FILES = ("model.keras", "labels.txt", "config.yaml", "history.csv", "metrics.json", "splits.csv")


def _tf_config(index: int, workers: list[str] | None = None, **changes) -> dict[str, str]:
    config = {"cluster": {"worker": workers or ["127.0.0.1:2222", "127.0.0.1:2223"]}}
    config["task"] = {"type": "worker", "index": index}
    config.update(changes)
    return {"TF_CONFIG": json.dumps(config)}


# -- TF_CONFIG and the choice of strategy -------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, names",
    [
        ('{"cluster": ', ["not valid JSON", '"cluster"']),
        ('["worker"]', ["must be a JSON object"]),
        ('{"task": {"type": "worker", "index": 0}}', ["no 'cluster'"]),
        ('{"cluster": {"worker": ["a:1", "b:1"]}}', ["no 'task'", "'index'"]),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 2}}', ["index 2", "0 to 0"]),
        ('{"cluster": {"worker": ["b"]}, "task": {"type": "worker", "index": 0}}', ["'b' has no port"]),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}', ["task type 'chief'"]),
        ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}', ["job 'ps'"]),
        ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', ["non-empty list"]),
    ],
)  # fmt: skip
def test_a_malformed_tf_config_names_the_key_and_what_to_do(text, names):
    with pytest.raises(ConfigError, match="TF_CONFIG") as caught:
        cluster_config({"TF_CONFIG": text})
    for name in names:
        assert name in str(caught.value)


def test_tf_config_is_read_when_set_and_well_formed():
    assert cluster_config({}) is None and cluster_config({"TF_CONFIG": " "}) is None
    assert cluster_config(_tf_config(1))["task"] == {"type": "worker", "index": 1}
    assert num_workers(_tf_config(0)) == 2 and num_workers({}) == 1
    chief = _tf_config(0, cluster={"chief": ["a:1"], "worker": ["b:1", "c:1"]})
    assert num_workers(chief) == 3


def test_auto_chooses_multi_worker_then_mirrored_then_one_device():
    assert strategy_name("auto", environ=_tf_config(0), num_gpus=4) == "multi-worker"
    assert strategy_name("auto", environ={}, num_gpus=2) == "mirrored"
    assert strategy_name("auto", environ={}, num_gpus=1) == "one-device"
    assert strategy_name("auto", environ=_tf_config(0, ["a:1"]), num_gpus=0) == "one-device"  # one process
    assert strategy_name("mirrored", environ=_tf_config(1), num_gpus=0) == "mirrored"  # as asked
    with pytest.raises(ConfigError, match="TF_CONFIG, which is not set"):
        strategy_name("multi-worker", environ={})
    with pytest.raises(ConfigError, match="strategy must be one of auto, one-device"):
        strategy_name("parameter-server", environ={})


def test_each_name_gives_its_strategy():
    assert distribution_strategy("one-device") is tf.distribute.get_strategy()  # the default one
    assert isinstance(distribution_strategy("mirrored"), tf.distribute.MirroredStrategy)
    assert distribution_strategy("mirrored") is distribution_strategy("mirrored")  # one per process


def test_only_the_chief_of_a_multi_worker_run_writes():
    assert is_chief("auto", environ={})
    assert is_chief("auto", environ=_tf_config(0)) and not is_chief("auto", environ=_tf_config(1))
    assert is_chief("one-device", environ=_tf_config(1))  # a single-process strategy always writes
    cluster = {"chief": ["a:1"], "worker": ["b:1"]}
    assert is_chief(
        environ={"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "chief", "index": 0}})}
    )
    assert not is_chief(environ=_tf_config(0, cluster=cluster))  # worker 0 is not the chief when one is named


def test_the_strategy_is_a_setting_and_a_flag(tmp_path):
    with pytest.raises(ConfigError, match="strategy must be one of"):
        TrainConfig(strategy="tpu")
    args = build_parser().parse_args(["train", str(tmp_path), "--out", str(tmp_path / "run")])
    assert resolve_config(args).strategy == "auto"
    args = build_parser().parse_args(["train", str(tmp_path), "--out", "x", "--strategy", "multi-worker"])
    assert resolve_config(args).strategy == "multi-worker"
    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
        build_parser().parse_args(["train", str(tmp_path), "--out", "x", "--strategy", "tpu"])


def test_a_worker_finds_the_chiefs_interrupted_run_without_touching_it(tmp_path):
    assert latest_checkpoint(tmp_path / "run") is None
    checkpoint = tmp_path / ".run.123.abc.tmp" / "checkpoint"
    checkpoint.mkdir(parents=True)
    (tmp_path / ".run.456.def.old").mkdir()
    assert latest_checkpoint(tmp_path / "run") == checkpoint
    assert sorted(item.name for item in tmp_path.iterdir()) == [".run.123.abc.tmp", ".run.456.def.old"]


# -- two workers on loopback --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("distributed")
    write_pitch_classes(root / "tones", {"low": 300.0, "mid": 1000.0, "high": 3000.0})
    tiny_base().save(root / "tiny_base.keras")
    return root


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _train_argv(workspace, out, *flags: str) -> list[str]:
    return [
        "train",
        str(workspace / "tones"),
        "--base",
        str(workspace / "tiny_base.keras"),
        "--out",
        str(out),
        "--set",
        "augment_copies=1",
        "--set",
        "min_steps_per_epoch=8",
        "--set",
        "head=mlp",
        "--json",
        *flags,
    ]  # fmt: skip (head: mlp, the head trained in epochs that the workers must keep in step)


def _two_workers(workspace, tmp_path, *flags: str, outs=None, exit_code: int = 0) -> list[dict]:
    """Run `train --strategy multi-worker` as two processes on loopback, into ``outs`` (default
    ``tmp_path / "run0"`` and ``"run1"``); both must exit with ``exit_code`` in time. Returns their JSON
    results, chief first."""
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    python_path = [str(REPO_ROOT), str(REPO_ROOT / "tests"), *filter(None, [os.environ.get("PYTHONPATH")])]
    with contextlib.ExitStack() as stack:
        # Output to unnamed temporary files: pipes read one after the other could fill and stall a worker.
        logs = [[stack.enter_context(tempfile.TemporaryFile("w+")) for _ in range(2)] for _ in range(2)]
        processes = []
        for index, (stdout, stderr) in enumerate(logs):
            env = {**os.environ, **_tf_config(index, workers), "PYTHONPATH": os.pathsep.join(python_path)}
            env["CUDA_VISIBLE_DEVICES"] = ""  # CPU only
            out = tmp_path / f"run{index}" if outs is None else outs[index]
            argv = [
                sys.executable,
                "-c",
                RUN_CLI,
                *_train_argv(workspace, out, "--strategy", "multi-worker", *flags),
            ]
            processes.append(subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=env))
        deadline = time.monotonic() + WORKERS_TIMEOUT_SECONDS
        timed_out = False
        try:
            for process in processes:
                try:
                    process.wait(timeout=max(deadline - time.monotonic(), 1))
                except subprocess.TimeoutExpired:
                    timed_out = True
        finally:
            for process in processes:  # both go, whichever hung
                if process.poll() is None:
                    process.kill()
                    process.wait()
        texts = []
        for stdout, stderr in logs:
            stdout.seek(0)
            stderr.seek(0)
            texts.append((stdout.read(), stderr.read()))
    for process, (text, err) in zip(processes, texts, strict=True):
        tail = f"{text[-2000:]}\n{err[-3000:]}"
        assert not timed_out, f"the workers did not finish within {WORKERS_TIMEOUT_SECONDS} s: {tail}"
        assert process.returncode == exit_code, f"exit {process.returncode}: {tail}"
    return [json.loads(text) for text, _ in texts]


def _one_process(workspace, tmp_path, *flags: str) -> dict:
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main([*_train_argv(workspace, tmp_path / "single", "--strategy", "one-device", *flags)]) == 0
    return json.loads(stdout.getvalue())


def _history(run_dir) -> list[dict]:
    with open(run_dir / "history.csv", newline="") as stream:
        return list(csv.DictReader(stream))


def _check_two_workers_against_one_process(workspace, tmp_path, *flags: str) -> list[dict]:
    chief, worker = _two_workers(workspace, tmp_path, *flags)
    for name in RUN_FOLDER_FILES:
        assert (tmp_path / "run0" / name).is_file(), name
    assert chief["run_dir"] == str(tmp_path / "run0")
    assert worker["run_dir"] is None and not (tmp_path / "run1").exists()
    assert not list(tmp_path.glob(".run1*"))  # nothing beside the worker's --out either
    # The workers trained in step: the same kept epochs, the same model, so the same evaluation.
    assert worker["best_epochs"] == chief["best_epochs"] and worker["metrics"] == chief["metrics"]

    single = _one_process(workspace, tmp_path, *flags)
    history, single_history = _history(tmp_path / "run0"), _history(tmp_path / "single")
    assert [(row["stage"], row["epoch"]) for row in history] == [
        (row["stage"], row["epoch"]) for row in single_history
    ]
    # The distributed run is the same training with other dropout draws (each replica draws its own) and
    # another summation order: the same epochs end close, not equal. On these separable tones a model that
    # trained wrongly (a worker on its own, gradients not averaged) ends far off in validation loss.
    assert abs(float(history[-1]["val_loss"]) - float(single_history[-1]["val_loss"])) < 0.05
    # One validation clip of the few held out is the noise of a different dropout draw.
    clips = chief["num_validation_clips"]
    assert abs(chief["metrics"]["accuracy"] - single["metrics"]["accuracy"]) <= 1 / clips + 1e-9
    return history


def test_two_workers_train_the_head_as_one_process_does(workspace, tmp_path, restore_package_logger):
    history = _check_two_workers_against_one_process(workspace, tmp_path, "--epochs", "5")
    assert {row["stage"] for row in history} == {"head"}


@pytest.mark.slow
def test_two_workers_fine_tune_the_base_as_one_process_does(workspace, tmp_path, restore_package_logger):
    history = _check_two_workers_against_one_process(
        workspace, tmp_path, "--epochs", "3", "--fine-tune-blocks", "1", "--set", "fine_tune_epochs=2"
    )
    assert [row["stage"] for row in history].count("fine_tune") == 2


def _interrupted_run(workspace, out, monkeypatch, *flags: str) -> None:
    """Train into ``out`` in this process with the workers' settings, interrupted after head epoch 2."""
    save = EpochCheckpoint.on_epoch_end

    def save_then_stop(self, index, logs=None):
        save(self, index, logs)
        if index + 1 == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(EpochCheckpoint, "on_epoch_end", save_then_stop)
    config = resolve_config(build_parser().parse_args(_train_argv(workspace, out, *flags)))
    with pytest.raises(KeyboardInterrupt):
        train_run(config, out, verbose=0)
    monkeypatch.undo()
    assert latest_checkpoint(out) is not None and not out.exists()


@pytest.mark.slow
def test_two_workers_resume_the_chiefs_interrupted_run(workspace, tmp_path, monkeypatch):
    out = tmp_path / "shared" / "run"  # the chief's --out, which every worker sees on a shared file system
    _interrupted_run(workspace, out, monkeypatch, "--epochs", "4")
    chief, worker = _two_workers(workspace, tmp_path, "--epochs", "4", "--resume", outs=[out, out])
    assert worker["metrics"] == chief["metrics"] and chief["run_dir"] == str(out)
    assert [(row["stage"], row["epoch"]) for row in _history(out)] == [("head", str(n)) for n in range(1, 5)]
    assert latest_checkpoint(out) is None  # the chief's checkpoints went with its staging folder


@pytest.mark.slow
def test_workers_that_would_resume_from_different_epochs_refuse_to_train(workspace, tmp_path, monkeypatch):
    out = tmp_path / "run0"
    _interrupted_run(workspace, out, monkeypatch, "--epochs", "4")
    results = _two_workers(workspace, tmp_path, "--epochs", "4", "--resume", exit_code=2)
    for result in results:
        assert "The workers would resume stage head from different checkpoints" in result["message"]
        assert "give each the chief's --out on a shared file system" in result["message"]

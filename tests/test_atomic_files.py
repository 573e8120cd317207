"""Atomic writes: PATH is the old output or the new one, never a partial one; refusals are typed errors."""

from __future__ import annotations

import json
import os

import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure

from audio_transfer.atomic_files import (
    atomic_directory,
    atomic_file,
    atomic_write,
    check_writable,
    write_bytes,
    write_figure,
    write_json,
    write_text,
)
from audio_transfer.errors import ConfigError, ExportError, ExportOutputError, OutputError


def test_file_is_replaced_whole(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"old")
    assert write_bytes(path, b"new") == path
    assert path.read_bytes() == b"new"
    assert [entry.name for entry in tmp_path.iterdir()] == ["model.tflite"]


def test_new_file_is_readable_by_others_and_a_replaced_one_keeps_its_mode(tmp_path):
    new = write_text(tmp_path / "labels.txt", "yes\n")
    assert new.stat().st_mode & 0o777 == 0o644
    os.chmod(new, 0o600)
    write_text(new, "no\n")
    assert new.stat().st_mode & 0o777 == 0o600 and new.read_text() == "no\n"


@pytest.mark.parametrize(
    ("target", "failure", "expected"),
    [
        ("tempfile.mkstemp", PermissionError(13, "Permission denied"), OutputError),
        ("os.replace", OSError(28, "No space left on device"), OutputError),
        ("os.fsync", KeyboardInterrupt(), KeyboardInterrupt),
    ],
)
def test_failed_or_interrupted_file_write_keeps_the_old_file(
    tmp_path, monkeypatch, target, failure, expected
):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"old")

    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(target, fail)
    with pytest.raises(expected) as raised:
        write_bytes(path, b"new")
    if expected is OutputError:
        assert str(path) in str(raised.value) and "choose another path" in str(raised.value)
    assert path.read_bytes() == b"old"
    assert [entry.name for entry in tmp_path.iterdir()] == ["model.tflite"]


def test_error_of_the_caller_kind_is_raised_and_is_still_an_os_error(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", fail)
    with pytest.raises(ExportError, match="No space left") as raised:
        write_bytes(tmp_path / "model.tflite", b"new", error=ExportOutputError)
    assert isinstance(raised.value, OSError)


def test_failing_writer_keeps_the_old_file(tmp_path):
    path = atomic_write(tmp_path / "metrics.json", lambda file: file.write(b"old"))

    def fail(file):
        file.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, fail)
    assert path.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [path]


def test_json_is_strict_with_numpy_values_and_names_what_it_cannot_write(tmp_path):
    path = write_json(tmp_path / "r.json", {"n": np.int64(3), "x": float("nan"), "rows": np.eye(2)})
    assert json.loads(path.read_text()) == {"n": 3, "x": None, "rows": [[1.0, 0.0], [0.0, 1.0]]}
    with pytest.raises(ConfigError, match=r"settings\['bad'\] holds a object"):
        write_json(tmp_path / "bad.json", {"bad": object()}, name="settings")
    assert not (tmp_path / "bad.json").exists()


def test_figure_is_written_as_png(tmp_path):
    figure = Figure(figsize=(2, 1))
    figure.add_subplot().plot([0, 1])
    path = write_figure(tmp_path / "curve.png", figure)
    assert matplotlib.image.imread(path).shape[:2] == (100, 200)


def test_named_temporary_file_replaces_the_path_only_on_success(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_file(path) as temporary:
        assert temporary.parent == tmp_path and temporary.suffix == ".keras"
        temporary.write_bytes(b"half")
        raise KeyboardInterrupt
    assert path.read_bytes() == b"old" and list(tmp_path.iterdir()) == [path]
    with atomic_file(path) as temporary:
        temporary.write_bytes(b"new")
    assert path.read_bytes() == b"new" and list(tmp_path.iterdir()) == [path]


def test_directory_is_replaced_whole(tmp_path):
    path = tmp_path / "saved_model"
    path.mkdir()
    (path / "old.pb").write_bytes(b"old")
    with atomic_directory(path) as directory:
        assert not path.joinpath("new.pb").exists()
        (directory / "new.pb").write_bytes(b"new")
    assert [entry.name for entry in path.iterdir()] == ["new.pb"]
    assert [entry.name for entry in tmp_path.iterdir()] == ["saved_model"]
    assert path.stat().st_mode & 0o777 == 0o755


def test_error_inside_the_directory_block_keeps_the_old_directory(tmp_path):
    path = tmp_path / "saved_model"
    path.mkdir()
    (path / "old.pb").write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_directory(path) as directory:
        (directory / "half.pb").write_bytes(b"half")
        raise KeyboardInterrupt
    assert [entry.name for entry in path.iterdir()] == ["old.pb"]
    assert [entry.name for entry in tmp_path.iterdir()] == ["saved_model"]


def test_failed_directory_rename_restores_the_old_directory(tmp_path, monkeypatch):
    path = tmp_path / "saved_model"
    path.mkdir()
    (path / "old.pb").write_bytes(b"old")
    real_replace = os.replace

    def replace(source, target):
        if str(source).endswith(".tmp"):
            raise OSError(28, "No space left on device")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with (
        pytest.raises(ExportError, match="No space left"),
        atomic_directory(path, error=ExportOutputError) as directory,
    ):
        (directory / "new.pb").write_bytes(b"new")
    assert [entry.name for entry in path.iterdir()] == ["old.pb"]
    assert [entry.name for entry in tmp_path.iterdir()] == ["saved_model"]


def test_output_path_checks(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(OutputError, match="does not exist"):
        check_writable(tmp_path / "absent" / "model.tflite", directory=False)
    with pytest.raises(OutputError, match="is a file"):
        check_writable(tmp_path / "file", directory=True)
    with pytest.raises(ExportError, match="is a directory"):
        check_writable(tmp_path, directory=False, error=ExportOutputError)


def test_keras_saves_through_a_named_temporary_file(tmp_path):
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with atomic_file(tmp_path / "model.keras") as temporary:
        model.save(temporary)
    assert [entry.name for entry in tmp_path.iterdir()] == ["model.keras"]
    assert keras.saving.load_model(tmp_path / "model.keras").count_params() == 8

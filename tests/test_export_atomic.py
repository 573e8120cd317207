"""Atomic writes of export outputs: PATH is the old output or the new one, never a partial one."""

from __future__ import annotations

import os

import pytest

from audio_transfer.errors import ExportError
from audio_transfer.export._atomic import check_output_path, directory_atomic, write_bytes_atomic


def test_file_is_replaced_whole(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"old")
    write_bytes_atomic(path, b"new")
    assert path.read_bytes() == b"new"
    assert [entry.name for entry in tmp_path.iterdir()] == ["model.tflite"]


@pytest.mark.parametrize(
    ("target", "failure", "expected"),
    [
        ("tempfile.mkstemp", PermissionError(13, "Permission denied"), ExportError),
        ("os.replace", OSError(28, "No space left on device"), ExportError),
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
    with pytest.raises(expected):
        write_bytes_atomic(path, b"new")
    assert path.read_bytes() == b"old"
    assert [entry.name for entry in tmp_path.iterdir()] == ["model.tflite"]


def test_directory_is_replaced_whole(tmp_path):
    path = tmp_path / "saved_model"
    path.mkdir()
    (path / "old.pb").write_bytes(b"old")
    with directory_atomic(path) as directory:
        assert not path.joinpath("new.pb").exists()
        (directory / "new.pb").write_bytes(b"new")
    assert [entry.name for entry in path.iterdir()] == ["new.pb"]
    assert [entry.name for entry in tmp_path.iterdir()] == ["saved_model"]
    assert path.stat().st_mode & 0o777 == 0o755


def test_error_inside_the_directory_block_keeps_the_old_directory(tmp_path):
    path = tmp_path / "saved_model"
    path.mkdir()
    (path / "old.pb").write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), directory_atomic(path) as directory:
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
    with pytest.raises(ExportError, match="No space left"), directory_atomic(path) as directory:
        (directory / "new.pb").write_bytes(b"new")
    assert [entry.name for entry in path.iterdir()] == ["old.pb"]
    assert [entry.name for entry in tmp_path.iterdir()] == ["saved_model"]


def test_output_path_checks(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(ExportError, match="does not exist"):
        check_output_path(tmp_path / "absent" / "model.tflite", directory=False)
    with pytest.raises(ExportError, match="is a file"):
        check_output_path(tmp_path / "file", directory=True)
    with pytest.raises(ExportError, match="is a directory"):
        check_output_path(tmp_path, directory=False)

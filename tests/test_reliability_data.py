"""Reliability of the data paths (issue 17): poisoned embedding caches, temporary files left by killed
exports, and detection over long audio in bounded memory."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from export_support import LABELS, SAMPLE_RATE, build_classifier
from tiny_conv_base import tiny_base

from audio_transfer.atomic_files import atomic_write, remove_stale_temporaries
from audio_transfer.export import export_saved_model, export_tflite
from audio_transfer.training import EmbeddingCache

CACHE_SETTINGS = {"clip_seconds": 0.5}


# -- 7. a poisoned embedding cache -------------------------------------------------------------------------
def _with_checksum(frames: np.ndarray) -> bytes:
    """An entry file as the cache writes one: the .npy bytes, then their SHA-256 digest."""
    buffer = io.BytesIO()
    np.save(buffer, frames, allow_pickle=False)
    return buffer.getvalue() + hashlib.sha256(buffer.getvalue()).digest()


def _nan_entry(content: bytes, frames: np.ndarray) -> bytes:
    return _with_checksum(np.full_like(frames, np.nan))


def _wrong_shape_entry(content: bytes, frames: np.ndarray) -> bytes:
    return _with_checksum(np.zeros((3, 3), np.float32))


def _wrong_dtype_entry(content: bytes, frames: np.ndarray) -> bytes:
    return _with_checksum(frames.astype(np.float64))


def _plain_nan_npy(content: bytes, frames: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.full_like(frames, np.nan), allow_pickle=False)
    return buffer.getvalue()


def _truncated(content: bytes, frames: np.ndarray) -> bytes:
    return content[: len(content) // 2]


def _flipped_bytes(content: bytes, frames: np.ndarray) -> bytes:
    altered = bytearray(content)
    middle = len(altered) - 64  # inside the float data, before any trailer
    altered[middle] ^= 0x40
    altered[middle + 1] ^= 0x01
    return bytes(altered)


def _package_warnings(caplog) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.WARNING and record.name.startswith("audio_transfer")
    ]


@pytest.mark.parametrize(
    "poison",
    [_nan_entry, _wrong_shape_entry, _wrong_dtype_entry, _plain_nan_npy, _truncated, _flipped_bytes],
)
def test_a_poisoned_cache_entry_is_recomputed_with_a_warning_naming_it(tmp_path, rng, caplog, poison):
    waveforms = rng.uniform(-0.5, 0.5, size=(3, 8000)).astype(np.float32)
    keys = ["a", "b", "c"]
    base = tiny_base()
    clean = EmbeddingCache(base, cache_dir=tmp_path, settings=CACHE_SETTINGS).embed(waveforms, keys=keys)
    entries = sorted(tmp_path.rglob("*.npy"))
    assert len(entries) == 3
    bad = entries[1]
    frames_of = {
        path: row for path in entries for row in clean if np.array_equal(np.load(path), row)
    }  # which clip's frames each file holds
    bad.write_bytes(poison(bad.read_bytes(), frames_of[bad]))

    with caplog.at_level(logging.WARNING, logger="audio_transfer"):
        cache = EmbeddingCache(base, cache_dir=tmp_path, settings=CACHE_SETTINGS)
        result = cache.embed(waveforms, keys=keys)
    np.testing.assert_allclose(result, clean, rtol=1e-6)
    assert (cache.hits, cache.misses) == (2, 1)
    warnings = _package_warnings(caplog)
    assert len(warnings) == 1 and str(bad) in warnings[0]

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="audio_transfer"):
        rewritten = EmbeddingCache(base, cache_dir=tmp_path, settings=CACHE_SETTINGS)
        np.testing.assert_allclose(rewritten.embed(waveforms, keys=keys), clean, rtol=1e-6)
    assert (rewritten.hits, rewritten.misses) == (3, 0)
    assert not _package_warnings(caplog)


# -- 9. temporary files of killed writers ------------------------------------------------------------------
@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _leave_killed_writer_temporaries(folder, name, pid):
    """What a writer killed mid-export leaves beside ``folder / name``: a temporary file and folder."""
    (folder / f".{name}.{pid}.k3x_9a.tmp").write_bytes(b"half a flatbuffer")
    staged = folder / f".{name}.{pid}.q1w2e3.tmp"
    (staged / "variables").mkdir(parents=True)
    (staged / "saved_model.pb").write_bytes(b"half a SavedModel")
    return {entry.name for entry in folder.iterdir()}


def test_stale_temporaries_of_dead_writers_go_and_live_ones_stay(tmp_path, dead_pid):
    target = tmp_path / "model.tflite"
    stale = _leave_killed_writer_temporaries(tmp_path, target.name, dead_pid)
    live = tmp_path / f".model.tflite.{os.getpid()}.abc123.tmp"  # a concurrent writer, still running
    live.write_bytes(b"in progress")
    unnamed_recent = tmp_path / ".model.tflite.abc123.tmp"  # no pid: only its age tells
    unnamed_recent.write_bytes(b"")
    unnamed_old = tmp_path / ".model.tflite.zz9_8y.tmp"
    unnamed_old.write_bytes(b"")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(unnamed_old, (two_days_ago, two_days_ago))
    others = [tmp_path / f".other.tflite.{dead_pid}.abc123.tmp", tmp_path / "model.tflite.tmp"]
    for other in others:
        other.write_bytes(b"")

    removed = remove_stale_temporaries(target)
    assert {path.name for path in removed} == stale | {unnamed_old.name}
    remaining = {entry.name for entry in tmp_path.iterdir()}
    assert remaining == {live.name, unnamed_recent.name} | {other.name for other in others}


def test_the_next_atomic_write_cleans_what_a_killed_one_left(tmp_path, dead_pid):
    target = tmp_path / "metrics.json"
    _leave_killed_writer_temporaries(tmp_path, target.name, dead_pid)
    atomic_write(target, lambda file: file.write(b"{}"))
    assert [entry.name for entry in tmp_path.iterdir()] == ["metrics.json"]


@pytest.fixture
def system_temp(tmp_path, monkeypatch):
    """The system temporary folder, moved to an empty folder the test can watch."""
    folder = tmp_path / "system_temp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.mark.parametrize("format", ["tflite", "saved_model"])
def test_an_export_works_beside_its_target_and_cleans_a_killed_exports_leftovers(
    tmp_path, system_temp, dead_pid, monkeypatch, format
):
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    out = out_dir / ("model.tflite" if format == "tflite" else "saved_model")
    _leave_killed_writer_temporaries(out_dir, out.name, dead_pid)
    saves = []  # (SavedModel folder, folders in the system temporary folder), at each save
    real_save = tf.saved_model.save

    def watched_save(obj, export_dir, *args, **kwargs):
        saves.append((Path(export_dir), [entry for entry in system_temp.iterdir() if entry.is_dir()]))
        return real_save(obj, export_dir, *args, **kwargs)

    monkeypatch.setattr(tf.saved_model, "save", watched_save)
    export = export_tflite if format == "tflite" else export_saved_model
    export(build_classifier(), labels=LABELS, sample_rate=SAMPLE_RATE, out=out)
    assert saves
    for folder, in_system_temp in saves:
        assert folder.parent == out_dir and folder.name.startswith(f".{out.name}.{os.getpid()}.")
        assert in_system_temp == []  # (TensorFlow's autograph writes generated sources there: files)
    assert [entry.name for entry in out_dir.iterdir()] == [out.name]

"""Reliability of the data paths (issue 17): poisoned embedding caches, temporary files left by killed
exports, and detection over long audio in bounded memory."""

from __future__ import annotations

import hashlib
import io
import logging

import numpy as np
import pytest
from tiny_conv_base import tiny_base

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

"""Frame embeddings of a frozen base, computed once per clip and reused across epochs and runs."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from audio_transfer.atomic_files import atomic_write
from audio_transfer.bases.audio_base import AudioBase
from audio_transfer.checks import is_positive_int
from audio_transfer.errors import ConfigError, InputShapeError
from audio_transfer.progress import track

logger = logging.getLogger(__name__)

# The on-disk layout's version, part of every entry's identity: entries of another layout are never read.
_LAYOUT = "npy+sha256"
_DIGEST_BYTES = hashlib.sha256().digest_size


class EmbeddingCache:
    """Runs a frozen base on clips once and keeps the frame embeddings, in memory and optionally on disk.

    Clips are identified by caller-given keys (:meth:`file_key` makes one from a file's path, size and
    modification time). An entry's identity also covers the clip's length in samples, the base (its
    configuration and every weight, so a fine-tuned base never reuses stale embeddings) and ``settings``
    (sample rate, clip length: whatever shaped the waveform), hashed together; on disk an entry is
    ``cache_dir/<hash[:2]>/<hash>.npy``: the ``.npy`` bytes followed by their SHA-256 digest (32 bytes).
    Clips without keys (augmented copies) are embedded every time.

    An entry read from disk is checked before use: its digest, dtype (float32), shape (the base's windows
    for the clip's length by ``embedding_dim``) and values (all finite). A file that fails (truncated,
    altered, written by something else) is recomputed and rewritten, with a warning naming it.

    Args:
        base: the base whose embeddings are cached; it must stay frozen while the cache is used.
        cache_dir: folder for the disk cache; ``None`` caches in memory only.
        settings: plain JSON data describing how waveforms were made from the files.
        batch_size: clips per forward pass.

    Example:
        >>> cache = EmbeddingCache(base, cache_dir="~/.cache/audio_transfer", settings={"clip_seconds": 1.0})
        >>> frames = cache.embed(waveforms, keys=[EmbeddingCache.file_key(p) for p in paths])
    """

    def __init__(
        self,
        base: AudioBase,
        *,
        cache_dir: str | os.PathLike | None = None,
        settings: Mapping[str, Any] | None = None,
        batch_size: int = 64,
    ) -> None:
        if not is_positive_int(batch_size):
            raise ConfigError(f"batch_size must be a positive integer, received {batch_size!r}.")
        self.base = base
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None
        self.settings = dict(settings or {})
        self.batch_size = int(batch_size)
        self.hits = 0
        self.misses = 0
        self._memory: dict[str, np.ndarray] = {}
        self._namespace: str | None = None
        self._forward = tf.function(
            self._run_base, input_signature=[tf.TensorSpec((None, None), tf.float32)], reduce_retracing=True
        )

    @staticmethod
    def file_key(path: str | os.PathLike) -> str:
        """A key for the clip decoded from ``path``: resolved path, size and modification time."""
        path = Path(path).resolve()
        stat = path.stat()
        return f"{path}|{stat.st_size}|{stat.st_mtime_ns}"

    def _run_base(self, waveforms):
        return self.base(waveforms, training=False)

    def embed(self, waveforms: np.ndarray, *, keys: Sequence[str] | None = None) -> np.ndarray:
        """Frame embeddings ``(clips, windows, embedding_dim)`` float32 of ``(clips, samples)`` waveforms.

        Args:
            waveforms: equal-length clips at the base's sample rate.
            keys: one key per clip to look up and store the result under; ``None`` to compute uncached.
        """
        waveforms = np.asarray(waveforms, dtype=np.float32)
        if waveforms.ndim != 2:
            raise InputShapeError(f"waveforms must have shape (clips, samples), received {waveforms.shape}.")
        if keys is not None and len(keys) != len(waveforms):
            raise InputShapeError(
                f"{len(keys)} keys were given for {len(waveforms)} clips; give one per clip."
            )
        if keys is None:
            self.misses += len(waveforms)
            return self._compute(waveforms)
        hashes = [self._hash(f"{key}|{waveforms.shape[1]} samples") for key in keys]
        first = {h: i for i, h in reversed(list(enumerate(hashes)))}
        expected_shape = (self.base.num_windows(waveforms.shape[1]), self.base.embedding_dim)
        found = {h: self._lookup(h, expected_shape) for h in first}
        missing = [i for h, i in first.items() if found[h] is None]
        if missing:
            computed = self._compute(waveforms[missing])
            for i, frames in zip(missing, computed, strict=True):
                found[hashes[i]] = frames
                self._store(hashes[i], frames)
        self.misses += len(missing)
        self.hits += len(waveforms) - len(missing)
        return np.stack([found[h] for h in hashes])

    def _compute(self, waveforms: np.ndarray) -> np.ndarray:
        if not len(waveforms):
            windows = self.base.num_windows(waveforms.shape[1])
            return np.zeros((0, windows, self.base.embedding_dim), np.float32)
        parts = [
            self._forward(tf.constant(waveforms[start : start + self.batch_size])).numpy()
            for start in track(range(0, len(waveforms), self.batch_size), "Embedding clips")
        ]
        return np.concatenate(parts).astype(np.float32, copy=False)

    # -- identity and storage ------------------------------------------------------------------------------
    def _hash(self, key: str) -> str:
        if self._namespace is None:
            self._namespace = self._fingerprint()
        return hashlib.sha256(f"{self._namespace}|{key}".encode()).hexdigest()

    def _fingerprint(self) -> str:
        """Hash of the base's class, configuration and weights and of the settings."""
        digest = hashlib.sha256()
        digest.update(_LAYOUT.encode())
        digest.update(type(self.base).__qualname__.encode())
        digest.update(json.dumps(self.base.get_config(), sort_keys=True, default=str).encode())
        digest.update(json.dumps(self.settings, sort_keys=True, default=str).encode())
        for weight in self.base.weights:
            # Floating-point weights are the model; integer variables are counters that do not shape output.
            if "float" in str(weight.dtype):
                digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
        return digest.hexdigest()

    def _path(self, entry: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / entry[:2] / f"{entry}.npy"

    def _lookup(self, entry: str, expected_shape: tuple[int, int]) -> np.ndarray | None:
        if entry in self._memory:
            return self._memory[entry]
        path = self._path(entry)
        if path is None or not path.is_file():
            return None
        try:
            frames = _read_entry(path, expected_shape)
        except (OSError, ValueError) as error:
            logger.warning("Ignoring the bad embedding cache entry %s (%s); recomputing it.", path, error)
            return None
        self._memory[entry] = frames
        return frames

    def _store(self, entry: str, frames: np.ndarray) -> None:
        self._memory[entry] = frames
        path = self._path(entry)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.save(buffer, frames, allow_pickle=False)
        payload = buffer.getvalue()
        atomic_write(path, lambda file: file.write(payload + hashlib.sha256(payload).digest()))


def _read_entry(path: Path, expected_shape: tuple[int, int]) -> np.ndarray:
    """The frames in the entry file ``path``; ``ValueError`` saying what is wrong when they cannot be used."""
    content = path.read_bytes()
    payload, digest = content[:-_DIGEST_BYTES], content[-_DIGEST_BYTES:]
    if len(content) <= _DIGEST_BYTES or hashlib.sha256(payload).digest() != digest:
        raise ValueError("its checksum does not match: the file is truncated or altered")
    frames = np.load(io.BytesIO(payload), allow_pickle=False)
    if frames.dtype != np.float32:
        raise ValueError(f"it holds {frames.dtype} values; expected float32")
    if frames.shape != expected_shape:
        raise ValueError(f"it holds shape {frames.shape}; expected {expected_shape}")
    if not np.isfinite(frames).all():
        raise ValueError(f"it holds {int((~np.isfinite(frames)).sum())} NaN or infinite values")
    return frames

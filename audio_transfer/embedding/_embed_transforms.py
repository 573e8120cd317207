"""The Beam ``DoFn``s of :mod:`audio_transfer.embedding.embed_pipeline` (this module imports apache_beam)."""

from __future__ import annotations

import logging
import os
import posixpath
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from audio_transfer.atomic_files import write_bytes
from audio_transfer.audio import crop_or_pad, load_audio
from audio_transfer.bases.audio_base import AudioBase
from audio_transfer.data import SkippedFile
from audio_transfer.data.feature_store import finish_store, write_shard
from audio_transfer.data.store_identity import StoreIdentity
from audio_transfer.data.store_record import StoreRecord
from audio_transfer.embedding.base_identity import base_digest
from audio_transfer.errors import AudioDecodeError, StoreError

logger = logging.getLogger(__name__)

SKIPPED = "skipped"


def load_any_audio(path: str, *, sample_rate: int) -> np.ndarray:
    """Decode ``path``, a local file or one on any Beam file system (copied to a temporary folder first)."""
    if "://" not in path:
        return load_audio(path, sample_rate=sample_rate)
    with tempfile.TemporaryDirectory() as folder:
        local = Path(folder) / posixpath.basename(path)
        try:
            with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as source:
                write_bytes(local, source.read())
        except Exception as error:  # each file system raises its own errors
            raise AudioDecodeError(f"Could not read {path}: {error}") from None
        return load_audio(local, sample_rate=sample_rate)


class DecodeClip(beam.DoFn):
    """``(shard, example)`` → ``(shard, example, clip)``, the clip mono float32 at ``sample_rate`` cropped or
    padded to ``clip_samples`` (as training decodes); a file that does not decode goes to the ``skipped``
    output as ``(shard, SkippedFile)``."""

    def __init__(self, *, sample_rate: int, clip_samples: int) -> None:
        self.sample_rate = sample_rate
        self.clip_samples = clip_samples

    def process(self, element: tuple[int, Any]) -> Iterable[Any]:
        shard, example = element
        try:
            waveform = load_any_audio(example.path, sample_rate=self.sample_rate)
        except AudioDecodeError as error:
            logger.warning("Skipping %s: %s", example.path, error)
            yield beam.pvalue.TaggedOutput(SKIPPED, (shard, SkippedFile(example.path, str(error))))
            return
        yield shard, example, crop_or_pad(waveform, num_samples=self.clip_samples)


class EmbedBatch(beam.DoFn):
    """A batch of ``(shard, example, clip)`` → ``(shard, StoreRecord)`` per clip, through the frozen base,
    which ``setup`` loads once per worker (``make_base`` is a picklable function returning it) and checks
    against the digest the launcher put in the store's identity: a worker with other weights (another
    version of a weights file, a base whose construction is not deterministic) fails instead of writing
    other features."""

    def __init__(
        self,
        *,
        make_base: Callable[[], AudioBase],
        embed: Callable[..., np.ndarray],
        context_samples: int,
        source: str,
        digest: str,
    ) -> None:
        self.make_base = make_base
        self.embed = embed
        self.context_samples = context_samples
        self.source = source
        self.digest = digest
        self.base: AudioBase | None = None

    def setup(self) -> None:
        base = self.make_base()
        if base_digest(base) != self.digest:
            raise StoreError(
                f"The base this worker loaded ({type(base).__name__}) has other weights than the launcher's "
                "(its digest differs from the store identity's): give every worker the same base files."
            )
        self.base = base

    def process(self, batch: Sequence[tuple[int, Any, np.ndarray]]) -> Iterable[tuple[int, StoreRecord]]:
        waveforms = np.stack([clip for _, _, clip in batch])
        # oneDNN runs a batch of one clip through other kernels than larger batches (float32 differences of
        # about 1e-6 relative); a lone clip runs beside a copy of itself, so that every clip's features are
        # those of a batch, whatever batches Beam made.
        if len(waveforms) == 1:
            waveforms = np.concatenate([waveforms, waveforms])
        features = self.embed(self.base, waveforms, context_samples=self.context_samples)[: len(batch)]
        for (shard, example, _), frames in zip(batch, features, strict=True):
            yield shard, StoreRecord(example.key, example.label, example.speaker, self.source, frames)


def write_grouped_shard(grouped: tuple[int, dict[str, list]], *, out: str, num_shards: int) -> int:
    """Write one shard from its CoGroupByKey group (records sorted by key, skipped files sorted by path);
    the number of records written."""
    index, group = grouped
    records = sorted(group["records"], key=lambda record: record.key)
    skipped = sorted(group["skipped"], key=lambda item: (item.path, item.reason))
    write_shard(out, index=index, num_shards=num_shards, records=records, skipped=skipped)
    return len(records)


def finish(_total: int, *, out: str, identity: StoreIdentity, num_shards: int) -> None:
    """The pipeline's last step: the manifest from every shard's sidecar."""
    finish_store(out, identity=identity, num_shards=num_shards)
    logger.info("Wrote the manifest of %s (%d shards).", os.fspath(out), num_shards)

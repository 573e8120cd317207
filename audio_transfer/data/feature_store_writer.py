"""Write a feature store from one process, record by record."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from audio_transfer.atomic_files import (
    is_url,
    join_path,
    link_or_copy,
    remove_directory,
    replace_directory,
    replace_file,
    temporary_directory,
)
from audio_transfer.data.feature_store import (
    MANIFEST_NAME,
    FeatureStore,
    _ShardFile,
    finish_store,
    shard_name,
    sidecar_path,
)
from audio_transfer.data.skipped_file import SkippedFile
from audio_transfer.data.store_identity import StoreIdentity
from audio_transfer.data.store_record import StoreRecord
from audio_transfer.errors import StoreError

DEFAULT_SHARD_BYTES = 256 * 1024 * 1024


class FeatureStoreWriter:
    """Writes records into shards filled one after another, then the manifest (see :mod:`feature_store`).

    The store is built in a hidden temporary folder beside ``path`` and renamed onto ``path`` by
    :meth:`close` (replacing a store there), so ``path`` never holds a partial store. Records are written as
    they come: the writer holds the metadata of the shard being written, never the arrays. A shard is closed
    when the next record would take it past ``shard_bytes`` or it holds ``shard_examples`` records.

    ``path`` may be a URL (``gs://bucket/store``, written through ``tf.io.gfile``): the store is built in a
    hidden folder beside it, then its objects are moved into ``path`` one by one, ``manifest.json`` last
    (see :func:`~audio_transfer.atomic_files.replace_directory`), so ``path`` never reads as a complete
    store before it is one.

    Args:
        path: the store's folder (local: its parent must exist), or a URL.
        identity: what the records hold; every record's features must have ``identity.shape``.
        shard_bytes: largest shard size in bytes (a single larger record gets a shard of its own).
        shard_examples: most records per shard (``None``: no limit).

    Example:
        >>> with FeatureStoreWriter(out / "store", identity=identity) as writer:  # doctest: +SKIP
        ...     writer.add(records)
        ...     writer.add_skipped(decoded.skipped)
        >>> writer.store.num_examples  # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        identity: StoreIdentity,
        shard_bytes: int = DEFAULT_SHARD_BYTES,
        shard_examples: int | None = None,
    ) -> None:
        if shard_bytes < 1 or (shard_examples is not None and shard_examples < 1):
            raise StoreError(
                "shard_bytes and shard_examples must be positive, received "
                f"{shard_bytes} and {shard_examples}."
            )
        self.path = os.fspath(path) if is_url(path) else Path(path)
        self.identity = identity
        self.shard_bytes = shard_bytes
        self.shard_examples = shard_examples
        self.store: FeatureStore | None = None
        self._folder = temporary_directory(self.path)
        self._shard: _ShardFile | None = None
        self._parts: list[Path | str] = []
        self._skipped: list[SkippedFile] = []

    def __enter__(self) -> FeatureStoreWriter:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abandon()

    def add(self, records: Iterable[StoreRecord]) -> None:
        """Append ``records`` to the store, in order.

        Raises:
            StoreError: a record's features do not have the identity's shape, or are not finite numbers.
        """
        for record in records:
            features = np.asarray(record.features)
            if features.shape != self.identity.shape:
                raise StoreError(
                    f"The record {record.key!r} has features of shape {features.shape}, but the store holds "
                    f"{self.identity.shape}; every example of a store must have the same shape."
                )
            size = features.size * 4
            shard = self._shard
            if shard is not None and (
                (shard.records and shard.bytes + size > self.shard_bytes)
                or (self.shard_examples is not None and len(shard.records) >= self.shard_examples)
            ):
                self._close_shard()
            if self._shard is None:
                self._parts.append(join_path(self._folder, f"part-{len(self._parts):05d}.tfrecord"))
                self._shard = _ShardFile(self._parts[-1])
            self._shard.write(record)

    def add_store(self, store: FeatureStore) -> None:
        """Add every record of ``store``'s readable shards, shard for shard: the files are hard-linked (or
        copied where links are not possible), not rewritten, so extending a large store with a few records
        costs the few records.

        Raises:
            StoreError: ``store`` holds other features than this writer's identity.
        """
        if store.identity != self.identity:
            listing = "; ".join(store.identity.mismatches(self.identity))
            raise StoreError(
                f"Cannot add the feature store {store.path}: it holds other features ({listing})."
            )
        if self._shard is not None:
            self._close_shard()
        for shard in store.readable_shards:
            part = join_path(self._folder, f"part-{len(self._parts):05d}.tfrecord")
            source = join_path(store.path, shard.file)
            link_or_copy(source, part)
            link_or_copy(sidecar_path(source), sidecar_path(part))
            self._parts.append(part)

    def add_skipped(self, skipped: Sequence[SkippedFile]) -> None:
        """Record files left out (listed in the manifest's ``skipped``)."""
        self._skipped.extend(skipped)

    def close(self) -> FeatureStore:
        """Close the last shard, name the shards ``shard-IIIII-of-NNNNN``, write the manifest and move the
        store onto ``path``.

        Returns:
            the finished store, opened.

        Raises:
            StoreError: no record was added (an empty store).
        """
        if self.store is not None:
            return self.store
        try:
            if self._shard is None and not self._parts:  # an empty store still lists what was skipped
                self._parts.append(join_path(self._folder, "part-00000.tfrecord"))
                self._shard = _ShardFile(self._parts[-1])
            self._close_shard()
            for index, part in enumerate(self._parts):
                final = join_path(self._folder, shard_name(index, len(self._parts)))
                replace_file(part, final)
                replace_file(sidecar_path(part), sidecar_path(final))
            finish_store(self._folder, identity=self.identity, num_shards=len(self._parts))
            replace_directory(self._folder, self.path, last=[MANIFEST_NAME])
        except BaseException:
            self.abandon()
            raise
        self.store = FeatureStore.open(self.path)
        return self.store

    def abandon(self) -> None:
        """Drop everything written; ``path`` is left as it was."""
        if self._shard is not None:
            self._shard.abandon()
            self._shard = None
        remove_directory(self._folder)

    def _close_shard(self) -> None:
        skipped, self._skipped = self._skipped, []
        self._shard.close(skipped)
        self._shard = None

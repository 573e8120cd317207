"""A folder of TFRecord shards holding one array per example (frame embeddings or waveforms), streamed by
``tf.data`` so that training reads any number of examples in bounded memory.

Format: TFRecord shards of ``tf.train.Example``. ``tf.data`` reads them natively (``TFRecordDataset``,
``interleave``) and Apache Beam writes and reads them natively (``apache_beam.io.tfrecordio``) with no extra
dependency; ArrayRecord would add a package, and its random access is not needed for shuffled streaming.

A store ``STORE/`` holds:

- ``shard-IIIII-of-NNNNN.tfrecord``: the records, each shard written atomically (temporary file + rename);
- ``shard-IIIII-of-NNNNN.json``: the shard's sidecar, written right after it: per record, in record order,
  its key, label, speaker and source, plus the shard's count, size, SHA-256 and the files skipped while
  making it;
- ``manifest.json``: written last, atomically, from the sidecars (:func:`finish_store`): the layout
  version, the :class:`StoreIdentity`, the counts per label and source, the shards and the skipped files.
  A folder without it is an incomplete store.

``STORE`` is a local folder or a URL (``gs://bucket/store``, ``s3://``, ``hdfs://``; ``ram://`` in tests):
every read and write of a URL goes through ``tf.io.gfile`` (the writes through
:mod:`audio_transfer.atomic_files`), so Beam workers on other machines write a store's shards and manifest
straight to a bucket and ``tf.data`` reads them back. ``gs://`` is built into TensorFlow; ``s3://`` needs
``tensorflow-io``. A local path is read and written with Python's file functions, as before.

A record's features: ``key``, ``label``, ``speaker`` (``""`` when unknown), ``source`` (bytes), ``frames``
(float32 little-endian, row-major) and ``shape`` (int64 list).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import posixpath
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from audio_transfer.atomic_files import atomic_file, is_url, join_path, write_json
from audio_transfer.data.shard_info import ShardInfo
from audio_transfer.data.skipped_file import SkippedFile
from audio_transfer.data.store_example import StoreExample
from audio_transfer.data.store_identity import StoreIdentity
from audio_transfer.data.store_record import StoreRecord
from audio_transfer.errors import StoreError

logger = logging.getLogger(__name__)

LAYOUT = "audio_transfer.feature_store/1"
MANIFEST_NAME = "manifest.json"

# Shards read at once while streaming a store for training.
_INTERLEAVED_SHARDS = 8
_HASH_CHUNK_BYTES = 1 << 20


def encode_record(record: StoreRecord) -> bytes:
    """``record`` as a serialized ``tf.train.Example`` (see the module docstring for its features)."""
    features = np.ascontiguousarray(record.features, dtype="<f4")

    def text(value: str) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode("utf-8")]))

    example = tf.train.Example(
        features=tf.train.Features(
            feature={
                "key": text(record.key),
                "label": text(record.label),
                "speaker": text(record.speaker or ""),
                "source": text(record.source),
                "frames": tf.train.Feature(bytes_list=tf.train.BytesList(value=[features.tobytes()])),
                "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=list(features.shape))),
            }
        )
    )
    # Sorted map keys: protobuf otherwise orders the features map differently from one process to another,
    # and the same records would give shards of other bytes and SHA-256.
    return example.SerializeToString(deterministic=True)


def decode_record(data: bytes) -> StoreRecord:
    """The :class:`StoreRecord` that :func:`encode_record` serialized, with NumPy features."""
    feature = tf.train.Example.FromString(data).features.feature

    def text(name: str) -> str:
        return feature[name].bytes_list.value[0].decode("utf-8")

    shape = tuple(feature["shape"].int64_list.value)
    frames = np.frombuffer(feature["frames"].bytes_list.value[0], dtype="<f4").reshape(shape)
    return StoreRecord(
        key=text("key"),
        label=text("label"),
        speaker=text("speaker") or None,
        source=text("source"),
        features=frames.astype(np.float32),
    )


def shard_name(index: int, num_shards: int) -> str:
    """File name of shard ``index`` of ``num_shards``, e.g. ``shard-00003-of-00016.tfrecord``."""
    if not 0 <= index < num_shards:
        raise StoreError(f"A shard index is in [0, {num_shards}), received {index}.")
    return f"shard-{index:05d}-of-{num_shards:05d}.tfrecord"


def shard_of(key: str, num_shards: int) -> int:
    """The shard an example with ``key`` goes to: SHA-256 of the key modulo ``num_shards``; the same key
    always goes to the same shard."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest(), 16) % num_shards


def sidecar_path(shard_path: str | os.PathLike) -> Path | str:
    """The sidecar index beside a shard file (same name, ``.json``); a string for a URL."""
    if is_url(shard_path):
        return posixpath.splitext(os.fspath(shard_path))[0] + ".json"
    return Path(shard_path).with_suffix(".json")


def write_shard(
    store_dir: str | os.PathLike,
    *,
    index: int,
    num_shards: int,
    records: Iterable[StoreRecord],
    skipped: Sequence[SkippedFile] = (),
) -> ShardInfo:
    """Write ``records``, in the order given, as shard ``index`` of ``num_shards`` in the folder
    ``store_dir``, then its sidecar; each file is written to a temporary beside it and renamed.

    Args:
        store_dir: the store's folder: local (it must exist) or a URL (``gs://bucket/store``).
        index, num_shards: which shard this is.
        records: the shard's records; consumed once, one at a time.
        skipped: files left out while making this shard (listed in the manifest).

    Returns:
        the shard's :class:`ShardInfo`.

    Example:
        >>> write_shard(store, index=0, num_shards=1, records=records)  # doctest: +SKIP
    """
    shard = _ShardFile(join_path(store_dir, shard_name(index, num_shards)))
    try:
        for record in records:
            shard.write(record)
    except BaseException:
        shard.abandon()
        raise
    return shard.close(skipped)


def shard_is_complete(store_dir: str | os.PathLike, *, index: int, num_shards: int) -> bool:
    """Whether shard ``index`` of ``num_shards`` and its sidecar are there and the shard's SHA-256 is the
    sidecar's (a shard a killed writer left half-written is not)."""
    path = join_path(store_dir, shard_name(index, num_shards))
    try:
        sidecar = _read_json(sidecar_path(path))
        return _file_size(path) == sidecar["bytes"] and _sha256(path) == sidecar["sha256"]
    except (OSError, tf.errors.OpError, StoreError, ValueError, KeyError, TypeError):
        return False


def finish_store(store_dir: str | os.PathLike, *, identity: StoreIdentity, num_shards: int) -> FeatureStore:
    """Assemble ``manifest.json`` from the sidecars of the ``num_shards`` shards and write it, last.

    Raises:
        StoreError: a shard or sidecar is missing (naming the files), or the shards hold no example.
    """
    store_dir = _store_path(store_dir)
    names = [shard_name(index, num_shards) for index in range(num_shards)]
    missing = [
        _name(path)
        for name in names
        for path in (join_path(store_dir, name), sidecar_path(join_path(store_dir, name)))
        if not _is_file(path)
    ]
    if missing:
        raise StoreError(
            f"Cannot finish the store {store_dir}: {len(missing)} shard file(s) are missing: "
            f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}. Write those shards again "
            "(re-run the job that makes the store), then finish it."
        )
    labels: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    shards, skipped = [], []
    for name in names:
        sidecar = _read_json(sidecar_path(join_path(store_dir, name)))
        labels.update(record["label"] for record in sidecar["records"])
        sources.update(record["source"] for record in sidecar["records"])
        shards.append(ShardInfo(name, sidecar["examples"], sidecar["bytes"], sidecar["sha256"]).to_dict())
        skipped.extend(sidecar["skipped"])
    num_examples = sum(shard["examples"] for shard in shards)
    if not num_examples:
        listing = "; ".join(f"{item['path']}: {item['reason']}" for item in skipped[:5])
        raise StoreError(
            f"The store {store_dir} would hold no example"
            + (f" (every file was skipped: {listing})" if skipped else "")
            + ". Give it a dataset with audio files that decode."
        )
    manifest = {
        "layout": LAYOUT,
        "identity": identity.to_dict(),
        "num_examples": num_examples,
        "labels": dict(sorted(labels.items())),
        "sources": dict(sorted(sources.items())),
        "shards": shards,
        "skipped": skipped,
    }
    write_json(join_path(store_dir, MANIFEST_NAME), manifest, name="manifest")
    return FeatureStore.open(store_dir)


def is_store(path: str | os.PathLike) -> bool:
    """Whether ``path`` (a local folder or a URL) holds a feature store's ``manifest.json`` (complete or
    not usable)."""
    return _is_file(join_path(path, MANIFEST_NAME))


class FeatureStore:
    """A finished feature store, read in bounded memory: metadata from its sidecars, arrays streamed.

    Open one with :meth:`open`. Its examples' metadata (:meth:`examples`) lives in memory; the arrays are
    read only by the ``tf.data`` pipeline of :meth:`dataset`, a bounded shuffle buffer at a time.

    Attributes:
        path: the store's folder: a :class:`~pathlib.Path`, or a string for a URL (``gs://bucket/store``).
        identity: what it holds (:class:`StoreIdentity`).
        num_examples: examples in the whole store (readable shards or not).
        labels, sources: examples per label and per source.
        shards: every shard of the manifest.
        readable_shards: the shards present with the manifest's size (all of them unless opened with
            ``missing_ok=True``).
        skipped: files left out while making the store.

    Example:
        >>> store = FeatureStore.open("store", expect=identity)  # doctest: +SKIP
        >>> batches = store.dataset(labels=sorted(store.labels), batch_size=64)  # doctest: +SKIP
    """

    def __init__(
        self,
        path: Path | str,
        *,
        identity: StoreIdentity,
        num_examples: int,
        labels: dict[str, int],
        sources: dict[str, int],
        shards: list[ShardInfo],
        readable_shards: list[ShardInfo],
        skipped: list[SkippedFile],
    ) -> None:
        self.path = path
        self.identity = identity
        self.num_examples = num_examples
        self.labels = labels
        self.sources = sources
        self.shards = shards
        self.readable_shards = readable_shards
        self.skipped = skipped
        self._examples: list[StoreExample] | None = None

    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        *,
        expect: StoreIdentity | None = None,
        verify: bool = False,
        missing_ok: bool = False,
    ) -> FeatureStore:
        """Open the store in ``path`` after checking its manifest, identity and shards.

        Args:
            path: the store's folder, local or a URL (``gs://bucket/store``; see the module docstring).
            expect: the identity the caller needs; every mismatching field is listed in the error.
            verify: also check each shard's SHA-256 (reads every shard once), not just its size.
            missing_ok: open with the shards that are readable (see :attr:`readable_shards`) instead of
                refusing a store with a shard missing or damaged.

        Raises:
            StoreError: no manifest (an incomplete store, or not a store), an empty store, a manifest of
                another layout version, an identity other than ``expect``, or a shard missing or damaged.
        """
        path = _store_path(path)
        manifest_path = join_path(path, MANIFEST_NAME)
        if not _is_file(manifest_path):
            what = (
                "does not exist"
                if not _exists(path)
                else "is empty"
                if _is_empty_folder(path)
                else "has no manifest.json: it is not a feature store, or an incomplete one whose writing "
                "did not finish"
            )
            raise StoreError(
                f"The feature store {path} {what}. Make it (again) with `audio-transfer embed` or "
                "embedding.embed_to_store, and pass the folder it wrote."
            )
        manifest = _read_json(manifest_path)
        if manifest.get("layout") != LAYOUT:
            raise StoreError(
                f"The feature store {path} has layout {manifest.get('layout')!r}, not {LAYOUT!r}: it was "
                "written by another version of audio_transfer. Make it again with this version."
            )
        identity = StoreIdentity.from_dict(manifest["identity"])
        if expect is not None and identity != expect:
            listing = "; ".join(identity.mismatches(expect))
            raise StoreError(
                f"The feature store {path} was made with other settings than this run uses ({listing}). "
                f"Re-run `audio-transfer embed` with --base {expect.base or '...'}, --sample-rate "
                f"{expect.sample_rate} and --clip-seconds {expect.clip_seconds:g} for this task, or train "
                "with the base and settings the store was made with."
            )
        if not manifest["num_examples"]:
            raise StoreError(
                f"The feature store {path} is empty (0 examples); make it from audio that decodes."
            )
        shards = [ShardInfo(**shard) for shard in manifest["shards"]]
        damaged = {shard.file: reason for shard in shards if (reason := _shard_problem(path, shard, verify))}
        readable = [shard for shard in shards if shard.file not in damaged]
        if damaged and not missing_ok:
            listing = "; ".join(f"{name}: {reason}" for name, reason in damaged.items())
            raise StoreError(
                f"The feature store {path} has {len(damaged)} of {len(shards)} shard(s) unusable "
                f"({listing}). "
                "Make those shards again (re-run the job that made the store), or read the other "
                f"{len(readable)} with FeatureStore.open(..., missing_ok=True)."
            )
        for name, reason in damaged.items():
            logger.warning("Leaving out shard %s of %s: %s", name, path, reason)
        return cls(
            path,
            identity=identity,
            num_examples=int(manifest["num_examples"]),
            labels=dict(manifest["labels"]),
            sources=dict(manifest["sources"]),
            shards=shards,
            readable_shards=readable,
            skipped=[SkippedFile(**item) for item in manifest["skipped"]],
        )

    def examples(self, keys: Collection[str] | None = None) -> list[StoreExample]:
        """Every example of the readable shards (metadata only), shard by shard in record order; only those
        of ``keys`` when given."""
        if self._examples is None:
            self._examples = [
                StoreExample(record["key"], record["label"], record["speaker"], record["source"], shard.file)
                for shard in self.readable_shards
                for record in _read_json(sidecar_path(join_path(self.path, shard.file)))["records"]
            ]
        if keys is None:
            return self._examples
        return [example for example in self._examples if example.key in keys]

    def sample_weights(
        self,
        examples: Sequence[StoreExample],
        *,
        class_weights: bool = True,
        source_weights: Mapping[str, float] | None = None,
        balance_sources: bool = False,
    ) -> dict[tuple[str, str], float]:
        """Weight of an example by ``(label, source)``: inverse class frequency (classes present in
        ``examples``) times its source's weight (1 when not in ``source_weights``), normalized to mean 1
        over ``examples``. With ``balance_sources``, each source of a class (a data's clips, their
        augmented copies, windows of long negative audio, mined windows) also weighs as much in all as
        every other source of that class, so that hours of windows do not drown a few hundred clips."""
        counts = Counter(example.label for example in examples)
        pairs = Counter((example.label, example.source) for example in examples)
        sources = Counter(label for label, _ in pairs)
        raw = {
            (label, source): (len(examples) / (len(counts) * counts[label]) if class_weights else 1.0)
            * (counts[label] / (sources[label] * count) if balance_sources else 1.0)
            * (source_weights or {}).get(source, 1.0)
            for (label, source), count in pairs.items()
        }
        mean = sum(raw[pair] * count for pair, count in pairs.items()) / max(len(examples), 1)
        return {pair: weight / mean for pair, weight in raw.items()} if mean > 0 else raw

    def dataset(
        self,
        *,
        labels: Sequence[str],
        batch_size: int,
        shuffle_buffer: int = 10_000,
        seed: int | tf.Variable = 0,
        keys: Collection[str] | None = None,
        class_weights: bool = True,
        source_weights: Mapping[str, float] | None = None,
        balance_sources: bool = False,
        repeat: bool = False,
        deterministic: bool = True,
    ) -> tf.data.Dataset:
        """Batches ``(features, label_index, sample_weight)`` streamed from the readable shards.

        Shards are read interleaved (in a seeded order when shuffling), filtered to ``keys``, shuffled in
        blocks of ``shuffle_buffer`` consecutive examples (write a store in a shuffled order, as
        :func:`~audio_transfer.embedding.embed_to_store` does, so that a block mixes the classes) and
        batched; memory depends on the block and the batch, not on the number of examples. Each pass of
        ``repeat`` draws a new order. The same ``seed`` gives the same order; ``seed`` may be an int64
        ``tf.Variable``, read each time an iteration starts, so that one pipeline gives each epoch its own
        order (a trainer advances it every epoch).

        Args:
            labels: class names; ``label_index`` is the position of an example's label in it.
            batch_size: examples per batch (with ``repeat`` every batch is full).
            shuffle_buffer: examples shuffled at once (a block); 0 or 1 reads the store in its order (shard
                by shard, record order), for evaluation.
            seed: order of shards and examples.
            keys: read only the examples with these keys (e.g. one split); ``None`` reads all.
            class_weights: weight examples by inverse class frequency (else 1).
            source_weights: weight per source (``{"augmented": 0.5}``); missing sources weigh 1.
            balance_sources: the sources of a class weigh the same in all (see :meth:`sample_weights`).
            repeat: repeat forever, reshuffling each pass (take the steps you need).
            deterministic: keep the interleaved order deterministic.

        Returns:
            a ``tf.data.Dataset`` of float32 ``(batch, *identity.shape)``, int32 ``(batch,)`` and float32
            ``(batch,)``.

        Raises:
            StoreError: an example's label is not in ``labels``, or no example is left to read.
        """
        selected = self.examples(keys)
        if not selected:
            raise StoreError(f"No example of the feature store {self.path} is left to read (keys filter).")
        unknown = sorted({example.label for example in selected} - set(labels))
        if unknown:
            raise StoreError(
                f"The feature store {self.path} has labels {unknown} that are not in labels={list(labels)}. "
                "Train with the store's labels (FeatureStore.labels) or filter those examples out with keys."
            )
        weights = self.sample_weights(
            selected,
            class_weights=class_weights,
            source_weights=source_weights,
            balance_sources=balance_sources,
        )
        label_table = _lookup({label: index for index, label in enumerate(labels)}, tf.int32, -1)
        weight_table = _lookup(
            {f"{lab}\0{src}": weight for (lab, src), weight in weights.items()}, tf.float32, 0
        )
        key_table = None if keys is None else _lookup(dict.fromkeys(keys, 1), tf.int32, 0)
        shuffle = shuffle_buffer > 1
        shape = self.identity.shape
        spec = {name: tf.io.FixedLenFeature([], tf.string) for name in ("key", "label", "source", "frames")}

        def parse(data):
            parsed = tf.io.parse_single_example(data, spec)
            return parsed["key"], parsed["label"], parsed["source"], parsed["frames"]

        def arrays(key, label, source, frames):
            features = tf.reshape(tf.io.decode_raw(frames, tf.float32, little_endian=True), shape)
            weight = weight_table.lookup(tf.strings.join([label, source], separator="\0"))
            return features, label_table.lookup(label), weight

        names = tf.constant([os.fspath(join_path(self.path, shard.file)) for shard in self.readable_shards])

        def one_pass(index, seed):
            """Pass ``index`` over the examples, in an order drawn from ``(seed, index)`` by stateless ops
            (a tensor seed, unlike ``Dataset.shuffle``'s, works whatever the global seed)."""
            files = tf.random.experimental.stateless_shuffle(names, seed=tf.stack([seed, -1 - index]))
            records = tf.data.Dataset.from_tensor_slices(files if shuffle else names).interleave(
                tf.data.TFRecordDataset,
                cycle_length=min(_INTERLEAVED_SHARDS, len(self.readable_shards)) if shuffle else 1,
                num_parallel_calls=tf.data.AUTOTUNE if shuffle else None,
                deterministic=deterministic if shuffle else None,
            )
            examples = records.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
            if key_table is not None:
                examples = examples.filter(lambda key, *_: key_table.lookup(key) > 0)
            if not shuffle:
                return examples

            def shuffle_block(block, rows):
                order = tf.random.experimental.stateless_shuffle(
                    tf.range(tf.shape(rows[0])[0]), seed=tf.stack([seed, index * 1_000_003 + block])
                )
                return tuple(tf.gather(part, order) for part in rows)

            return examples.batch(shuffle_buffer).enumerate().map(shuffle_block).unbatch()

        if isinstance(seed, tf.Variable):  # read as each pass starts: once per epoch of a trainer
            seeds = tf.data.Dataset.counter().map(lambda _: seed.value())
        else:
            seeds = tf.data.Dataset.from_tensors(tf.constant(seed, tf.int64)).repeat()
        passes = tf.data.Dataset.counter() if repeat else tf.data.Dataset.range(1)
        examples = tf.data.Dataset.zip(passes, seeds).flat_map(one_pass)
        examples = examples.map(arrays, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
        batches = examples.batch(batch_size, drop_remainder=repeat)
        if not repeat:  # the count is known from the sidecars: Keras sees the epoch's length
            count = math.ceil(len(selected) / batch_size)
            batches = batches.apply(tf.data.experimental.assert_cardinality(count))
        return batches.prefetch(tf.data.AUTOTUNE)

    def example_weights(
        self,
        *,
        keys: Collection[str] | None = None,
        class_weights: bool = True,
        source_weights: Mapping[str, float] | None = None,
        balance_sources: bool = False,
    ) -> np.ndarray:
        """float32 ``(n,)``: the weight :meth:`dataset` gives each example (of ``keys``), in the order of
        :meth:`arrays`; from the sidecars alone, no array is read."""
        selected = self.examples(keys)
        weights = self.sample_weights(
            selected,
            class_weights=class_weights,
            source_weights=source_weights,
            balance_sources=balance_sources,
        )
        return np.asarray([weights[(example.label, example.source)] for example in selected], np.float32)

    def arrays(
        self,
        *,
        keys: Collection[str] | None = None,
        labels: Sequence[str],
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
        batch_size: int = 1024,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every example (of ``keys``) in memory, in store order: ``(n, ...)`` features and int32 ``(n,)``
        label indices. Memory grows with the examples; for full-batch fits and small samples.

        The examples are read ``batch_size`` at a time into one array sized from the sidecars (no batch list
        to join, so no second copy). ``transform`` maps each float32 ``(batch, *identity.shape)`` batch to
        what is kept of it (a pooling: ``(batch, features)``), so memory holds only its outputs.

        Raises:
            StoreError: no example is left to read, an example's label is not in ``labels``, or the shards
                hold other examples than their sidecars list.
        """
        count = len(self.examples(keys))
        features = indices = None
        start = 0
        for batch, label, _ in self.dataset(
            labels=labels, batch_size=batch_size, shuffle_buffer=0, keys=keys, class_weights=False
        ).as_numpy_iterator():
            kept = batch if transform is None else np.asarray(transform(batch))
            if features is None:
                features = np.empty((count, *kept.shape[1:]), kept.dtype)
                indices = np.empty(count, np.int32)
            features[start : start + len(kept)] = kept
            indices[start : start + len(kept)] = label
            start += len(kept)
        if start != count:
            raise StoreError(
                f"The feature store {self.path} gave {start} examples where its sidecars list {count}: a "
                "shard changed since the store was opened; open it again with verify=True."
            )
        return features, indices


class _ShardFile:
    """A shard being written record by record to a temporary beside it; :meth:`close` renames it into place
    and writes its sidecar. Holds the records' metadata, never their arrays."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self._stack = contextlib.ExitStack()
        temporary = self._stack.enter_context(atomic_file(path))
        self._writer = tf.io.TFRecordWriter(os.fspath(temporary))
        self.records: list[dict[str, Any]] = []
        self.bytes = 0

    def write(self, record: StoreRecord) -> None:
        data = encode_record(record)
        self._writer.write(data)
        self.bytes += len(data)
        self.records.append(
            {"key": record.key, "label": record.label, "speaker": record.speaker, "source": record.source}
        )

    def close(self, skipped: Sequence[SkippedFile] = ()) -> ShardInfo:
        self._writer.close()
        self._stack.close()  # renames the temporary onto the shard
        info = ShardInfo(_name(self.path), len(self.records), _file_size(self.path), _sha256(self.path))
        sidecar = {
            "examples": info.examples,
            "bytes": info.bytes,
            "sha256": info.sha256,
            "records": self.records,
            "skipped": [item.to_dict() for item in skipped],
        }
        write_json(sidecar_path(self.path), sidecar, name="sidecar")
        return info

    def abandon(self) -> None:
        """Drop the temporary; nothing is renamed."""
        self._writer.close()
        self._stack.__exit__(StoreError, StoreError("abandoned"), None)


def _lookup(mapping: Mapping[str, Any], dtype: tf.DType, default: Any) -> tf.lookup.StaticHashTable:
    keys = list(mapping) or [""]
    values = list(mapping.values()) or [default]
    initializer = tf.lookup.KeyValueTensorInitializer(
        tf.constant(keys, tf.string), tf.constant(values, dtype)
    )
    return tf.lookup.StaticHashTable(initializer, default_value=tf.constant(default, dtype))


def _shard_problem(store_dir: Path | str, shard: ShardInfo, verify: bool) -> str | None:
    """Why a shard cannot be read, or None."""
    path = join_path(store_dir, shard.file)
    if not _is_file(path):
        return "missing"
    size = _file_size(path)
    if size != shard.bytes:
        return f"{size} bytes instead of {shard.bytes} (truncated or overwritten)"
    if not _is_file(sidecar_path(path)):
        return f"its sidecar {_name(sidecar_path(path))} is missing"
    if verify and _sha256(path) != shard.sha256:
        return "its SHA-256 differs from the manifest's (damaged)"
    return None


def _sha256(path: Path | str) -> str:
    digest = hashlib.sha256()
    with _open_binary(path) as file:
        while chunk := file.read(_HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _read_json(path: Path | str) -> dict[str, Any]:
    try:
        with _open_binary(path) as file:
            return json.loads(file.read().decode("utf-8"))
    except (OSError, tf.errors.OpError, ValueError) as error:
        reason = error.message if isinstance(error, tf.errors.OpError) else error
        raise StoreError(f"Cannot read {path}: {reason}. Make the store again.") from error


# A store's files are read with Python's file functions when local and tf.io.gfile when a URL (which
# tf.io.gfile reads on every file system TensorFlow knows: gs://, and s3:// with tensorflow-io).


def _store_path(path: str | os.PathLike) -> Path | str:
    """A store folder as kept: a URL as a string (``Path`` would fold its ``//``), else a ``Path``."""
    return os.fspath(path) if is_url(path) else Path(path)


def _name(path: Path | str) -> str:
    return posixpath.basename(path) if isinstance(path, str) else path.name


@contextlib.contextmanager
def _reading_url(path: str) -> Iterator[None]:
    """Re-raise TensorFlow's file-system errors of the block (no permission, an unknown scheme) as a
    StoreError naming the URL ``path`` and what to check."""
    try:
        yield
    except tf.errors.OpError as error:
        raise StoreError(
            f"Cannot read {path}: {error.message}. Check the URL, that this machine has credentials to "
            "read it and, for schemes other than gs://, that tensorflow-io is installed (pip install "
            "tensorflow-io)."
        ) from error


def _exists(path: Path | str) -> bool:
    if not is_url(path):
        return Path(path).exists()
    with _reading_url(path):
        return tf.io.gfile.exists(path)


def _is_file(path: Path | str) -> bool:
    if not is_url(path):
        return Path(path).is_file()
    with _reading_url(path):
        return tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path)


def _is_empty_folder(path: Path | str) -> bool:
    if not is_url(path):
        return Path(path).is_dir() and not any(Path(path).iterdir())
    with _reading_url(path):
        return tf.io.gfile.isdir(path) and not tf.io.gfile.listdir(path)


def _file_size(path: Path | str) -> int:
    if not is_url(path):
        return Path(path).stat().st_size
    with _reading_url(path):
        return tf.io.gfile.stat(path).length


def _open_binary(path: Path | str):
    """``path`` opened for reading bytes."""
    return tf.io.gfile.GFile(path, "rb") if is_url(path) else open(path, "rb")


__all__ = [
    "LAYOUT",
    "MANIFEST_NAME",
    "FeatureStore",
    "decode_record",
    "encode_record",
    "finish_store",
    "is_store",
    "shard_is_complete",
    "shard_name",
    "shard_of",
    "sidecar_path",
    "write_shard",
]

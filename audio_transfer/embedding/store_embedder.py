"""Examples to a feature store in one process: decoded, embedded and written a bounded chunk at a time."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from audio_transfer.bases import AudioBase
from audio_transfer.data import (
    AudioExample,
    FeatureStore,
    FeatureStoreWriter,
    SkippedFile,
    StoreIdentity,
    StoreRecord,
    decode_examples,
)
from audio_transfer.errors import StoreError
from audio_transfer.progress import track

logger = logging.getLogger(__name__)

# Clips decoded, augmented and embedded at once: bounds the waveforms in memory whatever the dataset's size.
CHUNK_CLIPS = 256
# Clips per forward pass of the base.
_BATCH_CLIPS = 64

# (waveforms, seed) -> augmented waveforms of the same shape; the same seed gives the same output.
Augment = Callable[[np.ndarray, int], np.ndarray]


def embed_waveforms(
    base: AudioBase, waveforms: np.ndarray, *, context_samples: int = 0, batch_size: int = _BATCH_CLIPS
) -> np.ndarray:
    """Frame embeddings of a frozen base for a batch of clips, with ``context_samples`` of zeros added at
    both ends first (as :meth:`Task.with_context` does). No I/O: a Beam worker calls it per batch.

    Args:
        base: the frozen base.
        waveforms: float32 ``(clips, samples)`` at the base's rate.
        context_samples: zeros added at each end of every clip.
        batch_size: clips per forward pass.

    Returns:
        float32 ``(clips, windows, embedding_dim)``.

    Example:
        >>> clips = np.zeros((2, 16000), np.float32)
        >>> embed_waveforms(base, clips, context_samples=5600).shape  # doctest: +SKIP
        (2, 15, 96)
    """
    waveforms = np.asarray(waveforms, dtype=np.float32)
    if context_samples:
        waveforms = np.pad(waveforms, [(0, 0), (context_samples, context_samples)])
    if not len(waveforms):
        return np.zeros((0, base.num_windows(waveforms.shape[1]), base.embedding_dim), np.float32)
    parts = [
        _compiled_forward(base)(tf.constant(waveforms[start : start + batch_size])).numpy()
        for start in range(0, len(waveforms), batch_size)
    ]
    return np.concatenate(parts).astype(np.float32, copy=False)


def example_key(example: AudioExample) -> str:
    """The store key of an example: its path relative to its dataset (``/`` separators; ``_silence_/<n>``
    for generated silence), the same on every machine; the file name when it has none."""
    if example.relative_path:
        return example.relative_path
    return "digital-silence" if example.path is None else os.fspath(example.path.name)


def write_examples(
    writer: FeatureStoreWriter,
    examples: Sequence[AudioExample],
    *,
    base: AudioBase,
    keys: Sequence[str] | None = None,
    augment: Augment | None = None,
    augment_copies: int = 0,
    augment_context: bool = False,
    seed: int = 0,
    chunk_clips: int = CHUNK_CLIPS,
) -> tuple[int, list[SkippedFile]]:
    """Decode, embed and write ``examples`` into ``writer``, ``chunk_clips`` at a time.

    Each chunk is decoded (:func:`~audio_transfer.data.decode_examples`) at the writer identity's sample
    rate and clip length, given its context silence, run through ``base`` and written as ``"clean"``
    records; with ``augment``, ``augment_copies`` augmented copies of the chunk follow as ``"augmented"``
    records keyed ``<key>#augment<k>``, each seeded by ``seed``, the chunk and ``k`` (the same examples and
    seed give the same store). Only one chunk's waveforms are in memory at a time. Files that fail to decode
    are skipped, logged and listed in the store's manifest.

    Args:
        writer: the open store writer; its identity says the rate, clip length and context.
        examples: the clips, in the order to write them (shuffle them first for a store read through a
            bounded shuffle buffer).
        base: the frozen base whose embeddings are written.
        keys: the record key of each example (default :func:`example_key`).
        augment: ``augment(waveforms, seed)``; ``None`` writes no copies.
        augment_copies: augmented copies per clip.
        augment_context: augment each clip with its context silence (the whole window the base hears), so
            that the copies' noise fills the context too, as a stream's audio surrounds a word the detector
            hears; else only the clip is augmented and silence padded around it, as for the clean record.
        seed: seeds the copies.
        chunk_clips: clips decoded at once.

    Returns:
        ``(records written, files skipped)``.
    """
    identity = writer.identity
    keys = [example_key(example) for example in examples] if keys is None else list(keys)
    if len(keys) != len(examples):
        raise StoreError(f"{len(keys)} keys were given for {len(examples)} examples; give one per example.")
    context_samples = round(identity.context_seconds * identity.sample_rate)
    copies = augment_copies if augment is not None else 0
    written, skipped = 0, []
    starts = range(0, len(examples), chunk_clips)
    for chunk, start in enumerate(track(starts, "Embedding clips", total=len(starts))):
        decoded = decode_examples(
            examples[start : start + chunk_clips],
            sample_rate=identity.sample_rate,
            clip_seconds=identity.clip_seconds,
            max_failure_fraction=1.0,
        )
        skipped += decoded.skipped
        kept = {
            id(example): keys[start + offset]
            for offset, example in enumerate(examples[start : start + chunk_clips])
        }
        chunk_keys = [kept[id(example)] for example in decoded.examples]
        versions = [("clean", "", decoded.waveforms, context_samples)]
        around = augment_context and context_samples > 0  # the copies are whole windows, context included
        windows = (
            np.pad(decoded.waveforms, [(0, 0), (context_samples, context_samples)])
            if around
            else decoded.waveforms
        )
        for k in range(copies):
            copy = augment(windows, seed * 1_000_003 + chunk * 1_009 + k)
            versions.append(("augmented", f"#augment{k}", copy, 0 if around else context_samples))
        for source, suffix, waveforms, padding in versions:
            frames = embed_waveforms(base, waveforms, context_samples=padding)
            writer.add(
                StoreRecord(key + suffix, example.label, example.speaker, source, features)
                for key, example, features in zip(chunk_keys, decoded.examples, frames, strict=True)
            )
            written += len(frames)
    writer.add_skipped(skipped)
    return written, skipped


def embed_to_store(
    path: str | os.PathLike,
    examples: Sequence[AudioExample],
    *,
    base: AudioBase,
    identity: StoreIdentity,
    augment: Augment | None = None,
    augment_copies: int = 0,
    seed: int = 0,
    shuffle: bool = True,
) -> FeatureStore:
    """Make the store ``path`` of ``base``'s embeddings of ``examples`` (see :func:`write_examples`).

    Args:
        path: the store's folder, local or a URL (``gs://bucket/store``); replaced whole when it exists (see
            :class:`FeatureStoreWriter`).
        examples: the clips.
        base: the frozen base; ``identity`` should be :func:`store_identity` of it.
        identity: what the store holds.
        augment, augment_copies, seed: augmented copies, as :func:`write_examples` makes them.
        shuffle: write the examples in an order shuffled by ``seed`` (so that a bounded shuffle buffer
            mixes classes well), else in the order given.

    Returns:
        the finished store.

    Example:
        >>> identity = store_identity(base, base_name="speech_embedding", sample_rate=16000,
        ...                           clip_seconds=1.0, context_seconds=0.35)  # doctest: +SKIP
        >>> store = embed_to_store("store", data.examples, base=base, identity=identity)  # doctest: +SKIP
    """
    if shuffle:
        order = np.random.default_rng(seed).permutation(len(examples))
        examples = [examples[index] for index in order]
    with FeatureStoreWriter(path, identity=identity) as writer:
        write_examples(writer, examples, base=base, augment=augment, augment_copies=augment_copies, seed=seed)
    return writer.store


@functools.lru_cache(maxsize=4)
def _compiled_forward(base: AudioBase) -> Callable[[tf.Tensor], tf.Tensor]:
    """``base(waveforms)`` as one compiled function per base (retraced per clip length only); the last few
    bases' functions are kept, so that a worker embedding batch after batch traces once."""
    return tf.function(
        lambda clips: base(clips, training=False),
        input_signature=[tf.TensorSpec((None, None), tf.float32)],
        reduce_retracing=True,
    )

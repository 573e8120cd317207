"""The identity of a store of a base's embeddings, computed from the base itself."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from audio_transfer.bases import AudioBase
from audio_transfer.data import FeatureStore, StoreIdentity
from audio_transfer.data.decoded_clips import clip_samples_for
from audio_transfer.errors import StoreError
from audio_transfer.tasks import Task


def base_digest(base: AudioBase) -> str:
    """SHA-256 of the base's class, configuration and floating-point weights: it changes when anything that
    shapes the embeddings changes (a fine-tuned base gives another digest); the layer's name (Keras numbers
    a second instance ``name_1``) and integer variables (counters) are left out.

    Example:
        >>> base_digest(load_base("speech_embedding"))[:8]  # doctest: +SKIP
        '3f9a0c1e'
    """
    digest = hashlib.sha256()
    digest.update(type(base).__qualname__.encode())
    config = {key: value for key, value in base.get_config().items() if key != "name"}
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    for weight in base.weights:
        if "float" in str(weight.dtype):
            digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return digest.hexdigest()


def store_identity(
    base: AudioBase, *, base_name: str, sample_rate: int, clip_seconds: float, context_seconds: float
) -> StoreIdentity:
    """The :class:`~audio_transfer.data.StoreIdentity` of ``base``'s embeddings of ``clip_seconds`` clips
    with ``context_seconds`` of silence added at both ends (as :meth:`Task.with_context` adds).

    Args:
        base: the frozen base.
        base_name: its name as given to ``load_base`` (recorded; the digest is what is compared).
        sample_rate: rate in Hz clips are decoded at (the base's).
        clip_seconds: clip length before the context.
        context_seconds: silence at each end.

    Returns:
        an ``"embeddings"`` identity of shape ``(windows, embedding_dim)``.

    Example:
        >>> store_identity(base, base_name="speech_embedding", sample_rate=16000, clip_seconds=1.0,
        ...                context_seconds=0.35).shape  # doctest: +SKIP
        (15, 96)
    """
    samples = clip_samples_for(sample_rate=sample_rate, clip_seconds=clip_seconds)
    context_samples = round(context_seconds * sample_rate)
    return StoreIdentity(
        kind="embeddings",
        base=base_name,
        base_digest=base_digest(base),
        sample_rate=int(sample_rate),
        clip_seconds=float(clip_seconds),
        context_seconds=float(context_seconds),
        shape=(base.num_windows(samples + 2 * context_samples), base.embedding_dim),
    )


def check_store_for(task: Task, store: FeatureStore) -> None:
    """Refuse a store that does not hold ``task``'s frozen-base embeddings (with its context) of the store's
    clip length.

    Raises:
        StoreError: listing every field that differs (``base_digest``: another base or other weights).
    """
    expected = store_identity(
        task.base,
        base_name=store.identity.base,
        sample_rate=task.sample_rate,
        clip_seconds=store.identity.clip_seconds,
        context_seconds=task.context_seconds,
    )
    if store.identity != expected:
        raise StoreError(
            f"The feature store {store.path} does not hold the embeddings of {type(task).__name__}'s base "
            f"({'; '.join(store.identity.mismatches(expected))}). It was made with base "
            f"{store.identity.base!r}: train with that base (--base), or make the store with this task's "
            "base and context."
        )

"""Embedding datasets into feature stores: a frozen base's frame embeddings of every clip, written once
and streamed by training (see :mod:`audio_transfer.data.feature_store`).

Public API: :func:`store_identity` (the :class:`~audio_transfer.data.StoreIdentity` a base and settings
give) with :func:`base_digest` and :func:`check_store_for`, :func:`embed_waveforms` (one batch of waveforms
to embeddings, no I/O), :func:`example_key`, :func:`write_examples` and :func:`embed_to_store` (examples
decoded in bounded chunks into a store), :func:`window_embeddings` (every window of a long recording, as
the streaming detector hears it), :func:`write_negative_windows` and :func:`window_key`.
"""

from audio_transfer.embedding.base_identity import base_digest, check_store_for, store_identity
from audio_transfer.embedding.store_embedder import (
    embed_to_store,
    embed_waveforms,
    example_key,
    write_examples,
)
from audio_transfer.embedding.window_embeddings import window_embeddings, window_key, write_negative_windows

__all__ = [
    "base_digest",
    "check_store_for",
    "embed_to_store",
    "embed_waveforms",
    "example_key",
    "store_identity",
    "window_embeddings",
    "window_key",
    "write_examples",
    "write_negative_windows",
]

"""Verification trials from labelled embeddings: every unordered pair, scored by cosine similarity."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from audio_transfer.errors import ConfigError, InputShapeError

# Pairs scored per step of cosine_scores: bounds the temporary (pairs, dim) arrays to a few tens of MB.
_PAIRS_PER_CHUNK = 16384


def trial_pairs(labels: Sequence[Hashable] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every unordered pair of distinct items, and whether both items share a label.

    Args:
        labels: ``(num_items,)`` speaker (or class) of each item; any hashable values.

    Returns:
        ``(i, j, same)``: int64 index arrays with ``i < j`` over all ``num_items·(num_items − 1)/2`` pairs
        (row-major order) and a bool array, True where ``labels[i] == labels[j]``.
        The pairs grow quadratically: 5,000 items give 12.5 million trials (about 200 MB of indices).

    Raises:
        InputShapeError: ``labels`` is not one-dimensional.

    Example:
        >>> i, j, same = trial_pairs(["ann", "bob", "ann"])
        >>> i.tolist(), j.tolist(), same.tolist()
        ([0, 0, 1], [1, 2, 2], [False, True, False])
    """
    if isinstance(labels, np.ndarray) and labels.ndim != 1:
        raise InputShapeError(f"labels must be one-dimensional, received shape {labels.shape}.")
    codes: dict[Hashable, int] = {}
    label_codes = np.fromiter((codes.setdefault(label, len(codes)) for label in labels), dtype=np.int64)
    i, j = np.triu_indices(label_codes.size, k=1)
    return i.astype(np.int64), j.astype(np.int64), label_codes[i] == label_codes[j]


def cosine_scores(embeddings: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Cosine similarity of the embedding pairs ``(embeddings[i[k]], embeddings[j[k]])``.

    Args:
        embeddings: ``(num_items, embedding_dim)`` one embedding per item (need not be normalised).
        i, j: ``(num_pairs,)`` integer indices into ``embeddings``, e.g. from :func:`trial_pairs`.

    Returns:
        ``(num_pairs,)`` float64 scores in [-1, 1].

    Raises:
        InputShapeError: ``embeddings`` is not 2-D, or ``i`` and ``j`` differ in shape.
        ConfigError: an embedding is all zeros or holds NaN/Inf (its cosine is undefined), or an index is
            out of range.

    Example:
        >>> cosine_scores(np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([0]), np.array([1])).round(4)
        array([0.7071])
    """
    embeddings = np.asarray(embeddings, dtype=np.float64)
    i = np.asarray(i)
    j = np.asarray(j)
    if embeddings.ndim != 2:
        raise InputShapeError(
            f"embeddings must have shape (num_items, embedding_dim), received shape {embeddings.shape}."
        )
    if i.shape != j.shape or i.ndim != 1:
        raise InputShapeError(
            f"i and j must be one-dimensional and of equal length, received shapes {i.shape} and {j.shape}."
        )
    for name, index in (("i", i), ("j", j)):
        if index.size and (index.min() < 0 or index.max() >= len(embeddings)):
            raise ConfigError(f"{name} holds indices outside [0, {len(embeddings) - 1}].")
    norms = np.linalg.norm(embeddings, axis=1)
    bad = np.flatnonzero(~np.isfinite(norms) | (norms == 0))
    if bad.size:
        raise ConfigError(
            f"embeddings {bad[:10].tolist()} are all zeros or hold NaN/Inf, so their cosine similarity is "
            "undefined: check the clips behind them (silence, decoding errors)."
        )
    unit = embeddings / norms[:, None]
    scores = np.empty(i.size, dtype=np.float64)
    for start in range(0, i.size, _PAIRS_PER_CHUNK):
        stop = start + _PAIRS_PER_CHUNK
        scores[start:stop] = np.einsum("kd,kd->k", unit[i[start:stop]], unit[j[start:stop]])
    return np.clip(scores, -1.0, 1.0)

"""One example of a feature store: its metadata and its array."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class StoreRecord:
    """One example as a feature store writes it.

    Args:
        key: deterministic id of the example: the clip's path relative to its dataset (``/`` separators),
            plus ``#augment<k>`` for the ``k``-th augmented copy.
        label: class name.
        speaker: speaker id, or ``None`` when unknown.
        source: where the example comes from: ``"clean"``, ``"augmented"``, ...
        features: float32 array of the store's ``shape`` (frame embeddings, or a waveform).

    Example:
        >>> record = StoreRecord("yes/a_nohash_0.wav", "yes", "a", "clean", np.zeros((12, 96), np.float32))
    """

    key: str
    label: str
    speaker: str | None
    source: str
    features: np.ndarray

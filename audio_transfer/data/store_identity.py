"""What a feature store holds: the kind of arrays and the base and settings that made them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from audio_transfer.errors import StoreError

KINDS = ("embeddings", "waveforms")


@dataclasses.dataclass(frozen=True)
class StoreIdentity:
    """The identity of a feature store: two stores with equal identities hold interchangeable arrays.

    A reader compares the identity it expects (from the base and settings it will train with) with the one in
    the store's manifest (:meth:`mismatches`) and refuses a store made otherwise.

    Args:
        kind: ``"embeddings"`` (a frozen base's frame embeddings) or ``"waveforms"``.
        base: the base's name as given to ``load_base`` (``""`` for waveforms).
        base_digest: SHA-256 of the base's class, config and float weights (``""`` for waveforms).
        sample_rate: rate in Hz the clips were decoded at.
        clip_seconds: length of every clip before any context silence.
        context_seconds: silence added before each clip (the task's context) before the base ran.
        shape: shape of one example's array, e.g. ``(frames, embedding_dim)`` or ``(samples,)``.

    Example:
        >>> identity = StoreIdentity("embeddings", "speech_embedding", "ab12", 16000, 1.0, 0.0, (12, 96))
        >>> StoreIdentity.from_dict(identity.to_dict()) == identity
        True
    """

    kind: str
    base: str
    base_digest: str
    sample_rate: int
    clip_seconds: float
    context_seconds: float
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise StoreError(f"A store's kind is one of {list(KINDS)}, received {self.kind!r}.")
        object.__setattr__(self, "shape", tuple(int(size) for size in self.shape))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values, as the manifest stores them."""
        return {**dataclasses.asdict(self), "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StoreIdentity:
        """The identity :meth:`to_dict` wrote; StoreError naming the fields missing from ``data``."""
        names = [field.name for field in dataclasses.fields(cls)]
        missing = [name for name in names if name not in data]
        if missing:
            raise StoreError(
                f"A store identity lacks the fields {missing}; it was written by another version."
            )
        return cls(
            kind=str(data["kind"]),
            base=str(data["base"]),
            base_digest=str(data["base_digest"]),
            sample_rate=int(data["sample_rate"]),
            clip_seconds=float(data["clip_seconds"]),
            context_seconds=float(data["context_seconds"]),
            shape=tuple(data["shape"]),
        )

    def mismatches(self, other: StoreIdentity) -> list[str]:
        """One line per field that differs, this identity's value (the store's) first.

        Example:
            >>> store.identity.mismatches(expected)  # doctest: +SKIP
            ['sample_rate: store 8000, expected 16000']
        """
        return [
            f"{field.name}: store {getattr(self, field.name)!r}, expected {getattr(other, field.name)!r}"
            for field in dataclasses.fields(self)
            if getattr(self, field.name) != getattr(other, field.name)
        ]

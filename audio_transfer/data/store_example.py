"""The metadata of one example of a feature store (no array)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class StoreExample:
    """What a feature store's sidecars say about one example; its array stays on disk.

    Args:
        key: the example's key (see :class:`StoreRecord`).
        label: class name.
        speaker: speaker id, or ``None`` when unknown.
        source: ``"clean"``, ``"augmented"``, ...
        shard: file name of the shard holding it.
    """

    key: str
    label: str
    speaker: str | None
    source: str
    shard: str

    @property
    def split_key(self) -> str:
        """What splits hash: the speaker id when known, else the key without its ``#augment`` suffix (an
        augmented copy lands in its clip's split)."""
        return self.speaker or self.key.split("#", 1)[0]

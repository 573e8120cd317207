"""What a feature store's manifest says about one shard."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ShardInfo:
    """One shard file of a feature store.

    Args:
        file: the shard's file name (``shard-00003-of-00016.tfrecord``) inside the store.
        examples: how many records it holds.
        bytes: its size in bytes.
        sha256: hex SHA-256 of its content.
    """

    file: str
    examples: int
    bytes: int
    sha256: str

    def to_dict(self) -> dict[str, str | int]:
        return dataclasses.asdict(self)

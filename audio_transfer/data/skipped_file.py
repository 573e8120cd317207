"""A file a dataset operation left out, and why."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class SkippedFile:
    """A file left out of a dataset, with the reason (usually an AudioDecodeError's message).

    Args:
        path: the file, as found on disk or listed in the manifest.
        reason: why it was left out.
    """

    path: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)

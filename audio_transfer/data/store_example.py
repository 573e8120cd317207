"""The metadata of one example of a feature store (no array)."""

from __future__ import annotations

import dataclasses
import re

# The suffix of an augmented copy's key: ``<clip key>#augment<k>``.
_AUGMENT_SUFFIX = re.compile(r"#augment\d+$")


@dataclasses.dataclass(frozen=True, slots=True)
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
    def clip_key(self) -> str:
        """The key of the clip this example was made from: its own key, without the ``#augment<k>`` suffix
        of an augmented copy (a copy goes wherever its clip goes)."""
        return _AUGMENT_SUFFIX.sub("", self.key)

"""One keyword detection in a stream."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Detection:
    """A keyword that fired in long audio.

    Args:
        label: the keyword.
        start_seconds: start of the audio window whose smoothed score reached the threshold (the clip and
            its context on both sides), from the start of the audio; the keyword lies in the window.
        end_seconds: end of that window: when a device listening live would fire.
        score: the smoothed probability of ``label`` at that window.
    """

    label: str
    start_seconds: float
    end_seconds: float
    score: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

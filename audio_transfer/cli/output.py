"""What a CLI verb returns: data for ``--json`` and text for people."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class CommandResult:
    """The outcome of one verb.

    Args:
        data: JSON-serialisable object printed with ``--json``.
        text: human-readable rendering printed otherwise.
        exit_code: process exit status (0 on success).
    """

    data: dict[str, Any]
    text: str
    exit_code: int = 0

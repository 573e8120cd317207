"""What a CLI verb returns: data for ``--json`` and text for people."""

from __future__ import annotations

import dataclasses
from typing import Any

# Exit statuses of the command (README "Exit codes").
EXIT_OK = 0
EXIT_NO = 1  # the command worked and the answer is no: a rejected clip, no keyword found
EXIT_USAGE = 2  # a usage, configuration or data error the message says how to fix
EXIT_INTERNAL = 3  # an unexpected exception (a bug, or an environment the package did not foresee)
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report a SIGINT


@dataclasses.dataclass(frozen=True)
class CommandResult:
    """The outcome of one verb.

    Args:
        data: JSON-serialisable object printed with ``--json``.
        text: human-readable rendering printed otherwise.
        exit_code: process exit status: ``EXIT_OK``, or ``EXIT_NO`` when the answer is no.
    """

    data: dict[str, Any]
    text: str
    exit_code: int = EXIT_OK

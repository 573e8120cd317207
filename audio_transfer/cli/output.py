"""What a CLI verb returns: data for ``--json`` and text for people."""

from __future__ import annotations

import dataclasses
import re
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


# C0 and C1 control characters, DEL, and the Unicode bidirectional overrides that reorder what a terminal
# shows: data from files (labels in a model, file names) can hold them.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def terminal_safe(value: object, *, keep_newlines: bool = False) -> str:
    """``str(value)`` with every control character written as an escape, for text output to a terminal.

    A label or file name from an untrusted file cannot then clear the screen, set the window title, move the
    cursor back over a line (``\\r``) or, escaped newlines included, forge an extra output line. ``--json``
    output needs none of this: ``json.dumps`` escapes control characters itself.

    Args:
        value: the text (or anything ``str`` accepts).
        keep_newlines: leave ``\\n`` alone, for whole multi-line texts whose fields were escaped already.

    Example:
        >>> terminal_safe("yes\\x1b[2J\\nFAKE: yes (1.000)")
        'yes\\\\x1b[2J\\\\nFAKE: yes (1.000)'
    """
    pattern = _UNSAFE_BUT_NEWLINE if keep_newlines else _UNSAFE
    return pattern.sub(_escape, str(value))


def _escape(match: re.Match[str]) -> str:
    character = match.group()
    if character in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[character]
    code = ord(character)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"

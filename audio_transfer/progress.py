"""Progress of long steps: library loops report it, whoever installed a hook shows it.

The library never prints. A long loop (decoding, embedding, synthesis, detection, calibration) wraps its
iterable in :func:`track`, which reports to the hook installed with :func:`progress_hook`; with no hook
installed :func:`track` only yields the items. The ``audio-transfer`` command installs a hook that draws a
line on stderr.

Only the outermost tracked loop reports: a loop tracked inside another (detection inside a stream
evaluation) is part of the outer step.

Example:
    >>> def show(stage, done, total, finished):
    ...     print(stage, done, total, finished)
    >>> with progress_hook(show):
    ...     squares = [n * n for n in track(range(2), "Squaring")]
    Squaring 0 2 False
    Squaring 1 2 False
    Squaring 2 2 False
    Squaring 2 2 True
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

# hook(stage, done, total, finished): called with done=0 when a stage starts, after each item, and once
# with finished=True when it ends (total is None when the number of items is unknown).
ProgressHook = Callable[[str, int, "int | None", bool], None]

_Item = TypeVar("_Item")
_hook: ProgressHook | None = None
# The running tracked loop that reports (nested ones do not); a token, so that a loop left unfinished by
# an exception and closed later never silences the next one.
_reporting: object | None = None


def track(items: Iterable[_Item], stage: str, *, total: int | None = None) -> Iterator[_Item]:
    """Yield ``items``, reporting how many are done to the installed hook under the name ``stage``.

    Args:
        items: what the loop iterates over.
        stage: what the loop does, for people ("Decoding audio files").
        total: the number of items; ``None`` takes ``len(items)`` when it has one.
    """
    global _reporting
    hook = _hook
    if hook is None or _reporting is not None:
        yield from items
        return
    if total is None and hasattr(items, "__len__"):
        total = len(items)
    done = 0
    token = _reporting = object()
    try:
        hook(stage, done, total, False)
        for item in items:
            yield item
            done += 1
            hook(stage, done, total, False)
    finally:
        if _reporting is token:
            _reporting = None
            hook(stage, done, total, True)


@contextlib.contextmanager
def progress_hook(hook: ProgressHook | None) -> Iterator[None]:
    """Send the progress of :func:`track` loops to ``hook`` inside the ``with`` block (``None``: nowhere)."""
    global _hook, _reporting
    previous, _hook, _reporting = _hook, hook, None
    try:
        yield
    finally:
        _hook, _reporting = previous, None

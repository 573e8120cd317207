"""How the command shows :mod:`audio_transfer.progress` on stderr."""

from __future__ import annotations

import sys
import time

# Redraws of a terminal's progress line per second, at most.
_REDRAWS_PER_SECOND = 10


class ProgressLine:
    """A :data:`~audio_transfer.progress.ProgressHook` drawing on ``sys.stderr`` (looked up at each call).

    On a terminal: one line per stage, redrawn in place (``Embedding clips  45% (9/20)``) and ended when
    the stage ends. Elsewhere (a log file, a pipe): only one line when each stage starts.
    """

    def __init__(self) -> None:
        self._drawn = False
        self._last_draw = 0.0

    def __call__(self, stage: str, done: int, total: int | None, finished: bool) -> None:
        stream = sys.stderr
        if not stream.isatty():
            if done == 0 and not finished:
                print(f"{stage}...", file=stream, flush=True)
            return
        now = time.monotonic()
        if not (finished or done == 0 or now - self._last_draw >= 1 / _REDRAWS_PER_SECOND):
            return
        count = f"{done}" if not total else f"{100 * done // total:3d}% ({done}/{total})"
        stream.write(f"\r{stage}  {count}\x1b[K" + ("\n" if finished else ""))
        stream.flush()
        self._drawn, self._last_draw = not finished, now

    def clear(self) -> None:
        """Erase a line being redrawn, so that a log line can take its place (it is drawn again later)."""
        if self._drawn:
            sys.stderr.write("\r\x1b[K")
            self._drawn = False

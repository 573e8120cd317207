"""An advisory lock that keeps a second writer out of a run folder."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from types import TracebackType

from audio_transfer.errors import OutputError


class RunLock:
    """An exclusive advisory lock on the run folder ``path``, held by this process while it writes it.

    The lock is ``fcntl.flock`` on a hidden file beside the folder, ``.NAME.lock``, which records the
    holder's pid. The operating system releases it when the holder exits, however it exits, so a lock
    left by a killed process is simply taken over; the file itself stays, empty of meaning.

    Args:
        path: the run folder (it need not exist; its parent must).

    Raises:
        OutputError: on entering, when another process holds the lock (naming its pid) or the lock file
            cannot be created (the folder is not writable).

    Example:
        >>> with RunLock(Path("runs/kws")):  # doctest: +SKIP
        ...     write_the_run()
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.lock_path = self.path.parent / f".{self.path.name}.lock"
        self._descriptor: int | None = None

    def __enter__(self) -> RunLock:
        try:
            descriptor = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise OutputError(
                f"Cannot write the run folder {self.path}: {error}. Choose a writable --out."
            ) from error
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = _read_pid(descriptor)
            os.close(descriptor)
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise OutputError(f"Cannot lock the run folder {self.path}: {error}.") from error
            raise OutputError(
                f"Another process{'' if holder is None else f' (pid {holder})'} is writing the run folder "
                f"{self.path}; wait for it to finish or choose another --out."
            ) from None
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
        self._descriptor = descriptor
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)  # releases the lock
            self._descriptor = None


def _read_pid(descriptor: int) -> int | None:
    """The pid the lock file records, if it reads as one."""
    text = os.pread(descriptor, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None

"""Write files so that readers see the old content or the complete new one, never a partial file."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write`` on a temporary file beside ``path``, then rename it onto ``path``.

    The rename is atomic on POSIX and Windows when both are on one file system, which a sibling
    temporary file guarantees. On any error the temporary file is removed and ``path`` is left as it was.
    The new file keeps the permission bits of the file it replaces, or gets ``rw-r--r--`` when new
    (a temporary file is created private to the user). Temporaries of ``path`` left by dead processes
    are removed first (:func:`remove_stale_temporaries`).

    Args:
        path: destination file; its folder must exist.
        write: writes the whole content to the binary file object it receives.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        >>> atomic_write(run_dir / "notes.txt", lambda file: file.write(b"done\\n"))  # doctest: +SKIP
    """
    path = Path(path)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    remove_stale_temporaries(path)
    descriptor, temporary = tempfile.mkstemp(prefix=temporary_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


# A temporary of a process too old to name its pid is stale after this long.
_UNNAMED_STALE_SECONDS = 24 * 3600


def temporary_prefix(path: str | os.PathLike) -> str:
    """Name prefix of the temporaries this process makes beside ``path``: ``.NAME.PID.``.

    A temporary is ``.NAME.PID.RANDOM.tmp`` (a file, or a folder) in ``path``'s folder: on the same file
    system, so it is renamed into place atomically, and hidden; the pid says whose it is (see
    :func:`remove_stale_temporaries`).

    Example:
        >>> tempfile.mkdtemp(dir=out.parent, prefix=temporary_prefix(out), suffix=".tmp")  # doctest: +SKIP
    """
    return f".{Path(path).name}.{os.getpid()}."


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporaries of ``path`` (``.NAME.*.tmp`` siblings, files or folders) of dead processes.

    A killed writer leaves its temporary behind; the next write of the same ``path`` calls this. A
    temporary named by :func:`temporary_prefix` is stale when no process has its pid; one without a pid
    (from an older version) when it is over a day old. A live writer's temporary is never touched.
    Errors (a folder that cannot be listed, a race with another cleaner) are ignored.

    Returns:
        the temporaries removed.
    """
    path = Path(path)
    prefix = f".{path.name}."
    pattern = re.compile(rf"{re.escape(prefix)}(?:(\d+)\.)?[a-z0-9_]+\.tmp(?:\.[^.]+)?")
    try:
        with os.scandir(path.parent) as entries:  # names only: cheap in a folder of many files
            names = [entry.name for entry in entries if entry.name.startswith(prefix)]
    except OSError:
        return []
    removed = []
    for name in names:
        match = pattern.fullmatch(name)
        sibling = path.parent / name
        if match is None or not _is_stale(sibling, pid=match.group(1)):
            continue
        if sibling.is_dir() and not sibling.is_symlink():
            shutil.rmtree(sibling, ignore_errors=True)
        else:
            sibling.unlink(missing_ok=True)
        removed.append(sibling)
    return removed


@contextlib.contextmanager
def temporary_directory_beside(path: str | os.PathLike) -> Iterator[Path]:
    """An empty private folder ``.NAME.PID.RANDOM.tmp`` beside ``path`` for work files, removed on exit.

    Work files of a long write (a SavedModel staged for the TFLite converter) stay on the destination's
    file system instead of the system temporary folder, and a killed writer's are removed by the next
    write of ``path`` (:func:`remove_stale_temporaries`, called here first).

    Example:
        >>> with temporary_directory_beside(out) as folder:  # doctest: +SKIP
        ...     tf.saved_model.save(module, str(folder))
    """
    path = Path(path)
    remove_stale_temporaries(path)
    folder = Path(tempfile.mkdtemp(dir=path.parent, prefix=temporary_prefix(path), suffix=".tmp"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _is_stale(temporary: Path, *, pid: str | None) -> bool:
    if pid is None or os.name == "nt":  # Windows' os.kill would terminate the process, not probe it
        try:
            return time.time() - temporary.lstat().st_mtime > _UNNAMED_STALE_SECONDS
        except OSError:
            return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, ValueError):  # alive under another user, or not a pid
        return False
    return False

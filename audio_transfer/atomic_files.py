"""Write files so that readers see the old content or the complete new one, never a partial file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write`` on a temporary file beside ``path``, then rename it onto ``path``.

    The rename is atomic on POSIX and Windows when both are on one file system, which a sibling
    temporary file guarantees. On any error the temporary file is removed and ``path`` is left as it was.
    The new file keeps the permission bits of the file it replaces, or gets ``rw-r--r--`` when new
    (a temporary file is created private to the user).

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
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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

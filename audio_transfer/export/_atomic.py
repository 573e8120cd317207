"""Atomic outputs: a temporary sibling first, then ``os.replace``, so PATH is either the old or the new
output and never a half-written one (a killed process leaves at most a hidden ``.tmp`` sibling)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from audio_transfer.atomic_files import atomic_write, remove_stale_temporaries, temporary_prefix
from audio_transfer.errors import ExportError


def check_output_path(path: Path, *, directory: bool) -> None:
    """Fail early, before a long conversion, when ``path`` cannot be written.

    Args:
        path: the file (``directory=False``) or directory (``directory=True``) to be written.
        directory: whether the output is a directory (SavedModel) rather than a file.
    """
    parent = path.parent
    if not parent.is_dir():
        raise ExportError(f"Cannot write {path}: the folder {parent} does not exist; create it first.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"Cannot write {path}: the folder {parent} is not writable; choose another --out.")
    if path.exists() and path.is_dir() != directory:
        kind = "a directory" if path.is_dir() else "a file"
        raise ExportError(f"Cannot write {path}: it exists and is {kind}; remove it or choose another --out.")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with :func:`~audio_transfer.atomic_files.atomic_write`; ``ExportError``
    when the file system refuses."""
    try:
        atomic_write(path, lambda file: file.write(data))
    except OSError as error:
        raise ExportError(f"Cannot write {path}: {error}. Choose a writable --out.") from error


@contextlib.contextmanager
def directory_atomic(path: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it replaces ``path`` (a directory).

    An existing directory at ``path`` is moved aside first and deleted only once the new one is in place.
    On any error the temporary folder is removed and ``path`` is left as it was. Temporaries of ``path``
    left by dead processes are removed first.
    """
    remove_stale_temporaries(path)
    try:
        temporary = Path(tempfile.mkdtemp(dir=path.parent, prefix=temporary_prefix(path), suffix=".tmp"))
    except OSError as error:
        raise ExportError(f"Cannot write {path}: {error}. Choose a writable --out.") from error
    try:
        yield temporary
        os.chmod(temporary, 0o755)  # mkdtemp makes it private to the user
        _replace_directory(temporary, path)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _replace_directory(source: Path, path: Path) -> None:
    """Rename ``source`` to ``path``; an existing ``path`` is kept aside until the rename succeeded."""
    try:
        if not path.exists():
            os.replace(source, path)
            return
        aside = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
        os.replace(path, aside / path.name)
        try:
            os.replace(source, path)
        except OSError:
            os.replace(aside / path.name, path)
            aside.rmdir()
            raise
        shutil.rmtree(aside, ignore_errors=True)
    except OSError as error:
        raise ExportError(f"Cannot write {path}: {error}. Choose a writable --out.") from error

"""Write files and folders so that readers see the old content or the complete new one, never a partial one.

Every file audio_transfer writes goes through this module: bytes, text, JSON, PNG figures, files a library
writes by name (Keras ``model.save``) and whole folders (SavedModel). Each is written to a temporary sibling
first and then renamed onto the destination, which is atomic on POSIX and Windows when both are on one file
system (a sibling guarantees it). On any error the temporary is removed and the destination is left as it
was; a killed process leaves at most a hidden ``.tmp`` sibling. A new file gets ``rw-r--r--`` (a replaced
one keeps its permission bits) and a new folder ``rwxr-xr-x``.

When the file system refuses (missing folder, no permission, disk full) the functions raise ``error``, an
:class:`~audio_transfer.errors.OutputError` by default, naming the path and what to do. Callers with their
own error type pass a subclass, e.g. export's
:class:`~audio_transfer.errors.ExportOutputError`, which is also an ``ExportError``.

Example::

    write_json(run_dir / "metrics.json", {"accuracy": np.float32(0.9)})
    write_figure(run_dir / "det_curve.png", figure)
    with atomic_file(run_dir / "model.keras") as temporary:
        model.save(temporary)
    with atomic_directory(out / "saved_model") as folder:
        tf.saved_model.save(module, str(folder))
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from audio_transfer.errors import ConfigError, OutputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_FILE_MODE = 0o644
_DIRECTORY_MODE = 0o755


def atomic_write(
    path: str | os.PathLike, write: Callable[[BinaryIO], object], *, error: type[OutputError] = OutputError
) -> Path:
    """Call ``write`` on a temporary file beside ``path``, then rename it onto ``path``.

    Temporaries of ``path`` that dead processes left are removed first (:func:`remove_stale_temporaries`).

    Args:
        path: destination file; its folder must exist.
        write: writes the whole content to the binary file object it receives.
        error: raised (from the ``OSError``) when the file system refuses.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        >>> atomic_write(run_dir / "cache.npy", lambda file: np.save(file, frames))  # doctest: +SKIP
    """
    path = Path(path)
    with _refused_as(error, path):
        mode = path.stat().st_mode & 0o777 if path.exists() else _FILE_MODE
        remove_stale_temporaries(path)
        descriptor, temporary = tempfile.mkstemp(
            prefix=temporary_prefix(path), suffix=".tmp", dir=path.parent
        )
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


def write_bytes(path: str | os.PathLike, data: bytes, *, error: type[OutputError] = OutputError) -> Path:
    """Replace ``path`` atomically with ``data``; returns ``path``."""
    return atomic_write(path, lambda file: file.write(data), error=error)


def write_text(path: str | os.PathLike, text: str, *, error: type[OutputError] = OutputError) -> Path:
    """Replace ``path`` atomically with ``text`` encoded as UTF-8; returns ``path``."""
    return write_bytes(path, text.encode("utf-8"), error=error)


def write_json(
    path: str | os.PathLike,
    data: Mapping[str, Any],
    *,
    name: str = "data",
    error: type[OutputError] = OutputError,
) -> Path:
    """Replace ``path`` atomically with ``data`` as strict, indented JSON (see :func:`json_text`)."""
    return write_text(path, json_text(data, name=name), error=error)


def json_text(data: Mapping[str, Any], *, name: str = "data") -> str:
    """``data`` as strict JSON indented by two spaces, ending with a newline.

    NumPy numbers and arrays, tuples and paths become JSON types and NaN or infinite floats ``null``.
    Below the top level, containers of plain values (a matrix row, one class's metrics) stay on one line.

    Raises:
        ConfigError: ``data`` holds a value JSON cannot represent; the message names it as ``name[key]``.
    """
    return _to_json(_json_ready(data, name)) + "\n"


def write_figure(
    path: str | os.PathLike, figure: Figure, *, dpi: int = 100, error: type[OutputError] = OutputError
) -> Path:
    """Replace ``path`` atomically with ``figure`` (a matplotlib figure) as a PNG image; returns ``path``."""
    return atomic_write(path, lambda file: figure.savefig(file, format="png", dpi=dpi), error=error)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, *, error: type[OutputError] = OutputError) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix) for a writer that wants a file name; on success
    it replaces ``path``. For writers such as Keras ``model.save`` that open the file themselves.

    Example:
        >>> with atomic_file(run_dir / "model.keras") as temporary:  # doctest: +SKIP
        ...     model.save(temporary)
    """
    path = Path(path)
    with _refused_as(error, path):
        mode = path.stat().st_mode & 0o777 if path.exists() else _FILE_MODE
        remove_stale_temporaries(path)
        descriptor, name = tempfile.mkstemp(
            prefix=temporary_prefix(path), suffix=f".tmp{path.suffix}", dir=path.parent
        )
        os.close(descriptor)
    temporary = Path(name)
    try:
        yield temporary
        with _refused_as(error, path):
            os.chmod(temporary, mode)
            os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, *, error: type[OutputError] = OutputError) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it replaces the folder ``path``.

    An existing folder at ``path`` is moved aside first and deleted only once the new one is in place; if
    the rename fails it is moved back.

    Example:
        >>> with atomic_directory(out / "saved_model") as folder:  # doctest: +SKIP
        ...     tf.saved_model.save(module, str(folder))
    """
    path = Path(path)
    temporary = temporary_directory(path, error=error)
    try:
        yield temporary
        replace_directory(temporary, path, error=error)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def temporary_directory(path: str | os.PathLike, *, error: type[OutputError] = OutputError) -> Path:
    """A new empty hidden folder beside ``path`` (``.NAME.PID.RANDOM.tmp``, see :func:`temporary_prefix`)
    to build its replacement in; the caller removes it."""
    path = Path(path)
    with _refused_as(error, path):
        remove_stale_temporaries(path)
        return Path(tempfile.mkdtemp(dir=path.parent, prefix=temporary_prefix(path), suffix=".tmp"))


def replace_directory(
    source: str | os.PathLike, path: str | os.PathLike, *, error: type[OutputError] = OutputError
) -> None:
    """Rename the folder ``source`` onto ``path`` (same file system). An existing folder at ``path`` is
    moved aside first and deleted only once ``source`` is in place; if that rename fails, or is
    interrupted, it is moved back."""
    source, path = Path(source), Path(path)
    with _refused_as(error, path):
        os.chmod(source, _DIRECTORY_MODE)  # mkdtemp makes it private to the user
        _replace_directory(source, path)


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
    write of ``path`` (:func:`remove_stale_temporaries`).

    Example:
        >>> with temporary_directory_beside(out) as folder:  # doctest: +SKIP
        ...     tf.saved_model.save(module, str(folder))
    """
    folder = temporary_directory(path)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_writable(
    path: str | os.PathLike, *, directory: bool, error: type[OutputError] = OutputError
) -> None:
    """Fail early, before a long computation, when ``path`` cannot be written.

    Args:
        path: the file (``directory=False``) or folder (``directory=True``) to be written.
        directory: whether the output is a folder (SavedModel) rather than a file.
        error: raised when ``path`` cannot be written.
    """
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        raise error(f"Cannot write {path}: the folder {parent} does not exist; create it first.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise error(f"Cannot write {path}: the folder {parent} is not writable; choose another path.")
    if path.exists() and path.is_dir() != directory:
        kind = "a directory" if path.is_dir() else "a file"
        raise error(f"Cannot write {path}: it exists and is {kind}; remove it or choose another path.")


def writable_folder(path: str | os.PathLike, *, error: type[OutputError] = OutputError) -> Path:
    """Create the folder ``path`` (and its parents) if needed and check that files can be written in it,
    before a long computation that will write there.

    Raises:
        error: ``path`` is a file, cannot be created, or is not writable.
    """
    path = Path(path)
    with _refused_as(error, path):
        path.mkdir(parents=True, exist_ok=True)
    check_writable(path / ".write-check", directory=False, error=error)
    return path


@contextlib.contextmanager
def _refused_as(error: type[OutputError], path: Path) -> Iterator[None]:
    """Re-raise an ``OSError`` of the block as ``error`` naming ``path``."""
    try:
        yield
    except OutputError:
        raise
    except OSError as refused:
        raise error(
            f"Cannot write {path}: {refused}. Check that its folder exists and is writable and that the disk "
            "has space, or choose another path."
        ) from refused


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


def _replace_directory(source: Path, path: Path) -> None:
    """Rename ``source`` to ``path``; an existing ``path`` is kept aside until the rename succeeded."""
    if not path.exists():
        os.replace(source, path)
        return
    aside = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
    try:
        os.replace(path, aside / path.name)
    except BaseException:
        aside.rmdir()
        raise
    try:
        os.replace(source, path)
    except BaseException:  # an interruption too: the older folder goes back in place
        os.replace(aside / path.name, path)
        aside.rmdir()
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _json_ready(value: Any, where: str) -> Any:
    """``value`` with NumPy types, tuples and paths made JSON types and non-finite floats made None."""
    if isinstance(value, Mapping):
        return {str(key): _json_ready(item, f"{where}[{key!r}]") for key, item in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_ready(item, f"{where}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, (str, int)):
        return value
    raise ConfigError(f"{where} holds a {type(value).__name__}, which JSON cannot represent: {value!r}.")


def _to_json(value: Any, indent: str = "") -> str:
    """Strict JSON indented by two spaces; below the top level, containers of plain values stay on one
    line."""
    inner = indent + "  "
    if isinstance(value, dict) and (not indent or any(isinstance(v, (dict, list)) for v in value.values())):
        items = (f"{inner}{json.dumps(key)}: {_to_json(item, inner)}" for key, item in value.items())
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
        return "[\n" + ",\n".join(inner + _to_json(item, inner) for item in value) + f"\n{indent}]"
    return json.dumps(value, allow_nan=False)

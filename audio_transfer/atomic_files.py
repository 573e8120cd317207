"""Write files and folders so that readers see the old content or the complete new one, never a partial one.

Every file audio_transfer writes goes through this module: bytes, text, JSON, PNG figures, files a library
writes by name (Keras ``model.save``) and whole folders (SavedModel). Each is written to a temporary sibling
first and then renamed onto the destination, which is atomic on POSIX and Windows when both are on one file
system (a sibling guarantees it). On any error the temporary is removed and the destination is left as it
was; a killed process leaves at most a hidden ``.tmp`` sibling. A new file gets ``rw-r--r--`` (a replaced
one keeps its permission bits) and a new folder ``rwxr-xr-x``.

A path may also be a URL (``gs://bucket/store``, ``s3://``, ``hdfs://``, TensorFlow's in-process ``ram://``):
:func:`is_url` tells which. URLs are written through ``tf.io.gfile`` (TensorFlow is imported only then), to a
temporary object ``.NAME.PID.RANDOM.tmp`` in the same folder renamed onto the destination with
``tf.io.gfile.rename(..., overwrite=True)``: an object store shows an object whole or not at all, so readers
see the old object or the new one. ``gs://`` is built into TensorFlow; ``s3://`` and others need
``tensorflow-io`` installed. Local paths never go through ``tf.io.gfile``.

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
import posixpath
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
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
) -> Path | str:
    """Call ``write`` on a temporary file beside ``path``, then rename it onto ``path``.

    Temporaries of ``path`` that dead processes left are removed first (:func:`remove_stale_temporaries`).

    Args:
        path: destination file; its folder must exist. A URL (:func:`is_url`) is written through
            ``tf.io.gfile``: a temporary object in the same folder, renamed onto ``path``.
        write: writes the whole content to the binary file object it receives.
        error: raised (from the ``OSError``, or TensorFlow's error for a URL) when the file system refuses.

    Returns:
        ``path`` as a :class:`~pathlib.Path` (a URL: as the string given).

    Example:
        >>> atomic_write(run_dir / "cache.npy", lambda file: np.save(file, frames))  # doctest: +SKIP
    """
    if is_url(path):
        return _write_url(os.fspath(path), write, error=error)
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


def write_bytes(
    path: str | os.PathLike, data: bytes, *, error: type[OutputError] = OutputError
) -> Path | str:
    """Replace ``path`` atomically with ``data``; returns ``path``."""
    return atomic_write(path, lambda file: file.write(data), error=error)


def write_text(path: str | os.PathLike, text: str, *, error: type[OutputError] = OutputError) -> Path | str:
    """Replace ``path`` atomically with ``text`` encoded as UTF-8; returns ``path``."""
    return write_bytes(path, text.encode("utf-8"), error=error)


def write_json(
    path: str | os.PathLike,
    data: Mapping[str, Any],
    *,
    name: str = "data",
    error: type[OutputError] = OutputError,
) -> Path | str:
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
def atomic_file(path: str | os.PathLike, *, error: type[OutputError] = OutputError) -> Iterator[Path | str]:
    """Yield a temporary path beside ``path`` (same suffix) for a writer that wants a file name; on success
    it replaces ``path``. For writers such as Keras ``model.save`` that open the file themselves.

    For a URL ``path`` the temporary is a URL in the same folder (for writers that take ``tf.io.gfile``
    URLs, such as ``tf.io.TFRecordWriter``), renamed onto ``path`` with ``tf.io.gfile.rename``; on an
    object store the object appears whole or not at all.

    Example:
        >>> with atomic_file(run_dir / "model.keras") as temporary:  # doctest: +SKIP
        ...     model.save(temporary)
    """
    if is_url(path):
        path = os.fspath(path)
        temporary_url = _url_temporary(path)
        try:
            yield temporary_url
            with _url_refused_as(error, path):
                _gfile().rename(temporary_url, path, overwrite=True)
        finally:
            _remove_url(temporary_url)
        return
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
        remove_directory(temporary)


def temporary_directory(path: str | os.PathLike, *, error: type[OutputError] = OutputError) -> Path | str:
    """A new empty hidden folder beside ``path`` (``.NAME.PID.RANDOM.tmp``, see :func:`temporary_prefix`)
    to build its replacement in; the caller removes it (:func:`remove_directory`). A URL's is a URL."""
    if is_url(path):
        folder = _url_temporary(os.fspath(path), suffix="")
        with _url_refused_as(error, folder):
            _gfile().makedirs(folder)
        return folder
    path = Path(path)
    with _refused_as(error, path):
        remove_stale_temporaries(path)
        return Path(tempfile.mkdtemp(dir=path.parent, prefix=temporary_prefix(path), suffix=".tmp"))


def replace_directory(
    source: str | os.PathLike,
    path: str | os.PathLike,
    *,
    last: Collection[str] = (),
    error: type[OutputError] = OutputError,
) -> None:
    """Rename the folder ``source`` onto ``path`` (same file system). An existing folder at ``path`` is
    moved aside first and deleted only once ``source`` is in place; if that rename fails, or is
    interrupted, it is moved back.

    A folder on an object store (a URL) is a set of objects and cannot be renamed at once: the objects of
    an existing ``path`` are deleted, then ``source``'s are renamed into ``path`` one by one, the files
    named in ``last`` after all the others, so a reader that waits for such a file (a feature store's
    ``manifest.json``) never takes a partial folder for a complete one.

    Args:
        source, path: the new folder and its destination.
        last: names of files in ``source`` moved after the others (URLs only; a local rename is atomic).
        error: raised when the file system refuses.
    """
    if is_url(path):
        _replace_url_directory(os.fspath(source), os.fspath(path), last=last, error=error)
        return
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

    URLs are skipped: whether another machine's writer is alive cannot be told, so a killed writer's
    temporary object (hidden, never read) stays until removed by hand.

    Returns:
        the temporaries removed.
    """
    if is_url(path):
        return []
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
        remove_directory(folder)


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


def writable_folder(path: str | os.PathLike, *, error: type[OutputError] = OutputError) -> Path | str:
    """Create the folder ``path`` (and its parents) if needed and check that files can be written in it,
    before a long computation that will write there.

    A URL folder is checked by writing and removing an empty object ``.write-check.PID.tmp`` in it (an
    object store has no folders to create: that object's write is what needs the permission).

    Raises:
        error: ``path`` is a file, cannot be created, or is not writable.
    """
    if is_url(path):
        path = os.fspath(path)
        probe = join_path(path, f".write-check.{os.getpid()}.tmp")
        with _url_refused_as(error, path):
            _gfile().makedirs(path)
        write_bytes(probe, b"", error=error)
        remove_file(probe)
        return path
    path = Path(path)
    with _refused_as(error, path):
        path.mkdir(parents=True, exist_ok=True)
    check_writable(path / ".write-check", directory=False, error=error)
    return path


# A URL: a scheme, then "://" (gs://bucket/key, s3://, hdfs://host/path, ram://...).
_URL_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a URL (``gs://bucket/store``, ``s3://``, ``hdfs://``, ``ram://``), which this
    module writes through ``tf.io.gfile``, rather than a local path.

    Example:
        >>> is_url("gs://bucket/store"), is_url("runs/store")
        (True, False)
    """
    return _URL_PATTERN.match(os.fspath(path)) is not None


def join_path(folder: str | os.PathLike, *names: str) -> Path | str:
    """``folder/name/...``: a :class:`~pathlib.Path` for a local folder, a string for a URL (``Path`` would
    fold its ``//``).

    Example:
        >>> join_path("gs://bucket/store/", "manifest.json")
        'gs://bucket/store/manifest.json'
    """
    if is_url(folder):
        return "/".join([os.fspath(folder).rstrip("/"), *names])
    return Path(folder).joinpath(*names)


def replace_file(
    source: str | os.PathLike, path: str | os.PathLike, *, error: type[OutputError] = OutputError
) -> None:
    """Rename the file ``source`` onto ``path`` (same folder or file system), replacing it: ``os.replace``,
    or ``tf.io.gfile.rename`` for URLs (a server-side copy on object stores; ``path`` appears whole)."""
    if is_url(path):
        with _url_refused_as(error, os.fspath(path)):
            _gfile().rename(os.fspath(source), os.fspath(path), overwrite=True)
        return
    with _refused_as(error, Path(path)):
        os.replace(source, path)


def link_or_copy(
    source: str | os.PathLike, path: str | os.PathLike, *, error: type[OutputError] = OutputError
) -> None:
    """Make ``path`` (a new file in a staging folder) hold the bytes of ``source`` without rewriting them
    where possible: a hard link on a local file system, a copy across file systems, ``tf.io.gfile.copy`` for
    URLs (a server-side copy on object stores)."""
    if is_url(source) or is_url(path):
        with _url_refused_as(error, os.fspath(path)):
            _gfile().copy(os.fspath(source), os.fspath(path), overwrite=True)
        return
    with _refused_as(error, Path(path)):
        try:
            os.link(source, path)
        except OSError:
            shutil.copyfile(source, path)


def remove_file(path: str | os.PathLike, *, error: type[OutputError] = OutputError) -> None:
    """Delete the file ``path`` (local or a URL) if it is there."""
    if is_url(path):
        with _url_refused_as(error, os.fspath(path)):
            _remove_url(os.fspath(path))
        return
    with _refused_as(error, Path(path)):
        Path(path).unlink(missing_ok=True)


def remove_directory(path: str | os.PathLike) -> None:
    """Delete the folder ``path`` (local or a URL) and everything in it, ignoring errors: for cleaning up
    temporaries."""
    if not is_url(path):
        shutil.rmtree(path, ignore_errors=True)
        return
    import tensorflow as tf

    with contextlib.suppress(tf.errors.OpError):
        tf.io.gfile.rmtree(os.fspath(path))


def _gfile():
    """``tf.io.gfile``, imported when a URL is first written (local writes never import TensorFlow)."""
    import tensorflow as tf

    return tf.io.gfile


def _url_temporary(path: str, *, suffix: str | None = None) -> str:
    """A new temporary name ``.NAME.PID.RANDOM.tmp`` (plus ``path``'s suffix, or ``suffix``) in the folder of
    the URL ``path``: the same bucket and folder, so the rename is server-side."""
    folder, name = path.rstrip("/").rsplit("/", 1)
    ending = posixpath.splitext(name)[1] if suffix is None else suffix
    return f"{folder}/{temporary_prefix(name)}{uuid.uuid4().hex[:12]}.tmp{ending}"


def _remove_url(path: str) -> None:
    """Delete the object ``path`` if it is there."""
    import tensorflow as tf

    with contextlib.suppress(tf.errors.NotFoundError):
        tf.io.gfile.remove(path)


def _write_url(path: str, write: Callable[[BinaryIO], object], *, error: type[OutputError]) -> str:
    """:func:`atomic_write` of a URL: ``write`` into a temporary object of ``path``'s folder, renamed onto
    ``path`` (an object store shows the whole object or none)."""
    temporary = _url_temporary(path)
    with _url_refused_as(error, path):
        try:
            with _gfile().GFile(temporary, "wb") as file:
                write(file)
            _gfile().rename(temporary, path, overwrite=True)
        finally:
            _remove_url(temporary)
    return path


def _replace_url_directory(
    source: str, path: str, *, last: Collection[str], error: type[OutputError]
) -> None:
    """:func:`replace_directory` of URLs: delete ``path``'s objects, move ``source``'s one by one (``last``
    at the end), then delete ``source``."""
    gfile = _gfile()
    with _url_refused_as(error, path):
        if gfile.exists(path):
            gfile.rmtree(path)
        gfile.makedirs(path)
        names = sorted(_url_files(source), key=lambda name: (name in last, name))
        for name in names:
            if "/" in name:
                gfile.makedirs(join_path(path, posixpath.dirname(name)))
            gfile.rename(join_path(source, name), join_path(path, name), overwrite=True)
    remove_directory(source)


def _url_files(folder: str, prefix: str = "") -> list[str]:
    """The files below the URL ``folder``, as paths relative to it."""
    gfile = _gfile()
    files = []
    for entry in gfile.listdir(folder):
        name = entry.rstrip("/")
        if gfile.isdir(join_path(folder, name)):
            files += _url_files(join_path(folder, name), f"{prefix}{name}/")
        else:
            files.append(prefix + name)
    return files


@contextlib.contextmanager
def _url_refused_as(error: type[OutputError], path: str) -> Iterator[None]:
    """Re-raise TensorFlow's file-system error (or an ``OSError``) of the block as ``error`` naming the
    URL ``path``."""
    import tensorflow as tf

    try:
        yield
    except OutputError:
        raise
    except (tf.errors.OpError, OSError) as refused:
        reason = refused.message if isinstance(refused, tf.errors.OpError) else str(refused)
        raise error(
            f"Cannot write {path}: {reason or type(refused).__name__}. Check the URL, that this machine has "
            "credentials to write there and, for schemes other than gs://, that tensorflow-io is installed."
        ) from refused


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

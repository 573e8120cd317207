"""Find the folder of a TF Hub model without importing ``tensorflow_hub``.

``tensorflow_hub`` imports ``tf_keras`` (Keras 2) at import time, which audio_transfer does not depend on,
so handles are resolved here, in this order:

1. the handle is a local directory (an unpacked model);
2. the handle was downloaded before by ``tensorflow_hub``: its cache keeps each model in
   ``<cache dir>/<sha1 hex of the handle string>`` (``tensorflow_hub/compressed_module_resolver.py``, 0.16),
   where the cache dir is ``$TFHUB_CACHE_DIR`` or else ``<system temp dir>/tfhub_modules``;
3. ``tensorflow_hub.resolve(handle)`` downloads it, only when ``tensorflow_hub`` is installed (the ``hub``
   extra: ``pip install 'audio-transfer[hub]'``) and the network is reachable.

Example:
    >>> resolve_hub_handle("https://tfhub.dev/google/yamnet/1")  # doctest: +SKIP
    PosixPath('/tmp/tfhub_modules/9616fd04ec2360621642ef9455b84f4b668e219e')
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import tempfile
from pathlib import Path

from audio_transfer.errors import BaseNotFoundError

logger = logging.getLogger(__name__)

CACHE_DIR_VARIABLE = "TFHUB_CACHE_DIR"


def hub_cache_dirs() -> list[Path]:
    """Cache folders searched, in order: ``$TFHUB_CACHE_DIR`` when set, then ``<temp dir>/tfhub_modules``."""
    folders = []
    if os.environ.get(CACHE_DIR_VARIABLE):
        folders.append(Path(os.environ[CACHE_DIR_VARIABLE]).expanduser())
    folders.append(Path(tempfile.gettempdir()) / "tfhub_modules")
    return folders


def hub_cache_path(handle: str, cache_dir: Path) -> Path:
    """Where ``tensorflow_hub`` keeps the download of ``handle`` inside ``cache_dir``."""
    return cache_dir / hashlib.sha1(handle.encode("utf8")).hexdigest()


def is_saved_model_dir(path: Path) -> bool:
    """Whether ``path`` is a folder holding a SavedModel (``saved_model.pb`` or ``.pbtxt``)."""
    return (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file()


def resolve_hub_handle(handle: str) -> Path:
    """Local folder of the SavedModel behind a TF Hub handle, a URL, or a local path.

    Args:
        handle: a TF Hub / Kaggle URL such as ``https://tfhub.dev/google/yamnet/1``, or a directory.

    Returns:
        The folder holding ``saved_model.pb``.

    Raises:
        BaseNotFoundError: the handle is neither a SavedModel folder nor cached, and ``tensorflow_hub`` is not
            installed or cannot download it. The message lists every place searched and how to supply the
            model.
    """
    searched = []
    if "://" not in handle:
        local = Path(handle).expanduser()
        if local.is_dir():
            if is_saved_model_dir(local):
                return local
            raise BaseNotFoundError(
                f"{str(local)!r} is a directory but holds no saved_model.pb: unpack the model's archive so "
                f"that saved_model.pb and variables/ sit directly inside it, and pass that directory."
            )
        searched.append(f"a local directory {str(local)!r}")
    for cache_dir in hub_cache_dirs():
        cached = hub_cache_path(handle, cache_dir)
        if is_saved_model_dir(cached):
            logger.info("Hub handle %s found in the cache at %s", handle, cached)
            return cached
        searched.append(f"the tensorflow_hub cache entry {str(cached)!r}")
    download_problem = _download_with_tensorflow_hub(handle)
    if isinstance(download_problem, Path):
        return download_problem
    cache_entry = hub_cache_path(handle, hub_cache_dirs()[0])
    raise BaseNotFoundError(
        f"Cannot find the hub model {handle!r} offline. Looked for {'; '.join(searched)}; "
        f"{download_problem}. To supply it: on a machine with network run `TFHUB_CACHE_DIR=<dir> python -c "
        f"\"import tensorflow_hub as hub; hub.resolve('{handle}')\"`, copy <dir> to this machine and set "
        f"TFHUB_CACHE_DIR=<dir> (the model sits in <dir>/{cache_entry.name}/, e.g. {str(cache_entry)!r}); or "
        f"unpack the model's .tar.gz into a directory and load 'hub:<directory>'; or, with network, install "
        f"the hub extra (pip install 'audio-transfer[hub]') to download it."
    )


def _download_with_tensorflow_hub(handle: str) -> Path | str:
    """The folder ``tensorflow_hub.resolve`` returns, or why that was not possible."""
    try:
        tensorflow_hub = importlib.import_module("tensorflow_hub")
    except ImportError as error:
        return f"tensorflow_hub cannot be imported to download it ({error})"
    try:
        path = Path(tensorflow_hub.resolve(handle))
    except Exception as error:  # tensorflow_hub raises IOError, ValueError, URLError, tf errors...
        return f"tensorflow_hub.resolve failed: {type(error).__name__}: {error}"
    if not is_saved_model_dir(path):
        return f"tensorflow_hub.resolve returned {str(path)!r}, which holds no saved_model.pb"
    return path

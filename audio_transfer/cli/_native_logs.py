"""Keep TensorFlow's C++ start-up lines (oneDNN, cudart, cuInit, CPU instructions) off the user's terminal.

They are written by TensorFlow's shared libraries straight to file descriptor 2 while ``import tensorflow``
runs, before any Python logging is set up, and say nothing a user of the command can act on. The verbs
import TensorFlow lazily, so the CLI installs this before parsing and the first import is silenced.
``--verbose`` leaves them alone, and so does a ``TF_CPP_MIN_LOG_LEVEL`` the user set.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import sys
from collections.abc import Iterator

_LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
# TensorFlow's C++ log threshold: 3 keeps INFO, WARNING and ERROR lines (a failed cuInit on a machine
# without a GPU is one) off stderr; failures that matter reach Python as exceptions.
_QUIET_LEVEL = "3"


def quiet_tensorflow_startup(*, verbose: bool) -> None:
    """Silence TensorFlow's native start-up output unless ``verbose`` or the user chose a log level."""
    if verbose or _LOG_LEVEL in os.environ or "tensorflow" in sys.modules:
        return
    os.environ[_LOG_LEVEL] = _QUIET_LEVEL
    if not any(isinstance(finder, _QuietImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` with the other finders and runs its import with file descriptor 2 discarded."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: later imports are plain
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    """Wraps a loader: ``exec_module`` runs with native stderr discarded; everything else is the loader's."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        with _native_stderr_discarded():
            self._loader.exec_module(module)

    def __getattr__(self, name: str):
        return getattr(self._loader, name)


@contextlib.contextmanager
def _native_stderr_discarded() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)

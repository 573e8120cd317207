"""Load a task saved as ``.keras``, importing the audio_transfer modules its layers come from."""

from __future__ import annotations

import importlib
import json
import os
import zipfile
from pathlib import Path

import keras

from audio_transfer.errors import BaseNotFoundError, ConfigError
from audio_transfer.tasks.task import Task

_PACKAGE = "audio_transfer"


def _modules_named(config) -> set[str]:
    """Every ``module`` of an audio_transfer class in a Keras config tree."""
    found = set()
    if isinstance(config, dict):
        module = config.get("module")
        if isinstance(module, str) and (module == _PACKAGE or module.startswith(f"{_PACKAGE}.")):
            found.add(module)
        for value in config.values():
            found |= _modules_named(value)
    elif isinstance(config, list):
        for value in config:
            found |= _modules_named(value)
    return found


def _import_modules(config: dict) -> None:
    """Import the audio_transfer modules a saved config names, so that Keras knows their classes."""
    for module in sorted(_modules_named(config)):
        importlib.import_module(module)


def _read_config(path: Path) -> dict:
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise BaseNotFoundError(
            f"Cannot read the model {str(path)!r} ({error}); give a model.keras written by "
            "`audio-transfer train` or Task.save, or the run folder holding it."
        ) from error


def is_task_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a ``.keras`` archive of an audio_transfer task (not, say, of a bare base)."""
    path = Path(path)
    if not (path.is_file() and zipfile.is_zipfile(path)):
        return False
    config = _read_config(path)
    _import_modules(config)
    registered = config.get("registered_name")
    cls = keras.saving.get_registered_object(registered) if isinstance(registered, str) else None
    return isinstance(cls, type) and issubclass(cls, Task)


def load_task(path: str | os.PathLike, *, safe_mode: bool = True) -> Task:
    """Load a task from a ``.keras`` file, in safe mode unless told otherwise.

    Keras finds a custom class only once its module has registered it; bases are imported lazily, so the
    audio_transfer modules the file names (and only those) are imported first.

    Args:
        path: the ``.keras`` file.
        safe_mode: Keras's safe mode. A task on a hub base loads only with ``False``: its SavedModel graph
            runs when loaded, so pass ``False`` only for files you trust.

    Raises:
        BaseNotFoundError: the file is missing or is not a Keras archive.
        ConfigError: it holds a model that is not an audio_transfer task.

    Example:
        >>> spotter = load_task("runs/digits/model.keras")
        >>> spotter.labels
        ('zero', 'one', ...)
    """
    path = Path(path)
    config = _read_config(path)
    _import_modules(config)
    model = keras.saving.load_model(path, safe_mode=safe_mode)
    if not isinstance(model, Task):
        raise ConfigError(
            f"{path} holds a {type(model).__name__}, not an audio_transfer task (KeywordSpotter, "
            "SpeakerClassifier, SpeakerVerifier, AudioClassifier)."
        )
    return model

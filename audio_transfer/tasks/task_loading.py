"""Load a task saved as ``.keras``, importing the audio_transfer modules its layers come from.

A ``.keras`` file is untrusted input: the modules it names are imported only when they are on
:data:`SERIALIZABLE_MODULES`, the package's modules that register Keras classes, so a file naming any other
module (``audio_transfer.__main__``, ``os``) runs nothing; Keras's safe mode then refuses lambdas and
arbitrary code, and every refusal is a typed error naming the file.
"""

from __future__ import annotations

import importlib
import json
import os
import zipfile
from pathlib import Path

import keras

from audio_transfer.errors import AudioTransferError, BaseNotFoundError, ConfigError
from audio_transfer.tasks.task import Task

# The modules of audio_transfer whose import registers Keras serializable classes: the only ones a saved
# file may make this process import (tests check the list against the package's sources).
SERIALIZABLE_MODULES = frozenset(
    {
        "audio_transfer.bases.audio_base",
        "audio_transfer.bases.conv_block",
        "audio_transfer.bases.ge2e_speaker_base",
        "audio_transfer.bases.hub_base",
        "audio_transfer.bases.keras_model_base",
        "audio_transfer.bases.separable_conv_block",
        "audio_transfer.bases.speech_embedding_base",
        "audio_transfer.bases.yamnet_base",
        "audio_transfer.features.frame_patches",
        "audio_transfer.features.log_mel_spectrogram",
        "audio_transfer.features.mfcc",
        "audio_transfer.features.volume_normalization",
        "audio_transfer.heads.additive_angular_margin_softmax",
        "audio_transfer.heads.attention_pooling",
        "audio_transfer.heads.attentive_statistics_pooling",
        "audio_transfer.heads.classification_head",
        "audio_transfer.heads.embedding_head",
        "audio_transfer.heads.linear_head",
        "audio_transfer.heads.temporal_mean_max_pooling",
        "audio_transfer.tasks.audio_classifier",
        "audio_transfer.tasks.classifier",
        "audio_transfer.tasks.keyword_spotter",
        "audio_transfer.tasks.wake_word_spotter",
        "audio_transfer.tasks.speaker_classifier",
        "audio_transfer.tasks.speaker_verifier",
        "audio_transfer.tasks.task",
    }
)


def _modules_named(config) -> set[str]:
    """Every ``module`` of a Keras config tree that is on :data:`SERIALIZABLE_MODULES`."""
    found = set()
    if isinstance(config, dict):
        module = config.get("module")
        if module in SERIALIZABLE_MODULES:
            found.add(module)
        for value in config.values():
            found |= _modules_named(value)
    elif isinstance(config, list):
        for value in config:
            found |= _modules_named(value)
    return found


def _import_modules(config: dict) -> None:
    """Import the allowed modules a saved config names, so that Keras knows their classes."""
    for module in sorted(_modules_named(config)):
        importlib.import_module(module)


def _read_config(path: Path) -> dict:
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise BaseNotFoundError(
            f"Cannot read the model {str(path)!r} ({error}); give a model.keras written by "
            "`audio-transfer train` or Task.save, or the run folder holding it."
        ) from error
    if not isinstance(config, dict):
        raise BaseNotFoundError(
            f"{path} is not a Keras model file (its config.json holds a {type(config).__name__}); give a "
            "model.keras written by `audio-transfer train` or Task.save."
        )
    return config


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
    audio_transfer modules the file names (and only those on :data:`SERIALIZABLE_MODULES`) are imported
    first.

    Args:
        path: the ``.keras`` file.
        safe_mode: Keras's safe mode. A task on a hub base loads only with ``False``: its SavedModel graph
            runs when loaded, so pass ``False`` only for files you trust.

    Raises:
        BaseNotFoundError: the file is missing or is not a Keras archive.
        ConfigError: Keras refuses the file (in safe mode: a lambda, an arbitrary function or a class that
            is not registered) or it holds a model that is not an audio_transfer task.

    Example:
        >>> spotter = load_task("runs/digits/model.keras")
        >>> spotter.labels
        ('zero', 'one', ...)
    """
    path = Path(path)
    config = _read_config(path)
    _import_modules(config)
    try:
        model = keras.saving.load_model(path, safe_mode=safe_mode)
    except AudioTransferError:
        raise
    except Exception as error:  # Keras reports refusals and bad configs as ValueError, TypeError, ...
        raise ConfigError(
            f"{path} is not a safe audio_transfer model: Keras could not load it "
            f"({type(error).__name__}: {_first_line(error)}). Load only .keras files written by "
            "`audio-transfer train` or Task.save; --no-safe-mode is only for a hub-based run you trust."
        ) from error
    if not isinstance(model, Task):
        raise ConfigError(
            f"{path} holds a {type(model).__name__}, not an audio_transfer task (KeywordSpotter, "
            "SpeakerClassifier, SpeakerVerifier, AudioClassifier)."
        )
    return model


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""

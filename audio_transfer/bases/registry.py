"""Load a base by preset name, TF Hub handle, path, or model-building function.

Presets are plain data in :mod:`audio_transfer.bases.presets`; this module validates them, describes them
(:func:`list_bases`) and builds them (:func:`load_base`). A preset's class is imported only when the preset
is loaded, so listing neither imports the bases' modules nor reads weight files.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np

from audio_transfer.bases.assets import pretrained_asset
from audio_transfer.bases.audio_base import AudioBase
from audio_transfer.bases.base_info import BaseInfo
from audio_transfer.bases.hub_base import HubBase
from audio_transfer.bases.hub_resolver import is_saved_model_dir
from audio_transfer.bases.keras_model_base import KerasModelBase
from audio_transfer.bases.presets import PRESETS
from audio_transfer.checks import is_positive_int
from audio_transfer.errors import AudioTransferError, BaseNotFoundError, ConfigError

logger = logging.getLogger(__name__)

_PRESET_KEYS = ("class", "config", "weights", "metadata")
_DESCRIPTION_KEYS = (
    "description",
    "source",
    "licence",
    "parameter_count",
    "file_size_bytes",
    "tasks",
    "citation",
)
# Keys that live in either the constructor config or the metadata of a preset, never both.
_GEOMETRY_KEYS = ("sample_rate", "embedding_dim", "window_seconds", "hop_seconds")


def _validate_preset(name: str, preset: Mapping[str, Any]) -> None:
    """Raise ConfigError listing every way ``preset`` departs from the format of :mod:`presets`."""
    problems = []
    if sorted(preset) != sorted(_PRESET_KEYS):
        problems.append(f"its keys are {sorted(preset)}, expected {sorted(_PRESET_KEYS)}")
    else:
        class_path, config, weights, metadata = (preset[key] for key in _PRESET_KEYS)
        if not isinstance(class_path, str) or class_path.count(":") != 1:
            problems.append(f"'class' must be 'package.module:ClassName', received {class_path!r}")
        if not isinstance(config, Mapping):
            problems.append(f"'config' must be a dict, received {type(config).__name__}")
        shipped = isinstance(weights, str) and weights.endswith(".weights.h5")
        loader = isinstance(weights, Mapping) and sorted(weights) == ["loader"]
        if weights is not None and not (shipped or loader):
            problems.append(
                "'weights' must be None, a '*.weights.h5' file name or {'loader': 'module:function'}, "
                f"received {weights!r}"
            )
        if not isinstance(metadata, Mapping):
            problems.append(f"'metadata' must be a dict, received {type(metadata).__name__}")
        elif isinstance(config, Mapping):
            missing = [key for key in _DESCRIPTION_KEYS if key not in metadata]
            if missing:
                problems.append(f"'metadata' lacks {missing}")
            for key in _GEOMETRY_KEYS:
                if key in config and key in metadata:
                    problems.append(f"{key!r} is in both 'config' and 'metadata'; keep it in one")
                elif key not in config and key not in metadata:
                    problems.append(f"{key!r} is in neither 'config' nor 'metadata'")
            for key in ("sample_rate", "embedding_dim"):
                value = config.get(key, metadata.get(key))
                if not is_positive_int(value):
                    problems.append(f"{key!r} must be a positive integer, received {value!r}")
    if problems:
        raise ConfigError(f"Preset {name!r} is malformed: {'; '.join(problems)}.")


def _describe(name: str, preset: Mapping[str, Any]) -> BaseInfo:
    _validate_preset(name, preset)
    config, metadata = preset["config"], preset["metadata"]
    declared = {key: config.get(key, metadata.get(key)) for key in _GEOMETRY_KEYS}
    return BaseInfo(
        name=name,
        kind="hub" if "handle" in config else "keras",
        description=metadata["description"],
        source=metadata["source"],
        licence=metadata["licence"],
        parameter_count=metadata["parameter_count"],
        file_size_bytes=metadata["file_size_bytes"],
        tasks=tuple(metadata["tasks"]),
        citation=metadata["citation"],
        handle=config.get("handle"),
        class_path=preset["class"],
        **declared,
    )


def list_bases() -> list[BaseInfo]:
    """Every preset base with its metadata, in the order of :data:`~audio_transfer.bases.presets.PRESETS`.

    Example:
        >>> [info.name for info in list_bases()][:2]
        ['speech_embedding', 'ge2e_speaker']
    """
    return [_describe(name, preset) for name, preset in PRESETS.items()]


def register_preset(name: str, preset: Mapping[str, Any], *, overwrite: bool = False) -> BaseInfo:
    """Add a preset (same format as :data:`~audio_transfer.bases.presets.PRESETS`) under ``name``.

    Raises:
        ConfigError: the preset is malformed, or ``name`` is taken and ``overwrite`` is False.
    """
    info = _describe(name, preset)
    if not overwrite and name in PRESETS:
        raise ConfigError(f"A base named {name!r} exists already; pass overwrite=True to replace it.")
    PRESETS[name] = dict(preset)
    return info


def _import_object(path: str, name: str) -> Any:
    """The object ``package.module:attribute`` that preset ``name`` names."""
    module_name, attribute = path.split(":")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise BaseNotFoundError(
            f"Base {name!r} is built by {path}, which cannot be imported ({error}). Reinstall "
            f"audio_transfer, or pick another base from list_bases()."
        ) from error


def _import_class(class_path: str, name: str) -> type[AudioBase]:
    cls = _import_object(class_path, name)
    if not (isinstance(cls, type) and issubclass(cls, AudioBase)):
        raise ConfigError(f"Base {name!r}: {class_path} is not an AudioBase subclass.")
    return cls


def _construct(cls: type[AudioBase], config: Mapping[str, Any], source: str) -> AudioBase:
    try:
        return cls(**config)
    except AudioTransferError:
        raise
    except (TypeError, ValueError) as error:  # unknown or ill-typed arguments (Python's or Keras's message)
        raise ConfigError(f"Cannot build {source} with arguments {sorted(config)}: {error}") from error


def _build(base: AudioBase) -> None:
    """Run a base that creates its weights lazily once on silence, so that every weight exists.

    Bases that build in ``__init__`` are left alone: an eager call of a recurrent base steps through time in
    Python and costs seconds.
    """
    if not base.built:
        base(np.zeros((1, base.min_samples), dtype=np.float32))


def _check_declared(base: AudioBase, expected: Mapping[str, Any], name: str) -> None:
    for key, value in expected.items():
        if value is not None and not math.isclose(getattr(base, key), value, rel_tol=1e-9):
            raise ConfigError(
                f"Preset {name!r} declares {key}={value!r} but its base has {key}={getattr(base, key)!r}; "
                f"correct the preset (audio_transfer/bases/presets.py for the shipped ones)."
            )


def load_preset(
    name: str, preset: Mapping[str, Any], *, trainable: bool | int = False, **kwargs: Any
) -> AudioBase:
    """Build the base a preset describes, load its shipped weights and set what trains.

    Args:
        name: the preset's name (also the folder of its weights, see
            :func:`~audio_transfer.bases.assets.pretrained_asset`).
        preset: a dict in the format of :data:`~audio_transfer.bases.presets.PRESETS`.
        trainable: ``False``, ``True`` or the number of top blocks to train.
        **kwargs: constructor arguments overriding ``preset["config"]``; for a preset whose weights come
            from a loader (``{"loader": "module:function"}``), ``weights=`` is the file the loader reads.
    """
    info = _describe(name, preset)
    cls = _import_class(preset["class"], name)
    user_weights = kwargs.pop("weights", None) if isinstance(preset["weights"], Mapping) else None
    base = _construct(cls, {**preset["config"], **kwargs}, f"base {name!r}")
    _build(base)
    if isinstance(preset["weights"], Mapping):
        # Weights the user supplies (a path, or None for the loader's default place): see the loader.
        _import_object(preset["weights"]["loader"], name)(base, user_weights)
    elif preset["weights"] is not None:
        weights = pretrained_asset(name, preset["weights"])
        logger.info("Loading the weights of base %r from %s", name, weights)
        try:
            base.load_weights(weights)
        except ValueError as error:
            raise ConfigError(
                f"The weights file {str(weights)!r} does not fit base {name!r} ({error}). Rebuild it with "
                f"the conversion script in models/{name}/."
            ) from error
    declared = {key: kwargs.get(key, getattr(info, key)) for key in _GEOMETRY_KEYS}
    _check_declared(base, declared, name)
    base.set_trainable(trainable)
    return base


def _hub_preset_config(handle: str) -> dict[str, Any]:
    """Constructor config of the preset whose hub handle is ``handle`` (empty if none)."""
    for preset in PRESETS.values():
        if preset["config"].get("handle") == handle:
            return {key: value for key, value in preset["config"].items() if key != "handle"}
    return {}


def _declared_geometry(
    kwargs: dict[str, Any], source: str, *, input_samples: int | None = None
) -> dict[str, Any]:
    """Constructor arguments for a base that is not a preset: the user declares its rate and size.

    ``min_samples`` defaults to ``input_samples`` (the fixed input length of the model, when it has one) or
    one second of audio, ``window_seconds`` to the duration of ``min_samples`` and ``hop_seconds`` to the
    window (non-overlapping windows).
    """
    missing = [key for key in ("sample_rate", "embedding_dim") if key not in kwargs]
    if missing:
        raise ConfigError(
            f"{source} is not a preset, so declare the rate it takes and the size of what it returns: "
            f"load_base(..., sample_rate=16000, embedding_dim=<size>). Missing: {', '.join(missing)}."
        )
    config = dict(kwargs)
    config.setdefault("min_samples", input_samples or config["sample_rate"])
    config.setdefault("window_seconds", config["min_samples"] / config["sample_rate"])
    config.setdefault("hop_seconds", config["window_seconds"])
    return config


def _unknown_name_error(name: str) -> BaseNotFoundError:
    close = difflib.get_close_matches(name, list(PRESETS), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return BaseNotFoundError(
        f"No base named {name!r}, and no file or directory of that name exists.{hint} Available presets: "
        f"{', '.join(PRESETS)}. Other bases: 'hub:<TF Hub handle or SavedModel directory>', a path to a "
        f".keras file or SavedModel directory, or a function returning a keras.Model (each with sample_rate= "
        f"and embedding_dim=)."
    )


def _keras_model_base(model: keras.Model, kwargs: dict[str, Any], source: str) -> AudioBase:
    if isinstance(model, AudioBase):
        if kwargs:
            raise ConfigError(
                f"{source} holds a complete base ({type(model).__name__}) with its own settings; it takes no "
                f"arguments such as {', '.join(sorted(kwargs))}."
            )
        return model
    if not isinstance(model, keras.Model):
        raise ConfigError(f"{source} must give a keras.Model, but gave {type(model).__name__}.")
    inputs = getattr(model, "inputs", None) or []  # subclassed models have none until called
    input_samples = inputs[0].shape[-1] if len(inputs) == 1 and len(inputs[0].shape) == 2 else None
    config = _declared_geometry(kwargs, source, input_samples=input_samples)
    return _construct(KerasModelBase, {"model": model, **config}, source)


def _load_keras_file(path: Path) -> keras.Model:
    try:
        return keras.saving.load_model(path)
    except Exception as error:  # Keras raises ValueError, TypeError, OSError... for unusable files
        raise BaseNotFoundError(
            f"Cannot load the Keras model {str(path)!r}: {type(error).__name__}: {error}. Check that it was "
            f"written by model.save('<name>.keras') and that its custom layers are registered."
        ) from error


def load_base(
    name_or_handle_or_path: str | os.PathLike | keras.Model | Callable[[], keras.Model],
    *,
    trainable: bool | int = False,
    **kwargs: Any,
) -> AudioBase:
    """Build a pretrained base, ready to put under a head.

    Args:
        name_or_handle_or_path: one of
            - a preset name from :func:`list_bases` (names are looked up before paths);
            - ``"hub:<handle>"``: a TF Hub / Kaggle URL or a SavedModel directory, wrapped by
              :class:`~audio_transfer.bases.hub_base.HubBase` (a handle of a hub preset takes that preset's
              settings; other handles need ``sample_rate``, ``embedding_dim`` and usually ``call_convention``
              and ``output_key``);
            - a path to a ``.keras`` file or a SavedModel directory;
            - a ``keras.Model``, or a function without arguments returning one.
        trainable: ``False`` (frozen), ``True`` (all weights train) or ``n``: only the top ``n`` blocks train.
            Hub and SavedModel bases take only ``False`` or ``True``.
        **kwargs: constructor arguments. Bases that are not presets need ``sample_rate`` and ``embedding_dim``
            and may declare ``min_samples`` (default: the model's fixed input length, else one second),
            ``window_seconds`` and ``hop_seconds`` (default: ``min_samples`` long, not overlapping).

    Returns:
        The built base: waveform ``(batch, samples)`` -> ``(batch, windows, embedding_dim)``.

    Raises:
        BaseNotFoundError: unknown name (the message lists the presets), hub handle not found offline (the
            message says where it looked), missing weights or unreadable file.
        ConfigError: missing declarations, a number of blocks out of range or given to a hub base, or
            embeddings of another size than declared.

    Example:
        >>> base = load_base("speech_embedding", trainable=2)  # doctest: +SKIP
        >>> base(np.zeros((1, 16000), np.float32)).shape  # doctest: +SKIP
        TensorShape([1, 3, 96])
    """
    source = name_or_handle_or_path
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if text in PRESETS:
            return load_preset(text, PRESETS[text], trainable=trainable, **kwargs)
        path = Path(text).expanduser()
        if text.startswith("hub:"):
            handle = text[len("hub:") :]
            config = {**_hub_preset_config(handle), **kwargs}
            local = Path(handle).expanduser()
            if "://" not in handle and local.is_dir():
                handle = str(local.resolve())  # saved configs must not depend on the working directory
            base = _construct(HubBase, {"handle": handle, **_declared_geometry(config, text)}, text)
        elif path.is_file() and path.suffix == ".keras":
            base = _keras_model_base(_load_keras_file(path), kwargs, str(path))
        elif path.is_dir() and is_saved_model_dir(path):
            config = {"handle": str(path.resolve()), **_declared_geometry(kwargs, str(path))}
            base = _construct(HubBase, config, str(path))
        else:
            raise _unknown_name_error(text)
    elif callable(source):
        model = source if isinstance(source, keras.Model) else source()
        base = _keras_model_base(model, kwargs, getattr(source, "__name__", type(source).__name__))
    else:
        raise ConfigError(
            f"load_base takes a preset name, 'hub:<handle>', a path, a keras.Model or a function returning "
            f"one; received {type(source).__name__}."
        )
    _build(base)
    base.set_trainable(trainable)
    return base

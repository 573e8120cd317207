"""The trainable tasks by name: ``kws``, ``wakeword``, ``classify``, ``speaker-id``,
``speaker-verification``, and any task class registered with :func:`register_task`.

The built-in tasks are listed as plain data (name -> ``"module:ClassName"``) and imported only when asked
for, so :func:`task_names` (the CLI's ``--task`` choices, :class:`~audio_transfer.training.TrainConfig`'s
check) does not import TensorFlow. Everything else about a task (default base, pooling, how validation is
held out, its training objective, how it is evaluated, what it exports) is declared by its class; see
:class:`~audio_transfer.tasks.Task`.
"""

from __future__ import annotations

import importlib

from audio_transfer.errors import ConfigError

# Built-in tasks, in the order the CLI lists them.
BUILTIN_TASKS: dict[str, str] = {
    "kws": "audio_transfer.tasks.keyword_spotter:KeywordSpotter",
    "wakeword": "audio_transfer.tasks.wake_word_spotter:WakeWordSpotter",
    "speaker-id": "audio_transfer.tasks.speaker_classifier:SpeakerClassifier",
    "speaker-verification": "audio_transfer.tasks.speaker_verifier:SpeakerVerifier",
    "classify": "audio_transfer.tasks.audio_classifier:AudioClassifier",
}

# name -> "module:ClassName" (not imported yet) or the class.
_registry: dict[str, str | type] = dict(BUILTIN_TASKS)


def task_names() -> tuple[str, ...]:
    """Names of every registered task: the built-in ones first, then those added by :func:`register_task`.

    Example:
        >>> task_names()[:2]
        ('kws', 'speaker-id')
    """
    return tuple(_registry)


def task_class(name: str) -> type:
    """The task class registered under ``name`` (imported on first use).

    Raises:
        ConfigError: no task has that name; the message lists the names.
    """
    if name not in _registry:
        raise ConfigError(f"Unknown task {name!r}; the tasks are {', '.join(task_names())}.")
    entry = _registry[name]
    if isinstance(entry, str):
        module, _, class_name = entry.partition(":")
        entry = _registry[name] = getattr(importlib.import_module(module), class_name)
    return entry


def register_task(cls: type) -> type:
    """Class decorator: make ``cls`` trainable by its :attr:`~audio_transfer.tasks.Task.task_name`.

    Registering makes the name valid in :class:`~audio_transfer.training.TrainConfig` and ``--task``, and
    lets :func:`~audio_transfer.training.train_run` build, train, evaluate and save it like a built-in
    task. The class must also be registered with Keras (``keras.saving.register_keras_serializable``) to
    save and load; a run of it loads (and its ``config.yaml`` validates) in a process that has imported
    the module registering it. Registering the same class again is harmless; another class under a taken
    name is an error.

    Example:
        >>> @register_task
        ... @keras.saving.register_keras_serializable(package="my_tasks")
        ... class BirdCaller(AudioClassifier):
        ...     task_name = "birds"
        ...     default_base = "yamnet"
    """
    from audio_transfer.tasks.task import Task

    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise ConfigError(f"register_task takes a Task subclass, received {cls!r}.")
    name = cls.task_name
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{cls.__name__} must set task_name (a non-empty string) to be registered.")
    taken = _registry.get(name)
    if taken is not None and _qualified_name(taken) != _qualified_name(cls):
        raise ConfigError(f"Task name {name!r} is taken by {_qualified_name(taken)}; choose another name.")
    _registry[name] = cls
    return cls


def _qualified_name(entry: str | type) -> str:
    return entry if isinstance(entry, str) else f"{entry.__module__}:{entry.__qualname__}"

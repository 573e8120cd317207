"""Tasks: complete models (raw waveform in) made of a pretrained base and a small head.

Every task saves to and loads from a ``.keras`` file in safe mode. A task class declares what it is (name,
default base, pooling, how validation is held out, its training objective, how it is evaluated, what it
exports; see :class:`Task`), and the registry (:func:`task_names`, :func:`task_class`,
:func:`register_task`) knows the trainable ones by name.

Public API: :class:`Task`, :class:`Classifier`, :class:`KeywordSpotter`, :class:`WakeWordSpotter`,
:class:`AudioClassifier`,
:class:`SpeakerClassifier`, :class:`SpeakerVerifier`, :class:`TrainingObjective`,
:class:`ClassificationObjective`, :class:`MarginSoftmaxObjective`, :func:`load_task`, :func:`is_task_file`,
:func:`task_names`, :func:`task_class`, :func:`register_task`. Everything but the registry imports
TensorFlow, so it is resolved on first access: the CLI can list the task names without paying for it.
"""

import importlib

from audio_transfer.tasks.task_registry import register_task, task_class, task_names

# Module (in this package) -> the public names it defines, imported on first access.
_MODULES = {
    "audio_classifier": ("AudioClassifier",),
    "classification_objective": ("ClassificationObjective",),
    "classifier": ("Classifier",),
    "keyword_spotter": ("KeywordSpotter",),
    "margin_softmax_objective": ("MarginSoftmaxObjective",),
    "speaker_classifier": ("SpeakerClassifier",),
    "speaker_verifier": ("SpeakerVerifier",),
    "task": ("Task",),
    "task_loading": ("is_task_file", "load_task"),
    "training_objective": ("TrainingObjective",),
    "wake_word_spotter": ("WakeWordSpotter",),
}
_LAZY = {name: f"{__name__}.{module}" for module, names in _MODULES.items() for name in names}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [*_LAZY, "register_task", "task_class", "task_names"]

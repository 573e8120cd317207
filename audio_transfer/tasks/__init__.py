"""Tasks: complete models (raw waveform in) made of a pretrained base and a small head.

Every task saves to and loads from a ``.keras`` file in safe mode. A task class declares what it is (name,
default base, pooling, how validation is held out, its training objective, how it is evaluated, what it
exports; see :class:`Task`), and the registry (:func:`task_names`, :func:`task_class`,
:func:`register_task`) knows the trainable ones by name.

Public API: :class:`Task`, :class:`Classifier`, :class:`KeywordSpotter`, :class:`AudioClassifier`,
:class:`SpeakerClassifier`, :class:`SpeakerVerifier`, :class:`TrainingObjective`,
:class:`ClassificationObjective`, :class:`MarginSoftmaxObjective`, :func:`load_task`, :func:`is_task_file`,
:func:`task_names`, :func:`task_class`, :func:`register_task`. Everything but the registry imports
TensorFlow, so it is resolved on first access: the CLI can list the task names without paying for it.
"""

import importlib

from audio_transfer.tasks.task_registry import register_task, task_class, task_names

_LAZY = {
    "AudioClassifier": "audio_transfer.tasks.audio_classifier",
    "ClassificationObjective": "audio_transfer.tasks.classification_objective",
    "Classifier": "audio_transfer.tasks.classifier",
    "KeywordSpotter": "audio_transfer.tasks.keyword_spotter",
    "MarginSoftmaxObjective": "audio_transfer.tasks.margin_softmax_objective",
    "SpeakerClassifier": "audio_transfer.tasks.speaker_classifier",
    "SpeakerVerifier": "audio_transfer.tasks.speaker_verifier",
    "Task": "audio_transfer.tasks.task",
    "TrainingObjective": "audio_transfer.tasks.training_objective",
    "is_task_file": "audio_transfer.tasks.task_loading",
    "load_task": "audio_transfer.tasks.task_loading",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [*_LAZY, "register_task", "task_class", "task_names"]

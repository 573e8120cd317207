"""Training: the head on cached embeddings of a frozen base (stage 1), optional fine-tuning (stage 2).

Public API: :class:`TrainConfig` (``TASK_NAMES``, ``TASK_DEFAULTS``), :class:`Trainer`, :class:`TrainResult`,
:class:`EmbeddingCache`, :func:`hold_out_validation`, :func:`train_run` / :func:`load_run` /
:class:`TrainingRun` with the run-folder file names, :func:`make_task`, :func:`task_name`, :func:`clip_key`.
Everything but the configuration imports TensorFlow, so it is resolved on first access: the CLI can read
``TASK_NAMES`` without paying for it.
"""

import importlib

from audio_transfer.training.train_config import TASK_DEFAULTS, TASK_NAMES, TrainConfig

_LAZY = {
    "EmbeddingCache": "audio_transfer.training.embedding_cache",
    "hold_out_validation": "audio_transfer.training.holdout",
    "TrainResult": "audio_transfer.training.train_result",
    "Augment": "audio_transfer.training.trainer",
    "Trainer": "audio_transfer.training.trainer",
    **dict.fromkeys(
        (
            "CONFIG_FILE",
            "HISTORY_FILE",
            "LABELS_FILE",
            "METRICS_FILE",
            "MODEL_FILE",
            "TASK_CLASSES",
            "TrainingRun",
            "auto_clip_seconds",
            "clip_key",
            "load_run",
            "make_task",
            "task_name",
            "train_run",
        ),
        "audio_transfer.training.training_run",
    ),
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["TASK_DEFAULTS", "TASK_NAMES", "TrainConfig", *_LAZY]

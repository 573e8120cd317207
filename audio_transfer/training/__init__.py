"""Training: the head on cached embeddings of a frozen base (stage 1), optional fine-tuning (stage 2).

Public API: :class:`TrainConfig`, :class:`Trainer`, :class:`TrainResult`, :class:`EmbeddingCache`,
:func:`hold_out_validation`, :func:`select_head` / :class:`HeadSelection` (``head: auto``) with
:func:`cross_validation_folds`, :func:`train_run` / :func:`load_run` / :class:`TrainingRun`,
:class:`RunFolder` with the run-folder file names, :func:`make_task`, :func:`clip_key`,
:func:`evaluate_store` (a report from a feature store) and :func:`evaluate_task` (with
:func:`classification_report`, :func:`verification_report`), and :func:`distribution_strategy` and
:func:`is_chief` for training under ``tf.distribute``. What a task is (its name, defaults, objective,
evaluation) is declared by its class; see :mod:`audio_transfer.tasks`. Everything but the configuration
imports TensorFlow, so it is resolved on first access.
"""

import importlib

from audio_transfer.training.train_config import TrainConfig

_LAZY = {
    "EmbeddingCache": "audio_transfer.training.embedding_cache",
    "distribution_strategy": "audio_transfer.training.distribution",
    "is_chief": "audio_transfer.training.distribution",
    "EpochCheckpoint": "audio_transfer.training.epoch_checkpoint",
    "RunLock": "audio_transfer.training.run_lock",
    "hold_out_validation": "audio_transfer.training.holdout",
    "HeadSelection": "audio_transfer.training.head_selection",
    "select_head": "audio_transfer.training.head_selection",
    "cross_validation_folds": "audio_transfer.training.cross_validation",
    "TrainResult": "audio_transfer.training.train_result",
    "Augment": "audio_transfer.training.trainer",
    "Trainer": "audio_transfer.training.trainer",
    **dict.fromkeys(
        (
            "CHECKPOINT_DIR",
            "CONFIG_FILE",
            "HISTORY_FILE",
            "LABELS_FILE",
            "METRICS_FILE",
            "MODEL_FILE",
            "SELECTION_FILE",
            "SPLITS_FILE",
            "RunFolder",
        ),
        "audio_transfer.training.run_folder",
    ),
    **dict.fromkeys(
        ("EVALUATIONS", "classification_report", "evaluate_store", "evaluate_task", "verification_report"),
        "audio_transfer.training.task_evaluation",
    ),
    **dict.fromkeys(
        (
            "TrainingRun",
            "auto_clip_seconds",
            "clip_key",
            "load_run",
            "make_task",
            "split_examples",
            "train_run",
        ),
        "audio_transfer.training.training_run",
    ),
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["TrainConfig", *_LAZY]

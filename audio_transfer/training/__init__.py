"""Training: the head on cached embeddings of a frozen base (stage 1), optional fine-tuning (stage 2)."""

from audio_transfer.training.embedding_cache import EmbeddingCache
from audio_transfer.training.train_config import TASK_DEFAULTS, TASK_NAMES, TrainConfig
from audio_transfer.training.train_result import TrainResult
from audio_transfer.training.trainer import Augment, Trainer

__all__ = [
    "TASK_DEFAULTS",
    "TASK_NAMES",
    "Augment",
    "EmbeddingCache",
    "TrainConfig",
    "TrainResult",
    "Trainer",
]

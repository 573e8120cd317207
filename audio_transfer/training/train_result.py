"""What a training run returns: the epoch history of both stages and which epochs were kept."""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from pathlib import Path
from typing import Any

from audio_transfer.atomic_files import write_text


@dataclasses.dataclass
class TrainResult:
    """History and bookkeeping of :meth:`audio_transfer.training.Trainer.fit`.

    Args:
        history: one row per epoch: ``stage`` (``"head"`` or ``"fine_tune"``), ``epoch`` (1-based within
            the stage) and Keras's metrics (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``).
        best_epochs: per stage, the epoch whose weights were kept (early stopping restores them).
        num_train_clips: clean training clips (augmented copies not counted).
        num_augmented_clips: augmented copies the head trained on besides the clean clips.
        num_validation_clips: validation clips (0 when training ran without validation).
        cache_hits, cache_misses: clips the embedding cache served, and clips the base had to run on.
    """

    history: list[dict[str, Any]]
    best_epochs: dict[str, int]
    num_train_clips: int
    num_augmented_clips: int
    num_validation_clips: int
    cache_hits: int
    cache_misses: int

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write :attr:`history` as CSV (``stage,epoch,<metrics>``), atomically; returns the path."""
        columns = ["stage", "epoch"]
        for row in self.history:
            columns += [key for key in row if key not in columns]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.history)
        return write_text(path, buffer.getvalue())

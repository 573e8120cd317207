"""The training objective of a classifier: label-smoothed cross-entropy on its own outputs."""

from __future__ import annotations

import keras
import numpy as np

from audio_transfer.tasks.training_objective import TrainingObjective


class ClassificationObjective(TrainingObjective):
    """Label-smoothed categorical cross-entropy between a classifier's probabilities and its labels.

    Args:
        task: a :class:`~audio_transfer.tasks.Classifier`; the labels index ``task.labels``.
        label_smoothing: share of the target spread over the other classes, in [0, 1).

    Example:
        >>> objective = ClassificationObjective(spotter, label_smoothing=0.1)
        >>> objective.targets(np.array([1]))  # one-hot over spotter.labels
    """

    def __init__(self, task, *, label_smoothing: float = 0.0) -> None:
        super().__init__(
            num_classes=len(task.labels),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
        )
        self.task = task

    def head_model(self) -> keras.Model:
        return self.task.head_model()

    def end_to_end_model(self) -> keras.Model:
        return self.task

    def targets(self, y: np.ndarray) -> np.ndarray:
        return np.eye(self.num_classes, dtype=np.float32)[y]

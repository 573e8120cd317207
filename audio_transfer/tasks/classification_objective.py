"""The training objective of a classifier: label-smoothed cross-entropy on its own outputs."""

from __future__ import annotations

import keras
import numpy as np

from audio_transfer.heads.linear_head import LinearHead
from audio_transfer.tasks.training_objective import TrainingObjective


class ClassificationObjective(TrainingObjective):
    """Label-smoothed categorical cross-entropy between a classifier's probabilities and its labels.

    A classifier with a :class:`~audio_transfer.heads.LinearHead` trains full-batch instead
    (:attr:`trains_full_batch`): its softmax layer is fitted to convergence on all the training embeddings
    at once by :meth:`LinearHead.fit <audio_transfer.heads.LinearHead.fit>`, minimising scikit-learn's
    ``LogisticRegression(C=inverse_regularization)`` objective (plain cross-entropy plus an L2 penalty of
    ``1 / (2·C·n)`` per clip's mean loss; no label smoothing).

    Args:
        task: a :class:`~audio_transfer.tasks.Classifier`; the labels index ``task.labels``.
        label_smoothing: share of the target spread over the other classes, in [0, 1).
        inverse_regularization: ``C`` of a linear head's fit (> 0; 1.0 as scikit-learn's default).
        max_steps, tolerance: a linear head's solver limits (see
            :func:`~audio_transfer.heads.fit_softmax_regression`).

    Example:
        >>> objective = ClassificationObjective(spotter, label_smoothing=0.1)
        >>> objective.targets(np.array([1]))  # one-hot over spotter.labels
    """

    def __init__(
        self,
        task,
        *,
        label_smoothing: float = 0.0,
        inverse_regularization: float = 1.0,
        max_steps: int = 1000,
        tolerance: float = 1e-9,
    ) -> None:
        super().__init__(
            num_classes=len(task.labels),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
        )
        self.task = task
        self.inverse_regularization = inverse_regularization
        self.max_steps = max_steps
        self.tolerance = tolerance

    @property
    def trains_full_batch(self) -> bool:
        return isinstance(self.task.head, LinearHead)

    def fit_full_batch(
        self, frames: np.ndarray, y: np.ndarray, *, sample_weight: np.ndarray | None = None
    ) -> dict[str, float]:
        return self.task.head.fit(
            frames,
            y,
            sample_weight=sample_weight,
            inverse_regularization=self.inverse_regularization,
            max_steps=self.max_steps,
            tolerance=self.tolerance,
        )

    def full_batch_features(self, frames: np.ndarray) -> np.ndarray:
        return self.task.head.pool(frames)

    def full_batch_outputs(self, features: np.ndarray) -> np.ndarray:
        return keras.ops.convert_to_numpy(self.task.head.pooled_probabilities(features))

    def head_model(self) -> keras.Model:
        return self.task.head_model()

    def end_to_end_model(self) -> keras.Model:
        return self.task

    def targets(self, y: np.ndarray) -> np.ndarray:
        return np.eye(self.num_classes, dtype=np.float32)[y]

"""What a trainer fits for a task: its training models, loss and metrics."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np


class TrainingObjective:
    """The models, loss and metrics a task trains with, as :meth:`Task.training_objective` returns them.

    A trainer fits :meth:`head_model` on cached frame embeddings of the frozen base (stage 1), then
    optionally :meth:`end_to_end_model` on waveforms (stage 2). Both are compiled with :attr:`loss` and
    :attr:`metrics`; a batch of clips ``x`` with integer labels ``y`` feeds them as ``inputs(x, y)`` and
    ``targets(y)``. Layers the objective adds for training only (a margin softmax over the training
    speakers, say) are not part of the task and are dropped with the objective.

    Subclasses implement :meth:`head_model` and :meth:`end_to_end_model`, and :meth:`inputs` /
    :meth:`targets` when the models take more than the clips or the loss more than the labels. An objective
    whose head is fitted to convergence on the whole training set at once instead of in epochs of
    mini-batches sets :attr:`trains_full_batch` and implements :meth:`fit_full_batch`.

    Args:
        num_classes: how many classes the integer labels index (labels are in ``[0, num_classes)``).
        loss: a Keras loss on the models' outputs and :meth:`targets`.
        metrics: Keras metrics reported per epoch.
    """

    def __init__(
        self, *, num_classes: int, loss: keras.losses.Loss, metrics: Sequence[str] = ("accuracy",)
    ) -> None:
        self.num_classes = num_classes
        self.loss = loss
        self.metrics = list(metrics)

    @property
    def trains_full_batch(self) -> bool:
        """Whether stage 1 is one :meth:`fit_full_batch` call rather than epochs of :meth:`head_model`."""
        return False

    def fit_full_batch(
        self, frames: np.ndarray, y: np.ndarray, *, sample_weight: np.ndarray | None = None
    ) -> dict[str, float]:
        """Stage 1 of a full-batch head: fit it on the :meth:`full_batch_features` of all the training clips'
        frame embeddings with ``(clips,)`` labels at once; returns the training metrics (``loss``,
        ``accuracy``, ...)."""
        raise NotImplementedError

    def full_batch_features(self, frames: np.ndarray) -> np.ndarray:
        """What :meth:`fit_full_batch` keeps of a batch of frame embeddings, so that a trainer streaming
        them holds only that (a linear head: the pooled embeddings, a twelfth of the frames)."""
        return frames

    def full_batch_outputs(self, features: np.ndarray) -> np.ndarray:
        """The head's outputs (what the loss takes) for :meth:`full_batch_features`, e.g. of validation
        clips after a :meth:`fit_full_batch`."""
        return self.head_model().predict(features, verbose=0)

    def head_model(self) -> keras.Model:
        """Stage 1: ``(batch, windows, embedding_dim)`` frame embeddings (and whatever :meth:`inputs` adds)
        → outputs the loss takes; shares its weights with the task's head."""
        raise NotImplementedError

    def end_to_end_model(self) -> keras.Model:
        """Stage 2: ``(batch, samples)`` waveforms (and whatever :meth:`inputs` adds) → outputs the loss
        takes; shares its weights with the task."""
        raise NotImplementedError

    def inputs(self, x: np.ndarray, y: np.ndarray):
        """The models' inputs for clips (or their frame embeddings) ``x`` with labels ``y``."""
        return x

    def targets(self, y: np.ndarray) -> np.ndarray:
        """The loss's targets for ``(batch,)`` integer labels ``y``."""
        return y

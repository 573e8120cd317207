"""The training objective of an embedding: an additive angular margin softmax over the training classes."""

from __future__ import annotations

import keras
import numpy as np

from audio_transfer.heads.additive_angular_margin_softmax import AdditiveAngularMarginSoftmax
from audio_transfer.tasks.training_objective import TrainingObjective


class MarginSoftmaxObjective(TrainingObjective):
    """Trains a task's embedding with an additive angular margin softmax over the training classes.

    The softmax layer exists for training only: it is one layer for both stages (so fine-tuning starts
    from the class centres stage 1 learned) and is not part of the task, so it is dropped afterwards.

    Args:
        task: a task whose output is an embedding (a :class:`~audio_transfer.tasks.SpeakerVerifier`).
        num_classes: training classes (speakers), at least 2.
        margin, scale: see :class:`~audio_transfer.heads.AdditiveAngularMarginSoftmax`.
    """

    def __init__(self, task, *, num_classes: int, margin: float = 0.2, scale: float = 30.0) -> None:
        super().__init__(
            num_classes=num_classes, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        )
        self.task = task
        self.margin_softmax = AdditiveAngularMarginSoftmax(
            num_classes, margin=margin, scale=scale, name="aam_softmax"
        )

    def head_model(self) -> keras.Model:
        frames = keras.Input((None, self.task.base.embedding_dim), name="frame_embeddings")
        labels = keras.Input((), dtype="int32", name="labels")
        logits = self.margin_softmax(self.task.head(frames), labels=labels)
        return keras.Model([frames, labels], logits, name=f"{self.task.name}_head_training")

    def end_to_end_model(self) -> keras.Model:
        waveform = keras.Input((None,), name="waveform")
        labels = keras.Input((), dtype="int32", name="labels")
        logits = self.margin_softmax(self.task(waveform), labels=labels)
        return keras.Model([waveform, labels], logits, name=f"{self.task.name}_training")

    def inputs(self, x: np.ndarray, y: np.ndarray):
        return (x, y)

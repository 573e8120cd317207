"""Measuring a task on labelled clips, the way the task declares (``task.evaluation``)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

import numpy as np

from audio_transfer.data import FeatureStore
from audio_transfer.embedding import check_store_for
from audio_transfer.errors import ConfigError
from audio_transfer.evaluation import (
    ClassificationReport,
    VerificationReport,
    classification_metrics,
    cosine_scores,
    trial_pairs,
    verification_metrics,
)
from audio_transfer.tasks import Task

# What a task's ``evaluation`` may be.
EVALUATIONS = ("classification", "verification")


class ScoresClips(Protocol):
    """What :func:`classification_report` needs of a model: a classifier task, or the classifier of an
    exported ``.tflite`` file."""

    @property
    def labels(self) -> tuple[str, ...]: ...

    def predict_waveforms(self, waveforms: np.ndarray) -> np.ndarray: ...


class EmbedsClips(Protocol):
    """What :func:`verification_report` needs of a model: unit-length embeddings of clips."""

    def embed_clips(self, clips) -> np.ndarray: ...


def evaluate_task(task: Task, clips, labels: Sequence[str]) -> ClassificationReport | VerificationReport:
    """The report of ``task`` on ``clips`` whose true labels are ``labels``, by ``task.evaluation``:

    - ``"classification"``: accuracy, per-class precision/recall/F1 and the confusion matrix
      (:func:`classification_report`; ``clips`` is a ``(clips, samples)`` array);
    - ``"verification"``: EER and minDCF over every pair of clips (:func:`verification_report`; ``clips``
      may also be a list of 1-D clips of any length), the labels being speakers.

    Example:
        >>> evaluate_task(run.task, run.evaluation.waveforms, run.evaluation.labels).to_text()
    """
    if task.evaluation == "classification":
        return classification_report(task, clips, labels)
    if task.evaluation == "verification":
        return verification_report(task, clips, labels)
    raise ConfigError(
        f"{type(task).__name__}.evaluation is {task.evaluation!r}; it must be 'classification' or "
        "'verification'."
    )


def evaluate_store(
    task: Task, store: FeatureStore, *, keys: Collection[str] | None = None, batch_size: int = 256
) -> ClassificationReport:
    """The classification report of ``task`` on the examples of a feature store of its frozen base's
    embeddings: its head runs on the stored frames a batch at a time, so memory does not grow with the
    number of clips (only one probability row per clip is kept).

    Args:
        task: a classifier whose base made the store (with the task's context), unchanged since.
        store: the embeddings and their labels.
        keys: the examples to report on (e.g. the validation keys); ``None``: every clean clip (augmented
            copies left out).
        batch_size: clips per forward pass of the head.

    Raises:
        ConfigError: the task is not a classifier (a verifier's report needs its clips).
        StoreError: the store was made with another base or context, or holds labels the task lacks.

    Example:
        >>> store = FeatureStore.open("store")  # doctest: +SKIP
        >>> evaluate_store(run.task, store, keys=validation_keys).accuracy  # doctest: +SKIP
    """
    if task.evaluation != "classification":
        raise ConfigError(
            f"{type(task).__name__} reports {task.evaluation}, which needs its clips: evaluate it on the "
            "audio folder instead of a feature store."
        )
    check_store_for(task, store)
    if keys is None:
        keys = [example.key for example in store.examples() if example.source == "clean"]
    labels = list(task.labels)
    head = task.head_model()
    probabilities, true = [], []
    batches = store.dataset(
        labels=labels, batch_size=batch_size, shuffle_buffer=0, keys=keys, class_weights=False
    )
    for frames, label, _ in batches:
        probabilities.append(np.asarray(head(frames, training=False)))
        true.append(label.numpy())
    probabilities = np.concatenate(probabilities)
    return classification_metrics(
        [labels[index] for index in np.concatenate(true)],
        probabilities.argmax(axis=-1),
        labels=labels,
        probabilities=probabilities,
    )


def classification_report(
    task: ScoresClips, waveforms: np.ndarray, true_labels: Sequence[str]
) -> ClassificationReport:
    """Metrics of ``task`` on ``(clips, samples)`` waveforms whose true labels are ``true_labels``."""
    probabilities = task.predict_waveforms(waveforms)
    return classification_metrics(
        list(true_labels),
        probabilities.argmax(axis=-1),
        labels=list(task.labels),
        probabilities=probabilities,
    )


def verification_report(verifier: EmbedsClips, clips, speakers: Sequence[str]) -> VerificationReport:
    """EER and minDCF of ``verifier`` over every pair of ``clips`` (a ``(clips, samples)`` array or a list
    of 1-D clips of any length) whose speakers are ``speakers``."""
    embeddings = verifier.embed_clips(clips)
    i, j, same = trial_pairs(list(speakers))
    return verification_metrics(cosine_scores(embeddings, i, j), same)


def error_rate(report: ClassificationReport | VerificationReport) -> float:
    """One figure to compare two reports of the same kind by, lower is better: the EER of a verification
    report, the error (1 - accuracy) of a classification report."""
    return report.eer if isinstance(report, VerificationReport) else 1.0 - report.accuracy

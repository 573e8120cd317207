"""Measuring a task on labelled clips, the way the task declares (``task.evaluation``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

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

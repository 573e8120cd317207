"""Metrics of a closed-set classifier (keywords, speakers, sounds) from its predictions."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from audio_transfer.errors import ConfigError, InputShapeError

DEFAULT_TOP_K = (3, 5)


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Element-wise ``numerator / denominator`` as float64, with 0 where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator != 0)


@dataclasses.dataclass(frozen=True, eq=False)
class ClassificationReport:
    """Confusion matrix of a classifier and every metric derived from it.

    Every metric is a property computed from ``confusion_matrix`` (rows: true class, columns: predicted
    class, in the order of ``labels``), so a report built from a matrix alone is consistent. Ratios whose
    denominator is 0 are defined as 0 (as scikit-learn's ``zero_division=0``), never NaN:

    - precision of a class never predicted is 0; recall of a class absent from the true labels is 0;
      F1 is ``2·tp / (2·tp + fp + fn)``, 0 when the class is absent from both.
    - ``balanced_accuracy`` is the mean recall over the classes present in the true labels.
    - ``macro_f1`` is the mean F1 over the classes present in the true or the predicted labels, so
      classes the evaluation data does not touch at all do not drag it down.

    Args:
        labels: class names, index ``k`` naming row and column ``k`` of the matrix.
        confusion_matrix: ``(num_labels, num_labels)`` non-negative integer counts.
        top_k_accuracy: ``{k: fraction}`` of examples whose true class is among the ``k`` most probable
            (filled by :func:`classification_metrics` when probabilities are given).

    Example:
        >>> report = classification_metrics([0, 1, 1], [0, 1, 0], labels=["yes", "no"])
        >>> round(report.accuracy, 3), report.per_class["no"]["recall"]
        (0.667, 0.5)
    """

    labels: tuple[str, ...]
    confusion_matrix: np.ndarray
    top_k_accuracy: Mapping[int, float] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        labels = _check_labels(self.labels)
        matrix = np.asarray(self.confusion_matrix)
        if matrix.shape != (len(labels), len(labels)):
            raise InputShapeError(
                f"confusion_matrix must have shape ({len(labels)}, {len(labels)}) to match {len(labels)} "
                f"labels, received shape {matrix.shape}."
            )
        if not np.issubdtype(matrix.dtype, np.integer) or (matrix < 0).any():
            raise ConfigError(
                f"confusion_matrix must hold non-negative integer counts, received dtype {matrix.dtype}."
            )
        if matrix.sum() == 0:
            raise ConfigError("confusion_matrix is empty (no examples): evaluate on at least one example.")
        matrix = matrix.astype(np.int64)
        matrix.flags.writeable = False
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "confusion_matrix", matrix)
        object.__setattr__(self, "top_k_accuracy", {int(k): float(v) for k, v in self.top_k_accuracy.items()})

    # -- counts ----------------------------------------------------------------------------------
    @property
    def num_examples(self) -> int:
        return int(self.confusion_matrix.sum())

    @property
    def true_positives(self) -> np.ndarray:
        return np.diag(self.confusion_matrix)

    @property
    def support(self) -> np.ndarray:
        """Number of examples of each true class, ``(num_labels,)``."""
        return self.confusion_matrix.sum(axis=1)

    @property
    def predicted_counts(self) -> np.ndarray:
        """Number of predictions of each class, ``(num_labels,)``."""
        return self.confusion_matrix.sum(axis=0)

    # -- per-class metrics ------------------------------------------------------------------------
    @property
    def precision(self) -> np.ndarray:
        """``tp / (tp + fp)`` per class; 0 for a class never predicted."""
        return _safe_divide(self.true_positives, self.predicted_counts)

    @property
    def recall(self) -> np.ndarray:
        """``tp / (tp + fn)`` per class; 0 for a class absent from the true labels."""
        return _safe_divide(self.true_positives, self.support)

    @property
    def f1(self) -> np.ndarray:
        """``2·tp / (2·tp + fp + fn)`` per class (harmonic mean of precision and recall); 0 if undefined."""
        return _safe_divide(2 * self.true_positives, self.support + self.predicted_counts)

    # -- summary metrics ---------------------------------------------------------------------------
    @property
    def accuracy(self) -> float:
        return float(self.true_positives.sum() / self.num_examples)

    @property
    def balanced_accuracy(self) -> float:
        """Mean recall over the classes present in the true labels."""
        present = self.support > 0
        return float(self.recall[present].mean())

    @property
    def macro_f1(self) -> float:
        """Mean F1 over the classes present in the true or the predicted labels."""
        present = (self.support + self.predicted_counts) > 0
        return float(self.f1[present].mean())

    @property
    def per_class(self) -> dict[str, dict[str, float | int]]:
        """``{label: {"precision", "recall", "f1", "support"}}`` in label order."""
        columns = zip(self.labels, self.precision, self.recall, self.f1, self.support, strict=True)
        return {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in columns
        }

    def most_confused(self, count: int = 5) -> list[tuple[str, str, int]]:
        """The ``count`` largest off-diagonal cells as ``(true_label, predicted_label, examples)``."""
        errors = self.confusion_matrix.copy()
        np.fill_diagonal(errors, 0)
        flat = np.argsort(-errors, axis=None, kind="stable")[:count]
        rows, cols = np.unravel_index(flat, errors.shape)
        pairs = zip(rows.tolist(), cols.tolist(), strict=True)
        return [(self.labels[i], self.labels[j], int(errors[i, j])) for i, j in pairs if errors[i, j] > 0]

    # -- rendering ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready metrics: plain Python numbers, lists and dicts (fractions in [0, 1], not percent)."""
        result: dict[str, Any] = {
            "kind": "classification",
            "accuracy": self.accuracy,
            "balanced_accuracy": self.balanced_accuracy,
            "macro_f1": self.macro_f1,
            "num_examples": self.num_examples,
            "labels": list(self.labels),
            "per_class": self.per_class,
            "confusion_matrix": self.confusion_matrix.tolist(),
        }
        if self.top_k_accuracy:
            result["top_k_accuracy"] = {str(k): v for k, v in sorted(self.top_k_accuracy.items())}
        return result

    def to_text(self) -> str:
        """A short report for people: summary, per-class table and the most frequent confusions."""
        lines = [
            f"{self.num_examples} examples, {len(self.labels)} classes",
            f"accuracy {self.accuracy:.2%}   balanced accuracy {self.balanced_accuracy:.2%}   "
            f"macro F1 {self.macro_f1:.3f}",
        ]
        lines += [f"top-{k} accuracy {v:.2%}" for k, v in sorted(self.top_k_accuracy.items())]
        width = max(len("class"), *(len(label) for label in self.labels))
        lines += ["", f"{'class':<{width}}  precision  recall     f1  support"]
        for label, row in self.per_class.items():
            lines.append(
                f"{label:<{width}}  {row['precision']:9.3f}  {row['recall']:6.3f}  {row['f1']:5.3f}  "
                f"{row['support']:7d}"
            )
        confusions = self.most_confused()
        if confusions:
            lines += ["", "most confused (true -> predicted: examples):"]
            lines += [f"  {true} -> {predicted}: {n}" for true, predicted, n in confusions]
        return "\n".join(lines) + "\n"


def classification_metrics(
    y_true: Sequence[int] | Sequence[str] | np.ndarray,
    y_pred: Sequence[int] | Sequence[str] | np.ndarray,
    *,
    labels: Sequence[str],
    probabilities: np.ndarray | None = None,
    top_k: Sequence[int] = DEFAULT_TOP_K,
) -> ClassificationReport:
    """Compare predicted with true classes.

    Args:
        y_true: true class of each example, as an index into ``labels`` or as a label string.
        y_pred: predicted class of each example, in the same form.
        labels: every class name the model knows, in index order. Classes absent from ``y_true`` or
            ``y_pred`` are reported with the zero conventions of :class:`ClassificationReport`.
        probabilities: optional ``(num_examples, num_labels)`` class scores (softmax outputs or any
            monotonic score) used for top-k accuracy.
        top_k: the ``k`` values for top-k accuracy; only ``k < num_labels`` are reported (larger ``k`` is
            trivially 1). An example counts as a top-k hit when fewer than ``k`` other classes score at
            least as high as its true class, so ties count against the model.

    Returns:
        a :class:`ClassificationReport`.

    Raises:
        InputShapeError: lengths or shapes disagree.
        ConfigError: empty input, duplicate labels, indices out of range or unknown label strings.

    Example:
        >>> report = classification_metrics(["yes", "no"], ["yes", "yes"], labels=["yes", "no"])
        >>> report.to_dict()["balanced_accuracy"]
        0.5
    """
    labels = _check_labels(labels)
    true_index = _as_indices(y_true, labels, "y_true")
    pred_index = _as_indices(y_pred, labels, "y_pred")
    if true_index.shape != pred_index.shape:
        raise InputShapeError(
            f"y_true and y_pred must have the same length, received {true_index.size} and {pred_index.size}."
        )
    if true_index.size == 0:
        raise ConfigError("y_true is empty: evaluate on at least one example.")
    num_labels = len(labels)
    matrix = np.bincount(true_index * num_labels + pred_index, minlength=num_labels**2)
    top_k_accuracy = {}
    if probabilities is not None:
        top_k_accuracy = _top_k_accuracy(true_index, probabilities, num_labels=num_labels, top_k=top_k)
    return ClassificationReport(
        labels=labels,
        confusion_matrix=matrix.reshape(num_labels, num_labels),
        top_k_accuracy=top_k_accuracy,
    )


def _check_labels(labels: Sequence[str]) -> tuple[str, ...]:
    if isinstance(labels, str):
        raise ConfigError(f"labels must be a sequence of class names, received the string {labels!r}.")
    labels = tuple(str(label) for label in labels)
    if not labels:
        raise ConfigError("labels is empty: pass every class name the model knows, in index order.")
    duplicates = sorted(label for label, count in Counter(labels).items() if count > 1)
    if duplicates:
        raise ConfigError(f"labels must be unique, received duplicates {duplicates}.")
    return labels


def _as_indices(
    values: Sequence[int] | Sequence[str] | np.ndarray, labels: tuple[str, ...], name: str
) -> np.ndarray:
    """Class indices of ``values`` given as indices or label strings, checked against ``labels``."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise InputShapeError(f"{name} must be one-dimensional, received shape {array.shape}.")
    if array.size == 0:
        return array.astype(np.int64)
    if array.dtype.kind in "USO":  # label strings (object arrays come from pandas and the like)
        lookup = {label: index for index, label in enumerate(labels)}
        unknown = sorted({str(value) for value in array.tolist()} - lookup.keys())
        if unknown:
            raise ConfigError(f"{name} holds labels not in labels: {unknown}. Known labels: {list(labels)}.")
        return np.array([lookup[str(value)] for value in array.tolist()], dtype=np.int64)
    if array.dtype.kind not in "iu":
        raise ConfigError(
            f"{name} must hold class indices (integers) or label strings, received dtype {array.dtype}."
        )
    bad = (array < 0) | (array >= len(labels))
    if bad.any():
        raise ConfigError(
            f"{name} holds class indices outside [0, {len(labels) - 1}] for {len(labels)} labels: "
            f"{sorted(set(array[bad].tolist()))[:10]}."
        )
    return array.astype(np.int64)


def _top_k_accuracy(
    true_index: np.ndarray, probabilities: np.ndarray, *, num_labels: int, top_k: Sequence[int]
) -> dict[int, float]:
    scores = np.asarray(probabilities, dtype=np.float64)
    if scores.shape != (true_index.size, num_labels):
        raise InputShapeError(
            f"probabilities must have shape (num_examples, num_labels) = ({true_index.size}, {num_labels}), "
            f"received {scores.shape}."
        )
    if not np.isfinite(scores).all():
        raise ConfigError("probabilities hold NaN or infinite values.")
    if any(int(k) < 1 for k in top_k):
        raise ConfigError(f"top_k values must be at least 1, received {list(top_k)}.")
    true_score = scores[np.arange(true_index.size), true_index]
    # Rank of the true class counting ties against it: 0 when it alone scores highest.
    rank = (scores >= true_score[:, None]).sum(axis=1) - 1
    return {int(k): float((rank < k).mean()) for k in sorted(set(top_k)) if k < num_labels}

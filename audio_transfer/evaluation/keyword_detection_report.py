"""Metrics of a streaming keyword detector: false rejects on keyword clips, false accepts per hour."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from audio_transfer.errors import ConfigError, InputShapeError


@dataclasses.dataclass(frozen=True, eq=False)
class KeywordDetectionReport:
    """False-reject rate and false accepts per hour of a keyword detector at each threshold.

    A positive (a clip holding a keyword) is rejected at a threshold when its keyword does not fire on it;
    every detection in the negative audio (audio without keywords) is a false accept.

    Args:
        thresholds: ``(num_thresholds,)`` increasing detection thresholds.
        detected: ``(num_positives, num_thresholds)`` bool: whether positive ``i``'s keyword fired at
            threshold ``j``.
        false_accepts: ``(num_thresholds,)`` detections in the negative audio at each threshold.
        negative_seconds: duration of the negative audio.
        positive_labels: ``(num_positives,)`` keyword of each positive, for per-keyword rates.

    Attributes:
        false_reject_rate: ``(num_thresholds,)`` share of positives missed, in [0, 1].
        false_accepts_per_hour: ``(num_thresholds,)`` false accepts per hour of negative audio.

    Example:
        >>> report = KeywordDetectionReport(thresholds, detected, false_accepts, negative_seconds=7200.0)
        >>> index = report.threshold_index(target_fa_per_hour=0.5)
        >>> report.thresholds[index], report.false_reject_rate[index]
    """

    thresholds: np.ndarray
    detected: np.ndarray
    false_accepts: np.ndarray
    negative_seconds: float
    positive_labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        thresholds = np.asarray(self.thresholds, dtype=np.float64)
        detected = np.asarray(self.detected, dtype=bool)
        false_accepts = np.asarray(self.false_accepts, dtype=np.int64)
        if thresholds.ndim != 1 or len(thresholds) == 0 or np.any(np.diff(thresholds) <= 0):
            raise ConfigError(
                f"thresholds must be a non-empty increasing list, received {self.thresholds!r}."
            )
        if detected.ndim != 2 or detected.shape[1] != len(thresholds) or len(detected) == 0:
            raise InputShapeError(
                f"detected must have shape (positives > 0, {len(thresholds)}), received {detected.shape}."
            )
        if false_accepts.shape != thresholds.shape:
            raise InputShapeError(
                f"false_accepts must have shape {thresholds.shape}, received {false_accepts.shape}."
            )
        if not self.negative_seconds > 0:
            raise ConfigError(f"negative_seconds must be positive, received {self.negative_seconds!r}.")
        if self.positive_labels and len(self.positive_labels) != len(detected):
            raise InputShapeError(
                f"positive_labels has {len(self.positive_labels)} entries for {len(detected)} positives."
            )
        object.__setattr__(self, "thresholds", thresholds)
        object.__setattr__(self, "detected", detected)
        object.__setattr__(self, "false_accepts", false_accepts)
        object.__setattr__(self, "positive_labels", tuple(self.positive_labels))

    @property
    def num_positives(self) -> int:
        return len(self.detected)

    @property
    def negative_hours(self) -> float:
        return self.negative_seconds / 3600.0

    @property
    def false_reject_rate(self) -> np.ndarray:
        return 1.0 - self.detected.mean(axis=0)

    @property
    def false_accepts_per_hour(self) -> np.ndarray:
        return self.false_accepts / self.negative_hours

    def threshold_index(self, target_fa_per_hour: float) -> int | None:
        """The threshold with the fewest false rejects among those within ``target_fa_per_hour``.

        Ties go to the highest such threshold (the most margin against false accepts). ``None`` when no
        threshold stays within the target.
        """
        if not target_fa_per_hour >= 0:
            raise ConfigError(f"target_fa_per_hour must be >= 0, received {target_fa_per_hour!r}.")
        within = np.flatnonzero(self.false_accepts_per_hour <= target_fa_per_hour)
        if len(within) == 0:
            return None
        frr = self.false_reject_rate[within]
        return int(within[np.flatnonzero(frr == frr.min())[-1]])

    def keyword_false_reject_rates(self, index: int) -> dict[str, float]:
        """False-reject rate of each keyword at threshold ``index`` (needs ``positive_labels``)."""
        labels = np.asarray(self.positive_labels)
        return {
            str(label): float(1.0 - self.detected[labels == label, index].mean())
            for label in sorted(set(self.positive_labels))
        }

    def point(self, index: int) -> dict[str, Any]:
        """Threshold, false-reject rate and false accepts (count and per hour) at threshold ``index``."""
        return {
            "threshold": float(self.thresholds[index]),
            "false_reject_rate": float(self.false_reject_rate[index]),
            "false_accepts": int(self.false_accepts[index]),
            "false_accepts_per_hour": float(self.false_accepts_per_hour[index]),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: sizes and the curve (one point per threshold)."""
        return {
            "kind": "keyword_detection",
            "num_positives": self.num_positives,
            "negative_hours": self.negative_hours,
            "curve": [self.point(index) for index in range(len(self.thresholds))],
        }

    def to_text(self, index: int | None = None) -> str:
        """A short report for people, about threshold ``index`` when given."""
        lines = [f"{self.num_positives} keyword clips, {self.negative_hours:.3f} h of audio without keywords"]
        if index is not None:
            point = self.point(index)
            lines.append(
                f"threshold {point['threshold']:.3f}: false rejects {point['false_reject_rate']:.2%}, "
                f"{point['false_accepts']} false accepts ({point['false_accepts_per_hour']:.2f} per hour)"
            )
        return "\n".join(lines)

"""Posterior handling of a streaming keyword spotter: moving-average smoothing, threshold, refractory period.

Pure NumPy on ``(windows, classes)`` probabilities, one row per window position of the stream.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from audio_transfer.checks import is_int
from audio_transfer.errors import ConfigError, InputShapeError


def smooth_posteriors(posteriors: np.ndarray, *, window: int) -> np.ndarray:
    """Trailing moving average over ``window`` rows (causal: row ``t`` averages rows ``t - window + 1 .. t``).

    The first ``window - 1`` rows average the rows available so far, so a keyword at the very start of the
    stream can still fire.

    Args:
        posteriors: ``(windows, classes)`` probabilities.
        window: rows averaged, at least 1 (1 returns the input unchanged).

    Returns:
        ``(windows, classes)`` float64 smoothed probabilities.

    Example:
        >>> smooth_posteriors(np.array([[0.0], [1.0], [1.0]]), window=2)[:, 0]
        array([0. , 0.5, 1. ])
    """
    if not is_int(window) or window < 1:
        raise ConfigError(f"The smoothing window must be a positive number of windows, received {window!r}.")
    posteriors = np.asarray(posteriors, dtype=np.float64)
    if posteriors.ndim != 2:
        raise InputShapeError(
            f"posteriors must have shape (windows, classes), received shape {posteriors.shape}."
        )
    if window == 1 or len(posteriors) == 0:
        return posteriors.copy()
    totals = np.cumsum(posteriors, axis=0)
    smoothed = totals.copy()
    smoothed[window:] -= totals[:-window]
    counts = np.minimum(np.arange(1, len(posteriors) + 1), window)[:, np.newaxis]
    return smoothed / counts


def pick_detections(
    scores: np.ndarray, *, threshold: float, refractory: int, classes: Sequence[int]
) -> list[tuple[int, int, float]]:
    """Where keywords fire: rows whose best keyword score reaches ``threshold``, outside refractory periods.

    Row by row, the stream fires at the first row where the highest score among ``classes`` is
    ``>= threshold`` (the keyword with that score; ties go to the first of ``classes``); after a detection
    at row ``t`` nothing fires before row ``t + refractory``, whatever the keyword, so one utterance yields
    one detection.

    Args:
        scores: ``(windows, classes)`` (smoothed) probabilities.
        threshold: score a keyword must reach.
        refractory: rows after a detection during which no keyword fires (>= 1; 1 lets the next row fire).
        classes: the columns that are keywords (``_silence_``/``_unknown_`` columns never fire).

    Returns:
        ``(row, column, score)`` per detection, in stream order.

    Example:
        >>> pick_detections(np.array([[0.9], [0.9], [0.2], [0.9]]), threshold=0.5, refractory=3, classes=[0])
        [(0, 0, 0.9), (3, 0, 0.9)]
    """
    if not is_int(refractory) or refractory < 1:
        raise ConfigError(f"The refractory period must be at least 1 window, received {refractory!r}.")
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise InputShapeError(f"scores must have shape (windows, classes), received shape {scores.shape}.")
    columns = np.asarray(classes, dtype=np.int64)
    if len(columns) == 0:
        return []
    keyword_scores = scores[:, columns]
    best = keyword_scores.max(axis=1)
    candidates = np.flatnonzero(best >= threshold)
    detections = []
    position = 0
    while position < len(candidates):
        row = int(candidates[position])
        column = int(columns[np.argmax(keyword_scores[row])])
        detections.append((row, column, float(scores[row, column])))
        position = int(np.searchsorted(candidates, row + refractory, side="left"))
    return detections

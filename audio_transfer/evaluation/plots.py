"""PNG figures of evaluation reports, drawn on ``matplotlib.figure.Figure`` (no pyplot, no global state).

matplotlib is imported when a figure is drawn, not with the package: it costs seconds to import, and
most callers of the metrics never draw.
"""

from __future__ import annotations

import os
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np

from audio_transfer.atomic_files import write_figure
from audio_transfer.evaluation.classification_report import ClassificationReport
from audio_transfer.evaluation.keyword_detection_report import KeywordDetectionReport
from audio_transfer.evaluation.verification_report import VerificationReport

if TYPE_CHECKING:
    pass

# Above this many classes the cells are too small to hold readable counts; colours alone remain.
_MAX_ANNOTATED_CLASSES = 40
_DET_TICKS = (1e-5, 1e-4, 1e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.95, 0.99)
_DET_MAX_RATE = 0.99


def plot_confusion_matrix(report: ClassificationReport, path: str | os.PathLike) -> Path:
    """Draw the confusion matrix of ``report`` as a PNG.

    Rows are true classes, columns predicted ones. Colours are row-normalised (each cell's share of its
    true class, so rare classes are as visible as frequent ones); cells show the raw counts (up to 40
    classes; beyond that the cells are too small).

    Args:
        report: from :func:`audio_transfer.evaluation.classification_metrics`.
        path: PNG file to write (replaced atomically); its folder must exist.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    from matplotlib.figure import Figure

    counts = report.confusion_matrix
    num_labels = len(report.labels)
    row_totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, row_totals, out=np.zeros(counts.shape), where=row_totals > 0)

    side_inches = float(np.clip(2.5 + 0.35 * num_labels, 4.5, 16.0))
    figure = Figure(figsize=(side_inches + 1.2, side_inches), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    figure.colorbar(image, ax=axes, shrink=0.8, label="share of the true class")
    ticks = np.arange(num_labels)
    label_size = float(np.clip(14 - 0.2 * num_labels, 6, 10))
    axes.set_xticks(ticks, labels=report.labels, rotation=45, ha="right", rotation_mode="anchor")
    axes.set_yticks(ticks, labels=report.labels)
    axes.tick_params(labelsize=label_size)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(
        f"accuracy {report.accuracy:.1%}, balanced {report.balanced_accuracy:.1%} "
        f"({report.num_examples} examples)"
    )
    if num_labels <= _MAX_ANNOTATED_CLASSES:
        for row, column in np.ndindex(counts.shape):
            axes.text(
                column,
                row,
                str(counts[row, column]),
                ha="center",
                va="center",
                fontsize=label_size,
                color="white" if shares[row, column] > 0.5 else "black",
            )
    return write_figure(path, figure)


def plot_det_curve(report: VerificationReport, path: str | os.PathLike) -> Path:
    """Draw the DET curve of ``report`` (FRR against FAR, both on probit axes) as a PNG, EER marked.

    Rates of 0 cannot be drawn on a probit axis; they are clipped to the lower axis limit, just below the
    smallest non-zero rate the trials can produce.

    Args:
        report: from :func:`audio_transfer.evaluation.verification_metrics`.
        path: PNG file to write (replaced atomically); its folder must exist.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    from matplotlib.figure import Figure

    smallest_rate = 1.0 / max(report.num_target, report.num_nontarget)
    low = float(np.clip(0.5 * smallest_rate, _DET_TICKS[0], 1e-3))

    def probit(rates: np.ndarray) -> np.ndarray:
        inverse_cdf = NormalDist().inv_cdf
        return np.array([inverse_cdf(rate) for rate in np.clip(rates, low, _DET_MAX_RATE)])

    figure = Figure(figsize=(5.5, 5.5), layout="constrained")
    axes = figure.add_subplot()
    axes.plot(probit(report.far), probit(report.frr), color="tab:blue", label="DET curve")
    limits = probit(np.array([low, _DET_MAX_RATE]))
    axes.plot(limits, limits, color="0.7", linestyle="--", linewidth=0.8)
    eer_point = probit(np.array([report.eer]))
    axes.plot(eer_point, eer_point, "o", color="tab:red", label=f"EER {report.eer:.2%}")
    ticks = np.array([tick for tick in _DET_TICKS if low <= tick <= _DET_MAX_RATE])
    tick_labels = [f"{100 * tick:g}" for tick in ticks]
    axes.set_xticks(probit(ticks), labels=tick_labels)
    axes.set_yticks(probit(ticks), labels=tick_labels)
    axes.set_xlim(*limits)
    axes.set_ylim(*limits)
    axes.set_aspect("equal")
    axes.grid(True, color="0.9")
    axes.set_xlabel("false acceptance rate (%)")
    axes.set_ylabel("false rejection rate (%)")
    axes.set_title(f"DET: {report.num_target} target, {report.num_nontarget} non-target trials")
    axes.legend(loc="upper right")
    return write_figure(path, figure)


def plot_false_accept_curve(
    report: KeywordDetectionReport,
    path: str | os.PathLike,
    *,
    chosen_index: int | None = None,
    target_fa_per_hour: float | None = None,
) -> Path:
    """Draw the DET curve of a keyword detector (false-reject rate against false accepts per hour) as a PNG.

    One point per threshold; the x axis is logarithmic, so thresholds without any false accept are drawn at
    half a false accept over the negative audio (hollow markers: "none in this audio"). The chosen
    threshold and the target are marked when given; the target line is drawn at the target itself, and the
    axis extends to show it even when the audio is too short to resolve it.

    Args:
        report: from :func:`audio_transfer.streaming.evaluate_stream`.
        path: PNG file to write (replaced atomically); its folder must exist.
        chosen_index: index of the threshold to mark.
        target_fa_per_hour: false-accept budget to draw as a vertical line.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    from matplotlib.figure import Figure

    fa_per_hour = report.false_accepts_per_hour
    low = 0.5 / report.negative_hours
    left = min(low, target_fa_per_hour or low) / 1.5
    high = max(float(fa_per_hour.max()), low, target_fa_per_hour or low) * 2.0
    figure = Figure(figsize=(6.0, 4.5), layout="constrained")
    axes = figure.add_subplot()
    frr = 100 * report.false_reject_rate
    axes.plot(np.maximum(fa_per_hour, low), frr, "-", color="tab:blue")
    none = fa_per_hour == 0
    axes.plot(fa_per_hour[~none], frr[~none], ".", color="tab:blue")
    if none.any():
        axes.plot(
            np.full(none.sum(), low),
            frr[none],
            "o",
            markerfacecolor="none",
            color="tab:blue",
            label="no false accept in this audio",
        )
    if target_fa_per_hour:  # a target of 0 has no place on a logarithmic axis
        axes.axvline(
            target_fa_per_hour,
            color="0.6",
            linestyle="--",
            linewidth=0.8,
            label=f"target {target_fa_per_hour:g} per hour",
        )
    if chosen_index is not None:
        point = report.point(chosen_index)
        axes.plot(
            max(point["false_accepts_per_hour"], low),
            100 * point["false_reject_rate"],
            "o",
            color="tab:red",
            label=f"threshold {point['threshold']:.3f}: FRR {point['false_reject_rate']:.1%}, "
            f"{point['false_accepts_per_hour']:.2f} FA/h",
        )
    axes.set_xscale("log")
    axes.set_xlim(left, high)
    axes.set_ylim(-2, 102)
    axes.grid(True, which="both", color="0.9")
    axes.set_xlabel("false accepts per hour")
    axes.set_ylabel("false rejection rate (%)")
    axes.set_title(
        f"keyword detection: {report.num_positives} keyword clips, {report.negative_hours:.2f} h without"
    )
    if chosen_index is not None or target_fa_per_hour or none.any():
        axes.legend(loc="upper right")
    return write_figure(path, figure)

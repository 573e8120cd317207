"""Write an evaluation report to a run folder: metrics.json, report.txt and its figure."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from audio_transfer.atomic_files import json_text, write_text
from audio_transfer.errors import ConfigError
from audio_transfer.evaluation.classification_report import ClassificationReport
from audio_transfer.evaluation.plots import plot_confusion_matrix, plot_det_curve
from audio_transfer.evaluation.verification_report import VerificationReport


def write_report(
    report: ClassificationReport | VerificationReport,
    out_dir: str | os.PathLike,
    *,
    extra: Mapping[str, Any] | None = None,
    notes: str | None = None,
) -> dict[str, Path]:
    """Write ``metrics.json``, ``report.txt`` and the report's PNG into ``out_dir`` (created if needed).

    ``metrics.json`` holds ``report.to_dict()`` plus the entries of ``extra`` (e.g. task, base, model
    path). NumPy numbers and arrays, tuples and paths in ``extra`` are converted to JSON types and NaN or
    infinite floats become ``null``, so the file is strict JSON. Every file is replaced atomically.

    Args:
        report: a :class:`ClassificationReport` (figure ``confusion_matrix.png``) or a
            :class:`VerificationReport` (figure ``det_curve.png``).
        out_dir: folder to write into.
        extra: more JSON entries for ``metrics.json``; they must not reuse the report's keys.
        notes: text added to ``report.txt`` after the report, after a blank line (e.g. how the head was
            chosen).

    Returns:
        the written paths by role: ``{"metrics": ..., "text": ..., "confusion_matrix" | "det_curve": ...}``.

    Raises:
        ConfigError: ``extra`` reuses a key of the report, or holds a value JSON cannot represent.

    Example:
        >>> paths = write_report(report, run_dir, extra={"task": "kws"})  # doctest: +SKIP
        >>> json.loads(paths["metrics"].read_text())["accuracy"]  # doctest: +SKIP
    """
    metrics = report.to_dict()
    extra = dict(extra or {})
    clashes = sorted(metrics.keys() & extra.keys())
    if clashes:
        raise ConfigError(f"extra must not overwrite report metrics, but it sets {clashes}.")
    content = json_text({**metrics, **extra}, name="extra")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "metrics": write_text(out_dir / "metrics.json", content),
        "text": write_text(
            out_dir / "report.txt", report.to_text() + ("" if notes is None else f"\n{notes}")
        ),
    }
    if isinstance(report, ClassificationReport):
        paths["confusion_matrix"] = plot_confusion_matrix(report, out_dir / "confusion_matrix.png")
    else:
        paths["det_curve"] = plot_det_curve(report, out_dir / "det_curve.png")
    return paths

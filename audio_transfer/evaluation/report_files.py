"""Write an evaluation report to a run folder: metrics.json, report.txt and its figure."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from audio_transfer.atomic_files import atomic_write
from audio_transfer.errors import ConfigError
from audio_transfer.evaluation.classification_report import ClassificationReport
from audio_transfer.evaluation.plots import plot_confusion_matrix, plot_det_curve
from audio_transfer.evaluation.verification_report import VerificationReport


def write_report(
    report: ClassificationReport | VerificationReport,
    out_dir: str | os.PathLike,
    *,
    extra: Mapping[str, Any] | None = None,
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
    content = _to_json(_json_ready({**metrics, **extra}, "extra")) + "\n"

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "metrics": atomic_write(out_dir / "metrics.json", lambda file: file.write(content.encode())),
        "text": atomic_write(out_dir / "report.txt", lambda file: file.write(report.to_text().encode())),
    }
    if isinstance(report, ClassificationReport):
        paths["confusion_matrix"] = plot_confusion_matrix(report, out_dir / "confusion_matrix.png")
    else:
        paths["det_curve"] = plot_det_curve(report, out_dir / "det_curve.png")
    return paths


def write_json(path: str | os.PathLike, data: Mapping[str, Any]) -> Path:
    """Write ``data`` as strict, indented JSON, replacing ``path`` atomically.

    NumPy numbers and arrays, tuples and paths become JSON types and NaN or infinite floats ``null``, as in
    ``metrics.json``.

    Raises:
        ConfigError: ``data`` holds a value JSON cannot represent.
    """
    content = _to_json(_json_ready(data, "data")) + "\n"
    return atomic_write(path, lambda file: file.write(content.encode()))


def _json_ready(value: Any, where: str) -> Any:
    """``value`` with NumPy types, tuples and paths made JSON types and non-finite floats made None."""
    if isinstance(value, Mapping):
        return {str(key): _json_ready(item, f"{where}[{key!r}]") for key, item in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_ready(item, f"{where}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, (str, int)):
        return value
    raise ConfigError(f"{where} holds a {type(value).__name__}, which JSON cannot represent: {value!r}.")


def _to_json(value: Any, indent: str = "") -> str:
    """Strict JSON indented by two spaces; below the top level, containers of plain values (a matrix row,
    one class's metrics) stay on one line."""
    inner = indent + "  "
    if isinstance(value, dict) and (not indent or any(isinstance(v, (dict, list)) for v in value.values())):
        items = (f"{inner}{json.dumps(key)}: {_to_json(item, inner)}" for key, item in value.items())
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
        return "[\n" + ",\n".join(inner + _to_json(item, inner) for item in value) + f"\n{indent}]"
    return json.dumps(value, allow_nan=False)

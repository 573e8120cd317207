"""How closely an exported model follows the Keras model it came from, measured on held-out clips."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from audio_transfer.atomic_files import write_json
from audio_transfer.errors import ExportOutputError, InputShapeError

if TYPE_CHECKING:
    from audio_transfer.export.verifier_parity_report import VerifierParityReport

logger = logging.getLogger(__name__)

REPORT_SUFFIX = ".report.json"
# A clip whose top two Keras probabilities differ by less than this is a close call.
CLOSE_CALL_MARGIN = 0.1


class _JsonReport:
    """What every export report dataclass shares: a JSON form, written atomically."""

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-serialisable dict."""
        return dataclasses.asdict(self)

    def write_json(self, path: str | os.PathLike) -> None:
        """Write the report as JSON to ``path`` atomically (beside the export: ``<out>.report.json``)."""
        write_json(path, self.to_dict(), error=ExportOutputError)


@dataclasses.dataclass(frozen=True)
class ParityReport(_JsonReport):
    """Agreement, accuracy, size and speed of an exported classifier against its Keras source.

    Args:
        format: ``"tflite"`` or ``"saved_model"``.
        quantize: ``"none"``, ``"float16"``, ``"dynamic"`` or ``"int8"``.
        input_dtype: element type of the exported model's input (``"float32"``, ``"int16"``, ``"int8"``).
        output_dtype: element type of its output (``"float32"`` or ``"int8"``).
        num_clips: number of held-out clips compared.
        top1_agreement: fraction of clips where both models pick the same class.
        keras_accuracy: top-1 accuracy of the Keras model on the clips.
        exported_accuracy: top-1 accuracy of the exported model on the clips.
        max_abs_probability_difference: largest absolute difference between any two probabilities.
        mean_max_abs_probability_difference: the largest absolute difference of each clip, averaged over
            the clips: the typical deviation, where the maximum shows the worst clip.
        close_call_disagreements: how many of the clips where the models' top classes differ the Keras
            model itself called close, its top two probabilities within ``CLOSE_CALL_MARGIN`` (0.1): int8
            flips such clips more easily than confident ones.
        size_bytes: size of the exported file (SavedModel: all files of the directory).
        mean_latency_ms: mean milliseconds per clip of one inference call.
        runtime: what ran the exported model (``"ai_edge_litert, 1 thread"``).

    Example::

        report = ParityReport.compare(keras_probabilities=p_keras, exported_probabilities=p_tflite,
                                      label_indices=y, size_bytes=n, seconds_per_clip=t, format="tflite",
                                      quantize="int8", input_dtype="int8", output_dtype="int8",
                                      runtime="ai_edge_litert, 1 thread")
        report.top1_agreement
    """

    format: str
    quantize: str
    input_dtype: str
    output_dtype: str
    num_clips: int
    top1_agreement: float
    keras_accuracy: float
    exported_accuracy: float
    max_abs_probability_difference: float
    mean_max_abs_probability_difference: float
    close_call_disagreements: int
    size_bytes: int
    mean_latency_ms: float
    runtime: str

    @classmethod
    def compare(
        cls,
        *,
        keras_probabilities: np.ndarray,
        exported_probabilities: np.ndarray,
        label_indices: np.ndarray,
        size_bytes: int,
        seconds_per_clip: float,
        format: str,
        quantize: str,
        input_dtype: str,
        output_dtype: str,
        runtime: str,
    ) -> ParityReport:
        """Build a report from both models' probabilities ``(clips, classes)`` and the true labels."""
        keras_probabilities = np.asarray(keras_probabilities, dtype=np.float64)
        exported_probabilities = np.asarray(exported_probabilities, dtype=np.float64)
        label_indices = np.asarray(label_indices)
        if keras_probabilities.shape != exported_probabilities.shape or len(label_indices) != len(
            keras_probabilities
        ):
            raise InputShapeError(
                f"Probabilities {keras_probabilities.shape} and {exported_probabilities.shape} and labels "
                f"{label_indices.shape} must describe the same clips."
            )
        keras_top1, exported_top1 = keras_probabilities.argmax(axis=1), exported_probabilities.argmax(axis=1)
        difference = np.abs(keras_probabilities - exported_probabilities)
        per_clip = difference.max(axis=1) if difference.size else np.zeros(1)
        top_two = np.sort(keras_probabilities, axis=1)[:, -2:]
        close = (top_two[:, 1] - top_two[:, 0] < CLOSE_CALL_MARGIN) if top_two.shape[1] == 2 else False
        return cls(
            format=format,
            quantize=quantize,
            input_dtype=input_dtype,
            output_dtype=output_dtype,
            num_clips=len(label_indices),
            top1_agreement=float(np.mean(keras_top1 == exported_top1)),
            keras_accuracy=float(np.mean(keras_top1 == label_indices)),
            exported_accuracy=float(np.mean(exported_top1 == label_indices)),
            max_abs_probability_difference=float(per_clip.max()),
            mean_max_abs_probability_difference=float(per_clip.mean()),
            close_call_disagreements=int(np.sum((keras_top1 != exported_top1) & close)),
            size_bytes=int(size_bytes),
            mean_latency_ms=1000.0 * float(seconds_per_clip),
            runtime=runtime,
        )

    def summary(self) -> str:
        """One line for people: agreement (and the close calls among disagreements), both accuracies, max
        difference, size, latency."""
        disagreements = round((1 - self.top1_agreement) * self.num_clips)
        close_calls = f" ({self.close_call_disagreements} of {disagreements} differing clips close calls)"
        return (
            f"top-1 agreement {self.top1_agreement:.1%} on {self.num_clips} clips"
            f"{close_calls if disagreements else ''}, accuracy Keras "
            f"{self.keras_accuracy:.1%} / exported {self.exported_accuracy:.1%}, max |Δp| "
            f"{self.max_abs_probability_difference:.2e}, {self.size_bytes} bytes, "
            f"{self.mean_latency_ms:.2f} ms/clip ({self.runtime})"
        )


def report_path(model_path: str | os.PathLike) -> Path:
    """Where the report of an export goes: beside it, named ``<file or folder name>.report.json``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + REPORT_SUFFIX)


def write_report_beside(report: ParityReport | VerifierParityReport | None, model_path: Path) -> Path | None:
    """Write ``report`` beside the export; without a report, remove a stale one left by an earlier export.

    Returns:
        the report's path, or None when there is no report.
    """
    path = report_path(model_path)
    if report is None:
        if path.exists():
            logger.info("Removing %s: it described an earlier export of %s.", path, model_path)
            path.unlink()
        return None
    report.write_json(path)
    logger.info("%s: %s", model_path, report.summary())
    return path


def check_clips(waveforms: Any, *, num_samples: int, argument: str) -> np.ndarray:
    """``waveforms`` as float32 ``(clips, num_samples)`` with at least one clip, else ``InputShapeError``."""
    array = np.asarray(waveforms, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != num_samples or len(array) == 0:
        raise InputShapeError(
            f"{argument} must be waveforms of shape (clips, {num_samples}) with at least one clip; received "
            f"shape {array.shape}."
        )
    return array


def check_held_out(
    held_out: tuple[Any, Any], *, num_samples: int, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``(waveforms, label_indices)`` of held-out clips; returns float32 clips and int labels."""
    try:
        waveforms, label_indices = held_out
    except (TypeError, ValueError) as error:
        raise InputShapeError("held_out must be a pair (waveforms, label_indices).") from error
    waveforms = check_clips(waveforms, num_samples=num_samples, argument="held_out waveforms")
    label_indices = np.asarray(label_indices)
    if label_indices.shape != (len(waveforms),) or not np.issubdtype(label_indices.dtype, np.integer):
        raise InputShapeError(
            f"held_out label_indices must be {len(waveforms)} integers, received shape {label_indices.shape} "
            f"of {label_indices.dtype}."
        )
    if label_indices.min() < 0 or label_indices.max() >= num_classes:
        raise InputShapeError(f"held_out label_indices must lie in [0, {num_classes}).")
    return waveforms, label_indices.astype(np.int64)

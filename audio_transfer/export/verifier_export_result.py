"""What a speaker verifier export wrote."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from audio_transfer.export.verifier_parity_report import VerifierParityReport


@dataclasses.dataclass(frozen=True)
class VerifierExportResult:
    """The outcome of :func:`~audio_transfer.export.export_verifier`.

    Args:
        path: the ``.tflite`` file or SavedModel folder written.
        format: ``"tflite"`` or ``"saved_model"``.
        quantize: quantization applied (``"none"``, ``"float16"`` or ``"dynamic"``).
        input_dtype: element type of the input tensor (``"float32"`` or ``"int16"``).
        sample_rate: rate in Hz the input waveform must have.
        num_samples: samples per clip the model takes.
        embedding_dim: size of the unit-length embedding it returns.
        threshold: acceptance threshold on the cosine score, shipped in the description.
        size_bytes: bytes on disk of the model.
        description_path: the ``<path>.verifier.json`` beside the model.
        description: its content.
        report: EER parity on held-out speakers, when clips were given.
        report_path: where the report JSON was written, when there is one.
    """

    path: Path
    format: str
    quantize: str
    input_dtype: str
    sample_rate: int
    num_samples: int
    embedding_dim: int
    threshold: float
    size_bytes: int
    description_path: Path
    description: dict[str, Any]
    report: VerifierParityReport | None = None
    report_path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (paths as strings, the report as a dict)."""
        return {
            **dataclasses.asdict(self),
            "path": str(self.path),
            "description_path": str(self.description_path),
            "report": self.report.to_dict() if self.report else None,
            "report_path": str(self.report_path) if self.report_path else None,
        }

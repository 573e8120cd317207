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
        size_bytes: bytes on disk of the model.
        description_path: the ``<path>.verifier.json`` beside the model.
        description: its content: ``model_format``, ``quantize``, ``input_dtype``, ``sample_rate``,
            ``num_samples``, ``embedding_dim``, ``threshold``, ... (see
            :mod:`audio_transfer.export.verifier_export`).
        report: EER parity on held-out speakers, when clips were given.
        report_path: where the report JSON was written, when there is one.
    """

    path: Path
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

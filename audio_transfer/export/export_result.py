"""What an export wrote."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from audio_transfer.export.parity_report import ParityReport


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """The outcome of :func:`export_tflite` or :func:`export_saved_model`.

    Args:
        path: the file (TFLite) or directory (SavedModel) written.
        format: ``"tflite"`` or ``"saved_model"``.
        quantize: quantization applied (``"none"`` for SavedModel).
        input_dtype: element type of the input tensor (``"float32"``, ``"int16"`` or ``"int8"``).
        output_dtype: element type of the output tensor (``"float32"`` or ``"int8"``).
        sample_rate: rate in Hz the input waveform must have.
        num_samples: samples per clip the model takes.
        labels: class names in output order.
        size_bytes: bytes on disk.
        ops: TFLite operators used (empty for SavedModel).
        float_layers: layers an int8 export kept in float32 (its feature front-end).
        report: the parity report, when held-out clips were given.
        report_path: where the report JSON was written, when there is one.
    """

    path: Path
    format: str
    quantize: str
    input_dtype: str
    output_dtype: str
    sample_rate: int
    num_samples: int
    labels: tuple[str, ...]
    size_bytes: int
    ops: tuple[str, ...] = ()
    float_layers: tuple[str, ...] = ()
    report: ParityReport | None = None
    report_path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (paths as strings, the report as a dict)."""
        data = dataclasses.asdict(self)
        data.update(
            path=str(self.path),
            labels=list(self.labels),
            ops=list(self.ops),
            float_layers=list(self.float_layers),
            report=self.report.to_dict() if self.report else None,
            report_path=str(self.report_path) if self.report_path else None,
        )
        return data

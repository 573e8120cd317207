"""Export of trained waveform classifiers for serving and edge devices.

- :func:`export_run`: a training run folder (or :class:`~audio_transfer.training.TrainingRun`) as
  ``audio-transfer export RUN`` exports it: calibration and held-out clips from the run's recorded splits.
- :func:`export_saved_model`: TensorFlow SavedModel, ``serving_default`` → ``{"scores", "labels"}``.
- :func:`export_tflite`: builtin-ops-only ``.tflite`` (float32, float16, dynamic or full-integer int8) with
  TFLite Model Metadata (labels, audio properties) that MediaPipe's ``AudioClassifier`` reads.
- :func:`int8_float_layers`: the layers an int8 export keeps in float32 (front-end, bottom blocks).
- :class:`TFLiteClassifier`: runs an exported file with LiteRT on float waveforms.
- :class:`ParityReport`: agreement, accuracy, size and latency of an export against its Keras model.
- :class:`TFLiteMetadata`: writes and reads the Model Metadata.
- :class:`ExportResult`: what an export wrote.
- :func:`export_verifier`: a speaker verifier's embedding model (TFLite or SavedModel) with
  ``<out>.verifier.json`` (input, embedding size, cosine threshold, enrollments format) and
  :class:`VerifierParityReport` (EER of the export and of Keras on held-out speakers), in a
  :class:`VerifierExportResult`.
- :class:`TensorArena`: the tensor arena a model needs in TensorFlow Lite Micro, measured by running it.
- :func:`export_c_source`: model bytes and constants as C/C++ source and header (TensorFlow Lite Micro), in a
  :class:`CSourceExport`.

Everything but :mod:`audio_transfer.export.options` and :mod:`audio_transfer.export.c_source_export` imports
TensorFlow, on first access.
"""

import importlib

from audio_transfer.export.options import (
    FORMATS,
    INPUT_TYPES,
    QUANTIZE_MODES,
    STREAMING_FORMATS,
    STREAMING_QUANTIZE_MODES,
    VERIFIER_QUANTIZE_MODES,
)

_LAZY = {
    "CSourceExport": "audio_transfer.export.c_source_export",
    "ExportResult": "audio_transfer.export.export_result",
    "ParityReport": "audio_transfer.export.parity_report",
    "TFLiteClassifier": "audio_transfer.export.tflite_classifier",
    "TensorArena": "audio_transfer.export.tensor_arena",
    "TFLiteMetadata": "audio_transfer.export.tflite_metadata",
    "VerifierExportResult": "audio_transfer.export.verifier_export_result",
    "VerifierParityReport": "audio_transfer.export.verifier_parity_report",
    "check_builtin_ops": "audio_transfer.export.tflite_export",
    "export_c_source": "audio_transfer.export.c_source_export",
    "export_run": "audio_transfer.export.run_export",
    "export_saved_model": "audio_transfer.export.saved_model_export",
    "export_tflite": "audio_transfer.export.tflite_export",
    "export_verifier": "audio_transfer.export.verifier_export",
    "int8_float_layers": "audio_transfer.export.tflite_export",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FORMATS",
    "INPUT_TYPES",
    "QUANTIZE_MODES",
    "STREAMING_FORMATS",
    "STREAMING_QUANTIZE_MODES",
    "VERIFIER_QUANTIZE_MODES",
    "CSourceExport",
    "ExportResult",
    "ParityReport",
    "TFLiteClassifier",
    "TFLiteMetadata",
    "TensorArena",
    "VerifierExportResult",
    "VerifierParityReport",
    "check_builtin_ops",
    "export_c_source",
    "export_run",
    "export_saved_model",
    "export_tflite",
    "export_verifier",
    "int8_float_layers",
]

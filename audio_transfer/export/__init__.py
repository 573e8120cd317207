"""Export of trained waveform classifiers for serving and edge devices.

- :func:`export_saved_model`: TensorFlow SavedModel, ``serving_default`` → ``{"scores", "labels"}``.
- :func:`export_tflite`: builtin-ops-only ``.tflite`` (float32, float16, dynamic or full-integer int8) with
  TFLite Model Metadata (labels, audio properties) that MediaPipe's ``AudioClassifier`` reads.
- :class:`TFLiteClassifier`: runs an exported file with LiteRT on float waveforms.
- :class:`ParityReport`: agreement, accuracy, size and latency of an export against its Keras model.
- :class:`TFLiteMetadata`: writes and reads the Model Metadata.
"""

from audio_transfer.export.export_result import ExportResult
from audio_transfer.export.parity_report import ParityReport
from audio_transfer.export.saved_model_export import export_saved_model
from audio_transfer.export.tflite_classifier import TFLiteClassifier
from audio_transfer.export.tflite_export import QUANTIZE_MODES, check_builtin_ops, export_tflite
from audio_transfer.export.tflite_metadata import TFLiteMetadata

__all__ = [
    "QUANTIZE_MODES",
    "ExportResult",
    "ParityReport",
    "TFLiteClassifier",
    "TFLiteMetadata",
    "check_builtin_ops",
    "export_saved_model",
    "export_tflite",
]

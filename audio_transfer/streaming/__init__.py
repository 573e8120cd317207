"""Streaming keyword detection: a keyword spotter slid over long audio, measured, and its on-device variant.

- :class:`KeywordDetector`: posteriors over long audio (for spotters on a base that streams, see
  :class:`~audio_transfer.bases.StreamableBase`, the base runs once per hop) and :class:`Detection` s
  after smoothing, threshold and refractory period (:func:`smooth_posteriors`, :func:`pick_detections`).
- :class:`DetectionSettings`: threshold, smoothing and refractory period, saved as ``streaming.json``.
- :func:`evaluate_stream` / :class:`StreamEvaluation`: false-reject rate and false accepts per hour across
  thresholds, the threshold for a target, the DET curve.
- :class:`StreamingSpotter`, :func:`export_streaming_tflite`, :class:`TFLiteStreamingSpotter`: the spotter
  as one step per hop of its base with explicit state, as a builtin-ops TFLite file, and run with LiteRT;
  :func:`export_streaming_c_source`: that file as C source and header for TensorFlow Lite Micro;
  :func:`export_streaming_run`: a run's spotter, float32 or int8, int8 with a :class:`StreamParityReport`
  (detections of both on held-out streams, :func:`keyword_streams`).
- :class:`WakeWordDetector`: live detection, audio chunks of any size in, the detections they complete out.

Layer: above ``tasks``, ``evaluation`` and ``export``; below ``cli``. Modules importing TensorFlow load on
first access.
"""

import importlib

from audio_transfer.streaming.detection import Detection
from audio_transfer.streaming.detection_settings import STREAMING_FILE, DetectionSettings
from audio_transfer.streaming.posteriors import pick_detections, smooth_posteriors

_LAZY = {
    "KeywordDetector": "audio_transfer.streaming.keyword_detector",
    "keyword_labels": "audio_transfer.streaming.keyword_detector",
    "StreamEvaluation": "audio_transfer.streaming.stream_evaluation",
    "evaluate_stream": "audio_transfer.streaming.stream_evaluation",
    "StreamingSpotter": "audio_transfer.streaming.streaming_spotter",
    "StreamingExport": "audio_transfer.streaming.streaming_export",
    "export_streaming_tflite": "audio_transfer.streaming.streaming_export",
    "export_streaming_c_source": "audio_transfer.streaming.streaming_export",
    "export_streaming_run": "audio_transfer.streaming.streaming_export",
    "StreamParityReport": "audio_transfer.streaming.stream_parity_report",
    "keyword_streams": "audio_transfer.streaming.stream_parity_report",
    "TFLiteStreamingSpotter": "audio_transfer.streaming.tflite_streaming_spotter",
    "WakeWordDetector": "audio_transfer.streaming.wake_word_detector",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "STREAMING_FILE",
    "Detection",
    "DetectionSettings",
    "KeywordDetector",
    "StreamEvaluation",
    "StreamParityReport",
    "StreamingExport",
    "StreamingSpotter",
    "TFLiteStreamingSpotter",
    "WakeWordDetector",
    "evaluate_stream",
    "export_streaming_c_source",
    "export_streaming_run",
    "export_streaming_tflite",
    "keyword_labels",
    "keyword_streams",
    "pick_detections",
    "smooth_posteriors",
]

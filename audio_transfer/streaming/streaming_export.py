"""Export of the streaming keyword spotter to a builtin-ops-only TFLite file with a JSON description, and of
that file as C source and header for TensorFlow Lite Micro."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import tensorflow as tf

from audio_transfer._tflite import tflite_operator_names
from audio_transfer.atomic_files import check_writable, temporary_directory_beside, write_bytes, write_json
from audio_transfer.errors import ExportError, ExportOutputError
from audio_transfer.export import check_builtin_ops
from audio_transfer.export.c_source_export import CSourceExport, export_c_source
from audio_transfer.features import compact_dft
from audio_transfer.streaming.detection_settings import DetectionSettings
from audio_transfer.streaming.keyword_detector import keyword_labels
from audio_transfer.streaming.streaming_spotter import (
    AUDIO_NAME,
    NEXT_STATE_NAME,
    SCORES_NAME,
    STATE_NAME,
    StreamingSpotter,
)
from audio_transfer.streaming.tflite_streaming_spotter import TFLiteStreamingSpotter
from audio_transfer.tasks import Classifier

logger = logging.getLogger(__name__)

DESCRIPTION_SUFFIX = ".streaming.json"


def description_path(model_path: str | os.PathLike) -> Path:
    """Where the streaming description of an exported model goes: ``<file name>.streaming.json`` beside it."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + DESCRIPTION_SUFFIX)


@dataclasses.dataclass(frozen=True)
class StreamingExport:
    """What :func:`export_streaming_tflite` wrote.

    Args:
        path: the ``.tflite`` file.
        description_path: the JSON beside it (tensors, hop, state size, labels, detection settings).
        description: that JSON's content.
        size_bytes: size of the ``.tflite`` file.
        ops: the TFLite operators it uses.
    """

    path: Path
    description_path: Path
    description: dict[str, Any]
    size_bytes: int
    ops: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "description_path": str(self.description_path),
            "size_bytes": self.size_bytes,
            "ops": list(self.ops),
            **self.description,
        }


def export_streaming_tflite(
    spotter: Classifier,
    *,
    clip_seconds: float,
    out: str | os.PathLike,
    settings: DetectionSettings | None = None,
) -> StreamingExport:
    """Write the :class:`StreamingSpotter` of ``spotter`` as a float32 TFLite file, builtin ops only.

    The file has two inputs, ``audio`` ``(1, hop_samples)`` float32 samples in [-1, 1] at the base's sample
    rate (``(1, 1280)`` at 16 kHz for speech_embedding) and ``state`` ``(1, state_size)``, and two
    outputs, ``scores`` ``(1, classes)`` and ``next_state`` ``(1, state_size)`` to feed back as ``state``
    on the next hop (zeros at the start). Beside it,
    ``<out>.streaming.json`` describes the tensors (with their positions, for TensorFlow Lite for
    Microcontrollers), hop, state size, warm-up hops, the window one set of scores covers (``window_samples``,
    the clip with its context), labels, keywords and the detection settings a device
    should apply to the scores (``settings``, e.g. those ``evaluate-stream`` chose). Both files are written
    atomically.

    Args:
        spotter: a trained classifier on a base that streams
            (:class:`~audio_transfer.bases.StreamableBase`, e.g. ``speech_embedding``).
        clip_seconds: its training clip length.
        out: the ``.tflite`` path.
        settings: detection settings recorded in the description (defaults when ``None``).

    Raises:
        ConfigError: the spotter is no classifier, or its base does not stream (the message names the
            bases that do).
        ExportError: non-builtin operators (named), conversion failure, unwritable ``out``.

    Example:
        >>> export_streaming_tflite(spotter, clip_seconds=1.0, out="kws_stream.tflite")
    """
    out = Path(out)
    streaming = StreamingSpotter(spotter, clip_seconds=clip_seconds)
    check_writable(out, directory=False, error=ExportOutputError)
    content = _convert(streaming, out=out)
    check_builtin_ops(content)
    runner = TFLiteStreamingSpotter(content)
    if runner.state_size != streaming.state_size or runner.hop_samples != streaming.hop_samples:
        raise ExportError(
            f"The converted streaming model has a state of {runner.state_size} and hops of "
            f"{runner.hop_samples}; expected {streaming.state_size} and {streaming.hop_samples}."
        )
    description = {
        "format": "tflite_streaming",
        "sample_rate": streaming.sample_rate,
        "hop_samples": streaming.hop_samples,
        "hop_seconds": streaming.hop_samples / streaming.sample_rate,
        "state_size": streaming.state_size,
        "warmup_hops": streaming.warmup_hops,
        "clip_seconds": clip_seconds,
        "window_samples": streaming.window_samples,
        "labels": list(streaming.labels),
        "keywords": keyword_labels(streaming.labels),
        "inputs": _tensor_positions(content, inputs=True),
        "outputs": _tensor_positions(content, inputs=False),
        "detection": (settings or DetectionSettings()).to_dict(),
    }
    write_bytes(out, content, error=ExportOutputError)
    written = write_json(description_path(out), description, error=ExportOutputError)
    logger.info("Wrote %s (%d bytes, state of %d floats).", out, len(content), streaming.state_size)
    return StreamingExport(
        path=out,
        description_path=written,
        description=description,
        size_bytes=len(content),
        ops=tuple(sorted(set(tflite_operator_names(content)))),
    )


def export_streaming_c_source(exported: StreamingExport, *, out: str | os.PathLike) -> CSourceExport:
    """The streaming TFLite file ``exported`` as ``NAME.cc`` and ``NAME.h`` for TensorFlow Lite Micro.

    Besides ``<NAME>_data`` (the file's bytes, 16-byte aligned) and ``<NAME>_data_len`` (see
    :func:`~audio_transfer.export.c_source_export.export_c_source`), the header declares what driving
    it takes: ``sample_rate``, ``hop_samples``, ``state_size``, ``warmup_hops``, ``window_samples``, the
    tensor positions (``audio_input``, ``state_input``, ``scores_output``, ``next_state_output``),
    ``labels`` (with ``labels_count``; keywords are those not starting with ``_``) and the detection
    settings: ``threshold``, ``smoothing_seconds`` and ``refractory_seconds``, and the same two in hops
    (``smoothing_hops``: the scores of that many hops are averaged; ``refractory_hops``: after a detection
    that many hops, itself included, fire nothing), each prefixed ``<NAME>_``.

    Args:
        exported: what :func:`export_streaming_tflite` wrote.
        out: ``NAME`` or ``NAME.cc``.

    Example:
        >>> exported = export_streaming_tflite(spotter, clip_seconds=1.0, out="kws.tflite")
        >>> export_streaming_c_source(exported, out="firmware/kws_model")  # kws_model.cc, kws_model.h
    """
    described = exported.description
    settings = DetectionSettings(**described["detection"])
    hop_seconds = described["hop_samples"] / described["sample_rate"]
    window_seconds = described["window_samples"] / described["sample_rate"]
    refractory_hops = settings.refractory_windows(stride_seconds=hop_seconds, window_seconds=window_seconds)
    constants = {
        **{
            name: described[name]
            for name in ("sample_rate", "hop_samples", "state_size", "warmup_hops", "window_samples")
        },
        "audio_input": described["inputs"][AUDIO_NAME],
        "state_input": described["inputs"][STATE_NAME],
        "scores_output": described["outputs"][SCORES_NAME],
        "next_state_output": described["outputs"][NEXT_STATE_NAME],
        "labels": described["labels"],
        "threshold": float(settings.threshold),
        "smoothing_seconds": float(settings.smoothing_seconds),
        "smoothing_hops": settings.smoothing_windows(stride_seconds=hop_seconds),
        "refractory_seconds": float(settings.refractory_seconds_for(window_seconds=window_seconds)),
        "refractory_hops": refractory_hops,
    }
    comment = (
        f"Streaming keyword spotter for TensorFlow Lite Micro, from {exported.path.name}.\n"
        "Each hop: copy hop_samples float32 samples in [-1, 1] into input audio_input and the previous\n"
        "next_state (zeros at the start) into input state_input, invoke, read the scores of every label\n"
        "from output scores_output and keep output next_state_output. Ignore the first warmup_hops hops;\n"
        "average the scores of the last smoothing_hops hops; a keyword (a label not starting with '_')\n"
        "fires where its average reaches threshold, then nothing fires for refractory_hops hops."
    )
    return export_c_source(exported.path.read_bytes(), out=out, constants=constants, comment=comment)


def _convert(streaming: StreamingSpotter, *, out: Path) -> bytes:
    """The flatbuffer, through a temporary SavedModel (which freezes the Keras variables into constants)
    staged beside ``out``."""
    with temporary_directory_beside(out) as folder:
        saved_model_dir = str(folder)
        with compact_dft(streaming.spotter):  # the file holds the small two-stage DFT constants
            tf.saved_model.save(streaming, saved_model_dir, signatures={"serving_default": streaming.step})
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            return converter.convert()
        except Exception as error:  # the converter raises ConverterError and assorted TF errors
            raise ExportError(f"Converting the streaming spotter to TFLite failed: {error}") from error


def _tensor_positions(content: bytes, *, inputs: bool) -> dict[str, int]:
    """Signature name -> position among the subgraph's inputs (or outputs), as TFLite Micro indexes them."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    signature = interpreter.get_signature_list()["serving_default"]
    details = interpreter.get_input_details() if inputs else interpreter.get_output_details()
    order = [detail["index"] for detail in details]
    runner = interpreter.get_signature_runner()
    by_name = runner.get_input_details() if inputs else runner.get_output_details()
    names = signature["inputs" if inputs else "outputs"]
    expected = {AUDIO_NAME, STATE_NAME} if inputs else {SCORES_NAME, NEXT_STATE_NAME}
    if set(names) != expected:
        raise ExportError(
            f"The streaming model's signature has {sorted(names)}; expected {sorted(expected)}."
        )
    return {name: order.index(by_name[name]["index"]) for name in sorted(names)}

"""Export of a Keras waveform classifier to a TensorFlow SavedModel with a labelled serving signature."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from audio_transfer.atomic_files import atomic_directory, check_writable, write_text
from audio_transfer.errors import ExportError, ExportOutputError
from audio_transfer.export._serving import (
    INPUT_NAME,
    SCORES_NAME,
    check_input_type,
    classifier_spec,
    from_pcm16,
    serving_module,
    to_pcm16,
)
from audio_transfer.export.export_result import ExportResult
from audio_transfer.export.parity_report import ParityReport, check_held_out, write_report_beside
from audio_transfer.export.tflite_metadata import LABELS_FILE_NAME

SERVING_SIGNATURE = "serving_default"
TENSORFLOW_RUNTIME = "tensorflow SavedModel signature, batch 1"


def export_saved_model(
    model: keras.Model,
    *,
    labels: Sequence[str],
    sample_rate: int,
    out: str | os.PathLike,
    input_type: str = "float32",
    held_out: tuple[np.ndarray, np.ndarray] | None = None,
    num_samples: int | None = None,
) -> ExportResult:
    """Write a SavedModel whose ``serving_default`` signature returns scores and labels.

    The signature takes ``waveform`` ``(batch, num_samples)`` (float32 in [-1, 1], or int16 PCM with
    ``input_type="int16"``) at ``sample_rate`` and returns ``{"scores": (batch, num_classes) float32
    probabilities, "labels": (num_classes,) string}``. ``labels.txt`` is a SavedModel asset (the loaded
    object's ``labels_file``), and ``sample_rate`` / ``num_samples`` are saved as integer attributes of the
    loaded object. SavedModel keeps every TensorFlow op, so it is the format for models TFLite builtins
    cannot express. The directory is written atomically (temporary sibling, then rename).

    Args:
        model: Keras classifier, waveform ``(batch, samples)`` → probabilities ``(batch, num_classes)``.
        labels: class names in output order.
        sample_rate: rate in Hz of the input waveform.
        out: the directory to write (replaced if it exists).
        input_type: ``"float32"`` or ``"int16"``.
        held_out: ``(waveforms, label_indices)`` for a :class:`ParityReport` written to
            ``<out>.report.json``.
        num_samples: input length, needed only when the model accepts any length.

    Example::

        export_saved_model(model, labels=labels, sample_rate=16000, out="kws_saved_model")
        serving = tf.saved_model.load("kws_saved_model").signatures["serving_default"]
        serving(waveform=tf.zeros((2, 16000)))["labels"]
    """
    out = Path(out)
    spec = classifier_spec(model, labels=labels, sample_rate=sample_rate, num_samples=num_samples)
    dtype = check_input_type(input_type)
    clips = (
        check_held_out(held_out, num_samples=spec.num_samples, num_classes=len(spec.labels))
        if held_out is not None
        else None
    )
    check_writable(out, directory=True, error=ExportOutputError)

    module = serving_module(model, spec, input_type=input_type, batch_size=None, with_labels=True)
    module.sample_rate = tf.Variable(spec.sample_rate, trainable=False, dtype=tf.int64, name="sample_rate")
    module.num_samples = tf.Variable(spec.num_samples, trainable=False, dtype=tf.int64, name="num_samples")
    with atomic_directory(out, error=ExportOutputError) as directory, tempfile.TemporaryDirectory() as assets:
        # The asset keeps its file name inside the SavedModel's assets/ folder.
        labels_file = Path(assets) / LABELS_FILE_NAME
        write_text(labels_file, "".join(f"{label}\n" for label in spec.labels))
        module.labels_file = tf.saved_model.Asset(str(labels_file))
        try:
            tf.saved_model.save(module, str(directory), signatures={SERVING_SIGNATURE: module.serve})
        except (OSError, tf.errors.OpError) as error:
            raise ExportError(f"Cannot write the SavedModel {out}: {error}") from error
        size_bytes = sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())
        report = None
        if clips is not None:
            report = _parity(model, directory, clips, dtype=dtype, size_bytes=size_bytes)
    written_report = write_report_beside(report, out)
    return ExportResult(
        path=out,
        format="saved_model",
        quantize="none",
        input_dtype=dtype.name,
        output_dtype="float32",
        sample_rate=spec.sample_rate,
        num_samples=spec.num_samples,
        labels=spec.labels,
        size_bytes=size_bytes,
        report=report,
        report_path=written_report,
    )


def _parity(
    model: keras.Model,
    directory: Path,
    clips: tuple[np.ndarray, np.ndarray],
    *,
    dtype: tf.DType,
    size_bytes: int,
) -> ParityReport:
    """Run the written SavedModel (reloaded from disk) clip by clip against the Keras model."""
    waveforms, label_indices = clips
    serving = tf.saved_model.load(str(directory)).signatures[SERVING_SIGNATURE]
    inputs = to_pcm16(waveforms) if dtype == tf.int16 else waveforms
    keras_input = from_pcm16(inputs) if dtype == tf.int16 else waveforms
    serving(**{INPUT_NAME: tf.constant(inputs[:1])})  # trace and warm up outside the timing
    exported, seconds = [], 0.0
    for clip in inputs:
        start = time.perf_counter()
        exported.append(serving(**{INPUT_NAME: tf.constant(clip[np.newaxis])})[SCORES_NAME].numpy()[0])
        seconds += time.perf_counter() - start
    return ParityReport.compare(
        keras_probabilities=model.predict(keras_input, batch_size=32, verbose=0),
        exported_probabilities=np.stack(exported),
        label_indices=label_indices,
        size_bytes=size_bytes,
        seconds_per_clip=seconds / len(inputs),
        format="saved_model",
        quantize="none",
        input_dtype=dtype.name,
        output_dtype="float32",
        runtime=TENSORFLOW_RUNTIME,
    )

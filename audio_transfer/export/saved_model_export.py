"""Export of a Keras waveform classifier to a TensorFlow SavedModel with a labelled serving signature."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from audio_transfer.atomic_files import (
    atomic_directory,
    check_writable,
    temporary_directory_beside,
    write_text,
)
from audio_transfer.errors import ExportError, ExportOutputError
from audio_transfer.export._serving import (
    INPUT_NAME,
    SCORES_NAME,
    ClassifierSpec,
    as_heard,
    check_input_type,
    classifier_spec,
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
    out: str | os.PathLike,
    labels: Sequence[str] | None = None,
    sample_rate: int | None = None,
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
        labels: class names in output order; default: the task's ``labels``.
        sample_rate: rate in Hz of the input waveform; default: the task's ``sample_rate``.
        out: the directory to write (replaced if it exists).
        input_type: ``"float32"`` or ``"int16"``.
        held_out: ``(waveforms, label_indices)`` for a :class:`ParityReport` written to
            ``<out>.report.json``.
        num_samples: input length (the training clip length in samples); required when the model accepts
            any length, as tasks do (they do not record the length they were trained on).

    Example::

        export_saved_model(spotter, num_samples=16000, out="kws_saved_model")  # labels, rate: the task's
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
    with (
        atomic_directory(out, error=ExportOutputError) as directory,
        temporary_directory_beside(out) as assets,
    ):
        # The asset keeps its file name inside the SavedModel's assets/ folder.
        labels_file = assets / LABELS_FILE_NAME
        write_text(labels_file, "".join(f"{label}\n" for label in spec.labels))
        module.labels_file = tf.saved_model.Asset(str(labels_file))
        size_bytes = save_serving_module(module, spec, directory, out=out)
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
    exported, seconds_per_clip = run_saved_model(directory, waveforms, dtype=dtype, output_name=SCORES_NAME)
    return ParityReport.compare(
        keras_probabilities=model.predict(as_heard(waveforms, dtype=dtype), batch_size=32, verbose=0),
        exported_probabilities=exported,
        label_indices=label_indices,
        size_bytes=size_bytes,
        seconds_per_clip=seconds_per_clip,
        format="saved_model",
        quantize="none",
        input_dtype=dtype.name,
        output_dtype="float32",
        runtime=TENSORFLOW_RUNTIME,
    )


def save_serving_module(module: tf.Module, spec: ClassifierSpec, directory: Path, *, out: Path) -> int:
    """Save ``module`` (from :func:`serving_module`) as a SavedModel in ``directory`` with ``sample_rate``
    and ``num_samples`` as integer attributes; returns the bytes written. ``out`` names the export in
    errors."""
    module.sample_rate = tf.Variable(spec.sample_rate, trainable=False, dtype=tf.int64, name="sample_rate")
    module.num_samples = tf.Variable(spec.num_samples, trainable=False, dtype=tf.int64, name="num_samples")
    try:
        tf.saved_model.save(module, str(directory), signatures={SERVING_SIGNATURE: module.serve})
    except (OSError, tf.errors.OpError) as error:
        raise ExportError(f"Cannot write the SavedModel {out}: {error}") from error
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def run_saved_model(
    directory: Path, waveforms: np.ndarray, *, dtype: tf.DType, output_name: str
) -> tuple[np.ndarray, float]:
    """Run the SavedModel in ``directory`` (reloaded from disk) clip by clip, as a server would.

    Returns:
        ``(outputs (clips, size), mean seconds per clip)``; int16 models get the clips as PCM.
    """
    serving = tf.saved_model.load(str(directory)).signatures[SERVING_SIGNATURE]
    inputs = to_pcm16(waveforms) if dtype == tf.int16 else waveforms
    serving(**{INPUT_NAME: tf.constant(inputs[:1])})  # trace and warm up outside the timing
    outputs, seconds = [], 0.0
    for clip in inputs:
        start = time.perf_counter()
        outputs.append(serving(**{INPUT_NAME: tf.constant(clip[np.newaxis])})[output_name].numpy()[0])
        seconds += time.perf_counter() - start
    return np.stack(outputs), seconds / len(inputs)

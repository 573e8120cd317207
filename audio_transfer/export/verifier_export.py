"""Export of a speaker verifier's embedding model, with what a device needs to enroll and verify.

The export writes the model (a builtin-ops-only ``.tflite`` file or a SavedModel folder) and, beside it,
``<out>.verifier.json``, which says how to feed the model and how to decide::

    {
      "format": "audio_transfer.verifier", "version": 1,
      "model": "verifier.tflite", "model_format": "tflite", "quantize": "none",
      "sample_rate": 16000, "num_samples": 16000, "clip_seconds": 1.0,
      "input_name": "waveform", "input_dtype": "float32",
      "output_name": "embedding", "embedding_dim": 256,
      "score": "cosine", "threshold": 0.71, "threshold_source": "...",
      "enrollments": {"format": "audio_transfer.enrollments", "version": 1}
    }

On the device:

1. Decode a recording to mono at ``sample_rate``, centre-crop or zero-pad it to ``num_samples`` (float32 in
   [-1, 1], or 16-bit PCM for ``input_dtype`` int16) and run the model: one ``(1, embedding_dim)``
   embedding of unit L2 length.
2. Enroll a speaker by keeping the embeddings of a few of their clips. The enrollments file (what
   :meth:`~audio_transfer.tasks.SpeakerVerifier.save_enrollments` writes and ``audio-transfer enroll``
   reads) is JSON: ``{"format": "audio_transfer.enrollments", "version": 1, "embedding_dim": D,
   "speakers": {"<name>": [[D floats], ...], ...}}``, one row per enrollment clip.
3. Verify a clip against a speaker: the score is the cosine similarity between the clip's embedding and the
   speaker's centroid (the mean of their enrollment embeddings, scaled to unit length); accept when the
   score is at or above ``threshold``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from audio_transfer.atomic_files import atomic_directory, check_writable, write_bytes, write_json
from audio_transfer.checks import is_number
from audio_transfer.errors import ConfigError, ExportOutputError, InputShapeError
from audio_transfer.evaluation import trial_pairs
from audio_transfer.export._conversion import convert
from audio_transfer.export._serving import (
    EMBEDDING_NAME,
    INPUT_NAME,
    as_heard,
    check_input_type,
    embedding_spec,
    serving_module,
)
from audio_transfer.export.options import FORMATS, VERIFIER_QUANTIZE_MODES
from audio_transfer.export.parity_report import write_report_beside
from audio_transfer.export.saved_model_export import (
    TENSORFLOW_RUNTIME,
    run_saved_model,
    save_serving_module,
)
from audio_transfer.export.tflite_export import LITERT_RUNTIME, check_builtin_ops, load_in_litert
from audio_transfer.export.verifier_export_result import VerifierExportResult
from audio_transfer.export.verifier_parity_report import VerifierParityReport
from audio_transfer.tasks.speaker_verifier import ENROLLMENTS_FORMAT, ENROLLMENTS_VERSION

VERIFIER_FORMAT = "audio_transfer.verifier"
VERIFIER_VERSION = 1
VERIFIER_SUFFIX = ".verifier.json"


def verifier_description_path(model_path: str | os.PathLike) -> Path:
    """Where the description of an exported verifier goes: ``<file or folder name>.verifier.json``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + VERIFIER_SUFFIX)


def export_verifier(
    verifier: keras.Model,
    *,
    out: str | os.PathLike,
    format: str = "tflite",
    num_samples: int | None = None,
    sample_rate: int | None = None,
    threshold: float | None = None,
    threshold_source: str | None = None,
    held_out: tuple[np.ndarray, Sequence[str]] | None = None,
    quantize: str = "none",
    input_type: str = "float32",
) -> VerifierExportResult:
    """Export a speaker verifier's embedding model, its description and a parity report.

    The model takes one clip ``(1, num_samples)`` (TFLite; any batch for SavedModel) at ``sample_rate`` and
    returns its unit-length embedding ``{"embedding": (batch, embedding_dim)}``. A TFLite file uses
    builtin operators only (checked; the feature front-ends compute their DFT with matrix products). Beside
    the model, ``<out>.verifier.json`` records the input, the embedding size, the acceptance threshold on
    the cosine score and the enrollments file format (see the module docstring for the format and how a
    device enrolls and verifies). With ``held_out`` clips of speakers the model never trained on, the EER
    of the export and of the Keras model on every pair of those clips goes to ``<out>.report.json``
    (:class:`VerifierParityReport`). Every file is written atomically.

    Args:
        verifier: a :class:`~audio_transfer.tasks.SpeakerVerifier` (or any Keras model mapping
            ``(batch, samples)`` to ``(batch, embedding_dim)``).
        out: the ``.tflite`` file or SavedModel folder to write.
        format: ``"tflite"`` or ``"saved_model"``.
        num_samples: input length (the clip length in samples); required when the model accepts any length,
            as tasks do.
        sample_rate: rate in Hz of the input; default: the verifier's ``sample_rate``.
        threshold: cosine score at or above which a clip is accepted as the enrolled speaker, from -1 to 1;
            default: the export's EER threshold on ``held_out``.
        threshold_source: where ``threshold`` comes from, recorded in the description (default: "given",
            or how it was measured).
        held_out: ``(waveforms (clips, num_samples), speakers (clips,))`` of held-out speakers: at least two
            speakers, one of them with two clips.
        quantize: TFLite only: ``"none"`` (float32), ``"float16"`` or ``"dynamic"`` (int8 weights).
        input_type: ``"float32"`` (samples in [-1, 1]) or ``"int16"`` (16-bit PCM, scaled inside).

    Returns:
        a :class:`VerifierExportResult`.

    Raises:
        ConfigError: unknown ``format``/``quantize``/``input_type``, a threshold outside [-1, 1], no
            threshold and no ``held_out`` to measure one, no ``num_samples`` for a model of any length.
        InputShapeError: ``held_out`` clips of another length, or speakers that do not pair with them.
        ExportError: non-builtin TFLite ops (named), unwritable ``out``.

    Example::

        verifier = load_run("runs/voices").task
        result = export_verifier(verifier, out="verifier.tflite", num_samples=32000,
                                 held_out=(clips, speakers))
        print(result.report.summary())
    """
    out = Path(out)
    if format not in FORMATS:
        raise ConfigError(f"format must be one of {FORMATS}, received {format!r}.")
    allowed = VERIFIER_QUANTIZE_MODES if format == "tflite" else ("none",)
    if quantize not in allowed:
        raise ConfigError(
            f"A {format} speaker verifier exports with quantize in {allowed}, received {quantize!r} (int8 "
            "activations are not supported for verifiers)."
        )
    if threshold is not None and not (is_number(threshold) and -1.0 <= threshold <= 1.0):
        raise ConfigError(f"threshold must be a cosine score from -1 to 1, received {threshold!r}.")
    if threshold is None and held_out is None:
        raise ConfigError(
            "A verifier export ships its acceptance threshold: pass threshold= (e.g. the EER threshold the "
            "training run measured) or held_out= clips of unseen speakers to measure one."
        )
    spec = embedding_spec(verifier, sample_rate=sample_rate, num_samples=num_samples)
    dtype = check_input_type(input_type)
    clips = None if held_out is None else _check_speaker_clips(held_out, num_samples=spec.num_samples)
    check_writable(out, directory=format == "saved_model", error=ExportOutputError)

    parity = functools.partial(
        _parity, verifier, clips, threshold=threshold, format=format, quantize=quantize, dtype=dtype
    )
    if format == "tflite":
        content = convert(
            verifier,
            spec,
            quantize=quantize,
            input_type=input_type,
            calibration=None,
            int8_io=False,
            out=out,
        )
        check_builtin_ops(content)
        size_bytes = len(content)
        report = parity(load_in_litert(content).run, size_bytes=size_bytes)
        write_bytes(out, content, error=ExportOutputError)
    else:
        module = serving_module(verifier, spec, input_type=input_type, batch_size=None, with_labels=False)
        with atomic_directory(out, error=ExportOutputError) as directory:
            size_bytes = save_serving_module(module, spec, directory, out=out)
            report = parity(_saved_model_runner(directory, dtype=dtype), size_bytes=size_bytes)
    if threshold is None:
        threshold = report.threshold
        threshold_source = threshold_source or "EER threshold of the export on the held-out speakers"
    description = {
        "format": VERIFIER_FORMAT,
        "version": VERIFIER_VERSION,
        "model": out.name,
        "model_format": format,
        "quantize": quantize,
        "sample_rate": spec.sample_rate,
        "num_samples": spec.num_samples,
        "clip_seconds": spec.clip_seconds,
        "input_name": INPUT_NAME,
        "input_dtype": dtype.name,
        "output_name": EMBEDDING_NAME,
        "embedding_dim": spec.output_size,
        "score": "cosine",
        "threshold": float(threshold),
        "threshold_source": threshold_source or "given",
        "enrollments": {"format": ENROLLMENTS_FORMAT, "version": ENROLLMENTS_VERSION},
    }
    description_path = write_json(verifier_description_path(out), description, error=ExportOutputError)
    report_path = write_report_beside(report, out)
    return VerifierExportResult(
        path=out,
        size_bytes=size_bytes,
        description_path=description_path,
        description=description,
        report=report,
        report_path=report_path,
    )


def _check_speaker_clips(
    held_out: tuple[np.ndarray, Sequence[str]], *, num_samples: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(waveforms, speakers)`` checked: float32 ``(clips, num_samples)``, one speaker per clip, and both
    same-speaker and different-speaker pairs among them."""
    try:
        waveforms, speakers = held_out
    except (TypeError, ValueError) as error:
        raise InputShapeError("held_out must be a pair (waveforms, speakers).") from error
    waveforms = np.asarray(waveforms, np.float32)
    speakers = np.asarray([str(speaker) for speaker in speakers])
    if waveforms.ndim != 2 or waveforms.shape[1] != num_samples or len(speakers) != len(waveforms):
        raise InputShapeError(
            f"held_out must be waveforms (clips, {num_samples}) and one speaker per clip; received waveforms "
            f"of shape {waveforms.shape} and {len(speakers)} speakers."
        )
    same = trial_pairs(speakers)[2]
    if not (same.any() and (~same).any()):
        raise ConfigError(
            "held_out needs clips of at least two speakers, one of them with two clips or more, so that "
            f"there are same-speaker and different-speaker pairs; received {len(set(speakers))} speakers "
            f"in {len(speakers)} clips."
        )
    return waveforms, speakers


def _parity(
    verifier: keras.Model,
    clips: tuple[np.ndarray, np.ndarray] | None,
    run: Callable[[np.ndarray], tuple[np.ndarray, float]],
    *,
    threshold: float | None,
    size_bytes: int,
    format: str,
    quantize: str,
    dtype: tf.DType,
) -> VerifierParityReport | None:
    """The EER parity report of the export ``run`` against the Keras verifier; None without clips."""
    if clips is None:
        return None
    waveforms, speakers = clips
    exported, seconds_per_clip = run(waveforms)
    return VerifierParityReport.compare(
        format=format,
        quantize=quantize,
        input_dtype=dtype.name,
        runtime=LITERT_RUNTIME if format == "tflite" else TENSORFLOW_RUNTIME,
        size_bytes=size_bytes,
        seconds_per_clip=seconds_per_clip,
        keras_embeddings=verifier.predict(as_heard(waveforms, dtype=dtype), batch_size=32, verbose=0),
        exported_embeddings=exported,
        speakers=speakers,
        threshold=threshold,
    )


def _saved_model_runner(directory: Path, *, dtype: tf.DType):
    """A function running the written SavedModel's embedding on clips: ``(embeddings, seconds per clip)``."""

    def run(waveforms: np.ndarray) -> tuple[np.ndarray, float]:
        return run_saved_model(directory, waveforms, dtype=dtype, output_name=EMBEDDING_NAME)

    return run

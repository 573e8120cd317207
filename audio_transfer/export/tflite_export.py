"""Export of a Keras waveform classifier to a TFLite file with metadata and a parity report."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from audio_transfer._tflite import non_builtin_operators, tflite_operator_names
from audio_transfer.atomic_files import check_writable, write_bytes
from audio_transfer.bases import AudioBase
from audio_transfer.checks import is_int
from audio_transfer.errors import ConfigError, ExportError, ExportOutputError
from audio_transfer.export._conversion import (
    DATA_MOVEMENT_OPS,
    SAVED_MODEL_HINT,
    convert,
    feeding_tensor_names,
    run_conversion,
    tensor_names_in_layers,
)
from audio_transfer.export._serving import as_heard, check_input_type, classifier_spec
from audio_transfer.export.export_result import ExportResult
from audio_transfer.export.options import QUANTIZE_MODES
from audio_transfer.export.parity_report import (
    ParityReport,
    check_clips,
    check_held_out,
    write_report_beside,
)
from audio_transfer.export.tflite_classifier import TFLiteClassifier
from audio_transfer.export.tflite_metadata import TFLiteMetadata
from audio_transfer.features import frontend_layers

logger = logging.getLogger(__name__)

LITERT_RUNTIME = "ai_edge_litert, 1 thread"


def export_tflite(
    model: keras.Model,
    *,
    out: str | os.PathLike,
    labels: Sequence[str] | None = None,
    sample_rate: int | None = None,
    quantize: str = "none",
    input_type: str = "float32",
    representative_data: np.ndarray | None = None,
    int8_io: bool = False,
    held_out: tuple[np.ndarray, np.ndarray] | None = None,
    num_samples: int | None = None,
    float_layers: Sequence[str] | None = None,
) -> ExportResult:
    """Convert a waveform classifier to a builtin-ops-only ``.tflite`` file with Model Metadata.

    The file takes one clip ``(1, num_samples)`` at ``sample_rate`` (batch 1: phones, microcontrollers and
    MediaPipe run one clip per call, and a static shape is what microcontrollers need) and returns
    ``(1, num_classes)`` probabilities. Labels and audio properties travel as TFLite Model Metadata (see
    :class:`TFLiteMetadata`). The file is checked to use builtin operators only, loaded once with LiteRT,
    and written atomically: on any error nothing is left at ``out``. With ``held_out`` clips a
    :class:`ParityReport` against the Keras model is returned and written to ``<out>.report.json``.

    Args:
        model: Keras classifier, waveform ``(batch, samples)`` float32 in [-1, 1] → probabilities.
        labels: class names in output order; default: the task's ``labels``.
        sample_rate: rate in Hz of the input waveform; default: the task's ``sample_rate``.
        out: the ``.tflite`` path to write.
        quantize: ``"none"`` (float32), ``"float16"`` (float16 weights), ``"dynamic"`` (int8 weights,
            float activations) or ``"int8"`` (int8 weights and activations calibrated on
            ``representative_data``, the feature front-end aside: see ``float_layers``).
        input_type: ``"float32"`` (samples in [-1, 1]) or ``"int16"`` (16-bit PCM, scaled by 1/32768 in
            the model).
        representative_data: ``(clips, num_samples)`` float waveforms from the training data; required for
            ``"int8"``, which calibrates activation ranges on them.
        int8_io: with ``"int8"``: int8 output tensor, and int8 input when ``input_type`` is float32 (int16
            input stays int16). Otherwise the file takes and returns float32 around its int8 core. An int8
            waveform keeps 8 bits of audio; prefer ``input_type="int16"`` for an integer input.
        held_out: ``(waveforms (clips, num_samples), label_indices (clips,))`` for the parity report.
        num_samples: input length (the training clip length in samples); required when the model accepts
            any length, as tasks do (they do not record the length they were trained on).
        float_layers: with ``"int8"``: names of layers whose ops stay float32. Default: the model's feature
            front-ends (:class:`~audio_transfer.features.LogMelSpectrogram`, ``MFCC``), whose power
            spectra and logs int8 cannot represent (and whose LOG has no int8 kernel in TFLite Micro),
            and the bottom ``int8_float_blocks`` blocks of its base (``stage_1`` of ``speech_embedding``).
            ``()`` quantizes every op (full-integer).

    Returns:
        An :class:`ExportResult` (with ``report`` when ``held_out`` was given).

    Raises:
        ExportError: non-builtin ops (named), missing calibration data, unwritable ``out``.
        ConfigError: unknown ``quantize``/``input_type``, labels that do not match the model.

    Example::

        # a task carries its labels and sample rate; the clip length is the training one
        result = export_tflite(spotter, num_samples=16000, out="kws.tflite", quantize="int8",
                               representative_data=train_clips[:300], held_out=(test_clips, test_labels))
        print(result.report.summary())
    """
    out = Path(out)
    spec = classifier_spec(model, labels=labels, sample_rate=sample_rate, num_samples=num_samples)
    check_input_type(input_type)
    if quantize not in QUANTIZE_MODES:
        raise ConfigError(f"quantize must be one of {QUANTIZE_MODES}, received {quantize!r}.")
    if int8_io and quantize != "int8":
        raise ConfigError(f"int8_io applies to quantize='int8' only, received quantize={quantize!r}.")
    calibration = None
    if quantize == "int8":
        if representative_data is None:
            raise ExportError(
                "quantize='int8' needs calibration data: pass representative_data (clips from the training "
                "data), or --data DIR on the command line, or choose --quantize dynamic."
            )
        calibration = check_clips(
            representative_data, num_samples=spec.num_samples, argument="representative_data"
        )
    elif representative_data is not None:
        logger.warning("representative_data is used by quantize='int8' only; ignored for %r.", quantize)
    clips = (
        check_held_out(held_out, num_samples=spec.num_samples, num_classes=len(spec.labels))
        if held_out is not None
        else None
    )
    check_writable(out, directory=False, error=ExportOutputError)

    float_layers = _float_layers(
        model, quantize=quantize, float_layers=float_layers, int8_io=int8_io, input_type=input_type
    )
    flatbuffer = convert(
        model,
        spec,
        quantize=quantize,
        input_type=input_type,
        calibration=calibration,
        int8_io=int8_io,
        out=out,
        float_layers=float_layers,
    )
    check_builtin_ops(flatbuffer)
    content = TFLiteMetadata(labels=spec.labels, sample_rate=spec.sample_rate).attach(flatbuffer)
    classifier = load_in_litert(content)
    report = None
    if clips is not None:
        report = _parity(model, classifier, clips, quantize=quantize, size_bytes=len(content))
    write_bytes(out, content, error=ExportOutputError)
    written_report = write_report_beside(report, out)
    return ExportResult(
        path=out,
        format="tflite",
        quantize=quantize,
        input_dtype=classifier.input_dtype.name,
        output_dtype=classifier.output_dtype.name,
        sample_rate=spec.sample_rate,
        num_samples=spec.num_samples,
        labels=spec.labels,
        size_bytes=len(content),
        ops=tuple(sorted(set(tflite_operator_names(content)))),
        float_layers=float_layers,
        report=report,
        report_path=written_report,
    )


def convert_int8_keeping_float(
    saved_model_dir: str,
    *,
    representative_dataset: Callable[[], Iterator[dict[str, np.ndarray]]],
    float_layers: Sequence[str],
) -> bytes:
    """A SavedModel's signature as int8 with float32 inputs and outputs, some ops kept float32.

    Kept float: the ops traced in ``float_layers`` and the ops feeding them (the waveform's path to a
    float front-end), and every op that only moves values (``DATA_MOVEMENT_OPS``: concatenation, reshape,
    slices, splits), so that a state assembled from pieces dequantizes each with its own scale: the
    quantizer moves such same-scale ops into int8 with scales that do not match their inputs'. Calibrated
    ranges are tightened where the graph saturates, as :func:`export_tflite` does.

    Args:
        saved_model_dir: the SavedModel (one ``serving_default`` signature).
        representative_dataset: yields the signature's inputs by name, for calibration.
        float_layers: names of Keras layers whose ops stay float32.

    Raises:
        ExportError: the conversion failed (TF ops without builtin int8 kernels are named).
    """

    def float_nodes(calibrated: bytes) -> list[str]:
        # Names read from the calibrated model: the quantizer matches those, which fused ops rename.
        nodes = tensor_names_in_layers(calibrated, float_layers) if float_layers else []
        return sorted(set(nodes + feeding_tensor_names(calibrated, nodes)))

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    return run_conversion(converter, denylisted_nodes=float_nodes, denylisted_ops=DATA_MOVEMENT_OPS)


def load_in_litert(content: bytes) -> TFLiteClassifier:
    """The converted file loaded once with LiteRT (one thread), as a device would load it; ExportError
    pointing to SavedModel when LiteRT cannot."""
    try:
        return TFLiteClassifier(content, num_threads=1)
    except ExportError as error:
        raise ExportError(f"{error} {SAVED_MODEL_HINT}") from error


def check_builtin_ops(model: bytes) -> None:
    """Raise ``ExportError`` naming the Flex/custom operators of a TFLite flatbuffer, if it has any."""
    offending = non_builtin_operators(model)
    if offending:
        raise ExportError(
            f"The TFLite model needs non-builtin operators {', '.join(offending)}, which phones and "
            f"microcontrollers cannot run. {SAVED_MODEL_HINT}"
        )


def _parity(
    model: keras.Model,
    classifier: TFLiteClassifier,
    clips: tuple[np.ndarray, np.ndarray],
    *,
    quantize: str,
    size_bytes: int,
) -> ParityReport:
    waveforms, label_indices = clips
    exported, seconds_per_clip = classifier.run(waveforms)
    keras_input = as_heard(waveforms, dtype=tf.as_dtype(classifier.input_dtype))
    expected = model.predict(keras_input, batch_size=32, verbose=0)
    return ParityReport.compare(
        keras_probabilities=expected,
        exported_probabilities=exported,
        label_indices=label_indices,
        size_bytes=size_bytes,
        seconds_per_clip=seconds_per_clip,
        format="tflite",
        quantize=quantize,
        input_dtype=classifier.input_dtype.name,
        output_dtype=classifier.output_dtype.name,
        runtime=LITERT_RUNTIME,
    )


def int8_float_layers(model: keras.Model, *, float_blocks: int | None = None) -> tuple[str, ...]:
    """Names of the layers an int8 export keeps in float32: the model's feature front-ends and the bottom
    ``float_blocks`` blocks of its base, for ``export_tflite(float_layers=...)``.

    Args:
        model: a classifier, usually a task with a ``base`` (:class:`~audio_transfer.bases.AudioBase`).
        float_blocks: how many of the base's blocks (bottom first) stay float; ``None``: the base's own
            ``int8_float_blocks`` (1 for ``speech_embedding``). Each float block lowers the int8 error and
            adds its weights in float32 (agreement and size by count: ``benchmarks/RESULTS.md``).

    Raises:
        ConfigError: ``float_blocks`` is negative, or more than the base has (or the model has no base).

    Example:
        >>> int8_float_layers(spotter, float_blocks=2)  # doctest: +SKIP
        ('speech_embedding_frontend', 'stage_1', 'stage_2')
    """
    base = getattr(model, "base", None)
    blocks = base.blocks if isinstance(base, AudioBase) else []
    if float_blocks is None:
        float_blocks = base.int8_float_blocks if blocks else 0
    if not (is_int(float_blocks) and 0 <= float_blocks <= len(blocks)):
        raise ConfigError(
            f"float_blocks must be an integer from 0 to {len(blocks)} (the blocks of "
            f"{type(base).__name__ if blocks else 'a model without an AudioBase base'}), received "
            f"{float_blocks!r}."
        )
    return tuple(layer.name for layer in [*frontend_layers(model), *blocks[:float_blocks]])


def _float_layers(
    model: keras.Model, *, quantize: str, float_layers: Sequence[str] | None, int8_io: bool, input_type: str
) -> tuple[str, ...]:
    """The layers int8 keeps in float32: as given, else the model's feature front-ends and the bottom
    blocks its base keeps float (``AudioBase.int8_float_blocks``)."""
    if quantize != "int8":
        if float_layers:
            raise ConfigError(
                f"float_layers applies to quantize='int8' only, received quantize={quantize!r}."
            )
        return ()
    names = int8_float_layers(model) if float_layers is None else tuple(float_layers)
    if names:
        logger.info("int8 keeps these layers in float32: %s.", ", ".join(names))
        if int8_io and input_type == "float32":
            logger.warning(
                "int8_io with a float front-end quantizes the waveform itself to 8 bits before the "
                "front-end; input_type='int16' keeps 16-bit audio."
            )
    return names

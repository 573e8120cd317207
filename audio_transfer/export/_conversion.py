"""Keras classifier → TFLite flatbuffer, builtin ops only, optionally quantized.

int8 keeps the feature front-end (:class:`~audio_transfer.features.LogMelSpectrogram` and :class:`MFCC`
layers, or the layers named by ``float_layers``) in float32 and quantizes the rest. A power spectrum spans
far more than int8's 48 dB and the log that follows amplifies the loss (agreement with Keras either way:
``benchmarks/RESULTS.md``); TensorFlow Lite for Microcontrollers needs a float front-end anyway, its LOG
kernel being float only. The float part costs its constants in float32 (the DFT kernels).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema_fb

from audio_transfer.atomic_files import temporary_directory_beside
from audio_transfer.errors import ConfigError, ExportError
from audio_transfer.export._calibration import tighten_saturated_ranges
from audio_transfer.export._serving import INPUT_NAME, ClassifierSpec, serving_module, to_pcm16
from audio_transfer.features import compact_dft
from audio_transfer.progress import track

SAVED_MODEL_HINT = "Export with --format saved_model instead (export_saved_model), which keeps every TF op."


def convert(
    model: keras.Model,
    spec: ClassifierSpec,
    *,
    quantize: str,
    input_type: str,
    calibration: np.ndarray | None,
    int8_io: bool,
    out: Path,
    float_layers: Sequence[str] = (),
) -> bytes:
    """The converted flatbuffer, through a temporary SavedModel (which freezes the Keras variables) staged
    beside ``out``, the file being exported (:func:`~audio_transfer.atomic_files.temporary_directory_beside`).

    Args:
        model, spec: the classifier and its checked specification.
        quantize: ``"none"``, ``"float16"``, ``"dynamic"`` or ``"int8"``.
        input_type: ``"float32"`` or ``"int16"``.
        calibration: ``(clips, num_samples)`` float waveforms for int8.
        int8_io: int8 output (and int8 input for float32 ``input_type``) with int8.
        out: the export's destination.
        float_layers: with int8, names of layers whose ops stay float32.
    """
    module = serving_module(model, spec, input_type=input_type, batch_size=1, with_labels=False)
    with temporary_directory_beside(out) as folder:
        saved_model_dir = str(folder)
        with compact_dft(model):  # the file holds the small two-stage DFT constants
            tf.saved_model.save(module, saved_model_dir, signatures={"serving_default": module.serve})
        if quantize == "int8" and float_layers:
            float_model = run_conversion(
                _converter(saved_model_dir, "none", input_type=input_type, calibration=None)
            )
            nodes = tensor_names_in_layers(float_model, float_layers)
            if not nodes:
                raise ConfigError(
                    f"No TFLite ops belong to the layers {list(float_layers)} to keep in float; name layers "
                    "of the model, or pass float_layers=() for a full-integer model."
                )
            nodes += feeding_tensor_names(float_model, nodes)
            converter = _converter(saved_model_dir, "int8", input_type=input_type, calibration=calibration)
            return run_conversion(converter, denylisted_nodes=nodes, fully_quantize=int8_io)
        converter = _converter(saved_model_dir, quantize, input_type=input_type, calibration=calibration)
        if quantize == "int8" and int8_io:
            converter.inference_input_type = tf.int16 if input_type == "int16" else tf.int8
            converter.inference_output_type = tf.int8
        return run_conversion(converter)


def _converter(
    saved_model_dir: str, quantize: str, *, input_type: str, calibration: np.ndarray | None
) -> tf.lite.TFLiteConverter:
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    # Builtins only: a model needing TF ops fails here instead of silently pulling in the Flex delegate.
    builtins = tf.lite.OpsSet.TFLITE_BUILTINS_INT8 if quantize == "int8" else tf.lite.OpsSet.TFLITE_BUILTINS
    converter.target_spec.supported_ops = [builtins]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        converter.representative_dataset = lambda: _representative_dataset(calibration, input_type)
    return converter


def run_conversion(
    converter: tf.lite.TFLiteConverter,
    *,
    denylisted_nodes: Sequence[str] | Callable[[bytes], Sequence[str]] = (),
    denylisted_ops: Sequence[str] = (),
    fully_quantize: bool = False,
) -> bytes:
    """Convert; with ``denylisted_nodes``, quantize all but those ops through TensorFlow's quantization
    debugger (the public API for selective quantization), with the calibrated ranges tightened where the
    graph saturates (:func:`tighten_saturated_ranges`).

    ``denylisted_ops`` (op kinds, ``"CONCATENATION"``) stay float too, where ``denylisted_nodes`` is given.
    ``denylisted_nodes`` may be a function of the calibrated model (a float flatbuffer): the quantizer
    matches the names of that model's tensors, which can differ from those of a plain float conversion
    where the optimizing converter fused ops (``split;split1``).
    """
    try:
        with warnings.catch_warnings():
            # int8 calibration runs TensorFlow's own (deprecated) tf.lite.Interpreter; not ours to fix.
            warnings.filterwarnings("ignore", message=r"(?s).*tf\.lite\.Interpreter is deprecated")
            if not denylisted_nodes:
                return converter.convert()
            names_of = denylisted_nodes if callable(denylisted_nodes) else None
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter,
                debug_dataset=converter.representative_dataset,
                debug_options=tf.lite.experimental.QuantizationDebugOptions(
                    denylisted_ops=list(denylisted_ops),
                    denylisted_nodes=[] if names_of else list(denylisted_nodes),
                    fully_quantize=fully_quantize,
                ),
            )
            debugger.calibrated_model = tighten_saturated_ranges(debugger.calibrated_model)
            if names_of is not None:
                names = list(names_of(debugger.calibrated_model))
                debugger.options = tf.lite.experimental.QuantizationDebugOptions(
                    denylisted_ops=list(denylisted_ops), denylisted_nodes=names, fully_quantize=fully_quantize
                )
            return debugger.get_nondebug_quantized_model()
    except Exception as error:  # the converter raises ConverterError and assorted TF errors
        raise ExportError(_conversion_failure(error)) from error


def _representative_dataset(calibration: np.ndarray, input_type: str) -> Iterator[dict[str, np.ndarray]]:
    for clip in track(calibration, "Calibrating int8"):
        batch = clip[np.newaxis]
        yield {INPUT_NAME: to_pcm16(batch) if input_type == "int16" else batch}


def tensor_names_in_layers(flatbuffer: bytes, layer_names: Sequence[str]) -> list[str]:
    """Output tensor names of the ops traced inside the given Keras layers (their name scopes)."""
    scopes = "|".join(re.escape(name) for name in layer_names)
    # Keras name scopes may carry a uniquifying suffix: "log_mel_40_frontend_1/Log".
    pattern = re.compile(rf"(?:^|[/;])(?:{scopes})(?:_\d+)?/")
    subgraph = schema_fb.Model.GetRootAs(flatbuffer, 0).Subgraphs(0)
    names = []
    for index in range(subgraph.OperatorsLength()):
        operator = subgraph.Operators(index)
        for output in range(operator.OutputsLength()):
            name = subgraph.Tensors(operator.Outputs(output)).Name().decode("utf-8", "replace")
            if pattern.search(name):
                names.append(name)
    return names


def feeding_tensor_names(flatbuffer: bytes, names: Sequence[str]) -> list[str]:
    """Output tensor names of the ops that feed the tensors ``names``, directly or not, outside them.

    The ops between the waveform input and a float front-end (a task's context padding, int16 scaling)
    stay float with it: quantized, they would cut the waveform to 8 bits before the front-end sees it (what
    that cost the demo's keyword spotter: ``benchmarks/RESULTS.md``).
    """
    subgraph = schema_fb.Model.GetRootAs(flatbuffer, 0).Subgraphs(0)
    producers: dict[int, int] = {}
    for index in range(subgraph.OperatorsLength()):
        operator = subgraph.Operators(index)
        for output in range(operator.OutputsLength()):
            producers[operator.Outputs(output)] = index

    def name(tensor: int) -> str:
        return subgraph.Tensors(tensor).Name().decode("utf-8", "replace")

    wanted = set(names)
    pending = [tensor for tensor in producers if name(tensor) in wanted]
    seen: set[int] = set()
    while pending:
        operator = subgraph.Operators(producers[pending.pop()])
        for position in range(operator.InputsLength()):
            tensor = operator.Inputs(position)
            if tensor in producers and tensor not in seen:  # graph inputs and constants have no producer
                seen.add(tensor)
                pending.append(tensor)
    return sorted({name(tensor) for tensor in seen} - wanted)


# Ops that only move values. int8 keeps them float where the graph assembles a state from pieces: the
# quantizer would otherwise give a same-scale op (a slice of a concatenation) another scale than its input.
DATA_MOVEMENT_OPS = ("CONCATENATION", "RESHAPE", "STRIDED_SLICE", "SLICE", "SPLIT", "SPLIT_V")


def _conversion_failure(error: Exception) -> str:
    """A message naming the TF ops TFLite builtins lack, parsed from the converter's error."""
    text = str(error)
    listed = re.findall(r"(?:TF Select ops|Custom ops): ([^\n]+)", text)
    ops = sorted({op.strip() for line in listed for op in line.split(",") if op.strip()})
    ops = ops or sorted(set(re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", text)))
    if ops:
        return (
            f"TFLite has no builtin kernels for the TensorFlow ops {', '.join(ops)} used by this model "
            f"(they would need the Flex delegate). {SAVED_MODEL_HINT}"
        )
    first_line = next((line for line in text.splitlines() if line.strip()), type(error).__name__)
    return f"TFLite conversion failed: {first_line}. {SAVED_MODEL_HINT}"

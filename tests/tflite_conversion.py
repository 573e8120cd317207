"""Test helpers: convert a function of Keras layers to TFLite through a SavedModel, and run a TFLite model."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter


def convert_to_tflite(
    function: Callable,
    input_spec: tf.TensorSpec,
    variables: Iterable,
    *,
    quantize: str = "none",
    representative_inputs: np.ndarray | None = None,
    float_tensors: str | None = None,
) -> bytes:
    """Builtin-ops-only TFLite flatbuffer of ``function``.

    Args:
        function: maps one tensor of ``input_spec`` to one tensor.
        input_spec: the fixed input shape and dtype.
        variables: the Keras variables ``function`` reads (tracked so the SavedModel freezes them).
        quantize: ``"none"``, ``"dynamic"`` (int8 weights) or ``"int8"`` (full integer, calibrated on
            ``representative_inputs``, float input and output).
        representative_inputs: ``(examples, *input_spec.shape[1:])`` for ``"int8"``.
        float_tensors: with ``"int8"``, keep the operators whose output tensor names contain this text in
            float (through the quantization debugger's deny list), e.g. a front-end layer's name.
    """
    module = tf.Module()
    module.keras_variables = [variable.value for variable in variables]
    module.serve = tf.function(function, input_signature=[input_spec])
    with tempfile.TemporaryDirectory() as saved_model_dir:
        tf.saved_model.save(module, saved_model_dir, signatures={"serving_default": module.serve})
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8 if quantize == "int8" else tf.lite.OpsSet.TFLITE_BUILTINS
        ]
        if quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "int8":
            converter.representative_dataset = lambda: ([example[None]] for example in representative_inputs)
        if float_tensors is None:
            return converter.convert()
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        float_model = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir).convert()
        names = [tensor["name"] for tensor in Interpreter(model_content=float_model).get_tensor_details()]
        options = tf.lite.experimental.QuantizationDebugOptions(
            denylisted_nodes=[name for name in names if float_tensors in name]
        )
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=converter.representative_dataset, debug_options=options
        )
        return debugger.get_nondebug_quantized_model()


def run_tflite(model: bytes | str, inputs: np.ndarray) -> np.ndarray:
    """Run a single-input, single-output TFLite model on each example of ``inputs`` (batch 1 each).

    Integer inputs and outputs are quantized and dequantized with the tensors' scale and zero point.
    """
    interpreter = (
        Interpreter(model_content=model) if isinstance(model, bytes) else Interpreter(model_path=str(model))
    )
    interpreter.allocate_tensors()
    (input_detail,) = interpreter.get_input_details()
    (output_detail,) = interpreter.get_output_details()
    outputs = []
    for example in inputs:
        value = example[None].astype(np.float32)
        if input_detail["dtype"] != np.float32:
            scale, zero_point = input_detail["quantization"]
            info = np.iinfo(input_detail["dtype"])
            value = np.clip(np.round(value / scale + zero_point), info.min, info.max)
        interpreter.set_tensor(input_detail["index"], value.astype(input_detail["dtype"]))
        interpreter.invoke()
        output = interpreter.get_tensor(output_detail["index"]).astype(np.float32)
        if output_detail["dtype"] != np.float32:
            scale, zero_point = output_detail["quantization"]
            output = scale * (output - zero_point)
        outputs.append(output[0])
    return np.stack(outputs)

"""Read the weights of a TFLite model's convolutions and dense layers, dequantized to float32.

Reads the flatbuffer with ``ai_edge_litert``'s schema, without running the model. Quantized constants
(int8, uint8, int16, int32 biases) become ``scale * (q - zero_point)``, per channel along the tensor's
quantized dimension when it has one scale per channel; float16 constants, and weights that reach the
operator through a DEQUANTIZE operator, become float32.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from audio_transfer._tflite import builtin_code
from audio_transfer.errors import ConfigError

_WEIGHTED_OPERATORS = {
    schema.BuiltinOperator.CONV_2D: "CONV_2D",
    schema.BuiltinOperator.DEPTHWISE_CONV_2D: "DEPTHWISE_CONV_2D",
    schema.BuiltinOperator.FULLY_CONNECTED: "FULLY_CONNECTED",
}
_NUMPY_TYPES = {
    schema.TensorType.FLOAT32: np.float32,
    schema.TensorType.FLOAT16: np.float16,
    schema.TensorType.INT8: np.int8,
    schema.TensorType.UINT8: np.uint8,
    schema.TensorType.INT16: np.int16,
    schema.TensorType.INT32: np.int32,
    schema.TensorType.INT64: np.int64,
}


@dataclass(frozen=True)
class TFLiteWeightedOp:
    """One convolution or dense operator of a TFLite model, with its constant weights as float32.

    Attributes:
        op: ``"CONV_2D"``, ``"DEPTHWISE_CONV_2D"`` or ``"FULLY_CONNECTED"``.
        weights: the filter in TFLite's layout: ``(out, height, width, in)`` for CONV_2D, ``(1, height,
            width, channels)`` for DEPTHWISE_CONV_2D, ``(out, in)`` for FULLY_CONNECTED.
        bias: ``(out,)``, or None when the operator has none.
    """

    op: str
    weights: np.ndarray
    bias: np.ndarray | None


def read_tflite_weighted_ops(path: str | os.PathLike) -> list[TFLiteWeightedOp]:
    """The convolution and dense operators of the main subgraph whose weights are constants, in order.

    Raises:
        ConfigError: the file is not a TFLite flatbuffer, or a constant has a type this reader cannot
            dequantize.
    """
    data = Path(path).read_bytes()
    if data[4:8] != b"TFL3":
        raise ConfigError(f"{os.fspath(path)!r} is not a TFLite model (no TFL3 identifier in its header).")
    model = schema.Model.GetRootAs(data, 0)
    graph = model.Subgraphs(0)
    operators = [graph.Operators(i) for i in range(graph.OperatorsLength())]
    dequantized_from = {
        op.Outputs(0): op.Inputs(0)
        for op in operators
        if builtin_code(model.OperatorCodes(op.OpcodeIndex())) == schema.BuiltinOperator.DEQUANTIZE
    }

    def constant(index: int) -> np.ndarray | None:
        if index < 0:
            return None
        return _constant(data, model, graph, dequantized_from.get(index, index), path)

    found = []
    for op in operators:
        name = _WEIGHTED_OPERATORS.get(builtin_code(model.OperatorCodes(op.OpcodeIndex())))
        weights = None if name is None else constant(op.Inputs(1))
        if weights is not None:
            bias = constant(op.Inputs(2)) if op.InputsLength() > 2 else None
            found.append(TFLiteWeightedOp(op=name, weights=weights, bias=bias))
    return found


def _constant(data: bytes, model, graph, index: int, path) -> np.ndarray | None:
    """Tensor ``index`` as float32 when it holds constant data, else None."""
    tensor = graph.Tensors(index)
    buffer = model.Buffers(tensor.Buffer())
    if buffer.DataLength():
        raw = buffer.DataAsNumpy().tobytes()
    elif buffer.Offset() > 1:  # large models keep buffers after the flatbuffer
        raw = data[buffer.Offset() : buffer.Offset() + buffer.Size()]
    else:
        return None
    if tensor.Type() not in _NUMPY_TYPES:
        raise ConfigError(
            f"Tensor {tensor.Name().decode()!r} of {os.fspath(path)!r} has TFLite type {tensor.Type()}, "
            f"which cannot be dequantized here; convert the model with float32, float16 or 8-bit weights."
        )
    shape = tuple(tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
    values = np.frombuffer(raw, dtype=_NUMPY_TYPES[tensor.Type()]).reshape(shape)
    quantization = tensor.Quantization()
    if quantization is None or not quantization.ScaleLength():
        return values.astype(np.float32)
    scale = quantization.ScaleAsNumpy().astype(np.float64)
    zero_point = (
        quantization.ZeroPointAsNumpy().astype(np.float64)
        if quantization.ZeroPointLength()
        else np.zeros_like(scale)
    )
    if scale.size > 1:  # one scale per channel along the quantized dimension
        channel_shape = [1] * values.ndim
        channel_shape[quantization.QuantizedDimension()] = scale.size
        scale, zero_point = scale.reshape(channel_shape), zero_point.reshape(channel_shape)
    return (scale * (values.astype(np.float64) - zero_point)).astype(np.float32)

"""Calibrated activation ranges narrowed where the graph saturates, before int8 quantization.

int8 gives each activation tensor 256 steps between the smallest and largest value calibration saw. A
tensor whose only consumer maps everything below some floor to the same value wastes the steps below it:
``speech_embedding`` follows every convolution with ``max(leaky_relu(x, 0.2), -0.4)``, so any ``x < -2``
gives ``-0.4``, yet calibration saw convolution outputs down to -33, and the steps there came out 1.7 times
coarser than the activation's own. Raising the recorded minimum to the floor loses nothing (quantization
saturates at the floor, which the consumer would map to the floor anyway) and makes the steps finer.
Measured on the demo's keyword spotter, 390 held-out clips: mean max |Δp| against Keras 0.028 → 0.023,
largest 0.23 → 0.12.
"""

from __future__ import annotations

import logging

import numpy as np
from ai_edge_litert import schema_py_generated as schema_fb
from ai_edge_litert.tools import flatbuffer_utils

logger = logging.getLogger(__name__)


def tighten_saturated_ranges(calibrated: bytes) -> bytes:
    """The calibrated flatbuffer with each tensor's recorded minimum raised to the floor its consumers
    saturate at (unchanged bytes when no tensor has one).

    Floors: ``MAXIMUM(x, c)`` with a constant ``c`` floors ``x`` at ``c``; ``LEAKY_RELU(x, alpha)`` whose
    output has floor ``f`` floors ``x`` at ``f / alpha`` (``f`` when ``f >= 0``); ``RELU`` at 0. Only
    tensors with a single consumer that are not graph outputs qualify.

    Args:
        calibrated: a float TFLite flatbuffer carrying calibration min/max per tensor (what TensorFlow's
            quantization debugger holds as ``calibrated_model``).
    """
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    narrowed = 0
    for subgraph in model.subgraphs:
        floors = _Floors(model, subgraph)
        for index, tensor in enumerate(subgraph.tensors):
            quantization = tensor.quantization
            if quantization is None or quantization.min is None or len(quantization.min) != 1:
                continue
            floor = floors.of(index)
            if floor is not None and quantization.min[0] < floor:
                quantization.min = [floor]
                narrowed += 1
    if not narrowed:
        return calibrated
    logger.info("int8: %d activation ranges start at the floor their consumer saturates at.", narrowed)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))  # the quantizer takes bytes only


class _Floors:
    """Saturation floors of one subgraph's tensors, from the ops that consume them."""

    def __init__(self, model: schema_fb.ModelT, subgraph: schema_fb.SubGraphT):
        self.model = model
        self.subgraph = subgraph
        self.consumers: dict[int, list[schema_fb.OperatorT]] = {}
        for operator in subgraph.operators:
            for tensor in operator.inputs:
                self.consumers.setdefault(int(tensor), []).append(operator)
        self.outputs = {int(tensor) for tensor in subgraph.outputs}

    def of(self, tensor: int) -> float | None:
        consumers = self.consumers.get(tensor, [])
        if len(consumers) != 1 or tensor in self.outputs:
            return None
        operator = consumers[0]
        kind = flatbuffer_utils.opcode_to_name(self.model, operator.opcodeIndex)
        if kind == "RELU":
            return 0.0
        if kind == "MAXIMUM":
            others = [int(other) for other in operator.inputs if int(other) != tensor]
            return self._scalar_constant(others[0]) if len(others) == 1 else None
        if kind == "LEAKY_RELU":
            alpha = getattr(operator.builtinOptions, "alpha", 0.0)  # options absent: leave it alone
            floor = self.of(int(operator.outputs[0]))
            if floor is None or not alpha > 0:
                return None
            return floor / alpha if floor < 0 else floor
        return None

    def _scalar_constant(self, tensor: int) -> float | None:
        description = self.subgraph.tensors[tensor]
        data = self.model.buffers[description.buffer].data
        if description.type != schema_fb.TensorType.FLOAT32 or data is None or len(data) != 4:
            return None
        return float(np.frombuffer(bytes(bytearray(data)), dtype=np.float32)[0])

"""Read the operators of a TFLite flatbuffer without running it (a low-level helper for every layer).

Used to check that an exported model needs builtin ops only: Flex ops (SELECT_TF_OPS, e.g. ``FlexRFFT``)
and custom ops are stored as CUSTOM operator codes carrying their name, which devices without the Flex
delegate or the custom kernel cannot run.
"""

from __future__ import annotations

import os

from ai_edge_litert import schema_py_generated as schema

_BUILTIN_NAMES = {
    value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")
}


def _load(model: bytes | str | os.PathLike) -> bytes:
    if isinstance(model, (bytes, bytearray)):
        return bytes(model)
    with open(model, "rb") as file:
        return file.read()


def builtin_code(code: schema.OperatorCode) -> int:
    """The ``schema.BuiltinOperator`` value of an operator code of a model's ``OperatorCodes`` table."""
    # Operator codes up to 127 are also stored in the deprecated int8 field; the larger one is right.
    return max(code.BuiltinCode(), code.DeprecatedBuiltinCode())


def tflite_operator_names(model: bytes | str | os.PathLike) -> list[str]:
    """Name of every operator of every subgraph, in execution order.

    Builtin operators appear under their schema name (``"CONV_2D"``, ``"BATCH_MATMUL"``); custom and Flex
    operators as ``"CUSTOM:<name>"`` (``"CUSTOM:FlexRFFT"``).

    Args:
        model: the flatbuffer's bytes or a path to a ``.tflite`` file.
    """
    root = schema.Model.GetRootAs(_load(model), 0)
    codes = []
    for index in range(root.OperatorCodesLength()):
        code = root.OperatorCodes(index)
        builtin = builtin_code(code)
        if builtin == schema.BuiltinOperator.CUSTOM:
            codes.append(f"CUSTOM:{(code.CustomCode() or b'').decode()}")
        else:
            codes.append(_BUILTIN_NAMES.get(builtin, f"BUILTIN_{builtin}"))
    names = []
    for s in range(root.SubgraphsLength()):
        subgraph = root.Subgraphs(s)
        names.extend(codes[subgraph.Operators(i).OpcodeIndex()] for i in range(subgraph.OperatorsLength()))
    return names


def non_builtin_operators(model: bytes | str | os.PathLike) -> list[str]:
    """Sorted distinct custom and Flex operators of ``model`` (empty when it is builtin-only)."""
    return sorted({name for name in tflite_operator_names(model) if name.startswith("CUSTOM:")})

"""Reading the operator list of a TFLite flatbuffer.

Edge exports must run on the plain TFLite/LiteRT runtime, which has builtin operators only. A file that
needs the TensorFlow "Flex" delegate (``Flex*`` custom codes, e.g. ``FlexRFFT`` for ``tf.signal.rfft``) or
any other custom operator fails to load on phones and microcontrollers, so writers check their output
with :func:`non_builtin_op_names`.

Example::

    ops = tflite_op_names(model_bytes)      # ['FULLY_CONNECTED', 'RESHAPE', 'SOFTMAX']
    non_builtin_op_names(model_bytes)       # [] for an edge-ready file, ['FlexRFFT'] otherwise
"""

from __future__ import annotations

from ai_edge_litert import schema_py_generated as schema_fb

_BUILTIN_NAMES: dict[int, str] = {
    value: name for name, value in vars(schema_fb.BuiltinOperator).items() if not name.startswith("_")
}


def _op_names(model: bytes) -> list[tuple[str, bool]]:
    """``(name, is_builtin)`` for every operator code of ``model``, in file order."""
    flatbuffer = schema_fb.Model.GetRootAs(model, 0)
    names = []
    for index in range(flatbuffer.OperatorCodesLength()):
        code = flatbuffer.OperatorCodes(index)
        # Codes below 127 live in the deprecated int8 field; newer ones only in the int32 field.
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema_fb.BuiltinOperator.CUSTOM:
            names.append(((code.CustomCode() or b"").decode("utf-8", "replace") or "CUSTOM", False))
        else:
            names.append((_BUILTIN_NAMES.get(builtin, f"BUILTIN_{builtin}"), True))
    return names


def tflite_op_names(model: bytes) -> list[str]:
    """Sorted unique operator names used by a TFLite model.

    Args:
        model: the ``.tflite`` flatbuffer (anything appended after it, such as a metadata zip, is ignored).

    Returns:
        Builtin operators by their schema name (``"FULLY_CONNECTED"``); custom operators, Flex ones
        included, by their custom code (``"FlexRFFT"``).
    """
    return sorted({name for name, _ in _op_names(model)})


def non_builtin_op_names(model: bytes) -> list[str]:
    """Sorted unique custom and Flex operators of a TFLite model: empty when it runs on builtins alone."""
    return sorted({name for name, builtin in _op_names(model) if not builtin})

"""audio_transfer._tflite: operator listing of TFLite flatbuffers, and detection of Flex/custom ops."""

from __future__ import annotations

import tensorflow as tf

from audio_transfer._tflite import non_builtin_operators, tflite_operator_names


def convert(function, *, select_tf_ops: bool = False) -> bytes:
    concrete = function.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], function)
    if select_tf_ops:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    return converter.convert()


def test_builtin_model_lists_its_operators_in_order(tmp_path):
    @tf.function(input_signature=[tf.TensorSpec([1, 8], tf.float32)])
    def affine_relu(x):
        return tf.nn.relu(tf.matmul(x, tf.ones([8, 4])) + 1.0)

    model = convert(affine_relu)
    names = tflite_operator_names(model)
    assert names and all(not name.startswith("CUSTOM:") for name in names)
    assert "FULLY_CONNECTED" in names
    assert non_builtin_operators(model) == []
    path = tmp_path / "model.tflite"
    path.write_bytes(model)
    assert tflite_operator_names(path) == names


def test_flex_operators_are_reported():
    # Cumprod has no TFLite builtin (TF 2.21 lowers RFFT to the builtin RFFT2D, so it no longer shows this).
    @tf.function(input_signature=[tf.TensorSpec([1, 16], tf.float32)])
    def running_product(x):
        return tf.math.cumprod(x, axis=1)

    model = convert(running_product, select_tf_ops=True)
    assert non_builtin_operators(model) == ["CUSTOM:FlexCumprod"]

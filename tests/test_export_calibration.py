"""int8: activation ranges start where their consumer saturates (speech_embedding's floored leaky ReLU),
which leaves the exported model closer to Keras; the layers int8 keeps float (front-end, bottom blocks)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from export_support import LABELS, NUM_SAMPLES, export_tones, tone_clips
from tiny_conv_base import tiny_base

from audio_transfer.errors import ConfigError
from audio_transfer.export import int8_float_layers
from audio_transfer.features import get_frontend
from audio_transfer.tasks import KeywordSpotter

SLOPE, FLOOR = 0.2, -0.4  # speech_embedding's activation: max(leaky_relu(x, 0.2), -0.4)


@pytest.fixture(scope="module")
def calibration():
    return tone_clips(60, seed=2)[0]


def _conv_model(*, shared_conv_output: bool) -> tuple[keras.Model, keras.Model]:
    """Waveform → log-mel → Conv2D → floored leaky ReLU → pooled softmax, and a model of the conv output.

    ``shared_conv_output``: the conv output also feeds a residual sum, so it has a second consumer.
    """
    keras.utils.set_random_seed(0)
    waveform = keras.Input((NUM_SAMPLES,), name="waveform")
    features = keras.layers.Reshape((-1, 40, 1))(get_frontend("log_mel_40")(waveform))
    conv = keras.layers.Conv2D(8, 3, padding="same", kernel_initializer=keras.initializers.RandomNormal(0, 1))
    outputs = conv(features)
    activated = keras.ops.maximum(keras.ops.leaky_relu(outputs, negative_slope=SLOPE), FLOOR)
    if shared_conv_output:
        activated = activated + outputs
    pooled = keras.layers.GlobalAveragePooling2D()(activated)
    model = keras.Model(waveform, keras.layers.Dense(len(LABELS), activation="softmax")(pooled))
    return model, keras.Model(waveform, outputs)


def _conv_output_range(content: bytes) -> tuple[float, float]:
    """The int8 CONV_2D output's representable range, dequantized."""
    interpreter = Interpreter(model_content=content)
    tensors = {detail["index"]: detail for detail in interpreter.get_tensor_details()}
    (conv,) = [op for op in interpreter._get_ops_details() if op["op_name"] == "CONV_2D"]
    scale, zero_point = tensors[conv["outputs"][0]]["quantization"]
    assert tensors[conv["outputs"][0]]["dtype"] == np.int8
    return (-128 - zero_point) * scale, (127 - zero_point) * scale


def test_int8_conv_output_range_starts_at_the_activation_floor(calibration, tmp_path):
    model, conv_outputs = _conv_model(shared_conv_output=False)
    seen = conv_outputs.predict(calibration, verbose=0)
    assert seen.min() < 3 * FLOOR / SLOPE  # calibration alone would spend steps far below the floor
    result = export_tones(model, tmp_path / "m.tflite", quantize="int8", representative_data=calibration)
    low, high = _conv_output_range(result.path.read_bytes())
    step = (high - low) / 255
    assert FLOOR / SLOPE - step <= low <= FLOOR / SLOPE + step
    assert high == pytest.approx(seen.max(), rel=0.05)


def test_a_conv_output_with_a_second_consumer_keeps_its_calibrated_range(calibration, tmp_path):
    model, conv_outputs = _conv_model(shared_conv_output=True)
    seen = conv_outputs.predict(calibration, verbose=0)
    assert seen.min() < 3 * FLOOR / SLOPE
    result = export_tones(model, tmp_path / "m.tflite", quantize="int8", representative_data=calibration)
    low, _ = _conv_output_range(result.path.read_bytes())
    assert low == pytest.approx(min(seen.min(), 0.0), rel=0.05)


def test_int8_float_layers_names_the_front_end_and_the_bottom_blocks():
    spotter = KeywordSpotter(tiny_base(), ["yes", "no"])
    assert int8_float_layers(spotter) == ()  # the tiny base has no front-end and keeps no block float
    assert int8_float_layers(spotter, float_blocks=2) == ("conv1", "conv2")
    with pytest.raises(ConfigError, match=r"from 0 to 3 .*received 4"):
        int8_float_layers(spotter, float_blocks=4)
    with pytest.raises(ConfigError, match=r"without an AudioBase base\), received 1"):
        int8_float_layers(_conv_model(shared_conv_output=False)[0], float_blocks=1)

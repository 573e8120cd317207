"""The int8 export runs under TensorFlow Lite for Microcontrollers and answers as LiteRT does."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from export_support import (
    export_tones,
    tone_clips,
    trained_classifier,
    trained_log_mel_classifier,
)

from audio_transfer.export import TFLiteClassifier

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("tflite_micro") is None,
    reason="tflite-micro is not installed (pip install -e .[dev])",
)


@pytest.mark.parametrize(
    ("build", "input_type"),
    [
        (trained_classifier, "float32"),  # every op int8
        (trained_classifier, "int16"),
        (trained_log_mel_classifier, "int16"),  # log-mel front-end in float32, the rest int8
    ],
)
def test_int8_model_runs_under_tflite_micro_like_litert(build, input_type, tmp_path):
    from tflite_micro import runtime

    result = export_tones(
        build(),
        tmp_path / "micro.tflite",
        quantize="int8",
        input_type=input_type,
        int8_io=True,
        representative_data=tone_clips(100, seed=2)[0],
    )
    content = result.path.read_bytes()
    micro = runtime.Interpreter.from_bytes(content)
    litert = TFLiteClassifier(content, use_xnnpack=False)
    assert micro.get_input_details(0)["dtype"] == litert.input_dtype
    assert micro.get_output_details(0)["dtype"] == np.int8

    waveforms, label_indices = tone_clips(40, seed=6)
    inputs = litert.encode_input(waveforms)
    micro_scores = []
    for clip in inputs:
        micro.set_input(clip[np.newaxis], 0)
        micro.invoke()
        micro_scores.append(micro.get_output(0)[0])
    micro_scores = np.stack(micro_scores).astype(np.int32)
    # TFLM reproduces LiteRT's builtin int8 kernels bit for bit.
    np.testing.assert_array_equal(micro_scores, [litert.invoke(clip) for clip in inputs])
    # LiteRT's default XNNPACK delegate rounds its int8 arithmetic differently: a step or two of the output.
    xnnpack = TFLiteClassifier(content)
    xnnpack_scores = np.stack([xnnpack.invoke(clip) for clip in inputs]).astype(np.int32)
    assert np.abs(micro_scores - xnnpack_scores).max() <= 2
    assert np.mean(micro_scores.argmax(axis=1) == label_indices) >= 0.95

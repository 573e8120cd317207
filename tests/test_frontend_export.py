"""Every front-end preset, alone in a model, exports to builtin-only TFLite and matches Keras there."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from audio_transfer._tflite import non_builtin_operators, tflite_operator_names
from audio_transfer.features import compact_dft, get_frame_patches, get_frontend, list_frontends


def speechlike_batch(rng: np.random.Generator, batch: int) -> np.ndarray:
    """Harmonic tones over noise at different levels, (batch, 16000) float32."""
    t = np.arange(16000) / 16000
    rows = []
    for i in range(batch):
        f0 = 120.0 + 40.0 * i
        voiced = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 12))
        rows.append(0.2 / (i + 1) * voiced + 0.003 * rng.standard_normal(16000))
    return np.stack(rows).astype(np.float32)


def run_tflite(model: bytes, waveform: np.ndarray) -> np.ndarray:
    interpreter = Interpreter(model_content=model)
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], waveform.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], waveform)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def export(model: keras.Model) -> bytes:
    tflite_model = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    assert non_builtin_operators(tflite_model) == []
    return tflite_model


@pytest.mark.parametrize("name", list_frontends())
def test_preset_exports_builtin_only_and_matches_keras(name, rng):
    frontend = get_frontend(name)
    inputs = keras.Input((None,))
    model = keras.Model(inputs, frontend(inputs))
    with compact_dft(model):  # as the exporters convert; the two forms agree in test_log_mel_spectrogram
        tflite_model = export(model)
        waveforms = [speechlike_batch(rng, batch) for batch in (1, 4)]
        outputs = [model.predict(waveform, verbose=0) for waveform in waveforms]
    ops = set(tflite_operator_names(tflite_model))
    assert {"BATCH_MATMUL", "GATHER"} <= ops
    assert not ops & {"CONV_2D", "RFFT2D", "COMPLEX_ABS", "REAL", "IMAG"}
    for waveform, expected in zip(waveforms, outputs, strict=True):
        features = run_tflite(tflite_model, waveform)
        assert features.shape == expected.shape
        # Power (ge2e) and coefficients of dB (mfcc_40, up to ~200) are compared relative to their peak.
        scale = float(np.abs(expected).max()) if name in ("ge2e", "mfcc_40") else 1.0
        np.testing.assert_allclose(
            features, expected, atol=1e-4 * scale, rtol=0, err_msg=f"batch {len(waveform)}"
        )


def test_yamnet_patches_export_builtin_only(rng):
    inputs = keras.Input((None,))
    model = keras.Model(inputs, get_frame_patches("yamnet")(get_frontend("yamnet")(inputs)))
    tflite_model = export(model)
    waveform = np.concatenate([speechlike_batch(rng, 2)] * 2, axis=1)  # 2 s: 3 patches
    expected = model.predict(waveform, verbose=0)
    features = run_tflite(tflite_model, waveform)
    assert features.shape == expected.shape == (2, 3, 96, 64)
    np.testing.assert_allclose(features, expected, atol=1e-4, rtol=0)

"""MFCC: librosa parity, argument checks, shapes, config and saving."""

from __future__ import annotations

import keras
import librosa
import numpy as np
import pytest
from conftest import make_tone

from audio_transfer.errors import ConfigError
from audio_transfer.features import MFCC, LogMelSpectrogram, get_frontend


@pytest.fixture
def chord(rng) -> np.ndarray:
    tones = make_tone(frequency_hz=300.0) + make_tone(frequency_hz=1250.0) + make_tone(frequency_hz=3100.0)
    return (0.3 * tones + 0.005 * rng.standard_normal(16000)).astype(np.float32)


def test_matches_librosa_mfcc(chord):
    """librosa's defaults apart from the sizes: centre zero padding, Slaney mel 0-8000 Hz, dB, 80 dB range."""
    layer = MFCC(num_mfcc=20, num_mel_bins=64, center=True, fft_length=400)
    expected = librosa.feature.mfcc(y=chord, sr=16000, n_mfcc=20, n_fft=400, hop_length=160, n_mels=64).T
    features = layer(chord[None]).numpy()[0]
    assert features.shape == expected.shape == (101, 20)
    np.testing.assert_allclose(features, expected, atol=1e-3, rtol=0)  # coefficients of dB, up to ~200


def test_mfcc_40_preset_is_a_rotation_of_the_db_log_mel(chord):
    """40 coefficients of 40 bands: the orthonormal DCT keeps the norm of every frame."""
    frontend = get_frontend("mfcc_40")
    assert isinstance(frontend, MFCC)
    coefficients = frontend(chord[None]).numpy()[0]
    config = {k: v for k, v in frontend.get_config().items() if k not in ("num_mfcc", "name")}
    db = LogMelSpectrogram(**config)(chord[None]).numpy()[0]
    np.testing.assert_allclose(np.linalg.norm(coefficients, axis=1), np.linalg.norm(db, axis=1), rtol=1e-5)


def test_num_mfcc_is_checked():
    with pytest.raises(ConfigError, match=r"num_mfcc must be at most num_mel_bins \(20\), received 21"):
        MFCC(num_mfcc=21, num_mel_bins=20)
    with pytest.raises(ConfigError, match="num_mfcc must be a positive integer, received 0"):
        MFCC(num_mfcc=0)


def test_shape_config_round_trip_and_keras_file(tmp_path, chord):
    layer = MFCC(num_mfcc=10, name="mfcc")
    assert layer.compute_output_shape((None, 16000)) == (None, 97, 10)
    assert MFCC.from_config(layer.get_config()).get_config() == layer.get_config()
    inputs = keras.Input((None,))
    model = keras.Model(inputs, layer(inputs))
    path = tmp_path / "mfcc.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_layer("mfcc").get_config() == layer.get_config()
    np.testing.assert_allclose(
        loaded.predict(chord[None], verbose=0), model.predict(chord[None], verbose=0), atol=1e-4
    )

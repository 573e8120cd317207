"""VolumeNormalization: Resemblyzer's normalize_volume as a Keras layer."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from audio_transfer.errors import ConfigError
from audio_transfer.features.volume_normalization import VolumeNormalization
from tests.conftest import make_tone


def level_dbfs(waveform: np.ndarray) -> np.ndarray:
    return 20 * np.log10(np.sqrt(np.mean(np.square(waveform, dtype=np.float64), axis=-1)))


def test_quiet_clips_reach_target_and_loud_ones_stay():
    quiet = 0.01 * make_tone(frequency_hz=300.0)  # −43 dBFS
    loud = make_tone(frequency_hz=300.0)  # −9 dBFS
    output = VolumeNormalization(target_dbfs=-30.0)(np.stack([quiet, loud])).numpy()
    assert level_dbfs(output[0]) == pytest.approx(-30.0, abs=1e-3)
    np.testing.assert_array_equal(output[1], loud)


def test_increase_only_false_also_attenuates():
    loud = make_tone(frequency_hz=300.0)[None]
    output = VolumeNormalization(target_dbfs=-20.0, increase_only=False)(loud).numpy()
    assert level_dbfs(output[0]) == pytest.approx(-20.0, abs=1e-3)


def test_silence_stays_silent():
    output = VolumeNormalization()(np.zeros((2, 1600), np.float32)).numpy()
    assert np.all(output == 0)


def test_config_round_trip():
    layer = VolumeNormalization(target_dbfs=-25.0, increase_only=False)
    restored = VolumeNormalization.from_config(layer.get_config())
    assert (restored.target_dbfs, restored.increase_only) == (-25.0, False)
    assert (
        keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer)).target_dbfs == -25.0
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_dbfs": 3.0}, "received 3.0"),
        ({"target_dbfs": float("nan")}, "received nan"),
        ({"increase_only": 1}, "received 1"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        VolumeNormalization(**kwargs)

"""FramePatches: patch values and counts, argument checks, config and saving."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from audio_transfer.errors import ConfigError, InputShapeError
from audio_transfer.features import FramePatches


@pytest.mark.parametrize(("patch_length", "patch_step", "frames"), [(96, 48, 200), (76, 8, 97), (3, 5, 11)])
def test_patches_are_the_frame_slices(patch_length, patch_step, frames, rng):
    features = rng.standard_normal((2, frames, 4)).astype(np.float32)
    layer = FramePatches(patch_length=patch_length, patch_step=patch_step)
    patches = layer(features).numpy()
    starts = range(0, frames - patch_length + 1, patch_step)
    expected = np.stack([features[:, s : s + patch_length] for s in starts], axis=1)
    assert patches.shape == expected.shape == (2, layer.num_patches(frames), patch_length, 4)
    np.testing.assert_array_equal(patches, expected)


@pytest.mark.parametrize("frames", [0, 10, 95])
def test_fewer_frames_than_a_patch_give_no_patch(frames):
    layer = FramePatches(patch_length=96, patch_step=48)
    assert tuple(layer(np.zeros((1, frames, 64), np.float32)).shape) == (1, 0, 96, 64)


def test_variable_frames_in_one_traced_model(rng):
    inputs = keras.Input((None, 8))
    model = keras.Model(inputs, FramePatches(patch_length=4, patch_step=2)(inputs))
    for frames, patches in [(4, 1), (9, 3), (30, 14)]:
        assert model.predict(rng.standard_normal((3, frames, 8)), verbose=0).shape == (3, patches, 4, 8)


def test_arguments_and_rank_are_checked():
    with pytest.raises(ConfigError, match="patch_length must be a positive integer, received 0"):
        FramePatches(patch_length=0, patch_step=1)
    with pytest.raises(ConfigError, match=r"patch_step must be a positive integer, received 1\.5"):
        FramePatches(patch_length=4, patch_step=1.5)
    with pytest.raises(InputShapeError, match=r"\(batch, frames, bins\).*\(2, 10\)"):
        FramePatches(patch_length=4, patch_step=2)(np.zeros((2, 10), np.float32))


def test_config_round_trip_and_keras_file(tmp_path, rng):
    layer = FramePatches(patch_length=5, patch_step=3, name="patches")
    assert layer.compute_output_shape((None, 20, 7)) == (None, 6, 5, 7)
    assert FramePatches.from_config(layer.get_config()).get_config() == layer.get_config()
    inputs = keras.Input((None, 7))
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "patches.keras")
    loaded = keras.saving.load_model(tmp_path / "patches.keras")
    features = rng.standard_normal((1, 20, 7)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(features, verbose=0), model.predict(features, verbose=0))

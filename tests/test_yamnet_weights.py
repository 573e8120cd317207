"""YAMNet weight loaders on files the tests write in Google's layouts: yamnet.h5, TFLite, SavedModel."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tflite_conversion import convert_to_tflite, run_tflite
from yamnet_helpers import randomize, write_hub_like_saved_model, write_keras2_h5, yamnet_py_arrays

from audio_transfer.bases.hub_resolver import hub_cache_path
from audio_transfer.bases.yamnet_base import YAMNetBase
from audio_transfer.bases.yamnet_weights import (
    YAMNET_HUB_HANDLE,
    load_yamnet_weights,
    read_class_map,
    read_yamnet_h5,
    yamnet_variable_names,
)
from audio_transfer.errors import BaseNotFoundError, ConfigError

CLASS_NAMES = [f"sound, kind {i}" for i in range(521)]


@pytest.fixture(scope="module")
def source() -> YAMNetBase:
    """The network whose weights the test files hold."""
    return randomize(YAMNetBase(include_audioset_head=True), seed=10)


@pytest.fixture(scope="module")
def patches() -> np.ndarray:
    """Log-mel-like patches (batch 3, 1 patch each)."""
    return np.random.default_rng(11).normal(-3.0, 1.5, (3, 1, 96, 64)).astype(np.float32)


def scores(base: YAMNetBase, patches: np.ndarray) -> np.ndarray:
    return base.audioset_head(base.embed_patches(patches)).numpy()[:, 0]


def assert_same_weights(loaded: YAMNetBase, source: YAMNetBase) -> None:
    expected = yamnet_py_arrays(source)
    actual = yamnet_py_arrays(loaded)
    assert sorted(actual) == sorted(expected)
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)


def test_variable_names_are_those_of_yamnet_py():
    names = yamnet_variable_names(include_audioset_head=True)
    assert len(names) == 27 * 4 + 2
    assert names[:5] == [
        "layer1/conv/kernel",
        "layer1/conv/bn/beta",
        "layer1/conv/bn/moving_mean",
        "layer1/conv/bn/moving_variance",
        "layer2/depthwise_conv/depthwise_kernel",
    ]
    assert "layer14/pointwise_conv/bn/moving_variance" in names
    assert names[-2:] == ["logits/kernel", "logits/bias"]


def test_h5_in_google_layout_loads_exactly(source, tmp_path):
    path = write_keras2_h5(tmp_path / "yamnet.h5", yamnet_py_arrays(source))
    assert sorted(read_yamnet_h5(path)) == sorted(yamnet_variable_names(include_audioset_head=True))
    loaded = load_yamnet_weights(YAMNetBase(include_audioset_head=True), path)
    assert_same_weights(loaded, source)
    assert loaded.class_names is None  # no yamnet_class_map.csv beside the file


def test_h5_class_map_beside_the_file_and_headless_base(source, tmp_path):
    path = write_keras2_h5(tmp_path / "yamnet.h5", yamnet_py_arrays(source))
    rows = ["index,mid,display_name"] + [f'{i},/m/{i},"{name}"' for i, name in enumerate(CLASS_NAMES)]
    (tmp_path / "yamnet_class_map.csv").write_text("\n".join(rows) + "\n")
    assert load_yamnet_weights(YAMNetBase(include_audioset_head=True), path).class_names == tuple(CLASS_NAMES)
    headless = load_yamnet_weights(YAMNetBase(), path)  # the classifier in the file is skipped
    np.testing.assert_array_equal(headless.stem.conv.kernel.numpy(), source.stem.conv.kernel.numpy())


def test_h5_without_the_classifier_needs_a_headless_base(source, tmp_path):
    arrays = {k: v for k, v in yamnet_py_arrays(source).items() if not k.startswith("logits")}
    path = write_keras2_h5(tmp_path / "embeddings_only.h5", arrays)
    with pytest.raises(ConfigError, match=r"lacks logits/kernel, logits/bias \(build the base with include"):
        load_yamnet_weights(YAMNetBase(include_audioset_head=True), path)


def test_wrong_shapes_and_unknown_files_are_rejected(source, tmp_path):
    arrays = yamnet_py_arrays(source)
    arrays["layer3/pointwise_conv/kernel"] = arrays["layer3/pointwise_conv/kernel"][..., :64]
    target = YAMNetBase()
    before = target.stem.conv.kernel.numpy().copy()
    with pytest.raises(
        ConfigError, match=r"layer3/pointwise_conv/kernel \(1, 1, 64, 64\) \(expected \(1, 1, 64, 128\)\)"
    ):
        load_yamnet_weights(target, write_keras2_h5(tmp_path / "bad.h5", arrays))
    np.testing.assert_array_equal(target.stem.conv.kernel.numpy(), before)  # nothing assigned
    with pytest.raises(BaseNotFoundError, match="do not exist"):
        load_yamnet_weights(target, tmp_path / "missing.h5")
    (tmp_path / "weights.bin").write_bytes(b"\0" * 16)
    with pytest.raises(ConfigError, match="Cannot tell which YAMNet weights"):
        load_yamnet_weights(target, tmp_path / "weights.bin")
    (tmp_path / "fake.tflite").write_bytes(b"\0" * 16)
    with pytest.raises(ConfigError, match="not a TFLite model"):
        load_yamnet_weights(target, tmp_path / "fake.tflite")


def test_keras3_weights_file_round_trip(source, tmp_path):
    path = tmp_path / "yamnet.weights.h5"
    source.save_weights(path)
    assert_same_weights(load_yamnet_weights(YAMNetBase(include_audioset_head=True), path), source)


def test_saved_model_like_tf_hub_loads_exactly_with_class_names(source, tmp_path, monkeypatch):
    # Written where tensorflow_hub caches google/yamnet/1, so that it is also found without a path.
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path))
    path = write_hub_like_saved_model(
        hub_cache_path(YAMNET_HUB_HANDLE, tmp_path), yamnet_py_arrays(source), CLASS_NAMES
    )
    loaded = load_yamnet_weights(YAMNetBase(include_audioset_head=True), path)
    assert_same_weights(loaded, source)
    assert loaded.class_names == tuple(CLASS_NAMES)
    from_cache = load_yamnet_weights(YAMNetBase())
    np.testing.assert_array_equal(
        from_cache.blocks[-1].pointwise_conv.kernel, loaded.blocks[-1].pointwise_conv.kernel
    )


def test_tflite_with_int8_weights_and_folded_batch_norm(source, patches, tmp_path):
    # Dynamic-range quantization: batch norm folded into per-channel int8 kernels and float biases.
    flatbuffer = convert_to_tflite(
        lambda x: source.audioset_head(source.embed_patches(x)),
        tf.TensorSpec([1, 1, 96, 64], tf.float32),
        source.variables,
        quantize="dynamic",
    )
    path = tmp_path / "yamnet.tflite"
    path.write_bytes(flatbuffer)
    loaded = load_yamnet_weights(YAMNetBase(include_audioset_head=True), path)
    for convolution, batch_norm, loaded_convolution, loaded_batch_norm in (
        (source.stem.conv, source.stem.bn, loaded.stem.conv, loaded.stem.bn),
        *(
            (block.depthwise_conv, block.depthwise_bn, twin.depthwise_conv, twin.depthwise_bn)
            for block, twin in zip(source.separable_blocks[:2], loaded.separable_blocks[:2], strict=True)
        ),
        (
            source.blocks[-1].pointwise_conv,
            source.blocks[-1].pointwise_bn,
            loaded.blocks[-1].pointwise_conv,
            loaded.blocks[-1].pointwise_bn,
        ),
    ):
        inverse_std = 1.0 / np.sqrt(batch_norm.moving_variance.numpy() + 1e-4)
        kernel = convolution.kernel.numpy()
        channels_last = kernel if kernel.shape[-1] > 1 else kernel[..., 0]  # depthwise: (h, w, C, 1)
        folded = channels_last * inverse_std
        loaded_kernel = loaded_convolution.kernel.numpy().reshape(folded.shape)
        # Dequantized per channel: within half a quantization step (max |w| / 127) of the folded kernel.
        step = np.abs(folded).reshape(-1, folded.shape[-1]).max(axis=0) / 127
        assert np.all(np.abs(loaded_kernel - folded) <= step / 2 + 1e-6)
        # The folded bias is the beta of an identity normalization.
        np.testing.assert_allclose(
            loaded_batch_norm.beta.numpy(),
            batch_norm.beta.numpy() - batch_norm.moving_mean.numpy() * inverse_std,
            rtol=1e-4,
            atol=1e-5,
        )
        np.testing.assert_array_equal(loaded_batch_norm.moving_mean.numpy(), 0.0)
        np.testing.assert_allclose(loaded_batch_norm.moving_variance.numpy(), 1.0 - 1e-4)
    # The converter keeps kernels under 1024 values in float; the last one, layer14's pointwise, is int8.
    assert not np.allclose(loaded_kernel, folded, atol=1e-7)
    # The TFLite model also quantizes activations on the fly, so its scores are close to ours, not equal.
    ours, expected = scores(loaded, patches), run_tflite(flatbuffer, patches)[:, 0]
    assert np.corrcoef(ours.ravel(), expected.ravel())[0, 1] > 0.999
    np.testing.assert_allclose(ours, expected, atol=0.02)
    assert np.corrcoef(ours.ravel(), scores(source, patches).ravel())[0, 1] > 0.999


def test_read_class_map_rejects_other_csv(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("name\ndog\n")
    with pytest.raises(ConfigError, match="display_name"):
        read_class_map(path)

"""YAMNetBase: architecture, windows, trainable blocks, config and .keras round trips."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import make_tone
from yamnet_helpers import randomize

from audio_transfer.bases.conv_block import ConvBlock
from audio_transfer.bases.separable_conv_block import SeparableConvBlock
from audio_transfer.bases.yamnet_base import YAMNetBase
from audio_transfer.errors import ConfigError, InputShapeError

CLASS_NAMES = [f"class {i}" for i in range(521)]


@pytest.fixture(scope="module")
def base() -> YAMNetBase:
    return randomize(YAMNetBase(include_audioset_head=True, class_names=CLASS_NAMES), seed=0)


def test_parameter_counts_match_google_yamnet():
    # yamnet.py's model has 3,751,369 parameters (with the 521-class classifier), moving statistics included.
    assert YAMNetBase(include_audioset_head=True).count_params() == 3_751_369
    assert YAMNetBase().count_params() == 3_751_369 - (1024 * 521 + 521)


def test_layers_follow_yamnet_layer_defs(base):
    blocks = base.blocks
    assert [block.name for block in blocks] == [f"layer{i}" for i in range(1, 15)]
    assert isinstance(blocks[0], ConvBlock)
    assert (blocks[0].filters, blocks[0].kernel_size, blocks[0].strides) == (32, 3, 2)
    assert all(isinstance(block, SeparableConvBlock) for block in blocks[1:])
    assert [(block.filters, block.strides) for block in blocks[1:]] == [
        (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
        (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
    ]  # fmt: skip
    batch_norms = [
        layer for layer in base._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert len(batch_norms) == 27
    assert all(bn.center and not bn.scale and bn.epsilon == 1e-4 for bn in batch_norms)
    children = list(base._flatten_layers(include_self=False, recursive=False))
    assert all(any(block is child for child in children) for block in blocks)


@pytest.mark.parametrize("num_samples", [100, 15599, 15600, 23279, 23280, 48000])
def test_one_embedding_per_whole_patch(base, num_samples):
    waveform = np.zeros((2, num_samples), np.float32)
    embeddings = base(waveform)
    # Patches of 96 frames (25 ms every 10 ms) every 48 frames; short input is padded to one patch.
    frames = 1 + (max(num_samples, 15600) - 400) // 160
    assert embeddings.shape == (2, 1 + (frames - 96) // 48, 1024)
    assert base.num_windows(num_samples) == embeddings.shape[1]


def test_patches_are_embedded_independently(base):
    tone = make_tone(frequency_hz=1000.0, duration_seconds=2.0)
    noise = np.random.default_rng(1).normal(0, 0.1, 32000).astype(np.float32)
    embeddings = base(np.stack([tone, noise])).numpy()
    first_patch = base(np.stack([tone[:15600], noise[:15600]])).numpy()[:, 0]
    np.testing.assert_allclose(embeddings[:, 0], first_patch, rtol=1e-4, atol=1e-5)
    assert not np.allclose(embeddings[0, 0], embeddings[1, 0], atol=1e-3)
    assert np.all(embeddings >= 0)  # global average of ReLU outputs


def test_embed_patches_checks_its_input(base):
    with pytest.raises(InputShapeError, match=r"\(batch, patches, 96, 64\).*\(1, 96, 64\)"):
        base.embed_patches(np.zeros((1, 96, 64), np.float32))


def test_audioset_scores_and_class_names(base):
    scores = base.audioset_scores(np.zeros((1, 32000), np.float32)).numpy()
    assert scores.shape == (1, 3, 521)
    assert np.all((scores >= 0) & (scores <= 1))
    assert base.class_names == tuple(CLASS_NAMES)
    with pytest.raises(ConfigError, match="include_audioset_head=True"):
        YAMNetBase().audioset_scores(np.zeros((1, 16000), np.float32))
    with pytest.raises(ConfigError, match="no head"):
        YAMNetBase(class_names=CLASS_NAMES)
    with pytest.raises(ConfigError, match="521 AudioSet classes, but 3"):
        YAMNetBase(include_audioset_head=True, class_names=["a", "b", "c"])
    with pytest.raises(ConfigError, match="received 'yes'"):
        YAMNetBase(include_audioset_head="yes")


def test_set_trainable_two_trains_exactly_the_top_two_blocks():
    base = YAMNetBase(include_audioset_head=True)
    base.set_trainable(2)
    top_two = [weight.path for block in base.blocks[-2:] for weight in block.trainable_weights]
    assert sorted(weight.path for weight in base.trainable_weights) == sorted(top_two)
    assert all(path.startswith(("yamnet/layer13/", "yamnet/layer14/")) for path in top_two)
    assert len(top_two) == 8  # 2 blocks x (depthwise kernel, beta, pointwise kernel, beta)
    base.set_trainable(True)
    assert not base.audioset_head.trainable
    assert len(base.trainable_weights) == 1 + 1 + 13 * 4  # every kernel and beta, not the head
    base.set_trainable(False)
    assert base.trainable_weights == []
    with pytest.raises(ConfigError, match="14 blocks"):
        base.set_trainable(15)


def test_fine_tuning_the_top_blocks_leaves_frozen_batch_norm_statistics_alone():
    base = randomize(YAMNetBase(), seed=2)
    base.set_trainable(1)
    inputs = keras.Input((15600,))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.ops.mean(base(inputs), axis=1)))
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=True,  # one step: tracing the train function would cost more than running it
    )
    frozen_mean = base.blocks[-2].pointwise_bn.moving_mean.numpy().copy()
    frozen_kernel = base.blocks[-2].pointwise_conv.kernel.numpy().copy()
    trained_mean = base.blocks[-1].pointwise_bn.moving_mean.numpy().copy()
    trained_kernel = base.blocks[-1].pointwise_conv.kernel.numpy().copy()
    rng = np.random.default_rng(3)
    model.fit(rng.normal(0, 0.1, (4, 15600)).astype(np.float32), np.array([0, 1, 0, 1]), epochs=1, verbose=0)
    np.testing.assert_array_equal(base.blocks[-2].pointwise_bn.moving_mean.numpy(), frozen_mean)
    np.testing.assert_array_equal(base.blocks[-2].pointwise_conv.kernel.numpy(), frozen_kernel)
    assert not np.allclose(base.blocks[-1].pointwise_bn.moving_mean.numpy(), trained_mean)
    assert not np.allclose(base.blocks[-1].pointwise_conv.kernel.numpy(), trained_kernel)


def test_config_round_trip(base):
    config = base.get_config()
    assert config["include_audioset_head"] is True
    assert config["class_names"] == CLASS_NAMES
    rebuilt = YAMNetBase.from_config(config)
    assert rebuilt.get_config() == config
    assert rebuilt.count_params() == base.count_params()
    assert (rebuilt.window_seconds, rebuilt.hop_seconds, rebuilt.min_samples) == (0.975, 0.48, 15600)


def test_keras_file_round_trip(base, tmp_path):
    waveform = make_tone(frequency_hz=440.0, duration_seconds=1.5)[None]
    path = tmp_path / "yamnet.keras"
    base.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, YAMNetBase)
    assert loaded.class_names == tuple(CLASS_NAMES)
    np.testing.assert_allclose(loaded(waveform), base(waveform), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loaded.audioset_scores(waveform), base.audioset_scores(waveform), atol=1e-6)

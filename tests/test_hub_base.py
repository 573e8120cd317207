"""HubBase: handle resolution, calling conventions, fine-tuning inside Keras 3 models, save/load."""

from __future__ import annotations

import shutil
import sys

import hub_fakes
import keras
import numpy as np
import pytest
import tensorflow as tf

from audio_transfer.bases import HubBase, list_bases, load_base
from audio_transfer.bases.hub_resolver import hub_cache_path, resolve_hub_handle
from audio_transfer.errors import BaseNotFoundError, ConfigError, InputShapeError

YAMNET_LIKE = hub_fakes.YAMNET_LIKE_CONFIG
TRILL_LIKE = {**YAMNET_LIKE, "call_convention": "samples_and_sample_rate", "output_key": "embedding"}
TRILL_LIKE["embedding_dim"] = 12


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("saved_models")
    return {
        "yamnet": hub_fakes.save_yamnet_like(root / "yamnet"),
        "trill": hub_fakes.save_trill_like(root / "trill"),
        "reusable": hub_fakes.save_reusable_with_training_argument(root / "reusable"),
        "tf1": hub_fakes.save_tf1_hub_module(root / "tf1"),
    }


@pytest.fixture
def offline_hub(monkeypatch, tmp_path):
    """An empty TFHUB_CACHE_DIR, no default cache and no tensorflow_hub: nothing can be downloaded."""
    cache = tmp_path / "tfhub_cache"
    cache.mkdir()
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache))
    monkeypatch.setattr("tempfile.gettempdir", lambda: str(tmp_path / "system_tmp"))
    monkeypatch.setitem(sys.modules, "tensorflow_hub", None)
    return cache


def waveforms(batch: int = 2, samples: int = 1600) -> np.ndarray:
    return np.random.default_rng(0).uniform(-0.5, 0.5, (batch, samples)).astype("float32")


def test_yamnet_convention_maps_each_clip_and_selects_embeddings(saved_models):
    base = load_base(f"hub:{saved_models['yamnet']}", **YAMNET_LIKE)
    audio = waveforms()
    embeddings = base(audio).numpy()
    assert embeddings.shape == (2, 7, 16)
    module = tf.saved_model.load(str(saved_models["yamnet"]))
    for clip, expected in zip(audio, embeddings, strict=True):
        np.testing.assert_allclose(module(clip)[1].numpy(), expected, atol=1e-6)
    assert base.num_windows(1600) == 7


def test_trill_convention_passes_sample_rate_and_picks_output_key(saved_models):
    audio = waveforms()
    module = tf.saved_model.load(str(saved_models["trill"]))
    embedding = load_base(f"hub:{saved_models['trill']}", **TRILL_LIKE)(audio)
    expected = module(samples=audio, sample_rate=16000)["embedding"]
    np.testing.assert_allclose(embedding.numpy(), expected.numpy(), atol=1e-6)
    layer19 = load_base(
        f"hub:{saved_models['trill']}", **{**TRILL_LIKE, "output_key": "layer19", "embedding_dim": 24}
    )(audio)
    assert layer19.shape == (2, 7, 24)


def test_url_handle_is_found_in_the_tfhub_cache_layout(saved_models, offline_hub):
    handle = "https://tfhub.dev/example/yamnet-like/1"
    cached = hub_cache_path(handle, offline_hub)
    shutil.copytree(saved_models["yamnet"], cached)
    assert resolve_hub_handle(handle) == cached
    base = load_base(f"hub:{handle}", **YAMNET_LIKE)
    assert base(waveforms()).shape == (2, 7, 16)
    assert base.get_config()["handle"] == handle


def test_cache_folder_name_is_tensorflow_hubs_sha1_of_the_handle(tmp_path):
    # tensorflow_hub 0.16.1 compressed_module_resolver._module_dir: sha1(handle.encode("utf8")).hexdigest()
    name = hub_cache_path("https://tfhub.dev/google/yamnet/1", tmp_path).name
    assert name == "9616fd04ec2360621642ef9455b84f4b668e219e"


def test_unresolvable_handle_says_where_it_looked_and_how_to_supply_it(offline_hub):
    handle = "https://tfhub.dev/google/yamnet/1"
    with pytest.raises(BaseNotFoundError) as error:
        load_base("yamnet-hub")
    message = str(error.value)
    assert handle in message
    assert str(offline_hub / "9616fd04ec2360621642ef9455b84f4b668e219e") in message
    assert "tfhub_modules" in message
    assert "tensorflow_hub cannot be imported" in message
    assert "TFHUB_CACHE_DIR=<dir>" in message
    assert "hub:<directory>" in message


def test_directory_without_saved_model_is_refused(tmp_path):
    with pytest.raises(BaseNotFoundError, match=r"holds no saved_model.pb"):
        resolve_hub_handle(str(tmp_path))


@pytest.mark.parametrize("trainable", [True, False])
def test_one_fine_tuning_step_in_a_functional_model(saved_models, trainable):
    base = load_base(f"hub:{saved_models['yamnet']}", trainable=trainable, **YAMNET_LIKE)
    inputs = keras.Input((1600,))
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(base(inputs)))
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.SGD(0.5), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    audio = waveforms(4)
    kernel = next(w for w in base.weights if w.shape == (400, 16))
    moving_mean = next(w for w in base.weights if w.shape == (16,))
    kernel_before, mean_before = kernel.numpy().copy(), moving_mean.numpy().copy()
    embeddings_before = base(audio).numpy()
    head_before = model.layers[-1].kernel.numpy().copy()

    model.train_on_batch(audio, np.array([0, 1, 0, 1]))

    assert len(base.trainable_weights) == (1 if trainable else 0)
    assert not np.allclose(model.layers[-1].kernel.numpy(), head_before)
    np.testing.assert_array_equal(moving_mean.numpy(), mean_before)
    if trainable:
        assert not np.allclose(kernel.numpy(), kernel_before)
        # The module itself computes with the new values, not a copy of them.
        assert not np.allclose(base(audio).numpy(), embeddings_before)
    else:
        np.testing.assert_array_equal(kernel.numpy(), kernel_before)
        np.testing.assert_array_equal(base(audio).numpy(), embeddings_before)


def test_save_and_load_keeps_fine_tuned_variables(saved_models, tmp_path):
    base = load_base(f"hub:{saved_models['trill']}", trainable=True, **TRILL_LIKE)
    inputs = keras.Input((1600,))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling1D()(base(inputs))))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    audio = waveforms(4)
    model.train_on_batch(audio, np.array([0, 1, 2, 0]))
    path = tmp_path / "task.keras"
    model.save(path)

    with pytest.raises(ConfigError, match=r"safe_mode=False"):
        keras.saving.load_model(path)
    reloaded = keras.saving.load_model(path, safe_mode=False)

    np.testing.assert_allclose(reloaded(audio).numpy(), model(audio).numpy(), atol=1e-5)
    reloaded_base = reloaded.layers[1]
    assert isinstance(reloaded_base, HubBase)
    assert reloaded_base.handle == str(saved_models["trill"])
    fresh = tf.saved_model.load(str(saved_models["trill"]))
    assert not np.allclose(reloaded_base.weights[0].numpy(), fresh.kernel.numpy())


def test_reusable_savedmodel_declares_its_trainable_variables_and_gets_training(saved_models):
    base = load_base(f"hub:{saved_models['reusable']}", sample_rate=16000, embedding_dim=4, min_samples=400)
    audio = waveforms(1)
    assert base(audio, training=True).numpy() == pytest.approx(base(audio).numpy())  # frozen: inference
    base.set_trainable(True)
    assert [w.shape for w in base.trainable_weights] == [(400, 4)]  # `scale` is not declared trainable
    np.testing.assert_allclose(base(audio, training=True).numpy(), 2 * base(audio).numpy(), rtol=1e-6)


def test_tf1_hub_format_loads_frozen_and_refuses_fine_tuning(saved_models):
    base = load_base(f"hub:{saved_models['tf1']}", sample_rate=16000, embedding_dim=6, min_samples=400)
    assert base(waveforms()).shape == (2, 7, 6)  # (batch, frames, 1, 6) squeezed
    with pytest.raises(ConfigError, match=r"TF1 Hub format.*frozen"):
        base.set_trainable(True)


def test_number_of_blocks_is_refused_for_hub_bases(saved_models):
    with pytest.raises(ConfigError, match=r"all-frozen or all-trainable.*trainable=2"):
        load_base(f"hub:{saved_models['yamnet']}", trainable=2, **YAMNET_LIKE)


def test_wrong_output_key_lists_the_outputs(saved_models):
    with pytest.raises(ConfigError, match=r"outputs \['embedding', 'layer19'\]; output_key='logits' is not"):
        load_base(f"hub:{saved_models['trill']}", **{**TRILL_LIKE, "output_key": "logits"})
    with pytest.raises(ConfigError, match=r"returns several outputs \[0, 1, 2\]; pass output_key="):
        load_base(f"hub:{saved_models['yamnet']}", **{**YAMNET_LIKE, "output_key": None})


def test_declared_embedding_dim_is_checked(saved_models):
    with pytest.raises(ConfigError, match=r"embeddings of size 16, but embedding_dim=32 was declared"):
        load_base(f"hub:{saved_models['yamnet']}", **{**YAMNET_LIKE, "embedding_dim": 32})


def test_undeclared_hub_handle_asks_for_sample_rate_and_embedding_dim(saved_models):
    with pytest.raises(ConfigError, match=r"sample_rate=16000, embedding_dim=<size>.*embedding_dim"):
        load_base(f"hub:{saved_models['yamnet']}", sample_rate=16000)


def test_waveform_of_wrong_rank_reports_its_shape(saved_models):
    base = load_base(f"hub:{saved_models['yamnet']}", **YAMNET_LIKE)
    with pytest.raises(InputShapeError, match=r"received shape \(1600,\)"):
        base(np.zeros(1600, "float32"))


def test_short_input_is_padded_to_min_samples(saved_models):
    base = load_base(f"hub:{saved_models['yamnet']}", **{**YAMNET_LIKE, "min_samples": 1000})
    assert base(waveforms(samples=100)).shape == (2, 4, 16)


@pytest.mark.network
@pytest.mark.parametrize("info", [i for i in list_bases() if i.kind == "hub"], ids=lambda i: i.name)
def test_real_hub_handles(info):
    base = load_base(info.name)
    # 15600 + 4 * 7680 samples: YAMNet pads input to a whole number of 0.48 s hops after its first 0.975 s,
    # so at this length its frame count follows the base contract's formula (num_windows) exactly.
    audio = np.zeros((2, 46320), np.float32)
    embeddings = base(audio)
    assert embeddings.shape[0] == 2 and embeddings.shape[-1] == info.embedding_dim
    assert embeddings.shape[1] == base.num_windows(audio.shape[1])

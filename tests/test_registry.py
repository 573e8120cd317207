"""Registry: preset data, load_base dispatch, shipped weights, freezing, errors, and the `bases` verb."""

from __future__ import annotations

import json

import hub_fakes
import keras
import numpy as np
import pytest
import tensorflow as tf

from audio_transfer.bases import AudioBase, BaseInfo, HubBase, assets, list_bases, load_base, register_preset
from audio_transfer.bases.presets import PRESETS
from audio_transfer.cli.main import main
from audio_transfer.errors import BaseNotFoundError, ConfigError

HUB_PRESETS = {
    "yamnet-hub": ("https://tfhub.dev/google/yamnet/1", 1024),
    "vggish": ("https://tfhub.dev/google/vggish/1", 128),
    "trill": ("https://tfhub.dev/google/nonsemantic-speech-benchmark/trill/3", 512),
    "trill-distilled": ("https://tfhub.dev/google/nonsemantic-speech-benchmark/trill-distilled/3", 2048),
    "frill": ("https://tfhub.dev/google/nonsemantic-speech-benchmark/frill/1", 2048),
    "speech_embedding-hub": ("https://tfhub.dev/google/speech_embedding/1", 96),
}


@keras.saving.register_keras_serializable(package="audio_transfer_tests")
class TinyBase(AudioBase):
    """Three dense blocks over 160-sample frames; stands in for the Keras rebuilds in registry tests."""

    def __init__(self, *, width: int = 4, **kwargs) -> None:
        super().__init__(
            sample_rate=16000,
            embedding_dim=width,
            min_samples=160,
            window_seconds=0.01,
            hop_seconds=0.01,
            **kwargs,
        )
        self.width = width
        self.frame = keras.layers.Reshape((-1, 160))
        self.block_1 = keras.layers.Dense(8, activation="relu")
        self.block_2 = keras.layers.Dense(8, activation="relu")
        self.block_3 = keras.layers.Dense(width)

    @property
    def blocks(self):
        return [self.block_1, self.block_2, self.block_3]

    def embed(self, waveform, training=None):
        usable = tf.shape(waveform)[1] // 160 * 160
        return self.block_3(self.block_2(self.block_1(self.frame(waveform[:, :usable]))))

    def get_config(self):
        return {"width": self.width, "name": self.name}


TINY_PRESET = {
    "class": f"{__name__}:TinyBase",
    "config": {"width": 4},
    "weights": "tiny.weights.h5",
    "metadata": {
        "description": "A test base.",
        "source": "tests/test_registry.py",
        "licence": "Apache-2.0",
        "sample_rate": 16000,
        "embedding_dim": 4,
        "window_seconds": 0.01,
        "hop_seconds": 0.01,
        "parameter_count": 204,
        "file_size_bytes": None,
        "tasks": ["testing"],
        "citation": "none",
    },
}


@pytest.fixture
def tiny_preset(monkeypatch, tmp_path):
    """Register TINY_PRESET with shipped weights in a packaged-assets folder under tmp_path."""
    pretrained = tmp_path / "site-packages" / "audio_transfer" / "pretrained"
    monkeypatch.setattr(assets, "PRETRAINED_DIR", pretrained)
    shipped = TinyBase()
    shipped(np.zeros((1, 160), np.float32))
    weights = pretrained / "tiny" / "tiny.weights.h5"
    weights.parent.mkdir(parents=True)
    shipped.save_weights(weights)
    monkeypatch.setitem(PRESETS, "tiny", TINY_PRESET)  # restored after the test
    register_preset("tiny", TINY_PRESET, overwrite=True)
    return shipped


def test_every_shipped_preset_is_well_formed_and_listed():
    infos = list_bases()
    assert [info.name for info in infos] == list(PRESETS)
    assert all(isinstance(info, BaseInfo) for info in infos)
    assert json.loads(json.dumps([info.to_dict() for info in infos]))
    by_name = {info.name: info for info in infos}
    speech = by_name["speech_embedding"]
    assert (speech.kind, speech.embedding_dim, speech.parameter_count) == ("keras", 96, 328128)
    assert (speech.window_seconds, speech.hop_seconds) == (0.775, 0.08)
    assert "Apache-2.0" in speech.licence and "openwakeword==0.5.1" in speech.source
    ge2e = by_name["ge2e_speaker"]
    assert (ge2e.embedding_dim, ge2e.licence, PRESETS["ge2e_speaker"]["weights"]) == (
        256,
        "Apache-2.0",
        "ge2e_speaker.weights.h5",
    )
    for name, (handle, dim) in HUB_PRESETS.items():
        assert (by_name[name].kind, by_name[name].handle, by_name[name].embedding_dim) == ("hub", handle, dim)
        assert by_name[name].sample_rate == 16000 and by_name[name].licence == "Apache-2.0"


def test_yamnet_preset_reads_the_weights_file_the_user_names(coral_yamnet_dir):
    base = load_base("yamnet", weights=coral_yamnet_dir / "yamnet_spectra_in.tflite", trainable=2)
    assert (base.embedding_dim, base.num_blocks) == (1024, 14)
    # The top two separable blocks: each a depthwise and a pointwise kernel plus two BN betas (scale=False).
    trainable = {weight.path.split("/")[1] for weight in base.trainable_weights}
    assert (len(base.trainable_weights), trainable) == (8, {"layer13", "layer14"})
    audio = np.random.default_rng(0).normal(scale=0.1, size=(1, 16000)).astype("float32")
    assert base(audio).shape == (1, 1, 1024)


def test_preset_loads_shipped_weights_and_freezes(tiny_preset):
    base = load_base("tiny")
    audio = np.random.default_rng(0).normal(size=(2, 800)).astype("float32")
    np.testing.assert_allclose(base(audio).numpy(), tiny_preset(audio).numpy(), atol=1e-6)
    assert base.trainable_weights == []


def test_set_trainable_two_leaves_exactly_the_top_two_blocks_trainable(tiny_preset):
    base = load_base("tiny", trainable=2)
    trainable = {id(w) for w in base.trainable_weights}
    expected = {id(w) for block in base.blocks[1:] for w in block.weights}
    assert trainable == expected


def test_more_blocks_than_the_base_has_reports_the_count(tiny_preset):
    with pytest.raises(ConfigError, match=r"top 5 blocks of TinyBase: it has 3 blocks"):
        load_base("tiny", trainable=5)


def test_weights_that_do_not_fit_the_class_are_reported(tiny_preset, monkeypatch):
    monkeypatch.setitem(TINY_PRESET["metadata"], "embedding_dim", 6)
    monkeypatch.setitem(TINY_PRESET["config"], "width", 6)  # the shipped weights are for width 4
    with pytest.raises(ConfigError, match=r"does not fit base 'tiny'"):
        load_base("tiny")


def test_unknown_constructor_argument_is_reported(tiny_preset):
    with pytest.raises(ConfigError, match=r"Cannot build base 'tiny' with arguments \['colour', 'width'\]"):
        load_base("tiny", colour="red")


def test_preset_metadata_is_checked_against_the_built_base(tiny_preset, monkeypatch):
    monkeypatch.setitem(TINY_PRESET["metadata"], "hop_seconds", 0.02)
    with pytest.raises(ConfigError, match=r"declares hop_seconds=0.02 but its base has hop_seconds=0.01"):
        load_base("tiny")


def test_missing_weights_file_says_where_it_looked(tiny_preset, tmp_path):
    (tmp_path / "site-packages" / "audio_transfer" / "pretrained" / "tiny" / "tiny.weights.h5").unlink()
    with pytest.raises(BaseNotFoundError, match=r"'tiny.weights.h5' of base 'tiny' is missing; looked in"):
        load_base("tiny")


def test_unknown_name_lists_the_available_presets():
    with pytest.raises(BaseNotFoundError) as error:
        load_base("speech_embeding")
    message = str(error.value)
    assert "Did you mean 'speech_embedding'?" in message
    for name in PRESETS:
        assert name in message
    assert "hub:<" in message


def test_class_that_cannot_be_imported_is_reported(monkeypatch):
    monkeypatch.setitem(
        PRESETS, "ghost", {**TINY_PRESET, "class": "audio_transfer.bases.ghost_base:GhostBase"}
    )
    with pytest.raises(
        BaseNotFoundError, match=r"built by audio_transfer.bases.ghost_base:GhostBase, which cannot"
    ):
        load_base("ghost")


def test_malformed_preset_lists_its_problems():
    broken = {**TINY_PRESET, "weights": "tiny.h5", "config": {"width": 4, "sample_rate": 16000}}
    with pytest.raises(ConfigError) as error:
        register_preset("broken", broken)
    message = str(error.value)
    assert (
        "'weights' must be None, a '*.weights.h5' file name or {'loader': 'module:function'}, "
        "received 'tiny.h5'"
    ) in message
    assert "'sample_rate' is in both 'config' and 'metadata'" in message
    uncited = {key: value for key, value in TINY_PRESET["metadata"].items() if key != "citation"}
    with pytest.raises(ConfigError, match=r"lacks \['citation'\]"):
        register_preset("broken", {**TINY_PRESET, "metadata": uncited})


def test_existing_names_cannot_be_registered_twice():
    with pytest.raises(ConfigError, match=r"'speech_embedding' exists already"):
        register_preset("speech_embedding", TINY_PRESET)
    with pytest.raises(ConfigError, match=r"'yamnet' exists already"):
        register_preset("yamnet", TINY_PRESET)


def test_hub_preset_loads_from_a_local_copy_and_by_its_handle(tmp_path, monkeypatch):
    preset_geometry = ("sample_rate", "embedding_dim", "window_seconds", "hop_seconds")
    folder = hub_fakes.save_yamnet_like(tmp_path / "yamnet_copy")
    preset = {
        "class": "audio_transfer.bases.hub_base:HubBase",
        "config": {"handle": str(folder), **hub_fakes.YAMNET_LIKE_CONFIG},
        "weights": None,
        "metadata": {
            key: value for key, value in TINY_PRESET["metadata"].items() if key not in preset_geometry
        },
    }
    monkeypatch.setitem(PRESETS, "yamnet-like", preset)
    by_name = load_base("yamnet-like")
    by_handle = load_base(f"hub:{folder}")  # the preset's settings apply to its handle
    assert isinstance(by_name, HubBase) and isinstance(by_handle, HubBase)
    audio = np.zeros((1, 800), np.float32)
    np.testing.assert_allclose(by_name(audio).numpy(), by_handle(audio).numpy())
    assert load_base("yamnet-like", min_samples=1200).min_samples == 1200  # keyword arguments override
    assert [info.kind for info in list_bases() if info.name == "yamnet-like"] == ["hub"]


def test_other_objects_are_refused():
    with pytest.raises(ConfigError, match=r"received int"):
        load_base(3)


def test_bases_verb_prints_a_table_and_json(capsys):
    assert main(["bases"]) == 0
    text = capsys.readouterr().out
    assert "speech_embedding" in text and "328,128" in text and "0.775/0.08 s" in text
    assert main(["bases", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [entry["name"] for entry in data["bases"]] == list(PRESETS)
    assert data["bases"][0]["parameter_count"] == 328128

"""SpeechEmbeddingBase against the original openWakeWord TFLite pipeline, and its base contract.

The reference outputs in ``fixtures/speech_embedding_base_reference.npz`` were computed by
``fixtures/make_speech_embedding_base_fixture.py`` with the wheel's ``melspectrogram.tflite`` (``/10 + 2``)
and ``embedding_model.tflite`` over 76-frame windows every 8 frames, on seeded synthetic audio (waveform
stored) and on three Speech Commands clips joined into one 3 s utterance (file names stored).
"""

from __future__ import annotations

import re
from pathlib import Path

import keras
import numpy as np
import pytest
import soundfile
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from audio_transfer.bases.assets import pretrained_asset
from audio_transfer.bases.presets import PRESETS
from audio_transfer.bases.speech_embedding_base import SpeechEmbeddingBase
from audio_transfer.errors import ConfigError, InputShapeError

FIXTURE = Path(__file__).parent / "fixtures" / "speech_embedding_base_reference.npz"
TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as arrays:
        return dict(arrays)


@pytest.fixture(scope="module")
def base() -> SpeechEmbeddingBase:
    model = SpeechEmbeddingBase()
    model.load_weights(pretrained_asset("speech_embedding", "speech_embedding.weights.h5"))
    return model


def _max_abs_diff(actual, expected) -> float:
    return float(np.max(np.abs(np.asarray(actual) - expected)))


@pytest.mark.parametrize("clip", ["synthetic", "speech"])
def test_network_alone_matches_original(base, reference, clip):
    log_mel = reference[f"{clip}_log_mel"]
    expected = reference[f"{clip}_embeddings"]
    actual = base.embed_log_mel(log_mel[None])[0]
    assert actual.shape == expected.shape
    assert _max_abs_diff(actual, expected) <= TOLERANCE


def test_end_to_end_matches_original_on_synthetic_audio(base, reference):
    waveform = reference["synthetic_pcm16"].astype(np.float32)[None] / 32768
    expected = reference["synthetic_embeddings"]
    actual = base(waveform)[0]
    assert actual.shape == expected.shape
    assert _max_abs_diff(actual, expected) <= TOLERANCE


def test_end_to_end_matches_original_on_speech(base, reference, speech_commands_dir):
    files = [speech_commands_dir / name for name in reference["speech_files"]]
    clips = [soundfile.read(path, dtype="int16")[0] for path in files]
    waveform = np.concatenate(clips).astype(np.float32)[None] / 32768
    expected = reference["speech_embeddings"]
    actual = base(waveform)[0]
    assert actual.shape == expected.shape
    assert _max_abs_diff(actual, expected) <= TOLERANCE


@pytest.mark.parametrize("num_samples", [12_512, 13_791, 13_792, 16_000, 24_000])
def test_window_count_follows_the_frontend_framing(base, num_samples):
    log_mel = base.frontend(np.zeros((1, num_samples), np.float32))
    assert log_mel.shape[1] == (num_samples - 512) // 160 + 1
    embeddings = base(np.zeros((2, num_samples), np.float32))
    assert embeddings.shape == (2, base.num_windows(num_samples), 96)
    assert base.num_windows(num_samples) == 1 + (log_mel.shape[1] - 76) // 8


def test_short_input_is_padded_not_rejected(base, rng):
    short = rng.uniform(-0.5, 0.5, (1, 4000)).astype(np.float32)
    padded = np.pad(short, [(0, 0), (0, base.min_samples - 4000)])
    assert base.min_samples == 12_512
    np.testing.assert_allclose(base(short), base(padded), atol=1e-6)
    assert base(short).shape == (1, 1, 96)


@pytest.mark.parametrize("shape", [(16_000,), (1, 16_000, 1)])
def test_wrong_rank_names_the_received_shape(base, shape):
    with pytest.raises(InputShapeError, match=re.escape(str(shape))):
        base(np.zeros(shape, np.float32))


@pytest.mark.parametrize("shape", [(97, 32), (1, 97, 40)])
def test_log_mel_of_the_wrong_shape_is_refused(base, shape):
    with pytest.raises(InputShapeError, match=re.escape(str(shape))):
        base.embed_log_mel(np.zeros(shape, np.float32))


def test_contract_attributes(base):
    assert (base.sample_rate, base.embedding_dim) == (16_000, 96)
    assert (base.window_seconds, base.hop_seconds) == (0.775, 0.08)
    children = base._flatten_layers(include_self=False, recursive=False)
    assert all(any(block is child for child in children) for block in base.blocks)
    assert [block.name for block in base.blocks] == [
        "stage_1",
        "stage_2",
        "stage_3",
        "stage_4",
        "stage_5",
        "projection",
    ]


def test_preset_metadata_matches_the_shipped_weights(base):
    metadata = PRESETS["speech_embedding"]["metadata"]
    assert metadata["parameter_count"] == base.count_params() == 328_128
    weights = pretrained_asset("speech_embedding", PRESETS["speech_embedding"]["weights"])
    assert metadata["file_size_bytes"] == weights.stat().st_size


def test_set_trainable_top_blocks():
    model = SpeechEmbeddingBase()
    model.set_trainable(2)
    # stage_5: four convolutions with kernel and bias; projection: one kernel, no bias.
    assert len(model.trainable_weights) == 9
    assert {id(w) for w in model.trainable_weights} == {
        id(w) for block in model.blocks[-2:] for w in block.weights
    }
    model.set_trainable(True)
    assert len(model.trainable_weights) == 39
    model.set_trainable(False)
    assert model.trainable_weights == []
    model.set_trainable(2)
    assert len(model.trainable_weights) == 9


def test_set_trainable_beyond_the_block_count_says_how_many():
    with pytest.raises(ConfigError, match="it has 6 blocks"):
        SpeechEmbeddingBase().set_trainable(7)


def test_config_round_trip():
    model = SpeechEmbeddingBase(name="kws_base")
    config = model.get_config()
    assert "sample_rate" not in config and config["name"] == "kws_base"
    assert SpeechEmbeddingBase.from_config(config).get_config() == config


def test_keras_file_round_trip(base, reference, tmp_path):
    path = tmp_path / "speech_embedding.keras"
    base.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, SpeechEmbeddingBase)
    waveform = reference["synthetic_pcm16"].astype(np.float32)[None] / 32768
    np.testing.assert_allclose(loaded(waveform), base(waveform), atol=1e-6)


def test_tflite_with_builtin_ops_only_gives_the_same_embeddings(base, reference):
    waveform = reference["synthetic_pcm16"].astype(np.float32)[None] / 32768

    @tf.function(input_signature=[tf.TensorSpec(waveform.shape, tf.float32)])
    def serve(waveform):
        return base(waveform)

    # No trackable object: the converter then freezes the variables into constants (saving Keras 3 variables
    # through a SavedModel without tracking their TensorFlow values leaves uninitialised READ_VARIABLE ops).
    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], waveform)
    interpreter.invoke()
    actual = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    assert _max_abs_diff(actual, reference["synthetic_embeddings"][None]) <= TOLERANCE

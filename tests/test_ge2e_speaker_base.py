"""GE2ESpeakerBase against the original Resemblyzer encoder, and its base contract."""

from __future__ import annotations

from pathlib import Path

import keras
import librosa
import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from audio_transfer.bases.assets import pretrained_asset
from audio_transfer.bases.ge2e_speaker_base import GE2ESpeakerBase
from audio_transfer.errors import ConfigError, InputShapeError
from audio_transfer.features.volume_normalization import VolumeNormalization

FIXTURE = Path(__file__).parent / "fixtures" / "ge2e_speaker_reference.npz"
REFERENCE = dict(np.load(FIXTURE))
CASES = [str(name) for name in REFERENCE["case_names"]]
MAX_COSINE_DISTANCE = 1e-3


def compiled(function):
    """``function`` as one graph for every batch size and length (eager LSTMs step in Python: slow)."""
    return tf.function(function, input_signature=[tf.TensorSpec((None, None), tf.float32)])


def pretrained_base(**kwargs) -> GE2ESpeakerBase:
    base = GE2ESpeakerBase(**kwargs)
    base.load_weights(pretrained_asset("ge2e_speaker", "ge2e_speaker.weights.h5"))
    return base


@pytest.fixture(scope="module")
def pretrained() -> GE2ESpeakerBase:
    return pretrained_base()


@pytest.fixture(scope="module")
def partials_of(pretrained):
    return compiled(pretrained)


@pytest.fixture(scope="module")
def utterance_of(pretrained):
    return compiled(pretrained.embed_utterance)


@pytest.fixture(scope="module")
def encode_partials(pretrained):
    return tf.function(pretrained.encode_partials, input_signature=[tf.TensorSpec((1, None, 160, 40))])


@pytest.fixture(scope="module")
def unnormalized_partials_of():
    return compiled(pretrained_base(normalize_volume=False))


@pytest.fixture(scope="module")
def small_base() -> GE2ESpeakerBase:
    return GE2ESpeakerBase()


def case_waveform(name: str, request: pytest.FixtureRequest) -> np.ndarray:
    """The audio of a fixture case: synthetic int16 from the fixture, or Speech Commands clips joined."""
    if f"{name}/pcm16" in REFERENCE:
        return REFERENCE[f"{name}/pcm16"].astype(np.float32) / 32768.0
    speech_dir = request.getfixturevalue("speech_commands_dir")
    clips = [sf.read(speech_dir / clip, dtype="float32")[0] for clip in REFERENCE[f"{name}/clips"]]
    return np.concatenate(clips)[: int(REFERENCE[f"{name}/num_samples"])]


def cosine_distances(actual: np.ndarray, expected: np.ndarray) -> np.ndarray:
    actual = actual / np.linalg.norm(actual, axis=-1, keepdims=True)
    expected = expected / np.linalg.norm(expected, axis=-1, keepdims=True)
    return 1.0 - np.sum(actual * expected, axis=-1)


@pytest.mark.parametrize("name", CASES)
def test_matches_resemblyzer_end_to_end(name, pretrained, partials_of, utterance_of, request):
    waveform = case_waveform(name, request)
    partials = partials_of(waveform[None]).numpy()[0]
    utterance = utterance_of(waveform[None]).numpy()[0]

    expected_partials = REFERENCE[f"{name}/partial_embeddings"]
    assert partials.shape == expected_partials.shape
    assert pretrained.num_windows(len(waveform)) == len(expected_partials)
    partial_distance = cosine_distances(partials, expected_partials).max()
    utterance_distance = cosine_distances(utterance, REFERENCE[f"{name}/utterance_embedding"])
    assert partial_distance <= MAX_COSINE_DISTANCE, f"{name}: partial cosine distance {partial_distance:.2e}"
    assert utterance_distance <= MAX_COSINE_DISTANCE, (
        f"{name}: utterance cosine distance {utterance_distance:.2e}"
    )


@pytest.mark.parametrize("name", CASES)
def test_encoder_matches_resemblyzer_on_librosa_mels(name, pretrained, encode_partials, request):
    # The network alone, fed Resemblyzer's own front-end call: separates encoder errors from front-end ones.
    waveform = VolumeNormalization()(case_waveform(name, request)[None]).numpy()[0]
    padded = np.pad(waveform, (0, pretrained.min_samples))  # trailing zeros: as Resemblyzer's padding
    mel = librosa.feature.melspectrogram(y=padded, sr=16000, n_fft=400, hop_length=160, n_mels=40).T
    step = round(pretrained.hop_seconds * 100)
    starts = step * np.arange(pretrained.num_windows(len(waveform)))
    partial_mels = np.stack([mel[start : start + 160] for start in starts])[None]

    partials = encode_partials(partial_mels).numpy()[0]
    distance = cosine_distances(partials, REFERENCE[f"{name}/partial_embeddings"]).max()
    assert distance <= MAX_COSINE_DISTANCE, f"{name}: partial cosine distance {distance:.2e}"


@pytest.mark.parametrize(
    ("num_samples", "expected"),
    # Resemblyzer 0.1.4 VoiceEncoder.compute_partial_slices(num_samples, rate=1.3, min_coverage=0.75)
    [
        (0, 1),
        (16000, 1),
        (25600, 1),
        (31519, 1),
        (31520, 2),
        (43839, 2),
        (43840, 3),
        (64000, 4),
        (160000, 12),
    ],
)
def test_num_windows_follows_resemblyzer_slicing(num_samples, expected, small_base):
    assert small_base.num_windows(num_samples) == expected


def test_num_windows_with_other_rate_and_coverage():
    # Resemblyzer 0.1.4 compute_partial_slices(n, rate=2.0, min_coverage=0.5); 25599 samples make two
    # partials there, so the layout follows the clip's own length, not the length padded to min_samples.
    base = GE2ESpeakerBase(partials_per_second=2.0, min_coverage=0.5)
    assert [base.num_windows(n) for n in (16000, 25599, 48000, 64000)] == [1, 2, 4, 6]
    assert base.hop_seconds == pytest.approx(0.5)
    assert tuple(base(keras.Input((25599,))).shape) == (None, 2, 256)


@pytest.mark.parametrize("num_samples", [16000, 31520, 40000])
def test_static_output_shape_matches_num_windows(num_samples, small_base):
    output = small_base(keras.Input((num_samples,)))
    assert tuple(output.shape) == (None, small_base.num_windows(num_samples), 256)


def test_static_length_graph_equals_dynamic(pretrained, partials_of, rng):
    waveform = 0.1 * rng.standard_normal((2, 40000)).astype(np.float32)
    static = pretrained.predict_on_batch(waveform)
    np.testing.assert_allclose(static, partials_of(waveform).numpy(), atol=1e-6)


def test_batch_rows_are_independent(partials_of, rng):
    waveforms = 0.1 * rng.standard_normal((2, 32000)).astype(np.float32)
    waveforms[1] *= 0.01  # quiet row: its own volume normalisation
    batched = partials_of(waveforms).numpy()
    for row in range(2):
        np.testing.assert_allclose(batched[row], partials_of(waveforms[row : row + 1]).numpy()[0], atol=1e-5)


def test_short_input_is_padded_to_one_partial(unnormalized_partials_of, rng):
    short = 0.1 * rng.standard_normal((1, 8000)).astype(np.float32)
    padded = np.pad(short, [(0, 0), (0, 25600 - 8000)])
    output = unnormalized_partials_of(short).numpy()
    assert output.shape == (1, 1, 256)
    np.testing.assert_allclose(output, unnormalized_partials_of(padded).numpy(), atol=1e-6)


def test_volume_normalisation_switch(partials_of, unnormalized_partials_of, rng):
    quiet = 0.001 * rng.standard_normal((1, 25600)).astype(np.float32)
    normalized = VolumeNormalization(target_dbfs=-30.0)(quiet)
    np.testing.assert_allclose(partials_of(quiet), unnormalized_partials_of(normalized), atol=1e-6)
    assert (
        np.max(cosine_distances(partials_of(quiet).numpy(), unnormalized_partials_of(quiet).numpy())) > 1e-3
    )


def test_utterance_embedding_in_functional_model(pretrained, partials_of, rng):
    inputs = keras.Input((None,))
    model = keras.Model(inputs, GE2ESpeakerBase.pool_partials(pretrained(inputs)))
    waveform = 0.1 * rng.standard_normal((2, 48000)).astype(np.float32)
    utterance = model.predict_on_batch(waveform)
    np.testing.assert_allclose(utterance, GE2ESpeakerBase.pool_partials(partials_of(waveform)), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(utterance, axis=-1), 1.0, atol=1e-5)


def test_parameter_count(pretrained):
    assert pretrained.count_params() == 1_420_544
    assert pretrained.num_blocks == 4


def test_set_trainable_top_blocks(small_base):
    try:
        small_base.set_trainable(2)
        trainable = {layer.name for layer in small_base.blocks if layer.trainable}
        assert trainable == {"lstm_3", "projection"}
        assert len(small_base.trainable_weights) == 3 + 2  # LSTM kernel, recurrent kernel, bias; Dense
        small_base.set_trainable(False)
        assert small_base.trainable_weights == []
        small_base.set_trainable(True)
        assert len(small_base.trainable_weights) == 3 * 3 + 2
        with pytest.raises(ConfigError, match="it has 4 blocks"):
            small_base.set_trainable(5)
    finally:
        small_base.set_trainable(True)


@pytest.mark.parametrize("shape", [(16000,), (1, 16000, 1)])
def test_wrong_rank_names_received_shape(shape, small_base):
    with pytest.raises(InputShapeError, match=rf"received shape \({shape[0]},"):
        small_base(np.zeros(shape, np.float32))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"partials_per_second": 0.5}, "partials_per_second must be at least 0.625"),
        ({"partials_per_second": "fast"}, "received 'fast'"),
        ({"min_coverage": 0.0}, r"min_coverage must be in \(0, 1\], received 0.0"),
        ({"normalize_volume": "yes"}, "received 'yes'"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        GE2ESpeakerBase(**kwargs)


def test_config_round_trip():
    base = GE2ESpeakerBase(normalize_volume=False, partials_per_second=2.0, min_coverage=0.5, name="voice")
    config = base.get_config()
    assert {"normalize_volume", "partials_per_second", "min_coverage"} <= set(config)
    assert "sample_rate" not in config
    restored = GE2ESpeakerBase.from_config(config)
    assert restored.get_config() == config
    assert (restored.sample_rate, restored.embedding_dim, restored.window_seconds) == (16000, 256, 1.6)


def test_keras_save_and_load(pretrained, partials_of, tmp_path, rng):
    path = tmp_path / "ge2e.keras"
    pretrained.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, GE2ESpeakerBase)
    waveform = 0.1 * rng.standard_normal((1, 30000)).astype(np.float32)
    np.testing.assert_allclose(restored.predict_on_batch(waveform), partials_of(waveform).numpy(), atol=1e-6)

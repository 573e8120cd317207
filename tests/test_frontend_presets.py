"""Parity of each front-end preset with the features its pretrained base was trained on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from frontend_signals import clips_digest, synthetic_int16_clips

from audio_transfer.errors import ConfigError
from audio_transfer.features import get_frontend, list_frontends

FIXTURES = Path(__file__).parent / "fixtures"
LOG_FEATURE_TOLERANCE = 1e-3


def int16_to_float(samples: np.ndarray) -> np.ndarray:
    """The [-1, 1] waveform whose int16-scale version (x 32767) is ``samples``."""
    return samples.astype(np.float32) / 32767.0


@pytest.fixture(scope="module")
def speech_embedding_reference():
    return np.load(FIXTURES / "speech_embedding_reference.npz")


def test_list_frontends_names_every_preset():
    assert list_frontends() == ["ge2e", "log_mel_40", "mfcc_40", "speech_embedding", "yamnet"]


def test_unknown_preset_names_the_choices():
    with pytest.raises(ConfigError, match=r"'nope'.*speech_embedding"):
        get_frontend("nope")


def test_speech_embedding_matches_openwakeword_on_synthetic_audio(speech_embedding_reference):
    clips = synthetic_int16_clips(seed=0)
    assert clips_digest(clips) == str(speech_embedding_reference["synthetic_digest"]), (
        "the synthetic clips changed: rerun tests/fixtures/make_speech_embedding_fixture.py"
    )
    frontend = get_frontend("speech_embedding")
    for name, samples in clips.items():
        expected = speech_embedding_reference[f"synthetic/{name}"]
        features = frontend(int16_to_float(samples)[None]).numpy()[0]
        assert features.shape == expected.shape, name
        np.testing.assert_allclose(features, expected, atol=LOG_FEATURE_TOLERANCE, rtol=0, err_msg=name)


def test_speech_embedding_top_db_is_per_example(speech_embedding_reference):
    """A loud and a quiet clip in one batch each get the features they get alone (the original would not)."""
    clips = synthetic_int16_clips(seed=0)
    names = ["tone_440hz", "quiet_noise", "white_noise"]
    batch = np.stack([int16_to_float(clips[name]) for name in names])
    features = get_frontend("speech_embedding")(batch).numpy()
    for name, example in zip(names, features, strict=True):
        np.testing.assert_allclose(
            example, speech_embedding_reference[f"synthetic/{name}"], atol=LOG_FEATURE_TOLERANCE, rtol=0
        )


def test_speech_embedding_matches_openwakeword_on_real_speech(
    speech_embedding_reference, speech_commands_dir
):
    frontend = get_frontend("speech_embedding")
    names = [str(name) for name in speech_embedding_reference["real_names"]]
    assert len(names) == 8
    for name in names:
        samples, sample_rate = sf.read(speech_commands_dir / name, dtype="int16")
        assert sample_rate == 16000
        features = frontend(int16_to_float(samples)[None]).numpy()[0]
        np.testing.assert_allclose(
            features,
            speech_embedding_reference[f"real/{name}"],
            atol=LOG_FEATURE_TOLERANCE,
            rtol=0,
            err_msg=name,
        )

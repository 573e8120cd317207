"""Parity of each front-end preset with the features its pretrained base was trained on."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf
from frontend_signals import clips_digest, synthetic_int16_clips

from audio_transfer.errors import ConfigError
from audio_transfer.features import (
    FRONTEND_PRESETS,
    LogMelSpectrogram,
    get_frame_patches,
    get_frontend,
    list_frontends,
)

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


def speech_commands_clips(speech_commands_dir: Path, count: int = 8) -> dict[str, np.ndarray]:
    """``count`` real clips spread over the word folders, as float32 in [-1, 1]."""
    files = sorted(p for p in speech_commands_dir.glob("*/*.wav") if p.parent.name != "_background_noise_")
    return {p.name: sf.read(p, dtype="float32")[0] for p in files[:: len(files) // count][:count]}


def synthetic_float_clips() -> dict[str, np.ndarray]:
    return {name: int16_to_float(samples) for name, samples in synthetic_int16_clips(seed=0).items()}


def resemblyzer_mel(waveform: np.ndarray) -> np.ndarray:
    """resemblyzer 0.1.4 ``audio.wav_to_mel_spectrogram`` with its hparams (16 kHz, 25 ms, 10 ms, 40 mels)."""
    frames = librosa.feature.melspectrogram(
        y=waveform, sr=16000, n_fft=int(16000 * 25 / 1000), hop_length=int(16000 * 10 / 1000), n_mels=40
    )
    return frames.astype(np.float32).T


def assert_ge2e_matches_resemblyzer(clips: dict[str, np.ndarray]) -> None:
    # The encoder reads these power values linearly (no log), so the error is relative to each clip's peak.
    frontend = get_frontend("ge2e")
    for name, waveform in clips.items():
        expected = resemblyzer_mel(waveform)
        features = frontend(waveform[None]).numpy()[0]
        assert features.shape == expected.shape, name
        np.testing.assert_allclose(features, expected, atol=1e-5 * expected.max(), rtol=0, err_msg=name)


def test_ge2e_matches_resemblyzer_on_synthetic_audio():
    assert_ge2e_matches_resemblyzer(synthetic_float_clips())


def test_ge2e_matches_resemblyzer_on_real_speech(speech_commands_dir):
    assert_ge2e_matches_resemblyzer(speech_commands_clips(speech_commands_dir))


def yamnet_reference(waveform: np.ndarray, *, log_offset: float = 0.001) -> np.ndarray:
    """YAMNet's ``features.py`` (non-TFLite path): |tf.signal.stft| -> linear_to_mel_weight_matrix -> log."""
    magnitude = tf.abs(tf.signal.stft(waveform, frame_length=400, frame_step=160, fft_length=512))
    mel_weights = tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=64,
        num_spectrogram_bins=257,
        sample_rate=16000,
        lower_edge_hertz=125.0,
        upper_edge_hertz=7500.0,
    )
    return tf.math.log(tf.matmul(magnitude, mel_weights) + log_offset).numpy()


def assert_yamnet_matches_features_py(clips: dict[str, np.ndarray]) -> None:
    frontend = get_frontend("yamnet")
    for name, waveform in clips.items():
        expected = yamnet_reference(waveform)
        features = frontend(waveform[None]).numpy()[0]
        assert features.shape == expected.shape, name
        np.testing.assert_allclose(features, expected, atol=LOG_FEATURE_TOLERANCE, rtol=0, err_msg=name)


def test_yamnet_matches_features_py_on_synthetic_audio(rng):
    # A -60 dB noise floor, as any recording has: around a pure tone, log(mel + 0.001) turns the float32
    # rounding of bins 100 dB down into 2e-3 errors (tf.signal.stft's own error against float64 as well).
    clips = {
        name: waveform + (1e-3 * rng.standard_normal(len(waveform))).astype(np.float32)
        for name, waveform in synthetic_float_clips().items()
    }
    assert_yamnet_matches_features_py(clips)


def test_yamnet_matches_features_py_on_real_speech(speech_commands_dir):
    assert_yamnet_matches_features_py(speech_commands_clips(speech_commands_dir))


def test_yamnet_matches_coral_test_spectra(coral_yamnet_dir):
    """Coral's 96x64 test spectra, an independent reference for the STFT, mel matrix and framing.

    A least-squares fit shows they are ``log(mel + 0.01)`` of the clip peak-normalised to 1.0 (residual
    3e-5), not YAMNet's ``log(mel + 0.001)`` of ``int16 / 32768``; the comparison uses those two settings
    and everything else from the preset.
    """
    samples = np.fromfile(coral_yamnet_dir / "yamnet_test_audio.bin", dtype="<i2")
    expected = np.fromfile(coral_yamnet_dir / "yamnet_test_spectra.bin", dtype="<f4").reshape(96, 64)
    assert samples.shape == (15600,)
    preset = FRONTEND_PRESETS["yamnet"]["config"]
    layer = LogMelSpectrogram(**{**preset, "log_offset": 0.01})
    waveform = samples.astype(np.float32) / np.abs(samples).max()
    features = layer(waveform[None]).numpy()[0]
    assert features.shape == (96, 64)
    np.testing.assert_allclose(features, expected, atol=LOG_FEATURE_TOLERANCE, rtol=0)
    # The shipped preset on int16 / 32768 differs from them by about log(32768 / peak) plus the offset.
    shipped = get_frontend("yamnet")((samples.astype(np.float32) / 32768.0)[None]).numpy()[0]
    assert np.all(np.isfinite(shipped)) and shipped.shape == (96, 64)


def test_yamnet_patches_are_96_frames_every_48():
    patches = get_frame_patches("yamnet")
    features = get_frontend("yamnet")(np.zeros((2, 16000 * 2), np.float32))
    assert tuple(patches(features).shape) == (2, 3, 96, 64)  # 198 frames -> starts 0, 48, 96

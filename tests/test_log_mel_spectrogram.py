"""LogMelSpectrogram: argument checks, shapes, librosa parity of each option, gradients, config, saving."""

from __future__ import annotations

import keras
import librosa
import numpy as np
import pytest
import scipy.signal
import tensorflow as tf
from conftest import make_tone

from audio_transfer.errors import ConfigError, InputShapeError
from audio_transfer.features import LogMelSpectrogram


@pytest.fixture
def speechlike(rng) -> np.ndarray:
    """A 1 s tone with harmonics over noise, float32."""
    harmonics = sum(make_tone(frequency_hz=220.0 * k) / k for k in range(1, 6))
    return (0.3 * harmonics + 0.01 * rng.standard_normal(16000)).astype(np.float32)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sample_rate": 0}, "sample_rate must be a positive integer, received 0"),
        ({"frame_length": 400.0}, "frame_length must be a positive integer, received 400.0"),
        ({"frame_step": True}, "frame_step must be a positive integer, received True"),
        ({"fft_length": 256}, r"fft_length must be at least frame_length \(400\), received 256"),
        ({"window": "blackman"}, "window must be one of 'hann', 'hamming'; received 'blackman'"),
        ({"window_periodic": "yes"}, "window_periodic must be True or False, received 'yes'"),
        ({"window_placement": "right"}, "window_placement must be one of 'center', 'left'; received 'right'"),
        ({"center": 1}, "center must be True or False, received 1"),
        ({"pad_mode": "edge"}, "pad_mode must be one of 'constant', 'reflect'; received 'edge'"),
        ({"num_mel_bins": -1}, "num_mel_bins must be a positive integer, received -1"),
        ({"lower_edge_hz": -5.0}, "lower_edge_hz must be at least 0.0, received -5.0"),
        ({"upper_edge_hz": 9000.0}, r"upper_edge_hz <= sample_rate / 2 = 8000.0; received .*9000.0"),
        ({"lower_edge_hz": 4000.0, "upper_edge_hz": 3000.0}, "lower_edge_hz=4000.0, upper_edge_hz=3000.0"),
        ({"upper_edge_hz": float("nan")}, "upper_edge_hz must be a finite number, received nan"),
        ({"mel_scale": "bark"}, "mel_scale must be one of 'slaney', 'htk'; received 'bark'"),
        ({"mel_norm": "l2"}, "mel_norm must be one of 'slaney', None; received 'l2'"),
        (
            {"mel_filterbank": "torch"},
            "mel_filterbank must be one of 'librosa', 'tensorflow'; received 'torch'",
        ),
        (
            {"mel_filterbank": "tensorflow"},
            "needs mel_scale='htk' and mel_norm=None; received mel_scale='slaney'",
        ),
        ({"power": 3.0}, "power must be one of 1.0, 2.0; received 3.0"),
        ({"log_mode": "log10"}, "log_mode must be one of 'log', 'db', 'none'; received 'log10'"),
        ({"log_offset": 0.0}, "log_offset must be greater than 0.0, received 0.0"),
        ({"amin": -1.0}, "amin must be greater than 0.0, received -1.0"),
        ({"top_db": 80.0}, "top_db applies to log_mode='db' only; received log_mode='log'"),
        ({"log_mode": "db", "top_db": -1.0}, "top_db must be greater than 0.0, received -1.0"),
        ({"input_scale": 0.0}, "input_scale must not be 0"),
        ({"output_scale": float("inf")}, "output_scale must be a finite number, received inf"),
        ({"output_offset": "2"}, "output_offset must be a finite number, received '2'"),
        ({"fft_length": 400, "lower_edge_hz": 7990.0}, "No FFT bin of fft_length=400"),
    ],
)
def test_invalid_arguments_raise_config_error_naming_the_value(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        LogMelSpectrogram(**kwargs)


def test_rank_other_than_two_is_an_input_shape_error():
    with pytest.raises(InputShapeError, match=r"\(batch, samples\).*\(2, 16000, 1\)"):
        LogMelSpectrogram()(np.zeros((2, 16000, 1), np.float32))


@pytest.mark.parametrize(
    ("kwargs", "frames_per_second"),
    [({}, 97), ({"window_placement": "left"}, 98), ({"center": True}, 101), ({"fft_length": 400}, 98)],
)
def test_frame_count_follows_the_documented_rule(kwargs, frames_per_second):
    layer = LogMelSpectrogram(**kwargs)
    assert layer.num_frames(16000) == frames_per_second
    assert tuple(layer(np.zeros((2, 16000), np.float32)).shape) == (2, frames_per_second, 40)
    assert layer.compute_output_shape((None, 16000)) == (None, frames_per_second, 40)
    assert layer.compute_output_shape((None, None)) == (None, None, 40)


@pytest.mark.parametrize("num_samples", [0, 1, 300, 511, 512, 671, 672, 12345])
def test_short_and_odd_lengths_give_whole_frames_only(num_samples):
    layer = LogMelSpectrogram()
    features = layer(np.zeros((1, num_samples), np.float32))
    assert features.shape[1] == layer.num_frames(num_samples) == max(0, 1 + (num_samples - 512) // 160)
    assert layer.min_samples == 512


def test_variable_length_and_batch_in_one_traced_model(speechlike):
    layer = LogMelSpectrogram(log_mode="db", top_db=80.0)
    inputs = keras.Input((None,))
    model = keras.Model(inputs, layer(inputs))
    batch = np.stack([speechlike, 0.01 * speechlike[::-1], np.zeros_like(speechlike)])
    together = model.predict(batch, verbose=0)
    for example, features in zip(batch, together, strict=True):
        np.testing.assert_allclose(model.predict(example[None], verbose=0)[0], features, atol=1e-4)
    assert model.predict(speechlike[None, :8000], verbose=0).shape == (1, 47, 40)


def librosa_mel(waveform: np.ndarray, **kwargs) -> np.ndarray:
    return librosa.feature.melspectrogram(y=waveform, sr=16000, hop_length=160, **kwargs).T


def test_options_match_librosa_melspectrogram(speechlike):
    """Symmetric Hamming, centre padding with reflection, HTK mel without norm, magnitude, no log."""
    layer = LogMelSpectrogram(
        window="hamming",
        window_periodic=False,
        center=True,
        pad_mode="reflect",
        num_mel_bins=48,
        lower_edge_hz=30.0,
        upper_edge_hz=7000.0,
        mel_scale="htk",
        mel_norm=None,
        power=1.0,
        log_mode="none",
    )
    expected = librosa_mel(
        speechlike,
        n_fft=512,
        win_length=400,
        window=scipy.signal.get_window("hamming", 400, fftbins=False),
        center=True,
        pad_mode="reflect",
        n_mels=48,
        fmin=30.0,
        fmax=7000.0,
        htk=True,
        norm=None,
        power=1.0,
    )
    features = layer(speechlike[None]).numpy()[0]
    assert features.shape == expected.shape
    np.testing.assert_allclose(features, expected, atol=1e-5 * expected.max(), rtol=0)


def test_db_mode_matches_librosa_power_to_db(speechlike):
    layer = LogMelSpectrogram(log_mode="db", amin=1e-10, top_db=80.0)
    mel = librosa_mel(speechlike, n_fft=512, win_length=400, center=False, n_mels=40)
    expected = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=80.0)
    np.testing.assert_allclose(layer(speechlike[None]).numpy()[0], expected, atol=1e-2, rtol=0)  # dB


def test_log_mode_input_scale_and_affine_output(speechlike):
    plain = LogMelSpectrogram(log_mode="none")(speechlike[None]).numpy()
    logged = LogMelSpectrogram(log_offset=1e-3, input_scale=2.0, output_scale=0.5, output_offset=3.0)
    np.testing.assert_allclose(
        logged(speechlike[None]).numpy(), 0.5 * np.log(4.0 * plain + 1e-3) + 3.0, atol=1e-3, rtol=0
    )


def test_left_placement_matches_tf_signal_stft(speechlike):
    layer = LogMelSpectrogram(window_placement="left", power=1.0, log_mode="none")
    magnitude = tf.abs(tf.signal.stft(speechlike, frame_length=400, frame_step=160, fft_length=512)).numpy()
    mel = librosa.filters.mel(sr=16000, n_fft=512, n_mels=40).T
    expected = magnitude @ mel
    np.testing.assert_allclose(layer(speechlike[None]).numpy()[0], expected, atol=1e-5 * expected.max())


@pytest.mark.parametrize(("power", "log_mode"), [(1.0, "log"), (2.0, "db"), (2.0, "log")])
def test_gradient_is_finite_on_silence_and_signal(power, log_mode, speechlike):
    layer = LogMelSpectrogram(power=power, log_mode=log_mode)
    waveform = tf.constant(np.stack([np.zeros_like(speechlike), speechlike]))
    with tf.GradientTape() as tape:
        tape.watch(waveform)
        total = tf.reduce_sum(layer(waveform))
    gradient = tape.gradient(total, waveform).numpy()
    assert np.all(np.isfinite(gradient))
    assert np.abs(gradient[1]).max() > 0


def test_float32_even_under_a_mixed_precision_policy(speechlike):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        layer = LogMelSpectrogram()
    finally:
        keras.config.set_dtype_policy(previous)
    assert layer(speechlike[None]).dtype == tf.float32


def test_config_round_trip_and_keras_file(tmp_path, speechlike):
    layer = LogMelSpectrogram(
        num_mel_bins=32, mel_scale="htk", log_mode="db", top_db=60.0, input_scale=32767.0, name="frontend"
    )
    clone = LogMelSpectrogram.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    inputs = keras.Input((None,))
    model = keras.Model(inputs, keras.layers.Dense(3)(layer(inputs)))
    path = tmp_path / "frontend.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_layer("frontend").get_config() == layer.get_config()
    np.testing.assert_allclose(
        loaded.predict(speechlike[None], verbose=0), model.predict(speechlike[None], verbose=0), atol=1e-5
    )


@pytest.mark.parametrize("preset", ["speech_embedding", "ge2e", "yamnet", "log_mel_40"])
@pytest.mark.parametrize("num_samples", [0, 399, 16000])
def test_compact_dft_gives_the_same_features(preset, num_samples, rng):
    from audio_transfer.features import compact_dft, get_frontend

    frontend = get_frontend(preset)
    waveform = (0.1 * rng.standard_normal((2, num_samples))).astype("float32")
    expected = np.asarray(frontend(waveform))
    with compact_dft(frontend) as layers:
        assert layers and all(layer.compact_dft for layer in layers)
        compact = np.asarray(frontend(waveform))
    assert not any(layer.compact_dft for layer in layers)
    assert compact.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max(initial=0)))  # ge2e gives power, not log
    np.testing.assert_allclose(compact, expected, atol=1e-4 * scale)

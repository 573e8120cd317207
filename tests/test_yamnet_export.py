"""YAMNetBase (front-end and network) converts to TFLite with builtin operators only, float and int8."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import tensorflow as tf
from conftest import make_tone
from tflite_conversion import convert_to_tflite, run_tflite
from yamnet_helpers import randomize

from audio_transfer._tflite import non_builtin_operators, tflite_operator_names
from audio_transfer.bases.yamnet_base import YAMNetBase
from audio_transfer.bases.yamnet_weights import load_yamnet_weights

NUM_SAMPLES = 23280  # two patches


def clips(count: int, seed: int) -> np.ndarray:
    """Tones, chirp-like tone pairs and noise, ``(count, NUM_SAMPLES)``."""
    rng = np.random.default_rng(seed)
    waveforms = []
    for index in range(count):
        tone = make_tone(frequency_hz=float(rng.uniform(100, 4000)), duration_seconds=NUM_SAMPLES / 16000)
        noise = rng.normal(0, rng.uniform(0.01, 0.2), NUM_SAMPLES).astype(np.float32)
        waveforms.append(tone * (index % 3 != 0) + noise)
    return np.stack(waveforms).astype(np.float32)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def convert(base: YAMNetBase, **options) -> bytes:
    return convert_to_tflite(
        lambda waveform: base(waveform),
        tf.TensorSpec([1, NUM_SAMPLES], tf.float32),
        base.variables,
        **options,
    )


def test_float_export_is_builtin_only_and_matches_keras():
    base = randomize(YAMNetBase(), seed=20)
    flatbuffer = convert(base)
    assert non_builtin_operators(flatbuffer) == []
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "GATHER", "MEAN"} <= set(tflite_operator_names(flatbuffer))
    waveforms = clips(3, seed=21)
    exported = run_tflite(flatbuffer, waveforms)
    assert exported.shape == (3, 2, 1024)
    np.testing.assert_allclose(exported, base(waveforms).numpy(), rtol=1e-3, atol=1e-3 * exported.std())


@pytest.mark.slow
def test_int8_export_is_builtin_only_and_agrees_with_float():
    base = randomize(YAMNetBase(), seed=20)
    flatbuffer = convert(base, quantize="int8", representative_inputs=clips(32, seed=22))
    assert non_builtin_operators(flatbuffer) == []
    waveforms = clips(8, seed=23)
    similarity = cosine(run_tflite(flatbuffer, waveforms), base(waveforms).numpy())
    assert similarity.mean() > 0.95


@pytest.mark.slow
def test_int8_network_with_float_front_end_keeps_coral_top_classes(coral_yamnet_dir, speech_commands_dir):
    # Full int8 also quantizes the log-mel front-end (8-bit waveform, 8-bit mel energies before the log),
    # which destroys the spectra of real audio; keeping the front-end in float and the network in int8
    # preserves the scores.
    base = load_yamnet_weights(
        YAMNetBase(include_audioset_head=True), coral_yamnet_dir / "yamnet_spectra_in.tflite"
    )
    wav_files = sorted(speech_commands_dir.glob("*/*_nohash_*.wav"))[::10]
    speech = np.stack([np.pad(load_wav(path), (0, NUM_SAMPLES))[:NUM_SAMPLES] for path in wav_files])
    flatbuffer = convert_to_tflite(
        base.audioset_scores,
        tf.TensorSpec([1, NUM_SAMPLES], tf.float32),
        base.variables,
        quantize="int8",
        representative_inputs=np.concatenate([speech[:20], clips(8, seed=24)]),
        float_tensors=base.frontend.name,
    )
    assert non_builtin_operators(flatbuffer) == []
    audio = np.fromfile(coral_yamnet_dir / "yamnet_test_audio.bin", dtype=np.int16) / 32768.0
    waveforms = np.concatenate([np.pad(audio, (0, NUM_SAMPLES - len(audio)))[None], speech[20:28]])
    exported, expected = run_tflite(flatbuffer, waveforms), base.audioset_scores(waveforms).numpy()
    assert np.all(np.argmax(exported, axis=-1) == np.argmax(expected, axis=-1))
    assert np.corrcoef(exported.ravel(), expected.ravel())[0, 1] > 0.99


def load_wav(path) -> np.ndarray:
    waveform, sample_rate = soundfile.read(path, dtype="float32")
    assert sample_rate == 16000
    return waveform

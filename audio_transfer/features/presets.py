"""Named front-end presets, as plain data, and :func:`get_frontend` to build them.

Each preset reproduces the features a pretrained base was trained on (or, for ``log_mel_40`` and
``mfcc_40``, sensible features for models trained from scratch). Every preset takes a ``(batch, samples)``
float32 waveform in [-1, 1] at 16 kHz and returns ``(batch, frames, bins)``.

``speech_embedding``
    The front-end of Google's speech_embedding module as re-implemented by openWakeWord 0.5.1
    (``resources/models/melspectrogram.tflite``; every constant below was read from that graph): the
    waveform on the int16 scale, frames of 512 samples every 160 with a periodic Hann window of 400 centred
    in them (no centre padding), power spectrum, 32 Slaney mel bands (Slaney area norm) from 60 to 3800 Hz,
    ``10 * log10(max(mel, 1e-10))`` clipped to 80 dB below the maximum, then openWakeWord's ``x / 10 + 2``.
    The original takes that maximum over the whole batch; here it is taken per example, so an example's
    features do not depend on the rest of its batch.
``ge2e``
    What resemblyzer 0.1.4 (``audio.wav_to_mel_spectrogram``) feeds its GE2E speaker encoder:
    ``librosa.feature.melspectrogram(y, sr=16000, n_fft=400, hop_length=160, n_mels=40)`` with librosa's
    defaults, i.e. a 400-sample periodic Hann window, centre padding with zeros, power spectrum, 40 Slaney
    mel bands from 0 to 8000 Hz, and no log.
``yamnet``
    YAMNet's ``features.py``: ``tf.signal.stft`` with a 400-sample periodic Hann window zero-padded at the
    end to 512, hop 160, magnitude, 64 bands of ``tf.signal.linear_to_mel_weight_matrix`` (HTK) from 125
    to 7500 Hz, ``log(mel + 0.001)``. YAMNet then cuts 96-frame patches every 48 frames:
    :func:`get_frame_patches` ``("yamnet")``.
``log_mel_40``
    25 ms periodic Hann windows every 10 ms, FFT 512, power, 40 Slaney mel bands 20-7600 Hz,
    ``log(mel + 1e-6)``.
``mfcc_40``
    40 orthonormal DCT-II coefficients of the ``log_mel_40`` bands in dB (80 dB range per example), as
    ``librosa.feature.mfcc`` computes them.
"""

from __future__ import annotations

import copy

import keras

from audio_transfer.errors import ConfigError
from audio_transfer.features.frame_patches import FramePatches
from audio_transfer.features.log_mel_spectrogram import LogMelSpectrogram
from audio_transfer.features.mfcc import MFCC

_LOG_MEL_40 = {
    "sample_rate": 16000,
    "frame_length": 400,
    "frame_step": 160,
    "fft_length": 512,
    "window": "hann",
    "window_periodic": True,
    "window_placement": "center",
    "center": False,
    "num_mel_bins": 40,
    "lower_edge_hz": 20.0,
    "upper_edge_hz": 7600.0,
    "mel_scale": "slaney",
    "mel_norm": "slaney",
    "power": 2.0,
}

FRONTEND_PRESETS: dict[str, dict] = {
    "speech_embedding": {
        "class_name": "LogMelSpectrogram",
        "config": {
            "sample_rate": 16000,
            "frame_length": 400,
            "frame_step": 160,
            "fft_length": 512,
            "window": "hann",
            "window_periodic": True,
            "window_placement": "center",
            "center": False,
            "num_mel_bins": 32,
            "lower_edge_hz": 60.0,
            "upper_edge_hz": 3800.0,
            "mel_scale": "slaney",
            "mel_norm": "slaney",
            "mel_filterbank": "librosa",
            "power": 2.0,
            "log_mode": "db",
            "amin": 1e-10,
            "top_db": 80.0,
            "input_scale": 32767.0,
            "output_scale": 0.1,
            "output_offset": 2.0,
        },
    },
    "ge2e": {
        "class_name": "LogMelSpectrogram",
        "config": {
            "sample_rate": 16000,
            "frame_length": 400,
            "frame_step": 160,
            "fft_length": 400,
            "window": "hann",
            "window_periodic": True,
            "window_placement": "center",
            "center": True,
            "pad_mode": "constant",
            "num_mel_bins": 40,
            "lower_edge_hz": 0.0,
            "upper_edge_hz": 8000.0,
            "mel_scale": "slaney",
            "mel_norm": "slaney",
            "mel_filterbank": "librosa",
            "power": 2.0,
            "log_mode": "none",
        },
    },
    "yamnet": {
        "class_name": "LogMelSpectrogram",
        "config": {
            "sample_rate": 16000,
            "frame_length": 400,
            "frame_step": 160,
            "fft_length": 512,
            "window": "hann",
            "window_periodic": True,
            "window_placement": "left",
            "center": False,
            "num_mel_bins": 64,
            "lower_edge_hz": 125.0,
            "upper_edge_hz": 7500.0,
            "mel_scale": "htk",
            "mel_norm": None,
            "mel_filterbank": "tensorflow",
            "power": 1.0,
            "log_mode": "log",
            "log_offset": 0.001,
        },
    },
    "log_mel_40": {
        "class_name": "LogMelSpectrogram",
        "config": {**_LOG_MEL_40, "log_mode": "log", "log_offset": 1e-6},
    },
    "mfcc_40": {
        "class_name": "MFCC",
        "config": {**_LOG_MEL_40, "log_mode": "db", "amin": 1e-10, "top_db": 80.0, "num_mfcc": 40},
    },
}

FRAME_PATCH_PRESETS: dict[str, dict] = {
    "yamnet": {"patch_length": 96, "patch_step": 48},
}

_CLASSES = {"LogMelSpectrogram": LogMelSpectrogram, "MFCC": MFCC}


def list_frontends() -> list[str]:
    """Names :func:`get_frontend` accepts."""
    return sorted(FRONTEND_PRESETS)


def get_frontend(name: str) -> keras.layers.Layer:
    """A new front-end layer built from the preset ``name`` (see the module docstring for each preset).

    Example:
        >>> frontend = get_frontend("speech_embedding")
        >>> frontend(np.zeros((1, 16000), "float32")).shape
        TensorShape([1, 97, 32])
    """
    preset = _lookup(FRONTEND_PRESETS, name, "front-end")
    return _CLASSES[preset["class_name"]](**copy.deepcopy(preset["config"]), name=f"{name}_frontend")


def get_frame_patches(name: str) -> FramePatches:
    """The patching step a preset's model applies after the front-end (``"yamnet"``: 96 frames, hop 48)."""
    return FramePatches(**_lookup(FRAME_PATCH_PRESETS, name, "frame-patch"), name=f"{name}_patches")


def _lookup(presets: dict[str, dict], name: str, kind: str) -> dict:
    if name not in presets:
        raise ConfigError(f"Unknown {kind} preset {name!r}; choose one of {', '.join(sorted(presets))}.")
    return presets[name]

"""Writers of synthetic audio files for tests: good ones in many encodings, and broken ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from conftest import make_tone


def noise(*, duration_seconds: float = 1.0, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """Gaussian noise at RMS 0.1, float32."""
    samples = round(duration_seconds * sample_rate)
    return (0.1 * np.random.default_rng(seed).standard_normal(samples)).astype(np.float32)


def write_tone(
    path: Path,
    *,
    frequency_hz: float = 440.0,
    duration_seconds: float = 1.0,
    sample_rate: int = 16000,
    channels: int = 1,
    subtype: str | None = None,
) -> Path:
    """A tone (each channel a different frequency) written with soundfile; parents are created."""
    tones = [
        make_tone(
            frequency_hz=frequency_hz * (channel + 1),
            duration_seconds=duration_seconds,
            sample_rate=sample_rate,
        )
        for channel in range(channels)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.stack(tones, axis=1), sample_rate, subtype=subtype)
    return path


def write_corrupt_flac(path: Path) -> Path:
    """A FLAC with a valid header whose stream is scrambled in the middle: libsndfile "lost sync"."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, noise(duration_seconds=2.0) + make_tone(duration_seconds=2.0), 16000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for index in range(middle, middle + 2000):
        data[index] = (data[index] * 31 + 7) & 0xFF
    path.write_bytes(bytes(data))
    return path


def write_truncated_wav(path: Path) -> Path:
    """A 16-bit WAV cut to half its bytes: the header still declares the full length."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, make_tone(duration_seconds=1.0), 16000, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def write_float_wav_with(path: Path, value: float) -> Path:
    """A float WAV holding ``value`` (NaN, Inf or out-of-range) at sample 100."""
    samples = make_tone(duration_seconds=0.5)
    samples[100] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, 16000, subtype="FLOAT")
    return path


def write_speech_commands_tree(
    root: Path, *, words=("yes", "no", "up"), speakers: int = 6, noise_files: int = 2
) -> Path:
    """``root/<word>/<speaker>_nohash_0.wav`` (one tone per word, 1 s, 16 kHz) and ``_background_noise_``."""
    for word_index, word in enumerate(words):
        for speaker in range(speakers):
            write_tone(root / word / f"spk{speaker:02d}_nohash_0.wav", frequency_hz=300.0 + 100 * word_index)
    for index in range(noise_files):
        path = root / "_background_noise_" / f"noise_{index}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, noise(duration_seconds=3.0, seed=index), 16000)
    (root / "README.md").write_text("not audio\n")
    return root


def write_pitch_classes(folder: Path, pitches_hz: dict[str, float], *, speakers: int = 10) -> Path:
    """A folder per pitch class of 0.5 s tones, one "speaker" per clip (``s<n>_nohash_0.wav``), each
    detuned by 1% more than the last."""
    for label, pitch in pitches_hz.items():
        for n in range(speakers):
            write_tone(
                folder / label / f"s{n}_nohash_0.wav",
                frequency_hz=pitch * (1 + 0.01 * n),
                duration_seconds=0.5,
            )
    return folder

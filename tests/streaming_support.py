"""Synthetic keywords for the streaming tests: rising and falling chirps in noise, spotted by a small head
trained on the real speech_embedding base (built once per test session)."""

from __future__ import annotations

import functools
from pathlib import Path

import keras
import numpy as np
import soundfile as sf

from audio_transfer.bases import load_base
from audio_transfer.tasks import KeywordSpotter
from audio_transfer.training import TrainConfig, TrainingRun

SAMPLE_RATE = 16000
CLIP_SECONDS = 1.0
CHIRP_SECONDS = 0.5
LABELS = ("_silence_", "rise", "fall")
KEYWORDS = ("rise", "fall")


def chirp(label: str, *, level: float = 0.4) -> np.ndarray:
    """A 0.5 s linear chirp, 500 to 2500 Hz (``"rise"``) or back (``"fall"``), with 20 ms fades."""
    t = np.arange(round(CHIRP_SECONDS * SAMPLE_RATE)) / SAMPLE_RATE
    low, high = (500.0, 2500.0) if label == "rise" else (2500.0, 500.0)
    phase = 2 * np.pi * (low * t + (high - low) * t**2 / (2 * CHIRP_SECONDS))
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)
    return (level * fade * np.sin(phase)).astype(np.float32)


def background(seconds: float, *, seed: int, level: float = 0.02) -> np.ndarray:
    """White noise at RMS ``level``."""
    rng = np.random.default_rng(seed)
    return (level * rng.standard_normal(round(seconds * SAMPLE_RATE))).astype(np.float32)


def plant(stream: np.ndarray, clip: np.ndarray, *, at_seconds: float) -> np.ndarray:
    """``stream`` with ``clip`` added from ``at_seconds`` on."""
    start = round(at_seconds * SAMPLE_RATE)
    planted = stream.copy()
    planted[start : start + len(clip)] += clip
    return planted


def training_clips(*, per_label: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """1 s clips of every label: noise of random level, with a chirp at a random offset for keywords."""
    rng = np.random.default_rng(seed)
    waveforms, label_indices = [], []
    for index, label in enumerate(LABELS):
        for _ in range(per_label):
            clip = background(CLIP_SECONDS, seed=int(rng.integers(1 << 30)), level=rng.uniform(0.005, 0.05))
            if label in KEYWORDS:
                clip = plant(
                    clip, chirp(label, level=rng.uniform(0.2, 0.6)), at_seconds=rng.uniform(0.1, 0.4)
                )
            waveforms.append(clip)
            label_indices.append(index)
    return np.stack(waveforms), np.asarray(label_indices)


def fit_head(
    spotter: KeywordSpotter, waveforms: np.ndarray, label_indices: np.ndarray, *, epochs: int
) -> None:
    """Fit the spotter's head on its base's frames of ``waveforms`` as the task sees them (with context)."""
    keras.utils.set_random_seed(0)
    embeddings = spotter.base.predict(keras.ops.convert_to_numpy(spotter.with_context(waveforms)), verbose=0)
    head = spotter.head_model()
    head.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    head.fit(embeddings, label_indices, epochs=epochs, batch_size=16, verbose=0)


@functools.cache
def chirp_spotter() -> KeywordSpotter:
    """A KeywordSpotter for LABELS (the default 0.5 s of context) whose head is fitted on
    :func:`training_clips`."""
    keras.utils.set_random_seed(0)
    spotter = KeywordSpotter(load_base("speech_embedding"), LABELS, dropout=0.0)
    fit_head(spotter, *training_clips(), epochs=30)
    return spotter


def window_posteriors(spotter: KeywordSpotter, stream: np.ndarray, *, stride_samples: int) -> np.ndarray:
    """Base and head run whole on every window of ``stream`` (a clip and its context): the reference."""
    window = round(CLIP_SECONDS * SAMPLE_RATE) + 2 * spotter.context_samples
    starts = range(0, len(stream) - window + 1, stride_samples)
    windows = np.stack([stream[s : s + window] for s in starts])
    return keras.ops.convert_to_numpy(spotter.head(spotter.base(windows), training=False))


def save_run(spotter: KeywordSpotter, run_dir: Path) -> Path:
    """A run folder (model.keras, labels.txt, config.yaml) for ``spotter``, as `train` writes it."""
    config = TrainConfig(task="kws", base="speech_embedding", clip_seconds=CLIP_SECONDS).resolved()
    return TrainingRun(task=spotter, config=config, labels=list(spotter.labels)).save(run_dir)


def write_wav(path: Path, waveform: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, waveform, SAMPLE_RATE, subtype="FLOAT")
    return path

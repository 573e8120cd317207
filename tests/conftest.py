"""Shared fixtures. Tests make their own audio; real speech in $AUDIO_TRANSFER_DATA is used when present."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from data_paths import CORAL_YAMNET_DIR, REPO_ROOT, SPEECH_COMMANDS_DIR

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__all__ = ["REPO_ROOT"]  # tests import it from here


@pytest.fixture(scope="session")
def speech_commands_dir() -> Path:
    """The Speech Commands subset in ``AUDIO_TRANSFER_DATA``; the test is skipped when it is absent."""
    if not SPEECH_COMMANDS_DIR.is_dir():
        pytest.skip(f"{SPEECH_COMMANDS_DIR} is absent")
    return SPEECH_COMMANDS_DIR


@pytest.fixture(scope="session")
def coral_yamnet_dir() -> Path:
    """Google Coral's int8 YAMNet beside ``AUDIO_TRANSFER_DATA``; the test is skipped when it is absent."""
    if not CORAL_YAMNET_DIR.is_dir():
        pytest.skip(f"{CORAL_YAMNET_DIR} is absent")
    return CORAL_YAMNET_DIR


def make_tone(
    *, frequency_hz: float = 440.0, duration_seconds: float = 1.0, sample_rate: int = 16000
) -> np.ndarray:
    """A 0.5-amplitude sine, float32."""
    t = np.arange(round(duration_seconds * sample_rate)) / sample_rate
    return (0.5 * np.sin(2 * np.pi * frequency_hz * t)).astype(np.float32)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def restore_package_logger():
    """Undo what the CLI's main() does to the "audio_transfer" logger (handler on the current, captured
    stderr; propagation off), so later tests' caplog still sees the package's records."""
    logger = logging.getLogger("audio_transfer")
    saved = logger.handlers[:], logger.level, logger.propagate
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.fixture
def ram_url(request) -> str:
    """A fresh folder URL on TensorFlow's in-process ``ram://`` file system (a stand-in for ``gs://``, read
    and written through ``tf.io.gfile`` like it), removed after the test."""
    import uuid

    import tensorflow as tf

    url = f"ram://{request.node.name.split('[')[0]}-{uuid.uuid4().hex[:8]}"
    tf.io.gfile.makedirs(url)
    yield url
    tf.io.gfile.rmtree(url)

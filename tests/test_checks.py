"""One set of argument rules everywhere: booleans are never numbers, NumPy scalars count as ints and floats,
and a message names the argument and what it received."""

from __future__ import annotations

import numpy as np
import pytest

from audio_transfer import checks
from audio_transfer.bases import AudioBase
from audio_transfer.errors import ConfigError
from audio_transfer.features import LogMelSpectrogram
from audio_transfer.heads import ClassificationHead


@pytest.mark.parametrize("value", [3, np.int64(3), np.int32(3), np.uint8(3)])
def test_numpy_integers_are_integers_and_come_back_as_python_ints(value):
    result = checks.positive_int("frame_length", value)
    assert result == 3 and type(result) is int
    assert type(checks.integer("hidden_units", value, at_least=0)) is int


@pytest.mark.parametrize("value", [2.5, np.float32(2.5), np.float64(2.5), np.int16(2)])
def test_numpy_floats_and_ints_are_numbers(value):
    result = checks.number("top_db", value, above=0.0)
    assert result == float(value) and type(result) is float


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (lambda value: checks.positive_int("num_mel_bins", value), True),
        (lambda value: checks.integer("num_mel_bins", value), False),
        (lambda value: checks.number("num_mel_bins", value), True),
        (lambda value: checks.choice("num_mel_bins", value, (1.0, 2.0)), True),
    ],
)
def test_booleans_are_never_numbers(check, value):
    assert not checks.is_int(value) and not checks.is_number(value)
    with pytest.raises(ConfigError, match=rf"^num_mel_bins must be .*[,;] received {value!r}\.$"):
        check(value)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: checks.positive_int("frame_step", 0), "frame_step must be a positive integer, received 0."),
        (
            lambda: checks.positive_int("frame_step", 1.0),
            "frame_step must be a positive integer, received 1.0.",
        ),
        (lambda: checks.integer("num_classes", 1, at_least=2), "num_classes must be at least 2, received 1."),
        (lambda: checks.integer("n", 9, at_most=8), "n must be at most 8, received 9."),
        (lambda: checks.number("amin", 0.0, above=0.0), "amin must be greater than 0.0, received 0.0."),
        (lambda: checks.number("amin", float("nan")), "amin must be a finite number, received nan."),
        (lambda: checks.number("amin", "1"), "amin must be a finite number, received '1'."),
        (lambda: checks.number("gain", 2, at_most=1.0), "gain must be at most 1.0, received 2."),
        (lambda: checks.boolean("center", 1), "center must be True or False, received 1."),
        (lambda: checks.choice("window", "box", ("hann",)), "window must be one of 'hann'; received 'box'."),
    ],
)
def test_messages_name_the_argument_and_what_it_received(call, message):
    with pytest.raises(ConfigError) as raised:
        call()
    assert str(raised.value) == message


def test_layers_follow_the_rules():
    layer = LogMelSpectrogram(sample_rate=np.int64(16000), frame_length=np.int32(400), frame_step=160)
    assert layer.get_config()["frame_length"] == 400 and type(layer.frame_length) is int
    with pytest.raises(ConfigError, match=r"num_classes must be .*received True"):
        ClassificationHead(num_classes=True)
    head = ClassificationHead(num_classes=np.int64(3), hidden_units=np.int64(0))
    assert type(head.num_classes) is int


@pytest.mark.parametrize("name", ["sample_rate", "embedding_dim", "min_samples"])
def test_a_base_rejects_true_as_a_size(name):
    sizes = {"sample_rate": 16000, "embedding_dim": 8, "min_samples": 1600, name: True}
    with pytest.raises(ConfigError, match=f"{name} must be a positive integer, received True"):
        AudioBase(**sizes, window_seconds=0.1, hop_seconds=0.05)

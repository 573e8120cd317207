"""Where a clip lands in the base's input: centred, whole, the same place whatever the file's length."""

import numpy as np
import soundfile as sf
from tiny_conv_base import tiny_base

from audio_transfer.data import decode_examples, load_labelled_audio
from audio_transfer.tasks import KeywordSpotter
from audio_transfer.training import auto_clip_seconds

SAMPLE_RATE = 16000
WORD_SECONDS = 0.3


def word() -> np.ndarray:
    """A 0.3 s "word": a tone under a Hann envelope."""
    t = np.arange(round(WORD_SECONDS * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.5 * np.hanning(t.size) * np.sin(2 * np.pi * 700 * t)).astype(np.float32)


def write_centred(path, seconds: float) -> None:
    """The word in the middle of ``seconds`` of silence."""
    clip = np.zeros(round(seconds * SAMPLE_RATE), np.float32)
    start = (clip.size - word().size) // 2
    clip[start : start + word().size] = word()
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, clip, SAMPLE_RATE)


def test_a_short_and_a_long_clip_of_the_same_word_land_in_the_same_place(tmp_path):
    write_centred(tmp_path / "data" / "word" / "short_nohash_0.wav", 0.4)
    write_centred(tmp_path / "data" / "word" / "long_nohash_0.wav", 2.9)
    write_centred(tmp_path / "data" / "other" / "short_nohash_1.wav", 0.4)
    examples = load_labelled_audio(tmp_path / "data").examples
    clip_seconds = auto_clip_seconds(examples)  # 2.7 s: the 2.9 s clip loses silence, not its word
    clips = decode_examples(examples, sample_rate=SAMPLE_RATE, clip_seconds=clip_seconds)
    spotter = KeywordSpotter(tiny_base(), ["other", "word"])
    inputs = np.asarray(spotter.with_context(clips.waveforms))
    by_name = {example.path.name: row for example, row in zip(clips.examples, inputs, strict=True)}
    short, long = by_name["short_nohash_0.wav"], by_name["long_nohash_0.wav"]
    np.testing.assert_allclose(short, long, atol=1e-4)
    # The word whole, in the middle of the model's input.
    energy = short**2
    centre = np.sum(np.arange(energy.size) * energy) / energy.sum()
    assert abs(centre - energy.size / 2) <= SAMPLE_RATE * 0.01
    np.testing.assert_allclose(energy.sum(), np.sum(word() ** 2), rtol=1e-3)


def test_short_clips_alone_are_not_mostly_padding(tmp_path):
    for index in range(3):
        write_centred(tmp_path / "data" / "word" / f"s{index}_nohash_0.wav", 0.4)
    clip_seconds = auto_clip_seconds(load_labelled_audio(tmp_path / "data").examples)
    assert 0.4 <= clip_seconds <= 0.8

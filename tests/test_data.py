"""audio_transfer.data: discovery, Speech Commands rules, speakers, splits, decoding, augmentation."""

from __future__ import annotations

import collections
import hashlib
import logging
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audio_files import (
    noise,
    write_corrupt_flac,
    write_speech_commands_tree,
    write_tone,
    write_truncated_wav,
)

import audio_transfer.data._decode as decode_module
from audio_transfer.data import (
    NOISE_LABEL,
    SILENCE_LABEL,
    UNKNOWN_LABEL,
    AudioExample,
    Augmentation,
    NoiseBank,
    decode_examples,
    load_labelled_audio,
    load_splits,
    make_dataset,
    parse_speaker,
    read_manifest,
    split_examples,
    summarize_dataset,
    which_split,
    write_manifest,
)
from audio_transfer.errors import ConfigError, DatasetError, InputShapeError
from audio_transfer.training import TrainConfig


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """yes/no/up × 6 speakers, 2 noise files, a README, a symlinked clip, a nested folder, a hidden folder
    and a clip outside any class folder. Read-only: tests that change a tree make their own."""
    root = write_speech_commands_tree(tmp_path_factory.mktemp("tree") / "sc")
    (root / "up" / "nested").mkdir()
    write_tone(root / "up" / "nested" / "spk99_nohash_0.flac", frequency_hz=500.0)
    os.symlink(root / "yes" / "spk00_nohash_0.wav", root / "yes" / "spk98_nohash_0.wav")
    (root / ".hidden").mkdir()
    write_tone(root / ".hidden" / "x.wav")
    write_tone(root / "loose.wav")
    return root


def _bad_tree(tmp_path) -> tuple[Path, list[Path]]:
    """8 good clips in two classes and three bad files among them."""
    root = write_speech_commands_tree(tmp_path / "bad", words=("go", "stop"), speakers=4, noise_files=1)
    bad = [
        write_corrupt_flac(root / "go" / "spk10_nohash_0.flac"),
        write_truncated_wav(root / "stop" / "spk11_nohash_0.wav"),
        root / "stop" / "spk12_nohash_0.wav",
    ]
    bad[2].write_text("not audio")
    return root, bad


# -- discovery -------------------------------------------------------------------------------------------


def test_folder_per_class_discovery(tree, caplog):
    with caplog.at_level(logging.WARNING, logger="audio_transfer"):
        data = load_labelled_audio(tree)

    assert data.labels == ["no", "up", "yes"]
    assert data.counts() == {"no": 6, "up": 7, "yes": 7}
    assert sorted(path.name for path in data.noise_files) == ["noise_0.wav", "noise_1.wav"]
    assert NOISE_LABEL not in data.labels
    relative = {example.relative_path for example in data.examples}
    assert {"yes/spk98_nohash_0.wav", "up/nested/spk99_nohash_0.flac"} <= relative  # symlink and nesting
    assert not any(".hidden" in path for path in relative)
    assert "loose.wav" in caplog.text and "ignored" in caplog.text
    assert len(data.speakers) == 8


def test_broken_symlink_is_skipped_with_a_reason(tmp_path):
    root = write_speech_commands_tree(tmp_path / "sc", speakers=1, noise_files=0)
    os.symlink(root / "nowhere.wav", root / "no" / "spk77_nohash_0.wav")
    data = load_labelled_audio(root)
    assert [item.reason for item in data.skipped] == ["broken symbolic link: its target does not exist"]
    assert data.skipped[0].path.endswith("spk77_nohash_0.wav")


def test_manifest_csv_with_header_and_tsv_without(tmp_path):
    clips = tmp_path / "clips"
    for name in ("a.wav", "b.flac", "c.ogg", "n.wav"):
        write_tone(clips / name)
    (tmp_path / "train.csv").write_text(
        "label,path,speaker\n"
        "dog,clips/a.wav,alice\n"
        "cat,clips/b.flac,\n"
        "# a comment\n"
        "cat,clips/missing.wav,bob\n"
        f"{NOISE_LABEL},clips/n.wav,\n"
        f"cat,{clips / 'c.ogg'},carol\n"
    )
    (tmp_path / "sets").mkdir()
    (tmp_path / "sets" / "test.tsv").write_text("../clips/a.wav\tdog\n../clips/b.flac\tcat\tdave\n")

    data = load_labelled_audio(tmp_path / "train.csv")
    tsv = load_labelled_audio(tmp_path / "sets" / "test.tsv")

    assert data.labels == ["cat", "dog"]
    assert [(e.path.name, e.label, e.speaker) for e in data.examples] == [
        ("a.wav", "dog", "alice"),
        ("b.flac", "cat", None),
        ("c.ogg", "cat", "carol"),
    ]
    assert data.noise_files == [clips / "n.wav"]
    assert len(data.skipped) == 1
    assert "listed on line 5 of train.csv but no such file" in data.skipped[0].reason
    assert [(e.path.resolve(), e.label, e.speaker) for e in tsv.examples] == [
        ((clips / "a.wav").resolve(), "dog", None),
        ((clips / "b.flac").resolve(), "cat", "dave"),
    ]


@pytest.mark.parametrize("name", ["split.csv", "split.tsv"])
def test_written_manifest_reads_back_the_same_from_another_folder(tmp_path, monkeypatch, name):
    clips = tmp_path / "clips"
    for clip in ("a, b.wav", "n.wav"):
        write_tone(clips / clip)
    monkeypatch.chdir(tmp_path)
    rows = [(Path("clips/a, b.wav"), "dog", "alice"), (clips / "n.wav", NOISE_LABEL, "")]
    (tmp_path / "sets").mkdir()
    manifest = write_manifest(tmp_path / "sets" / name, rows)

    header = "path\tlabel\tspeaker" if name.endswith(".tsv") else "path,label,speaker"
    assert manifest.read_text().splitlines()[0] == header
    found = read_manifest(manifest)
    expected = [((clips / "a, b.wav").resolve(), "dog", "alice")]
    assert [(e.path, e.label, e.speaker) for e in found.examples] == expected
    assert found.noise_files == [(clips / "n.wav").resolve()] and found.skipped == []
    assert load_labelled_audio(manifest).examples[0].path == (clips / "a, b.wav").resolve()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("missing", "does not exist"),
        ("empty_folder", "Found no labelled audio"),
        ("notes.txt", "neither a folder nor a .csv/.tsv manifest"),
        ("empty.csv", "lists no files"),
    ],
)
def test_unusable_sources_raise_dataset_error(tmp_path, source, message):
    (tmp_path / "empty_folder").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "empty.csv").write_text("path,label\n")
    with pytest.raises(DatasetError) as raised:
        load_labelled_audio(tmp_path / source)
    assert message in str(raised.value)
    assert source in str(raised.value)


# -- Speech Commands rules -------------------------------------------------------------------------------


def test_keywords_turn_other_words_into_a_seeded_unknown_sample(tmp_path):
    root = write_speech_commands_tree(tmp_path / "sc", words=("yes", "no", "up", "down", "left"), speakers=8)

    data = load_labelled_audio(root, keywords=["yes", "no"], unknown_fraction=0.5, seed=1)
    again = load_labelled_audio(root, keywords=["yes", "no"], unknown_fraction=0.5, seed=1)
    other_seed = load_labelled_audio(root, keywords=["yes", "no"], unknown_fraction=0.5, seed=2)
    everything = load_labelled_audio(root, keywords=["yes", "no"], unknown_fraction=10.0)

    assert data.labels == [UNKNOWN_LABEL, "yes", "no"]
    assert data.counts() == {UNKNOWN_LABEL: 8, "yes": 8, "no": 8}  # 0.5 × 16 keyword clips
    unknown = [e.relative_path for e in data.examples if e.label == UNKNOWN_LABEL]
    assert all(path.split("/")[0] in ("up", "down", "left") for path in unknown)
    assert unknown == [e.relative_path for e in again.examples if e.label == UNKNOWN_LABEL]
    assert unknown != [e.relative_path for e in other_seed.examples if e.label == UNKNOWN_LABEL]
    assert everything.counts()[UNKNOWN_LABEL] == 24  # capped at the 3 × 8 other clips


def test_keywords_keep_every_other_clip_as_unknown_by_default(tmp_path):
    root = write_speech_commands_tree(tmp_path / "sc", words=("yes", "up", "down", "left"), speakers=8)

    data = load_labelled_audio(root, keywords=["yes"])

    # A wake word learns what to ignore from every other clip: nothing is sampled away (3 × 8 others).
    assert data.counts() == {UNKNOWN_LABEL: 24, "yes": 8}
    assert TrainConfig(keywords=["yes"]).unknown_fraction is None


def test_unknown_keyword_is_named(tree):
    with pytest.raises(DatasetError) as raised:
        load_labelled_audio(tree, keywords=["yes", "stop"])
    assert "['stop'] are not among its classes" in str(raised.value)
    assert "Its classes: no, up, yes" in str(raised.value)


def test_silence_class_is_generated_from_the_noise_bank(tree):
    data = load_labelled_audio(tree, silence_fraction=0.25, seed=3)

    silence = [e for e in data.examples if e.label == SILENCE_LABEL]
    assert data.labels == [SILENCE_LABEL, "no", "up", "yes"]
    assert len(silence) == math.ceil(0.25 * 20)
    assert {e.path for e in silence} <= set(data.noise_files)
    assert all(e.generated and 0 <= e.offset_seconds < 3.0 and 0 <= e.gain <= 1 for e in silence)
    assert len({e.relative_path for e in silence}) == len(silence)

    clips = decode_examples(silence, clip_seconds=1.0)
    first = silence[0]
    source = sf.read(first.path, dtype="float32")[0]
    start = min(round(first.offset_seconds * 16000), len(source) - 16000)
    np.testing.assert_allclose(clips.waveforms[0], source[start : start + 16000] * first.gain, atol=1e-6)


def test_silence_without_noise_files_is_digital_silence(tmp_path, caplog):
    root = write_speech_commands_tree(tmp_path / "sc", noise_files=0)
    with caplog.at_level(logging.WARNING, logger="audio_transfer"):
        data = load_labelled_audio(root, keywords=["yes"], silence_fraction=0.5)
    silence = [e for e in data.examples if e.label == SILENCE_LABEL]
    assert len(silence) == 3 and all(e.path is None for e in silence)
    assert "digital silence" in caplog.text
    assert not decode_examples(silence).waveforms.any()


def test_negative_fraction_is_rejected(tree):
    with pytest.raises(ConfigError, match=r"silence_fraction must be a number >= 0, received -0.1"):
        load_labelled_audio(tree, silence_fraction=-0.1)


# -- speakers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative_path", "label", "speaker"),
    [
        ("yes/0a7c2a8d_nohash_0.wav", "yes", "0a7c2a8d"),
        ("happy/3cfc6b3a_nohash_12.wav", None, "3cfc6b3a"),
        ("19/198/19-198-0001.flac", "book", "19"),
        ("recordings/7_jackson_32.wav", "7", "jackson"),
        ("recordings/7_jackson_32.wav", "8", None),
        ("dog/bark_take_2.wav", "dog", None),
        ("dog/bark.wav", "dog", None),
    ],
)
def test_default_speaker_conventions(relative_path, label, speaker):
    assert parse_speaker(relative_path, label=label) == speaker


def test_user_speaker_pattern_reads_folders(tmp_path):
    for speaker in ("p225", "p226"):
        for n in range(2):
            write_tone(tmp_path / "vctk" / "hello" / speaker / f"{speaker}_{n:03d}.wav")
    data = load_labelled_audio(tmp_path / "vctk", speaker_pattern=r"^[^/]+/(?P<speaker>[^/]+)/")
    assert [e.speaker for e in data.examples] == ["p225", "p225", "p226", "p226"]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [(r"(?P<who>\w+)_", "has no group named 'speaker'"), (r"(?P<speaker>", "not a valid regular expression")],
)
def test_bad_speaker_pattern(tree, pattern, message):
    with pytest.raises(ConfigError) as raised:
        load_labelled_audio(tree, speaker_pattern=pattern)
    assert message in str(raised.value) and re.escape(pattern)[:4] in re.escape(str(raised.value))


# -- splits -----------------------------------------------------------------------------------------------


def _reference_which_set(filename: str, validation_percentage: float, testing_percentage: float) -> str:
    """Speech Commands' which_set (README of the dataset), ported to Python 3."""
    base_name = os.path.basename(filename)
    hash_name = re.sub(r"_nohash_.*$", "", base_name)
    hash_name_hashed = hashlib.sha1(hash_name.encode()).hexdigest()
    max_num_wavs_per_class = 2**27 - 1
    percentage_hash = (int(hash_name_hashed, 16) % (max_num_wavs_per_class + 1)) * (
        100.0 / max_num_wavs_per_class
    )
    if percentage_hash < validation_percentage:
        return "validation"
    if percentage_hash < testing_percentage + validation_percentage:
        return "test"
    return "train"


def _many_examples(speakers: int = 300, per_speaker: int = 3) -> list[AudioExample]:
    return [
        AudioExample(
            Path(f"w{n}/s{speaker:04x}_nohash_{n}.wav"),
            f"w{n}",
            f"s{speaker:04x}",
            f"w{n}/s{speaker:04x}_nohash_{n}.wav",
        )
        for speaker in range(speakers)
        for n in range(per_speaker)
    ]


def test_split_matches_speech_commands_which_set():
    for example in _many_examples(speakers=200, per_speaker=1):
        assert which_split(
            example.speaker, validation_fraction=0.1, test_fraction=0.1
        ) == _reference_which_set(example.relative_path, 10, 10)


def test_split_is_deterministic_speaker_disjoint_and_near_the_fractions():
    examples = _many_examples()
    splits = split_examples(examples, validation_fraction=0.2, test_fraction=0.1)
    shuffled = list(np.random.default_rng(0).permutation(np.array(examples, dtype=object)))
    again = split_examples(shuffled, validation_fraction=0.2, test_fraction=0.1)

    for name in ("train", "validation", "test"):
        assert set(splits[name]) == set(again[name])
    speakers = {name: {e.speaker for e in split} for name, split in splits.items()}
    assert not speakers["train"] & speakers["validation"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["validation"] & speakers["test"]
    assert sum(map(len, splits.values())) == len(examples)
    assert len(speakers["validation"]) / 300 == pytest.approx(0.2, abs=0.06)
    assert len(speakers["test"]) / 300 == pytest.approx(0.1, abs=0.05)


def test_clips_without_speaker_split_by_path():
    examples = [AudioExample(Path(f"c/{n}.wav"), "c", None, f"c/{n}.wav") for n in range(400)]
    splits = split_examples(examples, validation_fraction=0.25, test_fraction=0.0)
    assert len(splits["validation"]) / 400 == pytest.approx(0.25, abs=0.06)
    assert not splits["test"]
    for example in splits["validation"]:
        assert which_split(example.relative_path, validation_fraction=0.25, test_fraction=0.0) == "validation"


@pytest.mark.parametrize(
    ("validation", "test", "message"),
    [(-0.1, 0.1, "validation_fraction must be a number in [0, 1)"), (0.6, 0.4, "must be below 1")],
)
def test_bad_split_fractions(validation, test, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        split_examples([], validation_fraction=validation, test_fraction=test)


def test_separate_validation_folder(tmp_path):
    train = write_speech_commands_tree(tmp_path / "train", speakers=10)
    validation = write_speech_commands_tree(tmp_path / "validation", speakers=2, noise_files=0)

    data, splits = load_splits(
        train, validation_source=validation, test_fraction=0.3, keywords=["yes", "no"], silence_fraction=0.5
    )

    assert all(str(e.path).startswith(str(validation)) for e in splits["validation"] if not e.generated)
    assert {e.label for e in splits["validation"]} == {"yes", "no", UNKNOWN_LABEL, SILENCE_LABEL}
    generated = [e for e in splits["validation"] if e.generated]
    assert {e.path for e in generated} <= set(data.noise_files)  # the training noise bank
    assert len(splits["train"]) + len(splits["test"]) == len(data.examples)

    write_tone(validation / "stop" / "x_nohash_0.wav")
    with pytest.raises(DatasetError, match=r"has classes the training set .* lacks: stop"):
        load_splits(train, validation_source=validation)


# -- decoding and failures ---------------------------------------------------------------------------------


def test_decode_examples_centre_crops_pads_and_resamples(tmp_path):
    short = write_tone(tmp_path / "c" / "short.wav", duration_seconds=0.5)
    long = tmp_path / "c" / "long.wav"
    sf.write(long, np.linspace(-1, 1, 32000, dtype=np.float32), 16000, subtype="FLOAT")
    low_rate = write_tone(tmp_path / "c" / "low.wav", sample_rate=8000, frequency_hz=1000.0)
    examples = [AudioExample(path, "c") for path in (short, long, low_rate)]

    clips = decode_examples(examples, sample_rate=16000, clip_seconds=1.0)

    assert clips.waveforms.shape == (3, 16000) and clips.waveforms.dtype == np.float32
    np.testing.assert_array_equal(clips.waveforms[0, :4000], 0)
    np.testing.assert_allclose(clips.waveforms[0, 4000:12000], sf.read(short, dtype="float32")[0])
    np.testing.assert_allclose(clips.waveforms[1], np.linspace(-1, 1, 32000, dtype=np.float32)[8000:24000])
    assert np.argmax(np.abs(np.fft.rfft(clips.waveforms[2]))) == pytest.approx(1000, abs=1)
    assert clips.labels == ["c"] * 3 and clips.skipped == []
    np.testing.assert_array_equal(clips.label_indices(["b", "c"]), [1, 1, 1])


def test_bad_files_are_skipped_named_and_counted(tmp_path, caplog):
    root, bad = _bad_tree(tmp_path)
    data = load_labelled_audio(root)

    with caplog.at_level(logging.WARNING, logger="audio_transfer"):
        clips = decode_examples(data.examples, max_failure_fraction=0.5)

    assert len(clips.examples) == 8 and clips.waveforms.shape == (8, 16000)
    assert sorted(item.path for item in clips.skipped) == sorted(map(str, bad))
    reasons = {Path(item.path).name: item.reason for item in clips.skipped}
    assert "lost sync" in reasons["spk10_nohash_0.flac"]
    assert "truncated" in reasons["spk11_nohash_0.wav"]
    assert "not a recognised audio file" in reasons["spk12_nohash_0.wav"]
    for path in bad:
        assert str(path) in caplog.text
    assert "Skipped 3 of 11 clips" in caplog.text


def test_too_many_failures_stop_with_a_list(tmp_path):
    root, bad = _bad_tree(tmp_path)
    data = load_labelled_audio(root)
    with pytest.raises(DatasetError) as raised:
        decode_examples(data.examples, max_failure_fraction=0.1)
    message = str(raised.value)
    assert "3 of 11 audio files failed to decode" in message and "max_failure_fraction=0.1" in message
    for path in bad:
        assert str(path) in message


def test_one_bad_file_never_stops_a_run(tmp_path):
    good = write_tone(tmp_path / "a" / "good.wav")
    bad = write_truncated_wav(tmp_path / "a" / "bad.wav")
    clips = decode_examples([AudioExample(good, "a"), AudioExample(bad, "a")], max_failure_fraction=0.0)
    assert len(clips.examples) == 1 and [item.path for item in clips.skipped] == [str(bad)]
    with pytest.raises(DatasetError, match="1 of 1 audio files failed"):
        decode_examples([AudioExample(bad, "a")])


def test_summary_names_bad_files_and_counts_good_ones(tmp_path):
    root, bad = _bad_tree(tmp_path)
    summary = summarize_dataset(root)
    assert summary.classes == {"go": 4, "stop": 4}
    assert summary.num_examples == 8 and summary.num_speakers == 4
    assert summary.duration_seconds == pytest.approx(8.0)
    assert summary.sample_rates == {16000: 9}
    assert len(summary.noise_files) == 1
    assert sorted(item.path for item in summary.skipped) == sorted(map(str, bad))
    assert summary.to_dict()["num_skipped"] == 3
    assert "spk10_nohash_0.flac" in summary.to_text()


# -- augmentation ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clips() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (0.1 * rng.standard_normal((6, 4000))).astype(np.float32)  # well inside [-1, 1]


@pytest.fixture(scope="module")
def bank() -> NoiseBank:
    return NoiseBank([noise(duration_seconds=0.5, seed=1), noise(duration_seconds=0.1, seed=2)], 16000)


def test_augmentation_is_seeded(clips, bank):
    augmentation = Augmentation()
    first = augmentation.augment(clips, noise=bank, seed=(0, 1))
    assert isinstance(first, np.ndarray) and first.shape == clips.shape
    np.testing.assert_array_equal(first, augmentation.augment(clips, noise=bank, seed=(0, 1)))
    assert not np.array_equal(first, augmentation.augment(clips, noise=bank, seed=(0, 2)))
    assert np.abs(first).max() <= 1.0


def test_everything_off_is_the_identity(clips, bank):
    off = Augmentation(time_shift_seconds=0.0, noise_probability=0.0, gain_db_range=None)
    np.testing.assert_array_equal(off.augment(clips, noise=bank, seed=3), clips)


def test_time_shift_alone_shifts_with_zero_fill(clips):
    shifted = Augmentation(time_shift_seconds=0.01, noise_probability=0.0, gain_db_range=None).augment(
        clips, seed=4
    )
    shifts = set()
    for original, result in zip(clips, shifted, strict=True):
        matches = [
            shift
            for shift in range(-160, 161)
            if np.array_equal(result, np.roll(original, shift) * _zero_fill_mask(shift, len(original)))
        ]
        assert len(matches) == 1
        shifts.add(matches[0])
    assert len(shifts) > 1


def _zero_fill_mask(shift: int, length: int) -> np.ndarray:
    mask = np.ones(length, np.float32)
    if shift > 0:
        mask[:shift] = 0
    elif shift < 0:
        mask[shift:] = 0
    return mask


def test_gain_alone_scales_each_clip_within_range(clips):
    gained = Augmentation(time_shift_seconds=0.0, noise_probability=0.0, gain_db_range=(-6.0, -1.0)).augment(
        clips, seed=5
    )
    ratio_db = 20 * np.log10(np.abs(gained).max(axis=1) / np.abs(clips).max(axis=1))
    assert np.all((ratio_db >= -6.0 - 1e-4) & (ratio_db <= -1.0 + 1e-4))
    assert np.ptp(ratio_db) > 0.1


def test_noise_alone_is_mixed_at_an_snr_in_range(clips, bank):
    mixed = Augmentation(
        time_shift_seconds=0.0, noise_probability=1.0, snr_db_range=(10.0, 20.0), gain_db_range=None
    ).augment(clips, noise=bank, seed=6)
    added = mixed - clips
    snr_db = 10 * np.log10(np.mean(clips**2, axis=1) / np.mean(added**2, axis=1))
    assert np.all((snr_db > 10.0 - 0.01) & (snr_db < 20.0 + 0.01))
    assert np.all(np.abs(added).max(axis=1) > 0)


def test_noise_bank_skips_bad_files_and_may_end_up_empty(tmp_path, clips):
    good = tmp_path / "noise.wav"
    sf.write(good, noise(duration_seconds=0.5), 16000)
    bad = write_truncated_wav(tmp_path / "cut.wav")

    bank = NoiseBank.from_files([good, bad])
    empty = NoiseBank.from_files([bad])

    assert len(bank) == 1 and [item.path for item in bank.skipped] == [str(bad)]
    assert len(empty) == 0
    only_noise = Augmentation(time_shift_seconds=0.0, noise_probability=1.0, gain_db_range=None)
    np.testing.assert_array_equal(only_noise.augment(clips, noise=empty), clips)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"time_shift_seconds": -1}, "time_shift_seconds must be >= 0"),
        ({"noise_probability": 2}, "noise_probability must be in [0, 1], received 2"),
        ({"snr_db_range": (20, 5)}, "snr_db_range must be a (low, high) pair"),
    ],
)
def test_bad_augmentation_settings(kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Augmentation(**kwargs)


def test_augment_wants_a_batch(clips):
    with pytest.raises(InputShapeError, match=r"received shape \(4000,\)"):
        Augmentation().augment(clips[0])


# -- tf.data pipeline --------------------------------------------------------------------------------------


def _counting_load_audio(monkeypatch) -> collections.Counter:
    calls: collections.Counter = collections.Counter()
    original = decode_module.load_audio

    def counting(path, **kwargs):
        calls[str(path)] += 1
        return original(path, **kwargs)

    monkeypatch.setattr(decode_module, "load_audio", counting)
    return calls


def test_training_pipeline_decodes_each_file_once_across_epochs(tree, monkeypatch):
    data = load_labelled_audio(tree, silence_fraction=0.2)
    calls = _counting_load_audio(monkeypatch)

    dataset = make_dataset(
        data.examples,
        labels=data.labels,
        batch_size=8,
        training=True,
        augmentation=Augmentation(),
        noise_files=data.noise_files,
    )
    epochs = [[(w.numpy(), y.numpy()) for w, y in dataset] for _ in range(2)]

    clip_files = {str(e.path) for e in data.examples if not e.generated}
    assert all(calls[path] == 1 for path in clip_files)
    assert all(calls[str(path)] <= 2 for path in data.noise_files)  # silence source + noise bank, once each
    for epoch in epochs:
        waveforms = np.concatenate([w for w, _ in epoch])
        labels = np.concatenate([y for _, y in epoch])
        assert waveforms.shape == (len(data.examples), 16000) and waveforms.dtype == np.float32
        assert labels.dtype == np.int32
        assert collections.Counter(labels.tolist()) == collections.Counter(
            data.labels.index(e.label) for e in data.examples
        )
    assert not np.array_equal(epochs[0][0][0], epochs[1][0][0])  # reshuffled and re-augmented


def test_training_pipeline_is_reproducible_from_its_seed(tree):
    data = load_labelled_audio(tree)

    def first_batches(seed):
        dataset = make_dataset(
            data.examples,
            labels=data.labels,
            batch_size=4,
            training=True,
            augmentation=Augmentation(),
            seed=seed,
        )
        return [w.numpy() for w, _ in dataset.take(2)]

    once, again, other_seed = first_batches(1), first_batches(1), first_batches(2)
    for batch, same in zip(once, again, strict=True):
        np.testing.assert_array_equal(batch, same)
    assert not np.array_equal(once[0], other_seed[0])


def test_random_crop_when_training_centre_crop_when_evaluating(tmp_path):
    ramp = np.linspace(-1, 1, 48000, dtype=np.float32)
    path = tmp_path / "c" / "ramp.wav"
    path.parent.mkdir()
    sf.write(path, ramp, 16000, subtype="FLOAT")
    examples = [AudioExample(path, "c")] * 4

    evaluation = next(iter(make_dataset(examples, labels=["c"], batch_size=4)))[0].numpy()
    training = next(iter(make_dataset(examples, labels=["c"], batch_size=4, training=True)))[0].numpy()

    np.testing.assert_array_equal(evaluation, np.tile(ramp[16000:32000], (4, 1)))
    starts = [int(np.argmin(np.abs(ramp - row[0]))) for row in training]
    assert len(set(starts)) > 1 and all(0 <= start <= 32000 for start in starts)
    for row, start in zip(training, starts, strict=True):
        np.testing.assert_array_equal(row, ramp[start : start + 16000])


def test_pipeline_skips_bad_files_and_checks_labels(tmp_path):
    root, _ = _bad_tree(tmp_path)
    data = load_labelled_audio(root)
    dataset = make_dataset(data.examples, labels=data.labels, batch_size=16, max_failure_fraction=0.5)
    assert sum(int(w.shape[0]) for w, _ in dataset) == 8
    with pytest.raises(DatasetError, match=r"labels \['stop'\] that are not in labels=\['go'\]"):
        make_dataset(data.examples, labels=["go"])


def test_training_pipeline_with_nothing_decodable_says_so(tmp_path):
    bad = write_truncated_wav(tmp_path / "a" / "cut.wav")
    with pytest.raises(DatasetError, match="1 of 1 audio files failed to decode"):
        make_dataset([AudioExample(bad, "a")], labels=["a"], training=True)
    with pytest.raises(DatasetError, match="None of the 1 clips decoded"):
        make_dataset([AudioExample(bad, "a")], labels=["a"], training=True, max_failure_fraction=1.0)


def test_speech_commands_subset(speech_commands_dir):
    data = load_labelled_audio(speech_commands_dir, keywords=["yes", "no"], silence_fraction=0.1)
    assert len(data.noise_files) == 6
    assert data.labels == [SILENCE_LABEL, UNKNOWN_LABEL, "yes", "no"]
    everything = load_labelled_audio(speech_commands_dir)
    assert len(everything.labels) == 30 and len(everything.examples) == 300
    assert len(everything.speakers) == 41
    splits = split_examples(everything.examples)
    speakers = {name: {e.speaker for e in split} for name, split in splits.items()}
    assert not speakers["train"] & (speakers["validation"] | speakers["test"])

"""Synthetic keyword data: eSpeak NG backends, one-word synthesis, the dataset writer and the synth verb."""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO_ROOT

from audio_transfer.data import load_labelled_audio, parse_speaker, split_examples
from audio_transfer.errors import ConfigError, DependencyError
from audio_transfer.synth import (
    ENGLISH_VOICES,
    EspeakCommand,
    EspeakLibrary,
    SynthSettings,
    get_synthesizer,
    speaker_id,
    synthesize,
    synthesize_keywords,
)

pytest.importorskip("espeakng_loader")

# Two accents x two variants: four speakers, quick to speak.
SMALL = SynthSettings(voices=("en-us", "en-gb-x-rp"), variants=("", "f2"))


@pytest.fixture(scope="module")
def engine() -> EspeakLibrary:
    return get_synthesizer("library")


def _rms(waveform: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(waveform, dtype=np.float64))))


# -- backends and synthesize() -----------------------------------------------------------------------


def test_library_lists_english_voices_and_variants(engine):
    assert engine.sample_rate == 22050
    assert set(ENGLISH_VOICES) <= set(engine.list_voices())
    assert {"m3", "f2", "klatt", "Alex"} <= set(engine.list_variants())
    assert all(voice == voice.lower() for voice in engine.list_voices())


def test_same_arguments_same_samples_and_voices_differ(engine):
    first = engine.synthesize("seven", voice="en-us+m3", rate_wpm=160)
    # Something else in between: eSpeak's state must not leak into the next utterance.
    engine.synthesize("three", voice="en+klatt", rate_wpm=300, pitch=10)
    again = engine.synthesize("seven", voice="en-us+m3", rate_wpm=160)
    assert first.dtype == np.int16 and len(first) > 0.2 * engine.sample_rate
    np.testing.assert_array_equal(first, again)
    other_voices = [
        engine.synthesize("seven", voice=voice, rate_wpm=160) for voice in ("en-us+f2", "en-gb-x-rp")
    ]
    for other in other_voices:
        assert len(other) != len(first) or not np.array_equal(other, first)


def test_noisy_voices_are_reproducible_across_processes(engine):
    """Breathy (f2) and Klatt (Reed) voices draw noise from generators eSpeak seeds with the time of day."""
    script = (
        "import hashlib; from audio_transfer.synth import get_synthesizer; "
        "engine = get_synthesizer('library'); "
        "print(*(hashlib.md5(engine.synthesize('no.', voice=v).tobytes()).hexdigest() "
        "for v in ('en-us+f2', 'en-us+Reed')))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, check=True, timeout=120
    )
    here = [
        hashlib.md5(engine.synthesize("no.", voice=voice).tobytes()).hexdigest()
        for voice in ("en-us+f2", "en-us+Reed")
    ]
    assert completed.stdout.split() == here


def test_rate_pitch_and_range_change_the_sound(engine):
    slow = engine.synthesize("seven", voice="en-us", rate_wpm=100)
    fast = engine.synthesize("seven", voice="en-us", rate_wpm=300)
    assert len(slow) > 1.5 * len(fast)
    low, high = (engine.synthesize("seven", voice="en-us", pitch=pitch) for pitch in (10, 90))
    assert not np.array_equal(low, high)
    flat, lively = (engine.synthesize("seven?", voice="en-us", pitch_range=value) for value in (0, 100))
    assert not np.array_equal(flat, lively)


def test_phoneme_input_is_spoken_as_phonemes(engine):
    np.testing.assert_array_equal(
        engine.synthesize("[[s'Ev@n]]", voice="en-us"), engine.synthesize("seven", voice="en-us")
    )


def test_phonemes_transcribe_as_the_voice_speaks(engine):
    seven, hey_jarvis = engine.phonemes(["seven", "hey, jarvis"])
    assert seven == "s_'E_v_@_n" and len(hey_jarvis.split()) == 2  # clauses joined as words
    np.testing.assert_array_equal(
        engine.synthesize(f"[[{seven.replace('_', '')}]]"), engine.synthesize("seven")
    )
    with pytest.raises(ConfigError, match="texts must be a list of non-empty strings"):
        engine.phonemes("seven")
    with pytest.raises(ConfigError, match="Unknown eSpeak NG voice"):
        engine.phonemes(["seven"], voice="xx-nowhere")


def test_synthesize_returns_float_at_the_requested_rate():
    waveform = synthesize("yes", voice="en-us+f2", sample_rate=16000, backend="library")
    native = get_synthesizer("library").synthesize("yes", voice="en-us+f2")
    assert waveform.dtype == np.float32 and np.abs(waveform).max() <= 1.0
    assert len(waveform) == round(len(native) * 16000 / 22050)
    assert _rms(waveform) > 0.01
    assert len(synthesize("yes", voice="en-us+f2", sample_rate=8000, backend="library")) == round(
        len(native) * 8000 / 22050
    )


@pytest.mark.parametrize(
    ("voice", "match"),
    [
        ("xx-nowhere", r"Unknown eSpeak NG voice 'xx-nowhere'.*Available English voices: en, en-029"),
        ("en-us+nosuch", r"Unknown eSpeak NG variant 'nosuch'.*Some available: .*Alex"),
        ("en-us+alex", r"variants are case-sensitive"),
    ],
)
def test_unknown_voice_or_variant_lists_available_ones(voice, match):
    with pytest.raises(ConfigError, match=match):
        synthesize("yes", voice=voice, backend="library")


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ({"text": "  "}, "text must be a non-empty string"),
        ({"rate_wpm": 79}, r"rate_wpm must be an integer from 80 to 450, received 79"),
        ({"pitch": 101}, "pitch must be an integer from 0 to 100"),
        ({"pitch_range": 50.0}, "pitch_range must be an integer"),
        ({"backend": "festival"}, "backend must be one of auto, library, command"),
    ],
)
def test_synthesize_rejects_bad_arguments(arguments, match):
    with pytest.raises(ConfigError, match=match):
        synthesize(**{"text": "yes", **arguments})


def test_missing_library_says_how_to_install(monkeypatch, tmp_path):
    with pytest.raises(DependencyError, match="pip install espeakng-loader"):
        EspeakLibrary(library_path=tmp_path / "libespeak-ng.so", data_path=tmp_path)
    not_a_library = tmp_path / "libespeak-ng.so"
    not_a_library.write_bytes(b"not a shared library")
    import espeakng_loader

    with pytest.raises(DependencyError, match="Cannot load eSpeak NG's library"):
        EspeakLibrary(library_path=not_a_library, data_path=espeakng_loader.get_data_path())
    with pytest.raises(DependencyError, match="not an espeak-ng-data folder"):
        EspeakLibrary(library_path=espeakng_loader.get_library_path(), data_path=tmp_path)
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # import now fails
    with pytest.raises(DependencyError, match="apt-get install espeak-ng"):
        EspeakLibrary()


# -- the espeak-ng program, through a stand-in script ----------------------------------------------

FAKE_ESPEAK = textwrap.dedent(
    '''\
    #!{python}
    """Stands in for espeak-ng: the voice listings, and a tone whose length encodes the arguments."""
    import io, json, sys
    import numpy as np, soundfile as sf

    args = sys.argv[1:]
    if args and args[-1] == "--voices":
        print("Pty Language       Age/Gender VoiceName          File                 Other Languages")
        print(" 2  en-us           --/M      English_(America)  gmw/en-US            (en 3)")
        print(" 5  en-029          --/M      English_(Caribbean) gmw/en-029           (en 10)")
        print(" 5  en-us           --/M      us-mbrola-2        mb/mb-us2            (en 7)")
        sys.exit(0)
    if args and args[-1] == "--voices=variant":
        print("Pty Language       Age/Gender VoiceName          File                 Other Languages")
        print(" 5  variant         --/M      Mr_serious         !v/Mr serious        ")
        print(" 5  variant         --/F      female2            !v/f2                ")
        sys.exit(0)
    with open({log!r}, "a") as log:
        log.write(json.dumps(args) + "\\n")
    if "-x" in args:  # phonemes, a line per clause
        print(" s_'E_v_@_n\\n h_'eI")
        sys.exit(0)
    rate = int(args[args.index("-s") + 1]) if "-s" in args else 175
    samples = (0.5 * np.sin(np.arange(22050 * 100 // rate) / 5.0) * 32767).astype(np.int16)
    buffer = io.BytesIO()
    sf.write(buffer, samples, 22050, format="WAV", subtype="PCM_16")
    sys.stdout.buffer.write(buffer.getvalue())
    '''
)


@pytest.fixture
def fake_espeak(tmp_path) -> tuple[Path, Path]:
    program, log = tmp_path / "espeak-ng", tmp_path / "calls.jsonl"
    program.write_text(FAKE_ESPEAK.format(python=sys.executable, log=os.fspath(log)))
    program.chmod(0o755)
    return program, log


def test_command_backend_parses_listings_and_reads_the_wav(fake_espeak):
    program, log = fake_espeak
    command = EspeakCommand(program)
    assert command.list_voices() == ["en-029", "en-us"]  # MBROLA voices left out
    assert command.list_variants() == ["Mr serious", "f2"]
    assert command.sample_rate == 22050
    samples = command.synthesize("yes & no", voice="en-us+Mr serious", rate_wpm=100, pitch=20)
    assert samples.dtype == np.int16 and len(samples) == 22050
    assert json.loads(log.read_text().splitlines()[-1]) == [
        "-b", "1", "-z", "--stdout", "-v", "en-us+Mr serious", "-s", "100", "-p", "20", "yes & no"
    ]  # fmt: skip
    command.synthesize("yes & no", voice="en-029", pitch_range=10)
    assert json.loads(log.read_text().splitlines()[-1])[-2:] == [
        "-m",
        '<prosody range="10">yes &amp; no</prosody>',
    ]
    with pytest.raises(ConfigError, match="Available English voices: en-029, en-us"):
        command.synthesize("yes", voice="en-gb")
    assert command.phonemes(["seven, hey"]) == ["s_'E_v_@_n h_'eI"]
    assert json.loads(log.read_text().splitlines()[-1]) == [
        "-b", "1", "-q", "-x", "--sep=_", "-v", "en-us", "seven, hey"
    ]  # fmt: skip


def test_command_backend_missing_program(tmp_path):
    with pytest.raises(DependencyError, match=r"is not found.*pip install espeakng-loader"):
        EspeakCommand(tmp_path / "no-such-espeak-ng")


def test_auto_backend_prefers_the_program_on_path(fake_espeak, monkeypatch):
    synthesize_module = importlib.import_module("audio_transfer.synth.synthesize")
    program, _ = fake_espeak
    monkeypatch.setenv("PATH", f"{program.parent}{os.pathsep}{os.environ['PATH']}")
    synthesize_module._shared_backend.cache_clear()
    try:
        assert get_synthesizer("auto").name == "espeak-command"
    finally:
        synthesize_module._shared_backend.cache_clear()
    monkeypatch.setenv("PATH", "")
    assert get_synthesizer("auto").name == "espeak-library"
    synthesize_module._shared_backend.cache_clear()


# -- synthesize_keywords ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("synth") / "data"
    report = synthesize_keywords(["yes", "no"], out_dir=out_dir, per_word=6, seed=3, settings=SMALL)
    return out_dir, report


def test_keywords_layout_clips_and_report(small_dataset):
    out_dir, report = small_dataset
    assert report.counts == {"yes": 6, "no": 6} and report.num_clips == 12 and not report.skipped
    assert report.voices == ["en-gb-x-rp", "en-gb-x-rp+f2", "en-us", "en-us+f2"]
    assert (
        report.backend in ("espeak-library", "espeak-command") and report.manifest == out_dir / "synth.json"
    )
    for word in ("yes", "no"):
        files = sorted((out_dir / word).glob("*.wav"))
        assert len(files) == 6
        for path in files:
            info = sf.info(path)
            assert (info.samplerate, info.frames, info.subtype) == (16000, 16000, "PCM_16")
            waveform, _ = sf.read(path, dtype="float32")
            assert _rms(waveform) > 1e-3 and np.abs(waveform).max() < 1.0
    manifest = json.loads(report.manifest.read_text())
    assert len(manifest["clips"]) == 12 and manifest["report"]["counts"] == {"yes": 6, "no": 6}
    clip = manifest["clips"][0]
    assert set(clip) >= {
        "path",
        "label",
        "voice",
        "text",
        "rate_wpm",
        "pitch",
        "pitch_range",
        "offset_seconds",
    }
    assert 80 <= clip["rate_wpm"] <= 450 and (out_dir / clip["path"]).is_file()
    assert "Wrote 12 clips" in report.to_text()
    assert json.loads(json.dumps(report.to_dict()))["num_clips"] == 12


def test_keywords_word_is_placed_inside_the_clip(small_dataset):
    _, report = small_dataset
    offsets = [clip["offset_seconds"] for clip in json.loads(report.manifest.read_text())["clips"]]
    assert len(set(offsets)) > 1 and all(0.0 <= offset < 1.0 for offset in offsets)


def test_keywords_speakers_parse_and_splits_keep_voices_apart(small_dataset):
    out_dir, report = small_dataset
    data = load_labelled_audio(out_dir)
    assert data.labels == ["no", "yes"] and len(data.examples) == 12
    assert {example.speaker for example in data.examples} == {speaker_id(voice) for voice in report.voices}
    splits = split_examples(data.examples, validation_fraction=0.25, test_fraction=0.25)
    speakers = {name: {example.speaker for example in split} for name, split in splits.items()}
    assert not speakers["train"] & speakers["test"] and not speakers["train"] & speakers["validation"]
    assert not speakers["validation"] & speakers["test"]
    # Each speaker says every word, so a speaker's clips are balanced across the labels.
    for speaker in speakers["train"]:
        labels = [example.label for example in data.examples if example.speaker == speaker]
        assert labels.count("yes") == labels.count("no")


def test_keywords_same_seed_same_bytes_other_seed_differs(small_dataset, tmp_path):
    out_dir, _ = small_dataset
    again = synthesize_keywords(["yes", "no"], out_dir=tmp_path / "again", per_word=6, seed=3, settings=SMALL)
    for path in sorted(out_dir.glob("*/*.wav")):
        assert path.read_bytes() == (again.out_dir / path.relative_to(out_dir)).read_bytes()
    other = synthesize_keywords(["yes"], out_dir=tmp_path / "other", per_word=6, seed=4, settings=SMALL)
    first = {path.name: path.read_bytes() for path in (out_dir / "yes").glob("*.wav")}
    assert any(first.get(path.name) != path.read_bytes() for path in (other.out_dir / "yes").glob("*.wav"))


def test_keywords_real_noise_files_are_mixed_in(tmp_path, speech_commands_dir):
    noise_files = sorted((speech_commands_dir / "_background_noise_").glob("*.wav"))
    settings = SynthSettings(
        voices=("en-us",), variants=("",), snr_db_range=(0.0, 0.0), gain_db_range=(-6, -6)
    )
    report = synthesize_keywords(
        ["go"], out_dir=tmp_path, per_word=3, settings=settings, noise_files=noise_files, seed=1
    )
    for path in (report.out_dir / "go").glob("*.wav"):
        waveform, _ = sf.read(path, dtype="float32")
        # At 0 dB SNR the noise fills the whole clip: no stretch of digital silence remains.
        assert _rms(waveform[:160]) > 1e-3 and _rms(waveform[-160:]) > 1e-3


def test_keywords_too_long_words_are_spoken_faster_or_skipped(tmp_path):
    settings = SynthSettings(voices=("en-us",), variants=("",), rates_wpm=(80, 80))
    report = synthesize_keywords(
        ["seven", "the seventh of november nineteen ninety"],
        out_dir=tmp_path,
        per_word=2,
        clip_seconds=0.6,
        settings=settings,
    )
    clips = json.loads(report.manifest.read_text())["clips"]
    assert report.counts["seven"] == 2 and all(clip["rate_wpm"] > 80 for clip in clips)
    assert report.counts["the seventh of november nineteen ninety"] == 0
    assert len(report.skipped) == 2 and "longer than the clip" in report.skipped[0]


def test_keywords_refuse_to_mix_with_existing_audio_unless_overwrite(small_dataset, tmp_path):
    out_dir = tmp_path / "data"
    synthesize_keywords(["yes"], out_dir=out_dir, per_word=3, settings=SMALL)
    stale = out_dir / "yes" / "someone_nohash_9.wav"
    stale.write_bytes(next((out_dir / "yes").glob("*.wav")).read_bytes())
    with pytest.raises(ConfigError, match=r"already holds 4 audio files.*--overwrite"):
        synthesize_keywords(["yes"], out_dir=out_dir, per_word=3, settings=SMALL)
    report = synthesize_keywords(["yes"], out_dir=out_dir, per_word=2, settings=SMALL, overwrite=True)
    assert not stale.exists() and len(list((out_dir / "yes").glob("*.wav"))) == report.counts["yes"] == 2


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ({"words": "yes"}, "words must be a non-empty list"),
        ({"words": []}, "words must be a non-empty list"),
        ({"words": ["yes", "_silence_"]}, "Cannot use '_silence_' as a keyword"),
        ({"words": ["a/b"]}, "Cannot use 'a/b'"),
        ({"words": ["yes", "yes"]}, "duplicates: yes"),
        ({"per_word": 0}, "per_word must be a positive integer"),
        ({"clip_seconds": 0}, "clip_seconds must be a positive number"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"settings": SynthSettings(voices=("en-us",), variants=("nosuch",))}, "Unknown eSpeak NG variant"),
    ],
)
def test_keywords_reject_bad_arguments(tmp_path, arguments, match):
    with pytest.raises(ConfigError, match=match):
        synthesize_keywords(**{"words": ["yes"], "out_dir": tmp_path, "settings": SMALL, **arguments})


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ({"voices": ()}, "voices must be a non-empty tuple of strings"),
        ({"voices": ("en-us+m3",)}, "without '\\+variant'"),
        ({"rates_wpm": (60, 200)}, r"rates_wpm must be a \(low, high\) pair of integers within \[80, 450\]"),
        ({"pitches": (60, 40)}, "pitches must be"),
        ({"snr_db_range": (10, float("nan"))}, "snr_db_range must be"),
        ({"gain_db_range": (-6, 3)}, "gain_db_range must be"),
        ({"noise_probability": 2}, "noise_probability must be in"),
        ({"top_db": 0}, "top_db must be a positive number"),
    ],
)
def test_settings_reject_bad_values(arguments, match):
    with pytest.raises(ConfigError, match=match):
        SynthSettings(**arguments)


def test_speaker_ids_follow_the_speech_commands_rule():
    voices = ["en-us+m3", "en-gb-x-rp+Mr serious", "en-029"]
    ids = [speaker_id(voice) for voice in voices]
    assert ids == ["en-us-m3", "en-gb-x-rp-mr-serious", "en-029"]
    assert [parse_speaker(f"yes/{identifier}_nohash_0.wav") for identifier in ids] == ids


# -- the synth verb -----------------------------------------------------------------------------------


def test_cli_synth_json(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "audio_transfer", "synth", "--words", "on, off",
         "--out", str(tmp_path / "data"), "--per-word", "2", "--seed", "5", "--json"],
        capture_output=True, text=True, cwd=REPO_ROOT, check=False, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    data = json.loads(completed.stdout)
    assert data["counts"] == {"on": 2, "off": 2} and data["num_clips"] == 4 and data["seed"] == 5
    assert len(list((tmp_path / "data").glob("*/*_nohash_*.wav"))) == 4


def test_cli_synth_errors_are_one_json_object(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "audio_transfer", "synth", "--words", "yes", "--out", str(tmp_path),
         "--noise-dir", str(tmp_path / "missing"), "--json"],
        capture_output=True, text=True, cwd=REPO_ROOT, check=False, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 2
    assert json.loads(completed.stdout) == {
        "error": "ConfigError",
        "message": f"--noise-dir {str(tmp_path / 'missing')!r} is not a folder.",
    }


def test_cli_synth_text_output(tmp_path, capsys):
    from audio_transfer.cli.main import main

    assert main(["synth", "--words", "up", "--out", str(tmp_path), "--per-word", "1"]) == 0
    assert "Wrote 1 clips" in capsys.readouterr().out


def test_wav_stream_without_size_reads_to_its_end():
    """espeak-ng --stdout writes 0x7ffff000 as the data size; libsndfile must read what is there."""
    buffer = io.BytesIO()
    sf.write(buffer, np.arange(100, dtype=np.int16), 22050, format="WAV", subtype="PCM_16")
    data = bytearray(buffer.getvalue())
    data[4:8] = (0x7FFFF024).to_bytes(4, "little")
    data[40:44] = (0x7FFFF000).to_bytes(4, "little")
    samples, _ = sf.read(io.BytesIO(bytes(data)), dtype="int16")
    np.testing.assert_array_equal(samples, np.arange(100))


def test_default_noise_is_pink():
    from audio_transfer.synth.synthesize_keywords import _pink_noise

    noise = _pink_noise(64000, seed=0)
    np.testing.assert_array_equal(noise, _pink_noise(64000, seed=0))
    power = np.abs(np.fft.rfft(noise)) ** 2
    hertz = np.fft.rfftfreq(len(noise), 1 / 16000)
    low, high = (power[(hertz >= band) & (hertz < 2 * band)].mean() for band in (100, 3200))
    # 1/f: power density 32 times (15 dB) higher five octaves down; white noise would be flat.
    assert 10 < low / high < 100

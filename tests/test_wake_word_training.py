"""Training a wake word against negative audio: excerpts, windows, near misses, synthesized negatives,
hard-negative mining and `train --task wakeword`."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import re

import numpy as np
import pytest
import soundfile as sf
from audio_files import noise, write_pitch_classes
from streaming_support import write_wav
from tiny_conv_base import tiny_base
from tiny_streaming_base import tiny_spotter

from audio_transfer.audio import load_audio
from audio_transfer.bases import load_base
from audio_transfer.cli.main import main
from audio_transfer.data import (
    FeatureStore,
    FeatureStoreWriter,
    NegativeAudio,
    RoomReverb,
    StoreRecord,
    decode_examples,
    load_labelled_audio,
)
from audio_transfer.embedding import embed_waveforms, store_identity, window_embeddings, write_examples
from audio_transfer.errors import ConfigError, StoreError
from audio_transfer.streaming import KeywordDetector
from audio_transfer.synth import EVERYDAY_SENTENCES, SynthesizedNegatives, get_synthesizer, near_miss_phrases
from audio_transfer.training import TrainConfig, train_run


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("wake_word")
    write_pitch_classes(root / "tones", {"low": 300.0, "mid": 1000.0, "high": 3000.0})
    # Ten seconds of noise with low and mid tones in it, and a file shorter than one window.
    stream = noise(duration_seconds=10.0, seed=3)
    t = np.arange(8000) / 16000
    for start, pitch in ((1.0, 300.0), (4.0, 1000.0), (7.5, 310.0)):
        stream[round(start * 16000) : round(start * 16000) + 8000] += 0.3 * np.sin(2 * np.pi * pitch * t)
    write_wav(root / "negatives" / "street" / "long.wav", stream)
    write_wav(root / "negatives" / "short.wav", noise(duration_seconds=0.3, seed=4))
    room = np.zeros(1600, np.float32)
    room[[0, 400, 1200]] = [1.0, 0.4, -0.2]
    write_wav(root / "room.wav", room)
    tiny_base().save(root / "tiny_base.keras")
    return root


def config_for(workspace, **overrides) -> TrainConfig:
    settings = {
        "task": "wakeword",
        "data_dir": str(workspace / "tones"),
        "keywords": ["high"],
        "base": str(workspace / "tiny_base.keras"),
        "context_seconds": 0.1,
        "negatives": [str(workspace / "negatives")],
        "synth_negatives": False,
        "head": "mlp",
        "epochs": 2,
        "min_steps_per_epoch": 2,
        "augment": False,
    }
    return TrainConfig(**{**settings, **overrides})


def train_argv(workspace, out, *flags: str) -> list[str]:
    """``audio-transfer train`` of a wake word ("high") on the tones, into ``out``, with ``flags``."""
    return [
        "train",
        str(workspace / "tones"),
        "--task",
        "wakeword",
        "--keywords",
        "high",
        "--out",
        str(out),
        *flags,
    ]


# -- excerpts and windows of long recordings ---------------------------------------------------------------
def test_an_excerpt_is_the_slice_of_the_whole_file(workspace):
    path = workspace / "negatives" / "street" / "long.wav"
    whole = load_audio(path, sample_rate=16000)
    excerpt = load_audio(path, sample_rate=16000, offset_seconds=2.5, duration_seconds=0.75)
    np.testing.assert_array_equal(excerpt, whole[40000:52000])
    tail = load_audio(path, sample_rate=16000, offset_seconds=9.5, duration_seconds=2.0)
    np.testing.assert_array_equal(tail, whole[152000:])
    with pytest.raises(ConfigError, match="offset_seconds"):
        load_audio(path, offset_seconds=-1.0)


def test_negative_audio_names_missing_paths_and_skips_short_files(workspace):
    with pytest.raises(ConfigError, match=r"nowhere\.wav"):
        NegativeAudio.from_paths([workspace / "negatives", workspace / "nowhere.wav"], min_seconds=0.7)
    negatives = NegativeAudio.from_paths([workspace / "negatives"], min_seconds=0.7)
    assert [key for _, key, _ in negatives.files] == ["0/street/long.wav"]
    assert negatives.hours == pytest.approx(10.0 / 3600)
    assert len(negatives.skipped) == 1 and "shorter than one" in negatives.skipped[0].reason


def test_windows_of_a_recording_are_the_windows_embedded_one_by_one(workspace):
    base = load_base(str(workspace / "tiny_base.keras"))
    path = workspace / "negatives" / "street" / "long.wav"
    audio = load_audio(path, sample_rate=16000)
    blocks = list(
        window_embeddings(
            path, base=base, clip_seconds=0.5, context_seconds=0.1, stride_seconds=0.25, block_windows=7
        )
    )
    starts = np.concatenate([block[0] for block in blocks])
    frames = np.concatenate([block[1] for block in blocks])
    window = 11200  # 0.5 s clip and 0.1 s of context on both sides
    assert len(blocks) > 2 and len(starts) == 1 + (len(audio) - window) // 4000
    np.testing.assert_allclose(starts, np.arange(len(starts)) * 0.25)
    one_by_one = embed_waveforms(
        base, np.stack([audio[m * 4000 : m * 4000 + window] for m in range(len(starts))])
    )
    np.testing.assert_allclose(frames, one_by_one, atol=1e-5)


def test_windows_of_a_streaming_base_score_as_the_detector_does(tmp_path):
    spotter = tiny_spotter()
    rng = np.random.default_rng(0)
    path = write_wav(tmp_path / "stream.wav", (0.05 * rng.standard_normal(3 * 16000)).astype(np.float32))
    detector = KeywordDetector(spotter, clip_seconds=1.0, stride_seconds=0.04)
    expected = detector.posteriors(load_audio(path, sample_rate=16000))
    frames = np.concatenate(
        [
            block[1]
            for block in window_embeddings(
                path,
                base=spotter.base,
                clip_seconds=1.0,
                context_seconds=0.1,
                stride_seconds=0.04,
                block_windows=9,
            )
        ]
    )
    np.testing.assert_allclose(spotter.head_model()(frames).numpy(), expected, atol=1e-5)


def test_augmented_copies_of_a_wake_word_hear_noise_around_the_clip(workspace, tmp_path):
    base = load_base(str(workspace / "tiny_base.keras"))
    identity = store_identity(
        base, base_name="tiny", sample_rate=16000, clip_seconds=0.5, context_seconds=0.1
    )
    examples = load_labelled_audio(workspace / "tones").examples[:2]
    clips = decode_examples(examples, sample_rate=16000, clip_seconds=0.5).waveforms

    def lift(waveforms, seed):  # a stand-in for noise: the same offset everywhere it is applied
        return np.asarray(waveforms) + 0.25

    stored = {}
    for around in (False, True):
        with FeatureStoreWriter(tmp_path / str(around), identity=identity) as writer:
            write_examples(
                writer, examples, base=base, augment=lift, augment_copies=1, augment_context=around
            )
        frames, _ = writer.store.arrays(labels=["high", "low", "mid"], keys=None)
        keys = [example.key for example in writer.store.examples()]
        stored[around] = frames[[index for index, key in enumerate(keys) if key.endswith("#augment0")]]
    padded = np.pad(clips, [(0, 0), (1600, 1600)])
    np.testing.assert_allclose(stored[True], embed_waveforms(base, padded + 0.25), atol=1e-5)
    np.testing.assert_allclose(
        stored[False], embed_waveforms(base, clips + 0.25, context_samples=1600), atol=1e-5
    )


# -- room reverberation -------------------------------------------------------------------------------------
def test_simulated_rooms_reverberate_a_share_of_the_clips_at_their_level():
    reverb = RoomReverb.simulated(
        sample_rate=16000, count=3, rt60_seconds=(0.3, 0.6), seed=1, probability=1.0
    )
    assert len(reverb.impulse_responses) == 3
    for rir in reverb.impulse_responses:  # direct path first, unit energy, a tail of reflections
        assert np.argmax(np.abs(rir)) == 0 and np.sum(rir.astype(np.float64) ** 2) == pytest.approx(
            1.0, rel=1e-4
        )
        assert len(rir) > 0.1 * 16000
    clips = noise(duration_seconds=0.5, seed=5)[np.newaxis].repeat(4, axis=0)
    wet = reverb.apply(clips, seed=2)
    assert wet.shape == clips.shape and not np.allclose(wet, clips)
    np.testing.assert_allclose(
        np.sqrt(np.mean(wet**2, axis=1)), np.sqrt(np.mean(clips**2, axis=1)), rtol=0.05
    )
    np.testing.assert_array_equal(wet, reverb.apply(clips, seed=2))
    untouched = dataclasses.replace(reverb, probability=0.0).apply(clips, seed=2)
    np.testing.assert_array_equal(untouched, clips)


def test_a_measured_impulse_response_is_the_reverberation_of_an_impulse(tmp_path):
    rir = np.zeros(800, np.float32)
    rir[[10, 200, 600]] = [0.0, 1.0, -0.5]  # leading silence, the direct path, one echo
    path = write_wav(tmp_path / "room.wav", rir)
    reverb = RoomReverb.from_files([path], sample_rate=16000, probability=1.0)
    impulse = np.zeros((1, 1000), np.float32)
    impulse[0, 100] = 0.5
    wet = reverb.apply(impulse, seed=0)[0]
    expected = np.zeros(1000)
    expected[100], expected[500] = 1.0, -0.5
    expected *= np.sqrt(np.mean(impulse**2) / np.mean(expected**2))
    np.testing.assert_allclose(wet, expected, atol=1e-6)


# -- synthesized negatives ---------------------------------------------------------------------------------
def plain(phonemes: str) -> str:
    """eSpeak phoneme mnemonics without separators, stress marks and allophone marks (``#``)."""
    return re.sub(r"[_',#\[\]]", "", phonemes)


def test_near_misses_are_built_from_the_keywords_phonemes_and_never_say_one():
    engine = get_synthesizer("library")
    keywords = ["computer", "hey jarvis"]
    phrases = near_miss_phrases(keywords, synthesizer=engine, max_phrases=12, seed=1)
    assert len(phrases) == 24 and len(set(phrases.values())) == 24
    assert all(re.fullmatch(r"[a-z][a-z0-9_-]*", name) for name in phrases)  # folder names
    computer, hey_jarvis = (plain(said) for said in engine.phonemes(keywords))
    built = [plain(spoken) for spoken in phrases.values() if spoken.startswith("[[")]
    words = [word for word in phrases.values() if not word.startswith("[[")]
    said_words = [plain(said) for said in engine.phonemes(words)] if words else []
    assert not any(computer in said or hey_jarvis in said for said in built + said_words)
    # Parts: a keyword's first or last syllables; swaps: one phoneme changed, the length kept.
    assert any(computer.startswith(said) or computer.endswith(said) for said in built)
    swapped = [said for said in built if len(said) == len(computer)]
    assert any(sum(a != b for a, b in zip(said, computer, strict=True)) == 1 for said in swapped)
    assert "hey" in phrases.values()  # a word of a several-word keyword alone
    assert phrases == near_miss_phrases(keywords, synthesizer=engine, max_phrases=12, seed=1)
    # Everyday words close in phonemes, closest first; never the keyword itself.
    wow = near_miss_phrases(["wow"], synthesizer=engine, max_phrases=12, vocabulary=["how", "now", "wow"])
    assert {"how", "now"} <= set(wow.values()) and "wow" not in wow.values()
    with pytest.raises(ConfigError, match="keywords"):
        near_miss_phrases([], synthesizer=engine)


def test_synthesized_negatives_leave_out_sentences_with_the_keyword(tmp_path):
    keyword = "window"
    negatives = SynthesizedNegatives.synthesize(
        [keyword], out_dir=tmp_path, clip_seconds=1.0, speech_minutes=0.5, clips_per_phrase=1
    )
    assert any(keyword in sentence.lower() for sentence in EVERYDAY_SENTENCES)
    assert len(negatives.speech_files) == 1
    info = sf.info(negatives.speech_files[0])
    assert info.samplerate == 16000 and info.duration > 30.0
    clips = sorted(negatives.near_miss_dir.glob("*/*.wav"))
    assert {clip.parent.name for clip in clips} <= set(negatives.phrases) and len(clips) >= len(
        negatives.phrases
    ) - 2


# -- the store grows by the mined windows -------------------------------------------------------------------
def test_a_writer_extends_a_store_without_rewriting_it(tmp_path):
    base = tiny_base()
    identity = store_identity(
        base, base_name="tiny", sample_rate=16000, clip_seconds=0.5, context_seconds=0.0
    )
    shape = identity.shape
    first = [StoreRecord(f"a{i}", "x", None, "clean", np.full(shape, i, np.float32)) for i in range(3)]
    with FeatureStoreWriter(tmp_path / "first", identity=identity) as writer:
        writer.add(first)
    extra = StoreRecord("mined", "_unknown_", None, "mined", np.ones(shape, np.float32))
    with FeatureStoreWriter(tmp_path / "second", identity=identity) as writer:
        writer.add_store(FeatureStore.open(tmp_path / "first"))
        writer.add([extra])
    store = FeatureStore.open(tmp_path / "second", verify=True)
    assert [example.key for example in store.examples()] == ["a0", "a1", "a2", "mined"]
    assert store.sources == {"clean": 3, "mined": 1}
    assert FeatureStore.open(tmp_path / "first").num_examples == 3
    other = store_identity(base, base_name="tiny", sample_rate=16000, clip_seconds=1.0, context_seconds=0.0)
    writer = FeatureStoreWriter(tmp_path / "third", identity=other)
    with pytest.raises(StoreError, match="clip"):
        writer.add_store(store)
    writer.abandon()


# -- training ----------------------------------------------------------------------------------------------
def test_a_wake_word_trains_on_windows_of_negative_audio_and_mines_them(workspace):
    # A low threshold makes the untrained-looking head fire, so mining has windows to add.
    run = train_run(config_for(workspace, mining_rounds=1, mining_threshold=0.05), verbose=0)
    assert run.labels == ["_unknown_", "high"]
    assert [item.round for item in run.mining] == [1, 2]
    first = run.mining[0]
    assert first.hours == pytest.approx(10.0 / 3600, rel=1e-3)
    assert first.false_accepts >= 1 and first.windows_added >= first.false_accepts
    assert first.top_files[0][0] == "0/street/long.wav"
    assert any(item.path.endswith("short.wav") for item in run.skipped)
    summary = run.summary()
    assert summary["mining"][0]["false_accepts_per_hour"] == first.false_accepts_per_hour
    # Every window of the 10 s file (0.7 s windows every 0.5 s) and every clip trained.
    assert run.result.num_train_clips >= 19


def test_mining_stops_when_the_model_fires_on_nothing(workspace):
    run = train_run(config_for(workspace, mining_rounds=2, mining_threshold=0.999999), verbose=0)
    assert [(item.round, item.false_accepts, item.windows_added) for item in run.mining] == [(1, 0, 0)]
    assert run.result.history


def test_a_wake_word_needs_keywords_and_existing_negatives(workspace):
    with pytest.raises(ConfigError, match="--keywords"):
        train_run(config_for(workspace, keywords=None), verbose=0)
    with pytest.raises(ConfigError, match=r"missing\.flac"):
        train_run(config_for(workspace, negatives=[str(workspace / "missing.flac")]), verbose=0)


def test_the_cli_names_a_missing_negatives_path(workspace, tmp_path, capsys):
    code = main(train_argv(workspace, tmp_path / "run", "--negatives", str(tmp_path / "gone")))
    captured = capsys.readouterr()
    assert code != 0 and "gone" in captured.err and "Traceback" not in captured.err
    assert not (tmp_path / "run").exists()


def test_the_cli_reports_each_mining_round(workspace, tmp_path):
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(
            train_argv(
                workspace,
                tmp_path / "run",
                *("--base", str(workspace / "tiny_base.keras")),
                *("--negatives", str(workspace / "negatives" / "street")),
                *("--set", "synth_speech_minutes=0.2", "--set", "synth_near_miss_clips=1"),
                *("--mining-rounds", "1", "--epochs", "2", "--json"),
                *("--set", "head=mlp", "--set", "context_seconds=0.1", "--set", "mining_threshold=0.05"),
                *("--set", f"rir_files=[{workspace / 'room.wav'}]"),
            )
        )
    assert code == 0
    result = json.loads(stdout.getvalue())
    assert result["mining"][0]["round"] == 1 and "false_accepts_per_hour" in result["mining"][0]
    splits = (tmp_path / "run" / "splits.csv").read_text()
    assert "near_miss" not in splits and "negatives" not in splits and "high/" in splits
    config = TrainConfig.from_yaml(tmp_path / "run" / "config.yaml")
    assert config.reverb_probability == 0.5 and config.rir_files == [str(workspace / "room.wav")]
    assert TrainConfig(task="kws").resolved().reverb_probability == 0.0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["mining"] == result["mining"]
    assert TrainConfig.from_yaml(tmp_path / "run" / "config.yaml").negatives == [
        str((workspace / "negatives" / "street").resolve())
    ]

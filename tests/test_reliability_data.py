"""Reliability of the data paths (issue 17): poisoned embedding caches, temporary files left by killed
exports, and detection over long audio in bounded memory.

Slow cases (``-m slow``): detect's peak memory on 2 and 20 minutes of audio.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf
from export_support import LABELS, SAMPLE_RATE, build_classifier
from streaming_support import (
    CLIP_SECONDS,
    KEYWORDS,
    background,
    chirp,
    chirp_spotter,
    plant,
    save_run,
    write_wav,
)
from tiny_conv_base import tiny_base

from audio_transfer.atomic_files import atomic_write, remove_stale_temporaries
from audio_transfer.audio import AudioBlockReader, load_audio
from audio_transfer.errors import AudioDecodeError
from audio_transfer.export import export_saved_model, export_tflite
from audio_transfer.streaming import KeywordDetector, evaluate_stream, stream_evaluation
from audio_transfer.training import EmbeddingCache

CACHE_SETTINGS = {"clip_seconds": 0.5}


# -- 7. a poisoned embedding cache -------------------------------------------------------------------------
def _with_checksum(frames: np.ndarray) -> bytes:
    """An entry file as the cache writes one: the .npy bytes, then their SHA-256 digest."""
    buffer = io.BytesIO()
    np.save(buffer, frames, allow_pickle=False)
    return buffer.getvalue() + hashlib.sha256(buffer.getvalue()).digest()


def _nan_entry(content: bytes, frames: np.ndarray) -> bytes:
    return _with_checksum(np.full_like(frames, np.nan))


def _wrong_shape_entry(content: bytes, frames: np.ndarray) -> bytes:
    return _with_checksum(np.zeros((3, 3), np.float32))


def _wrong_dtype_entry(content: bytes, frames: np.ndarray) -> bytes:
    return _with_checksum(frames.astype(np.float64))


def _plain_nan_npy(content: bytes, frames: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.full_like(frames, np.nan), allow_pickle=False)
    return buffer.getvalue()


def _truncated(content: bytes, frames: np.ndarray) -> bytes:
    return content[: len(content) // 2]


def _flipped_bytes(content: bytes, frames: np.ndarray) -> bytes:
    altered = bytearray(content)
    middle = len(altered) - 64  # inside the float data, before any trailer
    altered[middle] ^= 0x40
    altered[middle + 1] ^= 0x01
    return bytes(altered)


def _package_warnings(caplog) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.WARNING and record.name.startswith("audio_transfer")
    ]


@pytest.mark.parametrize(
    "poison",
    [_nan_entry, _wrong_shape_entry, _wrong_dtype_entry, _plain_nan_npy, _truncated, _flipped_bytes],
)
def test_a_poisoned_cache_entry_is_recomputed_with_a_warning_naming_it(tmp_path, rng, caplog, poison):
    waveforms = rng.uniform(-0.5, 0.5, size=(3, 8000)).astype(np.float32)
    keys = ["a", "b", "c"]
    base = tiny_base()
    clean = EmbeddingCache(base, cache_dir=tmp_path, settings=CACHE_SETTINGS).embed(waveforms, keys=keys)
    entries = sorted(tmp_path.rglob("*.npy"))
    assert len(entries) == 3
    bad = entries[1]
    frames_of = {
        path: row for path in entries for row in clean if np.array_equal(np.load(path), row)
    }  # which clip's frames each file holds
    bad.write_bytes(poison(bad.read_bytes(), frames_of[bad]))

    with caplog.at_level(logging.WARNING, logger="audio_transfer"):
        cache = EmbeddingCache(base, cache_dir=tmp_path, settings=CACHE_SETTINGS)
        result = cache.embed(waveforms, keys=keys)
    np.testing.assert_allclose(result, clean, rtol=1e-6)
    assert (cache.hits, cache.misses) == (2, 1)
    warnings = _package_warnings(caplog)
    assert len(warnings) == 1 and str(bad) in warnings[0]

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="audio_transfer"):
        rewritten = EmbeddingCache(base, cache_dir=tmp_path, settings=CACHE_SETTINGS)
        np.testing.assert_allclose(rewritten.embed(waveforms, keys=keys), clean, rtol=1e-6)
    assert (rewritten.hits, rewritten.misses) == (3, 0)
    assert not _package_warnings(caplog)


# -- 9. temporary files of killed writers ------------------------------------------------------------------
@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _leave_killed_writer_temporaries(folder, name, pid):
    """What a writer killed mid-export leaves beside ``folder / name``: a temporary file and folder."""
    (folder / f".{name}.{pid}.k3x_9a.tmp").write_bytes(b"half a flatbuffer")
    staged = folder / f".{name}.{pid}.q1w2e3.tmp"
    (staged / "variables").mkdir(parents=True)
    (staged / "saved_model.pb").write_bytes(b"half a SavedModel")
    return {entry.name for entry in folder.iterdir()}


def test_stale_temporaries_of_dead_writers_go_and_live_ones_stay(tmp_path, dead_pid):
    target = tmp_path / "model.tflite"
    stale = _leave_killed_writer_temporaries(tmp_path, target.name, dead_pid)
    live = tmp_path / f".model.tflite.{os.getpid()}.abc123.tmp"  # a concurrent writer, still running
    live.write_bytes(b"in progress")
    unnamed_recent = tmp_path / ".model.tflite.abc123.tmp"  # no pid: only its age tells
    unnamed_recent.write_bytes(b"")
    unnamed_old = tmp_path / ".model.tflite.zz9_8y.tmp"
    unnamed_old.write_bytes(b"")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(unnamed_old, (two_days_ago, two_days_ago))
    others = [tmp_path / f".other.tflite.{dead_pid}.abc123.tmp", tmp_path / "model.tflite.tmp"]
    for other in others:
        other.write_bytes(b"")

    removed = remove_stale_temporaries(target)
    assert {path.name for path in removed} == stale | {unnamed_old.name}
    remaining = {entry.name for entry in tmp_path.iterdir()}
    assert remaining == {live.name, unnamed_recent.name} | {other.name for other in others}


def test_the_next_atomic_write_cleans_what_a_killed_one_left(tmp_path, dead_pid):
    target = tmp_path / "metrics.json"
    _leave_killed_writer_temporaries(tmp_path, target.name, dead_pid)
    atomic_write(target, lambda file: file.write(b"{}"))
    assert [entry.name for entry in tmp_path.iterdir()] == ["metrics.json"]


@pytest.fixture
def system_temp(tmp_path, monkeypatch):
    """The system temporary folder, moved to an empty folder the test can watch."""
    folder = tmp_path / "system_temp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.mark.parametrize("format", ["tflite", "saved_model"])
def test_an_export_works_beside_its_target_and_cleans_a_killed_exports_leftovers(
    tmp_path, system_temp, dead_pid, monkeypatch, format
):
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    out = out_dir / ("model.tflite" if format == "tflite" else "saved_model")
    _leave_killed_writer_temporaries(out_dir, out.name, dead_pid)
    saves = []  # (SavedModel folder, folders in the system temporary folder), at each save
    real_save = tf.saved_model.save

    def watched_save(obj, export_dir, *args, **kwargs):
        saves.append((Path(export_dir), [entry for entry in system_temp.iterdir() if entry.is_dir()]))
        return real_save(obj, export_dir, *args, **kwargs)

    monkeypatch.setattr(tf.saved_model, "save", watched_save)
    export = export_tflite if format == "tflite" else export_saved_model
    export(build_classifier(), labels=LABELS, sample_rate=SAMPLE_RATE, out=out)
    assert saves
    for folder, in_system_temp in saves:
        assert folder.parent == out_dir and folder.name.startswith(f".{out.name}.{os.getpid()}.")
        assert in_system_temp == []  # (TensorFlow's autograph writes generated sources there: files)
    assert [entry.name for entry in out_dir.iterdir()] == [out.name]


# -- 11. long audio in bounded memory ----------------------------------------------------------------------
def _keyword_stream(seconds: float = 12.0) -> np.ndarray:
    stream = background(seconds, seed=3)
    for label, at in (("rise", 2.0), ("fall", 6.5), ("rise", 9.9)):
        stream = plant(stream, chirp(label), at_seconds=at)
    return stream


@pytest.mark.parametrize(
    ("sample_rate", "channels", "subtype"), [(16000, 1, "FLOAT"), (22050, 2, "PCM_16"), (8000, 1, "PCM_24")]
)
def test_blocks_join_into_what_load_audio_decodes(tmp_path, sample_rate, channels, subtype):
    rng = np.random.default_rng(0)
    waveform = 0.3 * rng.standard_normal((round(2.3 * sample_rate), channels))
    path = tmp_path / "long.wav"
    sf.write(path, waveform, sample_rate, subtype=subtype)
    reader = AudioBlockReader(path, sample_rate=16000, block_seconds=0.37)
    blocks = list(reader)
    assert len(blocks) > 5
    joined = np.concatenate(blocks)
    whole = load_audio(path, sample_rate=16000)
    assert joined.dtype == np.float32 and reader.samples_read == len(joined) == len(whole)
    np.testing.assert_allclose(joined, whole, atol=1e-6)


def test_the_reader_never_asks_soundfile_for_more_than_a_block(tmp_path, monkeypatch):
    path = tmp_path / "long.wav"
    sf.write(path, 0.1 * np.random.default_rng(0).standard_normal(50_000), 16000)
    requested = []
    real_read = sf.SoundFile.read

    def read(self, frames=-1, *args, **kwargs):
        requested.append(frames)
        return real_read(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", read)
    reader = AudioBlockReader(path, sample_rate=16000, block_seconds=0.25)
    assert sum(len(block) for block in reader) == 50_000
    assert requested and all(0 < frames <= 4000 for frames in requested)


def test_a_truncated_long_file_fails_after_its_blocks_naming_it(tmp_path):
    path = tmp_path / "cut.wav"
    sf.write(path, 0.1 * np.random.default_rng(0).standard_normal(40_000), 16000, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[:-20_000])
    with pytest.raises(AudioDecodeError, match=r"cut\.wav.*truncated"):
        list(AudioBlockReader(path, block_seconds=0.5))


def test_nan_samples_fail_at_their_block_with_their_position(tmp_path):
    samples = np.zeros(32_000, np.float32)
    samples[20_000] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, samples, 16000, subtype="FLOAT")
    with pytest.raises(AudioDecodeError, match=r"nan\.wav.*first at sample 20000"):
        list(AudioBlockReader(path, block_seconds=0.5))


@pytest.mark.parametrize("stride_seconds", [0.08, 0.1])  # the streaming base's path, and window by window
def test_detection_in_blocks_equals_detection_on_the_whole_file(tmp_path, stride_seconds):
    path = tmp_path / "long.wav"
    sf.write(path, _keyword_stream(), 16000, subtype="FLOAT")
    detector = KeywordDetector(chirp_spotter(), clip_seconds=CLIP_SECONDS, stride_seconds=stride_seconds)
    assert detector.uses_embeddings == (stride_seconds == 0.08)
    whole = load_audio(path, sample_rate=16000)
    reader = AudioBlockReader(path, sample_rate=16000, block_seconds=0.3)
    in_blocks = np.concatenate(list(detector.posteriors_of_blocks(reader, block_windows=7)))
    np.testing.assert_allclose(in_blocks, detector.posteriors(whole), atol=1e-5)

    expected = detector.detect(whole)
    found = detector.detect_blocks(reader, block_windows=7)
    assert [d.label for d in found] == [d.label for d in expected] == ["rise", "fall", "rise"]
    assert [d.start_seconds for d in found] == [d.start_seconds for d in expected]
    np.testing.assert_allclose([d.score for d in found], [d.score for d in expected], atol=1e-5)


@pytest.mark.parametrize("seconds", [0.5, 2.0, 2.08, 2.5])  # shorter than a window, exactly one, a few
def test_detection_in_blocks_keeps_every_window_of_short_audio(seconds):
    detector = KeywordDetector(chirp_spotter(), clip_seconds=CLIP_SECONDS)
    stream = background(seconds, seed=1)
    blocks = np.array_split(stream, 3)
    in_blocks = np.concatenate(list(detector.posteriors_of_blocks(blocks, block_windows=2)))
    np.testing.assert_allclose(in_blocks, detector.posteriors(stream), atol=1e-5)


def test_background_excerpts_read_in_blocks_are_those_of_the_joined_and_looped_negatives(tmp_path):
    files = {tmp_path / "a.wav": background(0.7, seed=1), tmp_path / "b.wav": background(0.4, seed=2)}
    for path, waveform in files.items():
        write_wav(path, waveform)
    joined = np.concatenate([load_audio(path) for path in files])
    looped = np.tile(joined, 4)
    starts, length = [0, 5000, len(joined) - 1, 11_999], 2 * len(joined) + 123  # excerpts that wrap
    lengths = {path: len(waveform) for path, waveform in files.items()}
    excerpts = stream_evaluation._background_excerpts(lengths, starts, length=length, sample_rate=16000)
    np.testing.assert_array_equal(excerpts, np.stack([looped[start : start + length] for start in starts]))


def test_evaluate_stream_reads_negatives_in_blocks_with_the_same_result(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    for label in KEYWORDS:
        for i in range(2):
            clip = plant(background(0.8, seed=i), chirp(label, level=rng.uniform(0.05, 0.3)), at_seconds=0.1)
            write_wav(tmp_path / "positives" / label / f"{i}.wav", clip)
    write_wav(tmp_path / "negatives" / "a.wav", background(1.3, seed=30, level=0.2))
    write_wav(
        tmp_path / "negatives" / "b.wav", plant(background(4.0, seed=32), chirp("fall"), at_seconds=2.0)
    )
    detector = KeywordDetector(chirp_spotter(), clip_seconds=CLIP_SECONDS)

    def evaluate():
        return evaluate_stream(
            detector, positives=tmp_path / "positives", negatives=tmp_path / "negatives", snr_db=0.0
        ).report

    whole = evaluate()
    monkeypatch.setattr(stream_evaluation, "_NEGATIVE_BLOCK_SECONDS", 0.3)
    in_blocks = evaluate()
    assert in_blocks.negative_hours == whole.negative_hours == pytest.approx(5.3 / 3600)
    assert whole.false_accepts[0] > 0  # the planted keyword fires at low thresholds
    np.testing.assert_array_equal(in_blocks.false_accepts, whole.false_accepts)
    np.testing.assert_array_equal(in_blocks.false_reject_rate, whole.false_reject_rate)


_PEAK_MEMORY_SCRIPT = """
import resource, sys
from audio_transfer.cli.main import main
code = main(["detect", sys.argv[1], sys.argv[2], "--json"])
print("PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _detect_peak_kilobytes(run_dir, audio) -> int:
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_MEMORY_SCRIPT, str(run_dir), str(audio)],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    peaks = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("PEAK_KB")]
    assert peaks, result.stderr[-2000:]
    return int(peaks[0])


def _write_noise_wav(path, minutes: int) -> None:
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", samplerate=16000, channels=1, subtype="PCM_16") as file:
        for _ in range(minutes):
            file.write((0.01 * rng.standard_normal(16000 * 60)).astype(np.float32))


@pytest.mark.slow
def test_detect_peak_memory_does_not_grow_with_the_length_of_the_audio(tmp_path):
    run_dir = save_run(chirp_spotter(), tmp_path / "run")
    short, long = tmp_path / "2min.wav", tmp_path / "20min.wav"
    _write_noise_wav(short, 2)
    _write_noise_wav(long, 20)
    growth_mb = (_detect_peak_kilobytes(run_dir, long) - _detect_peak_kilobytes(run_dir, short)) / 1024
    # Whole-file decoding took about 10 MB per minute: 18 more minutes would add some 170 MB.
    assert growth_mb < 25, f"peak memory grew {growth_mb:.0f} MB from 2 to 20 minutes of audio"

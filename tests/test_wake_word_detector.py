"""The live detector: chunks of any size give the scores and detections of `detect` on the whole audio."""

import json

import numpy as np
import pytest
from streaming_support import CLIP_SECONDS, SAMPLE_RATE, background, chirp, plant, save_run
from tiny_streaming_base import HOP_SAMPLES, tiny_spotter

from audio_transfer.errors import ConfigError, InputShapeError
from audio_transfer.streaming import (
    STREAMING_FILE,
    DetectionSettings,
    KeywordDetector,
    WakeWordDetector,
    export_streaming_tflite,
)

SETTINGS = DetectionSettings(threshold=0.5, smoothing_seconds=0.1, refractory_seconds=0.5)
CHUNK_SIZES = (1, 333, 1280, 5000)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run_dir = save_run(tiny_spotter(), tmp_path_factory.mktemp("wake") / "run")
    SETTINGS.write(run_dir / STREAMING_FILE)
    return run_dir


@pytest.fixture(scope="module")
def tflite_path(tmp_path_factory):
    out = tmp_path_factory.mktemp("wake_tflite") / "wake.tflite"
    return export_streaming_tflite(tiny_spotter(), clip_seconds=CLIP_SECONDS, out=out, settings=SETTINGS).path


@pytest.fixture(scope="module")
def expected():
    """``detect`` on the whole stream, stride one hop: posteriors and detections."""
    detector = KeywordDetector(
        tiny_spotter(), clip_seconds=CLIP_SECONDS, stride_seconds=HOP_SAMPLES / SAMPLE_RATE, settings=SETTINGS
    )
    audio = _stream()
    return detector.posteriors(audio), detector.detect(audio)


def _stream() -> np.ndarray:
    """Two chirps, a pause, the first again (the refractory period and smoothing both matter)."""
    audio = plant(background(4.5, seed=5), chirp("rise"), at_seconds=0.8)
    audio = plant(audio, chirp("fall"), at_seconds=2.0)
    return plant(audio, chirp("rise"), at_seconds=3.3)


def _chunks(audio: np.ndarray, size: int, *, seed: int):
    """``audio`` in chunks around ``size`` samples (random lengths from 1 to 2 * size, 1 stays 1)."""
    rng = np.random.default_rng(seed)
    start = 0
    while start < len(audio):
        length = 1 if size == 1 else int(rng.integers(1, 2 * size))
        yield audio[start : start + length]
        start += length


def _listen(detector: WakeWordDetector, chunks):
    detections, posteriors = [], []
    for chunk in chunks:
        detections += detector.process(chunk)
        posteriors.append(detector.latest_posteriors)
    return np.concatenate(posteriors), detections


def _assert_same(live, expected):
    (live_posteriors, live_detections), (posteriors, detections) = live, expected
    assert live_posteriors.shape == posteriors.shape
    np.testing.assert_allclose(live_posteriors, posteriors, atol=1e-5)
    assert len(detections) >= 3  # refractory periods decide between them: the comparison can fail
    assert [(d.label, d.start_seconds, d.end_seconds) for d in live_detections] == [
        (d.label, d.start_seconds, d.end_seconds) for d in detections
    ]
    np.testing.assert_allclose([d.score for d in live_detections], [d.score for d in detections], atol=1e-5)


@pytest.mark.parametrize("size", CHUNK_SIZES)
def test_run_folder_in_chunks_of_any_size_equals_detect(run_dir, expected, size):
    detector = WakeWordDetector.from_path(run_dir)
    assert detector.settings == SETTINGS and detector.hop_samples == HOP_SAMPLES
    _assert_same(_listen(detector, _chunks(_stream(), size, seed=size)), expected)


@pytest.mark.parametrize("size", CHUNK_SIZES)
def test_streaming_tflite_in_chunks_of_any_size_equals_detect(tflite_path, expected, size):
    detector = WakeWordDetector.from_path(tflite_path)
    assert detector.settings.threshold == SETTINGS.threshold
    _assert_same(_listen(detector, _chunks(_stream(), size, seed=size)), expected)


def test_int16_chunks_are_scaled_and_reset_starts_a_new_stream(tflite_path):
    audio = np.round(np.clip(_stream(), -1, 1 - 2**-15) * 32768).astype(np.int16)
    detector = WakeWordDetector.from_path(tflite_path)
    as_int16 = _listen(detector, _chunks(audio, 1280, seed=1))
    detector.reset()
    assert detector.seconds_heard == 0
    as_float = _listen(detector, _chunks(audio.astype(np.float32) / 32768, 777, seed=2))
    np.testing.assert_allclose(as_int16[0], as_float[0], atol=1e-6)
    assert [d.start_seconds for d in as_int16[1]] == [d.start_seconds for d in as_float[1]]
    assert as_int16[1] and detector.seconds_heard == len(audio) / SAMPLE_RATE


def test_memory_stays_bounded(tflite_path):
    detector = WakeWordDetector.from_path(tflite_path)
    detector.process(np.zeros(SAMPLE_RATE * 3 + 5, np.float32))
    assert detector._filled == 5 and len(detector._recent) <= detector._smoothing
    assert len(detector.latest_posteriors) == 3 * SAMPLE_RATE // HOP_SAMPLES - detector.warmup_hops
    assert detector.process(np.zeros(0, np.float32)) == [] and len(detector.latest_posteriors) == 0


@pytest.mark.parametrize(
    ("chunk", "message"),
    [
        (np.zeros((2, 320), np.float32), r"\(samples,\) numpy array .* shape \(2, 320\)"),
        ([0.0] * 320, r"received list"),
        (np.zeros(320, np.int32), r"int16 or float32 samples, received dtype int32"),
    ],
)
def test_bad_chunks_are_refused(tflite_path, chunk, message):
    with pytest.raises(InputShapeError, match=message):
        WakeWordDetector.from_path(tflite_path).process(chunk)


def test_a_tflite_file_without_its_description_is_refused(tflite_path, tmp_path):
    alone = tmp_path / "alone.tflite"
    alone.write_bytes(tflite_path.read_bytes())
    with pytest.raises(ConfigError, match=r"alone\.tflite\.streaming\.json.*--streaming"):
        WakeWordDetector.from_path(alone)
    description = json.loads((tflite_path.parent / "wake.tflite.streaming.json").read_text())
    assert description["window_samples"] == round((CLIP_SECONDS + 0.2) * SAMPLE_RATE)

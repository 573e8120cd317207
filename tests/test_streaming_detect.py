"""Keyword detection in long audio: KeywordDetector, evaluate_stream, the detect and evaluate-stream verbs."""

import functools
import json

import keras
import numpy as np
import pytest
from streaming_support import (
    CLIP_SECONDS,
    KEYWORDS,
    SAMPLE_RATE,
    background,
    chirp,
    chirp_spotter,
    fit_head,
    plant,
    save_run,
    window_posteriors,
    write_wav,
)
from tiny_conv_base import tiny_base

from audio_transfer.audio import load_audio
from audio_transfer.cli.main import main
from audio_transfer.errors import ConfigError, DatasetError
from audio_transfer.streaming import STREAMING_FILE, DetectionSettings, KeywordDetector, evaluate_stream
from audio_transfer.tasks import KeywordSpotter, SpeakerVerifier

PLANTED = (("rise", 3.0), ("fall", 8.0), ("rise", 14.0), ("fall", 17.3))


def _stream(planted=PLANTED, *, seconds=20.0, seed=5):
    stream = background(seconds, seed=seed)
    for label, at in planted:
        stream = plant(stream, chirp(label), at_seconds=at)
    return stream


def _assert_found_planted(detections, planted):
    assert [d.label for d in detections] == [label for label, _ in planted]
    for detection, (_, at) in zip(detections, planted, strict=True):
        middle = at + 0.25  # the chirp's middle lies inside the window that fired
        assert detection.start_seconds <= middle <= detection.end_seconds, (detection, at)
        assert detection.end_seconds - detection.start_seconds == pytest.approx(2.0)  # clip and context
        assert detection.score >= 0.5


def test_detect_finds_planted_keywords_at_their_times():
    detector = KeywordDetector(chirp_spotter(), clip_seconds=CLIP_SECONDS)
    assert detector.uses_embeddings
    assert detector.keywords == KEYWORDS
    _assert_found_planted(detector.detect(_stream()), PLANTED)


@pytest.mark.parametrize("context_seconds", [0.5, 0.0])
def test_hop_embeddings_give_the_spotters_own_scores_on_every_window(context_seconds):
    spotter = chirp_spotter()
    if context_seconds != spotter.context_seconds:  # the same base and head weights, another context
        other = KeywordSpotter(spotter.base, spotter.labels, context_seconds=context_seconds)
        other.head.set_weights(spotter.head.get_weights())
        spotter = other
    stream = _stream(seconds=5.0, planted=(("rise", 2.0),))
    detector = KeywordDetector(spotter, clip_seconds=CLIP_SECONDS)
    fast = detector.posteriors(stream)
    expected = window_posteriors(spotter, stream, stride_samples=1280)
    assert fast.shape == expected.shape == (detector.num_windows(len(stream)), 3)
    # The audio stays within the front-end's 80 dB range, so the per-hop log-mel floor never binds.
    np.testing.assert_allclose(fast, expected, atol=1e-4)
    if context_seconds == 0:  # without context a window is just the clip: the task model itself
        clips = np.stack([stream[s : s + SAMPLE_RATE] for s in range(0, len(stream) - SAMPLE_RATE + 1, 1280)])
        np.testing.assert_allclose(fast, spotter.predict_waveforms(clips), atol=1e-4)


def test_stride_of_two_hops_keeps_every_other_window_and_batches_streams():
    spotter = chirp_spotter()
    stream = _stream(seconds=6.0, planted=(("fall", 2.0),))
    every_hop = KeywordDetector(spotter, clip_seconds=CLIP_SECONDS).posteriors(stream)
    every_other = KeywordDetector(spotter, clip_seconds=CLIP_SECONDS, stride_seconds=0.16)
    assert every_other.uses_embeddings
    np.testing.assert_allclose(every_other.posteriors(stream), every_hop[::2], atol=1e-5)
    batch = every_other.posteriors(np.stack([stream, stream[::-1].copy()]))
    np.testing.assert_allclose(batch[0], every_hop[::2], atol=1e-5)


def test_audio_shorter_than_a_window_is_one_padded_window():
    detector = KeywordDetector(chirp_spotter(), clip_seconds=CLIP_SECONDS)
    short = plant(background(1.5, seed=1), chirp("rise"), at_seconds=0.6)  # the window is 2 s
    assert detector.posteriors(short).shape == (1, 3)
    assert [d.label for d in detector.detect(short)] == ["rise"]


def test_other_bases_run_base_and_head_on_every_window(rng):
    keras.utils.set_random_seed(1)
    spotter = KeywordSpotter(tiny_base(), ["_silence_", "beep", "boop"], context_seconds=0.0)
    detector = KeywordDetector(spotter, clip_seconds=0.5, stride_seconds=0.1)
    assert not detector.uses_embeddings
    stream = rng.normal(scale=0.1, size=16000 * 2).astype(np.float32)
    clip, stride = 8000, 1600
    windows = np.stack([stream[s : s + clip] for s in range(0, len(stream) - clip + 1, stride)])
    np.testing.assert_allclose(detector.posteriors(stream), spotter.predict_waveforms(windows), atol=1e-6)


def test_windows_with_context_span_the_clip_and_its_context_and_block_for_their_length():
    spotter = chirp_spotter()
    assert spotter.context_seconds == 0.5
    detector = KeywordDetector(spotter, clip_seconds=CLIP_SECONDS)
    assert detector.window_seconds == 2.0
    np.testing.assert_allclose(detector.window_starts_seconds(3 * SAMPLE_RATE), 0.08 * np.arange(13))
    assert detector.refractory_seconds(DetectionSettings()) == 2.0
    assert detector.refractory_windows(DetectionSettings(refractory_seconds=0.5)) == 7


def test_detector_refuses_models_that_cannot_spot_keywords():
    with pytest.raises(ConfigError, match="classifier"):
        KeywordDetector(SpeakerVerifier(tiny_base()), clip_seconds=1.0)
    with pytest.raises(ConfigError, match="no keyword"):
        KeywordDetector(KeywordSpotter(tiny_base(), ["_silence_", "_unknown_"]), clip_seconds=1.0)
    with pytest.raises(ConfigError, match="stride_seconds"):
        KeywordDetector(chirp_spotter(), clip_seconds=1.0, stride_seconds=0.0)


@pytest.fixture(scope="module")
def stream_data(tmp_path_factory):
    """Keyword clips (one folder per keyword, plus folders that are not keywords) and negative audio."""
    root = tmp_path_factory.mktemp("stream_data")
    rng = np.random.default_rng(3)
    for label in KEYWORDS:
        for i in range(4):
            clip = plant(
                background(0.8, seed=10 + i), chirp(label, level=rng.uniform(0.2, 0.5)), at_seconds=0.15
            )
            write_wav(root / "positives" / label / f"{label}_{i}.wav", clip)
    write_wav(root / "positives" / "_background_noise_" / "hum.wav", background(3.0, seed=20))
    write_wav(root / "positives" / "other" / "other_0.wav", background(1.0, seed=21))
    write_wav(root / "negatives" / "noise_a.wav", background(40.0, seed=30))
    write_wav(root / "negatives" / "more" / "noise_b.wav", background(20.0, seed=31, level=0.03))
    planted = (("rise", 5.0), ("fall", 25.0))
    write_wav(root / "with_keywords.wav", _stream(planted, seconds=30.0, seed=32))
    return root


def test_evaluate_stream_measures_false_rejects_and_false_accepts_per_hour(stream_data, tmp_path):
    detector = KeywordDetector(chirp_spotter(), clip_seconds=CLIP_SECONDS)
    evaluation = evaluate_stream(
        detector,
        positives=stream_data / "positives",
        negatives=stream_data / "negatives",
        target_fa_per_hour=1.0,
        thresholds=[0.2, 0.5, 0.8, 0.999],
    )
    report = evaluation.report
    assert report.num_positives == 8
    assert report.negative_hours == pytest.approx(60.0 / 3600)
    assert {s.path.split("/")[-1] for s in evaluation.skipped} == {"other"}
    assert report.false_reject_rate[1] == 0.0  # every chirp fires at 0.5
    assert list(report.false_accepts) == [0, 0, 0, 0]  # plain noise never does
    assert np.all(np.diff(report.false_reject_rate) >= 0)
    # The fewest misses within the budget, and of those the highest threshold.
    assert evaluation.target_met and evaluation.settings.threshold == max(
        t for t, frr in zip(report.thresholds, report.false_reject_rate, strict=True) if frr == 0.0
    )
    assert evaluation.settings.target_fa_per_hour == 1.0
    assert evaluation.settings.measured["false_reject_rate"] == 0.0

    written = evaluation.save(tmp_path / "run", out_dir=tmp_path / "report")
    assert DetectionSettings.read(tmp_path / "run" / STREAMING_FILE) == evaluation.settings
    assert written["det_curve"].read_bytes().startswith(b"\x89PNG")
    assert json.loads(written["report"].read_text())["chosen"]["threshold"] == evaluation.settings.threshold


def test_keywords_in_the_negatives_count_as_false_accepts(stream_data):
    detector = KeywordDetector(chirp_spotter(), clip_seconds=CLIP_SECONDS)
    evaluation = evaluate_stream(
        detector,
        positives=stream_data / "positives",
        negatives=stream_data / "with_keywords.wav",
        target_fa_per_hour=0.0,
        thresholds=[0.5, 0.9999999],
    )
    assert evaluation.report.false_accepts[0] == 2
    assert evaluation.report.false_accepts_per_hour[0] == pytest.approx(2 / (30.0 / 3600))
    assert evaluation.settings.threshold == 0.9999999 or not evaluation.target_met


def test_threshold_is_chosen_on_validation_audio_and_short_negatives_are_flagged(stream_data):
    detector = KeywordDetector(chirp_spotter(), clip_seconds=CLIP_SECONDS)
    measure = functools.partial(
        evaluate_stream,
        detector,
        positives=stream_data / "positives",
        negatives=stream_data / "negatives",
        target_fa_per_hour=1.0,
        thresholds=[0.5, 0.9999999],
    )

    on_itself = measure()
    # The validation negatives hold two keywords: 0.5 fires on them, so only the top threshold is kept,
    # although it misses clips that 0.5 catches on the evaluated audio.
    chosen_elsewhere = measure(
        validation_positives=stream_data / "positives",
        validation_negatives=stream_data / "with_keywords.wav",
    )

    assert on_itself.chosen_on == "evaluated audio" and on_itself.settings.threshold == 0.5
    assert "optimistic" in on_itself.to_text()
    assert chosen_elsewhere.chosen_on == "validation" and chosen_elsewhere.settings.threshold == 0.9999999
    assert chosen_elsewhere.validation_report.false_accepts[0] == 2
    data = chosen_elsewhere.to_dict()
    assert data["threshold_chosen_on"] == "validation"
    assert data["chosen"] == chosen_elsewhere.report.point(1)  # the evaluated audio's figures at it
    assert data["validation"]["negatives"] == [str(stream_data / "with_keywords.wav")]
    # 60 s and 30 s of negatives cannot resolve 1 false accept per hour: both are named, with the need.
    assert len(chosen_elsewhere.warnings) == 2
    assert "evaluated negative audio lasts 0.02 h" in chosen_elsewhere.warnings[0]
    assert "at least 3.0 h" in chosen_elsewhere.warnings[0]
    assert "validation negative audio lasts 0.01 h" in chosen_elsewhere.warnings[1]
    with pytest.raises(ConfigError, match="both"):
        measure(validation_positives=stream_data / "positives")


def test_evaluate_stream_without_keyword_clips_says_which_keywords_it_wanted(stream_data, tmp_path):
    write_wav(tmp_path / "positives" / "other" / "a.wav", background(1.0, seed=1))
    detector = KeywordDetector(chirp_spotter(), clip_seconds=CLIP_SECONDS)
    with pytest.raises(DatasetError, match="rise, fall"):
        evaluate_stream(detector, positives=tmp_path / "positives", negatives=stream_data / "negatives")


def _run_cli(capsys, *argv):
    code = main([*map(str, argv), "--json"])
    return code, json.loads(capsys.readouterr().out)


def _evaluate_stream(capsys, run_dir, stream_data, *negatives_and_flags):
    """``evaluate-stream RUN_DIR --positives <stream_data>/positives --negatives NEGATIVES... [FLAGS]``."""
    return _run_cli(
        capsys,
        "evaluate-stream",
        run_dir,
        "--positives",
        stream_data / "positives",
        "--negatives",
        *negatives_and_flags,
    )


def test_cli_evaluate_stream_saves_the_threshold_that_detect_then_uses(stream_data, tmp_path, capsys):
    run_dir = save_run(chirp_spotter(), tmp_path / "run")
    long_audio = write_wav(tmp_path / "long.wav", _stream())

    code, data = _run_cli(capsys, "detect", run_dir, long_audio)
    assert code == 0
    assert data["settings_from"] == "defaults" and data["threshold"] == 0.5
    assert [
        (d["label"], d["end_seconds"] > at) for d, (_, at) in zip(data["detections"], PLANTED, strict=True)
    ] == [(label, True) for label, _ in PLANTED]
    assert data["duration_seconds"] == pytest.approx(20.0)

    negatives = (stream_data / "negatives" / "noise_a.wav", stream_data / "negatives" / "more")
    code, data = _evaluate_stream(
        capsys, run_dir, stream_data, *negatives, "--target-fa-per-hour", "2", "--smoothing-seconds", "0.16"
    )
    assert code == 0
    assert data["num_positives"] == 8 and data["target_met"]
    assert len(data["curve"]) == 101
    chosen = data["chosen"]
    assert chosen["false_accepts_per_hour"] <= 2.0
    assert set(data["keyword_false_reject_rates"]) == set(KEYWORDS)
    saved = json.loads((run_dir / STREAMING_FILE).read_text())
    assert saved["threshold"] == chosen["threshold"] and saved["smoothing_seconds"] == 0.16
    assert (run_dir / "streaming_det.png").is_file() and (run_dir / "streaming_report.json").is_file()

    code, data = _run_cli(capsys, "detect", run_dir, long_audio)
    assert data["settings_from"] == STREAMING_FILE
    assert (data["threshold"], data["smoothing_seconds"]) == (chosen["threshold"], 0.16)
    code, data = _run_cli(
        capsys, "detect", run_dir, long_audio, "--threshold", "0.999999", "--refractory-seconds", "2"
    )
    assert (data["threshold"], data["refractory_seconds"]) == (0.999999, 2.0)


def test_cli_evaluate_stream_no_save_leaves_the_model_folder_alone(stream_data, tmp_path, capsys):
    run_dir = save_run(chirp_spotter(), tmp_path / "run")
    before = sorted(p.name for p in run_dir.iterdir())
    code, data = _evaluate_stream(
        capsys, run_dir, stream_data, stream_data / "negatives", "--no-save", "--out", tmp_path / "report"
    )
    assert code == 0 and sorted(p.name for p in run_dir.iterdir()) == before
    assert set(data["written"]) == {"det_curve", "report"}


def test_cli_evaluate_stream_chooses_on_validation_audio(stream_data, tmp_path, capsys):
    run_dir = save_run(chirp_spotter(), tmp_path / "run")
    code, data = _evaluate_stream(
        capsys,
        run_dir,
        stream_data,
        stream_data / "negatives",
        "--validation-positives",
        stream_data / "positives",
        "--validation-negatives",
        stream_data / "with_keywords.wav",
        "--no-save",
    )
    assert code == 0
    assert data["threshold_chosen_on"] == "validation"
    assert data["validation"]["chosen"]["threshold"] == data["chosen"]["threshold"]
    assert [w.split(":")[0] for w in data["warnings"]] == [
        "the evaluated negative audio lasts 0.02 h",
        "the validation negative audio lasts 0.01 h",
    ]


def test_cli_detect_on_a_folder_that_is_no_run_fails_with_json_error(tmp_path, capsys):
    long_audio = write_wav(tmp_path / "long.wav", background(2.0, seed=0))
    code, data = _run_cli(capsys, "detect", tmp_path, long_audio)
    assert code == 2 and "model" in data["message"]


@pytest.fixture(scope="module")
def speech_spotter(speech_commands_dir):
    """A spotter for "yes" and "no" (and _unknown_, _silence_) fitted on the shared Speech Commands clips."""
    from audio_transfer.bases import load_base
    from audio_transfer.data import decode_examples, load_labelled_audio

    data = load_labelled_audio(
        speech_commands_dir, keywords=["yes", "no"], unknown_fraction=0.3, silence_fraction=0.1
    )
    clips = decode_examples(data.examples, sample_rate=SAMPLE_RATE, clip_seconds=CLIP_SECONDS)
    spotter = KeywordSpotter(load_base("speech_embedding"), data.labels, dropout=0.0, context_seconds=0.5)
    fit_head(spotter, clips.waveforms, clips.label_indices(data.labels), epochs=40)
    return spotter, clips


def test_detect_finds_spoken_keywords_spliced_into_background_noise(speech_spotter, speech_commands_dir):
    spotter, clips = speech_spotter
    noise = load_audio(speech_commands_dir / "_background_noise_" / "running_tap.wav")[: 16 * SAMPLE_RATE]
    stream = 0.2 * noise
    planted = []
    for at, label in ((2.0, "yes"), (7.0, "no"), (12.0, "yes")):
        index = clips.labels.index(label) + len(planted)  # a different clip of the word each time
        assert clips.labels[index] == label
        stream = plant(stream, clips.waveforms[index], at_seconds=at)
        planted.append((label, at))
    detector = KeywordDetector(spotter, clip_seconds=CLIP_SECONDS, settings=DetectionSettings(threshold=0.7))
    detections = detector.detect(stream)
    assert [d.label for d in detections] == [label for label, _ in planted]
    for detection, (_, at) in zip(detections, planted, strict=True):
        assert detection.start_seconds <= at + 0.5 <= detection.end_seconds, detection  # the word's middle

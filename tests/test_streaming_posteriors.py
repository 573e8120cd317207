"""Posterior handling (smoothing, threshold, refractory period), detection settings and the keyword
detection report, on hand-made numbers: no model."""

import json

import numpy as np
import pytest

from audio_transfer.errors import ConfigError, InputShapeError
from audio_transfer.evaluation import KeywordDetectionReport, plot_false_accept_curve
from audio_transfer.streaming import STREAMING_FILE, DetectionSettings, pick_detections, smooth_posteriors


def test_smoothing_is_a_trailing_mean_that_averages_what_exists_at_the_start():
    posteriors = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    smoothed = smooth_posteriors(posteriors, window=3)
    expected = np.array(
        [[0.0, 1.0], [0.5, 0.5], [2 / 3, 1 / 3], [2 / 3, 1 / 3], [1.5 / 3, 1.5 / 3]],
    )
    np.testing.assert_allclose(smoothed, expected)
    np.testing.assert_array_equal(smooth_posteriors(posteriors, window=1), posteriors)


def test_smoothing_a_short_spike_keeps_it_below_a_threshold_that_a_sustained_keyword_passes():
    spike = np.zeros((10, 1))
    spike[4] = 1.0
    sustained = np.zeros((10, 1))
    sustained[4:8] = 0.9
    assert smooth_posteriors(spike, window=3).max() < 0.5
    assert smooth_posteriors(sustained, window=3).max() == pytest.approx(0.9)


@pytest.mark.parametrize("window", [0, -1, 1.5])
def test_smoothing_window_must_be_a_positive_count(window):
    with pytest.raises(ConfigError, match="positive number of windows"):
        smooth_posteriors(np.zeros((3, 2)), window=window)


def test_smoothing_rejects_one_dimensional_scores():
    with pytest.raises(InputShapeError, match=r"\(windows, classes\)"):
        smooth_posteriors(np.zeros(5), window=2)


def test_refractory_period_suppresses_repeats_then_lets_the_next_keyword_fire():
    # columns: _silence_, yes, no
    scores = np.array(
        [
            [1.0, 0.0, 0.0],
            [0.1, 0.9, 0.0],  # yes fires
            [0.1, 0.8, 0.1],  # refractory
            [0.1, 0.1, 0.8],  # refractory: "no" may not fire either
            [0.1, 0.1, 0.8],  # 3 rows after the detection: fires
            [0.1, 0.9, 0.0],  # refractory again
        ]
    )
    detections = pick_detections(scores, threshold=0.5, refractory=3, classes=[1, 2])
    assert detections == [(1, 1, 0.9), (4, 2, 0.8)]


def test_refractory_of_one_fires_on_every_row_above_threshold():
    scores = np.array([[0.0, 0.6], [0.0, 0.7], [0.0, 0.2], [0.0, 0.55]])
    assert [row for row, _, _ in pick_detections(scores, threshold=0.5, refractory=1, classes=[1])] == [
        0,
        1,
        3,
    ]


def test_threshold_is_inclusive_and_non_keyword_columns_never_fire():
    scores = np.array([[0.99, 0.5], [0.99, 0.49]])
    assert pick_detections(scores, threshold=0.5, refractory=1, classes=[1]) == [(0, 1, 0.5)]
    assert pick_detections(scores, threshold=0.5, refractory=1, classes=[]) == []


def test_the_best_keyword_of_a_row_fires():
    scores = np.array([[0.0, 0.6, 0.7]])
    assert pick_detections(scores, threshold=0.5, refractory=1, classes=[1, 2]) == [(0, 2, 0.7)]


def test_refractory_must_be_at_least_one_row():
    with pytest.raises(ConfigError, match="at least 1 window"):
        pick_detections(np.zeros((2, 2)), threshold=0.5, refractory=0, classes=[1])


def test_detection_settings_round_trip_and_for_model_falls_back_to_defaults(tmp_path):
    assert DetectionSettings.for_model(tmp_path) == DetectionSettings()
    settings = DetectionSettings(
        threshold=0.83, smoothing_seconds=0.4, target_fa_per_hour=0.5, measured={"false_reject_rate": 0.1}
    )
    settings.write(tmp_path / STREAMING_FILE)
    assert json.loads((tmp_path / STREAMING_FILE).read_text())["threshold"] == 0.83
    assert DetectionSettings.for_model(tmp_path) == settings
    assert settings.replace(threshold=None, smoothing_seconds=0.0).smoothing_seconds == 0.0
    assert settings.replace(threshold=None).threshold == 0.83


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
        ({"refractory_seconds": -1}, "refr"),
    ],
)
def test_detection_settings_refuse_values_out_of_range(changes, message):
    with pytest.raises(ConfigError, match=message):
        DetectionSettings(**changes)


def test_unreadable_streaming_file_names_itself(tmp_path):
    (tmp_path / STREAMING_FILE).write_text("{not json")
    with pytest.raises(ConfigError, match=STREAMING_FILE):
        DetectionSettings.for_model(tmp_path)


def _report():
    thresholds = np.array([0.3, 0.5, 0.7, 0.9])
    # 4 positives: detected at low thresholds, missed at high ones.
    detected = np.array(
        [
            [True, True, True, False],
            [True, True, False, False],
            [True, True, True, True],
            [True, False, False, False],
        ]
    )
    false_accepts = np.array([8, 3, 1, 0])
    return KeywordDetectionReport(
        thresholds,
        detected,
        false_accepts,
        negative_seconds=7200.0,
        positive_labels=("yes", "yes", "no", "no"),
    )


def test_report_rates_and_threshold_choice():
    report = _report()
    np.testing.assert_allclose(report.false_reject_rate, [0.0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(report.false_accepts_per_hour, [4.0, 1.5, 0.5, 0.0])
    assert report.threshold_index(1.5) == 1  # the fewest false rejects within budget
    assert report.threshold_index(0.0) == 3
    assert report.threshold_index(100.0) == 0
    assert report.keyword_false_reject_rates(2) == {"no": 0.5, "yes": 0.5}
    curve = report.to_dict()["curve"]
    assert curve[1] == {
        "threshold": 0.5,
        "false_reject_rate": 0.25,
        "false_accepts": 3,
        "false_accepts_per_hour": 1.5,
    }


def test_report_choice_is_none_when_no_threshold_is_within_the_target():
    report = KeywordDetectionReport(
        np.array([0.5, 0.9]), np.ones((2, 2), bool), np.array([5, 2]), negative_seconds=3600.0
    )
    assert report.threshold_index(1.0) is None


def test_report_checks_shapes():
    with pytest.raises(InputShapeError, match="detected"):
        KeywordDetectionReport(
            np.array([0.5, 0.9]), np.ones((2, 3), bool), np.array([1, 0]), negative_seconds=1.0
        )
    with pytest.raises(ConfigError, match="increasing"):
        KeywordDetectionReport(
            np.array([0.9, 0.5]), np.ones((2, 2), bool), np.array([1, 0]), negative_seconds=1.0
        )


def test_det_curve_png_is_written(tmp_path):
    path = plot_false_accept_curve(_report(), tmp_path / "det.png", chosen_index=1, target_fa_per_hour=1.5)
    assert path.read_bytes().startswith(b"\x89PNG")
    assert not [p for p in tmp_path.iterdir() if p.name != "det.png"]  # no temporary file left

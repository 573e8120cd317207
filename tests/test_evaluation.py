"""Evaluation metrics against hand-computed examples, scikit-learn and known Gaussian error rates."""

from __future__ import annotations

import json
import warnings
from statistics import NormalDist

import matplotlib.image
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio_transfer.errors import ConfigError, InputShapeError
from audio_transfer.evaluation import (
    ClassificationReport,
    classification_metrics,
    cosine_scores,
    plot_confusion_matrix,
    plot_det_curve,
    trial_pairs,
    verification_metrics,
    write_report,
)
from audio_transfer.evaluation import trials as trials_module

PHI = NormalDist().cdf


@st.composite
def predictions(draw, min_labels: int = 1):
    """(num_labels, y_true, y_pred) with indices that may leave some classes absent from either side."""
    num_labels = draw(st.integers(min_labels, 6))
    size = draw(st.integers(1, 60))
    indices = st.lists(st.integers(0, num_labels - 1), min_size=size, max_size=size)
    return num_labels, np.array(draw(indices)), np.array(draw(indices))


@st.composite
def trials(draw):
    """(scores, same) with at least one target and one non-target; scores often tied."""
    size = draw(st.integers(2, 80))
    same = draw(st.lists(st.booleans(), min_size=size, max_size=size).filter(lambda s: 0 < sum(s) < len(s)))
    values = st.integers(-5, 5).map(float) if draw(st.booleans()) else st.floats(-10, 10, width=32)
    scores = draw(st.lists(values, min_size=size, max_size=size))
    return np.array(scores), np.array(same)


def _gaussian_trials(separation: float, num_each: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Targets ~ N(+separation, 1), non-targets ~ N(−separation, 1): FAR = FRR = Φ(−separation) at 0."""
    rng = np.random.default_rng(seed)
    scores = np.r_[rng.normal(separation, 1.0, num_each), rng.normal(-separation, 1.0, num_each)]
    return scores, np.r_[np.ones(num_each, bool), np.zeros(num_each, bool)]


def _read_png(path) -> np.ndarray:
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert image.shape[0] > 200 and image.shape[1] > 200
    assert image[..., :3].std() > 0.01, "the figure is blank"
    return image


# -- classification ---------------------------------------------------------------------------------
def test_classification_hand_computed_with_a_class_absent_from_both_sides():
    report = classification_metrics([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2], labels=["a", "b", "c", "d"])
    np.testing.assert_array_equal(
        report.confusion_matrix, [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    )
    assert report.accuracy == pytest.approx(4 / 6)
    np.testing.assert_allclose(report.precision, [1, 1 / 2, 1 / 2, 0])
    np.testing.assert_allclose(report.recall, [2 / 3, 1 / 2, 1, 0])
    np.testing.assert_allclose(report.f1, [0.8, 0.5, 2 / 3, 0])
    np.testing.assert_array_equal(report.support, [3, 2, 1, 0])
    assert report.balanced_accuracy == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert report.macro_f1 == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert report.most_confused() == [("a", "b", 1), ("b", "c", 1)]


def test_class_predicted_but_absent_from_truth_scores_zero_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = classification_metrics([0, 0], [0, 1], labels=["yes", "no"])
    assert report.per_class["no"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert report.balanced_accuracy == 0.5  # only "yes" is in the truth
    assert report.macro_f1 == pytest.approx((2 / 3 + 0.0) / 2)  # "no" was predicted, so it counts


def test_label_strings_give_the_same_report_as_indices():
    labels = ["yes", "no", "_unknown_"]
    by_index = classification_metrics([0, 1, 2, 2], [0, 2, 2, 1], labels=labels)
    by_name = classification_metrics(
        ["yes", "no", "_unknown_", "_unknown_"], ["yes", "_unknown_", "_unknown_", "no"], labels=labels
    )
    np.testing.assert_array_equal(by_index.confusion_matrix, by_name.confusion_matrix)
    assert by_index.to_dict() == by_name.to_dict()


# sklearn warns where classes are absent from y_true or y_pred, the cases this test is after.
@pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")
@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true:UserWarning")
@settings(max_examples=60, deadline=None)
@given(predictions())
def test_classification_matches_scikit_learn(case):
    metrics = pytest.importorskip("sklearn.metrics")
    num_labels, y_true, y_pred = case
    report = classification_metrics(y_true, y_pred, labels=[f"c{k}" for k in range(num_labels)])
    everything = list(range(num_labels))
    np.testing.assert_array_equal(
        report.confusion_matrix, metrics.confusion_matrix(y_true, y_pred, labels=everything)
    )
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=everything, zero_division=0
    )
    np.testing.assert_allclose(report.precision, precision)
    np.testing.assert_allclose(report.recall, recall)
    np.testing.assert_allclose(report.f1, f1)
    np.testing.assert_array_equal(report.support, support)
    assert report.accuracy == pytest.approx(metrics.accuracy_score(y_true, y_pred))
    assert report.balanced_accuracy == pytest.approx(metrics.balanced_accuracy_score(y_true, y_pred))
    macro_f1 = metrics.f1_score(y_true, y_pred, average="macro", zero_division=0)
    assert report.macro_f1 == pytest.approx(macro_f1)


@settings(max_examples=60, deadline=None)
@given(predictions(min_labels=3), st.integers(0, 2**31))
def test_top_k_accuracy_matches_scikit_learn(case, seed):
    metrics = pytest.importorskip("sklearn.metrics")
    num_labels, y_true, y_pred = case
    probabilities = np.random.default_rng(seed).dirichlet(np.ones(num_labels), size=y_true.size)
    report = classification_metrics(
        y_true,
        y_pred,
        labels=[str(k) for k in range(num_labels)],
        probabilities=probabilities,
        top_k=(1, 2, 3),
    )
    assert set(report.top_k_accuracy) == {k for k in (1, 2, 3) if k < num_labels}
    for k, accuracy in report.top_k_accuracy.items():
        expected = metrics.top_k_accuracy_score(y_true, probabilities, k=k, labels=list(range(num_labels)))
        assert accuracy == pytest.approx(expected)


def test_top_k_counts_ties_against_the_model():
    report = classification_metrics(
        [0, 1, 2, 3], [0, 1, 2, 3], labels=list("abcd"), probabilities=np.full((4, 4), 0.25), top_k=(1, 3, 4)
    )
    assert report.top_k_accuracy == {1: 0.0, 3: 0.0}  # k = 4 = num_labels is trivially 1, left out


def test_classification_report_dict_is_json_and_text_names_every_class():
    report = classification_metrics(
        [0, 1, 1, 2],
        [0, 1, 0, 2],
        labels=["yes", "no", "up"],
        probabilities=np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.2, 0.7]]),
        top_k=(2,),
    )
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["accuracy"] == 0.75 and data["num_examples"] == 4
    assert data["labels"] == ["yes", "no", "up"]
    assert data["per_class"]["no"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(2 / 3),
        "support": 2,
    }
    assert data["confusion_matrix"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert data["top_k_accuracy"] == {"2": 1.0}
    text = report.to_text()
    assert "accuracy 75.00%" in text and "top-2 accuracy 100.00%" in text
    assert all(label in text for label in ("yes", "no", "up")) and "no -> yes: 1" in text


@pytest.mark.parametrize(
    ("y_true", "y_pred", "kwargs", "error", "message"),
    [
        (["yes", "maybe"], ["yes", "yes"], {}, ConfigError, "maybe"),
        ([0, 5], [0, 0], {}, ConfigError, "outside"),
        ([0, 1], [0], {}, InputShapeError, "same length"),
        ([], [], {}, ConfigError, "empty"),
        ([0.0, 1.0], [0, 1], {}, ConfigError, "dtype"),
        ([0, 1], [0, 1], {"labels": ["yes", "yes"]}, ConfigError, "duplicates"),
        ([0, 1], [0, 1], {"probabilities": np.ones((2, 3))}, InputShapeError, "probabilities"),
        ([0, 1], [0, 1], {"probabilities": np.full((2, 2), np.nan)}, ConfigError, "NaN"),
    ],
)
def test_classification_rejects_bad_input_with_a_message(y_true, y_pred, kwargs, error, message):
    kwargs = {"labels": ["yes", "no"], **kwargs}
    with pytest.raises(error, match=message):
        classification_metrics(y_true, y_pred, **kwargs)


def test_report_from_a_matrix_checks_its_shape():
    with pytest.raises(InputShapeError, match=r"\(2, 2\)"):
        ClassificationReport(labels=("a", "b"), confusion_matrix=np.ones((3, 3), int))


# -- verification ----------------------------------------------------------------------------------
def test_verification_hand_computed():
    report = verification_metrics([0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [1, 1, 0, 1, 0, 0], p_target=0.5)
    np.testing.assert_allclose(report.thresholds[1:], [0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    assert report.thresholds[0] > 0.9
    np.testing.assert_allclose(report.far, [0, 0, 0, 1 / 3, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(report.frr, [1, 2 / 3, 1 / 3, 1 / 3, 0, 0, 0])
    assert report.eer == pytest.approx(1 / 3) and report.eer_threshold == pytest.approx(0.7)
    # Normalised DCF at p_target 0.5 is FRR + FAR: smallest (1/3) first at threshold 0.8.
    assert report.min_dcf == pytest.approx(1 / 3) and report.min_dcf_threshold == pytest.approx(0.8)
    assert (report.num_trials, report.num_target, report.num_nontarget) == (6, 3, 3)


def test_eer_interpolates_between_curve_points():
    # A target and a non-target tie at 0.5, so the curve steps diagonally from (0, 1/2) to (1/2, 0) and
    # crosses FAR = FRR halfway along that step.
    report = verification_metrics([1.0, 0.5, 0.5, 0.0], [True, True, False, False])
    np.testing.assert_allclose(report.far, [0, 0, 0.5, 1])
    np.testing.assert_allclose(report.frr, [1, 0.5, 0, 0])
    assert report.eer == pytest.approx(0.25)
    assert report.eer_threshold == pytest.approx(0.75)  # halfway between thresholds 1.0 and 0.5


@settings(max_examples=60, deadline=None)
@given(trials())
def test_det_points_match_scikit_learn_roc_curve(case):
    metrics = pytest.importorskip("sklearn.metrics")
    scores, same = case
    report = verification_metrics(scores, same)
    fpr, tpr, thresholds = metrics.roc_curve(same, scores, drop_intermediate=False)
    np.testing.assert_allclose(report.far, fpr)
    np.testing.assert_allclose(report.frr, 1 - tpr)
    np.testing.assert_allclose(report.thresholds[1:], thresholds[1:])
    assert report.thresholds[0] > scores.max()


@settings(max_examples=60, deadline=None)
@given(trials(), st.sampled_from([0.01, 0.05, 0.5]), st.sampled_from([1.0, 10.0]))
def test_eer_and_min_dcf_bounds_against_brute_force(case, p_target, c_miss):
    scores, same = case
    report = verification_metrics(scores, same, p_target=p_target, c_miss=c_miss)
    # The interpolated crossing lies between the best "min" and the best "max" of the curve points.
    assert np.max(np.minimum(report.far, report.frr)) - 1e-12 <= report.eer
    assert report.eer <= np.min(np.maximum(report.far, report.frr)) + 1e-12
    # minDCF by brute force over every threshold, including accept-all and reject-all.
    candidates = np.r_[np.inf, np.unique(scores)]
    costs = [
        c_miss * p_target * np.mean(scores[same] < t) + (1 - p_target) * np.mean(scores[~same] >= t)
        for t in candidates
    ]
    expected = min(costs) / min(c_miss * p_target, 1 - p_target)
    assert report.min_dcf == pytest.approx(expected)
    assert 0.0 <= report.min_dcf <= 1.0


@pytest.mark.parametrize("separation", [0.5, 1.0, 2.0])
def test_gaussian_scores_have_the_theoretical_eer_and_min_dcf(separation):
    scores, same = _gaussian_trials(separation, 20000)
    expected_eer = PHI(-separation)
    report = verification_metrics(scores, same, p_target=0.5)
    assert report.eer == pytest.approx(expected_eer, abs=0.01)
    assert report.eer_threshold == pytest.approx(0.0, abs=0.05)
    # At p_target 0.5 the normalised DCF is FRR + FAR, smallest at the midpoint threshold 0: 2·Φ(−d).
    assert report.min_dcf == pytest.approx(2 * expected_eer, abs=0.02)


def test_eer_equals_the_brentq_interp1d_recipe():
    metrics = pytest.importorskip("sklearn.metrics")
    optimize = pytest.importorskip("scipy.optimize")
    interpolate = pytest.importorskip("scipy.interpolate")
    for seed in range(5):
        scores, same = _gaussian_trials(0.8, 300, seed=seed)
        fpr, tpr, _ = metrics.roc_curve(same, scores)
        roc = interpolate.interp1d(fpr, tpr)
        expected = optimize.brentq(lambda x, roc=roc: 1.0 - x - roc(x), 0.0, 1.0)
        assert verification_metrics(scores, same).eer == pytest.approx(expected, abs=1e-8)


def test_perfect_and_inverted_separation():
    scores = np.array([0.9, 0.8, 0.2, 0.1])
    perfect = verification_metrics(scores, [True, True, False, False])
    assert (perfect.eer, perfect.min_dcf) == (0.0, 0.0)
    assert 0.2 < perfect.eer_threshold <= 0.8
    inverted = verification_metrics(scores, [False, False, True, True])
    assert inverted.eer == pytest.approx(1.0)
    assert inverted.min_dcf == pytest.approx(1.0)  # no threshold beats always rejecting


def test_verification_report_dict_and_text():
    report = verification_metrics(*_gaussian_trials(1.0, 50))
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert {"eer", "min_dcf", "num_trials", "eer_threshold", "min_dcf_threshold"} <= data.keys()
    assert data["num_trials"] == 100 and data["num_target"] == 50 and data["p_target"] == 0.01
    assert f"EER {report.eer:.2%}" in report.to_text()


@pytest.mark.parametrize(
    ("scores", "same", "kwargs", "error", "message"),
    [
        ([0.1, 0.2], [True, True], {}, ConfigError, "different-speaker"),
        ([0.1, np.nan], [True, False], {}, ConfigError, "NaN"),
        ([0.1, 0.2], [True], {}, InputShapeError, "equal length"),
        ([0.1, 0.2], [True, False], {"p_target": 1.0}, ConfigError, "p_target"),
        ([0.1, 0.2], [True, False], {"c_fa": 0}, ConfigError, "c_fa"),
        ([0.1, 0.2], [2, 0], {}, ConfigError, "booleans"),
    ],
)
def test_verification_rejects_bad_input_with_a_message(scores, same, kwargs, error, message):
    with pytest.raises(error, match=message):
        verification_metrics(scores, same, **kwargs)


# -- trials ------------------------------------------------------------------------------------------
def test_trial_pairs_lists_every_unordered_pair_once():
    i, j, same = trial_pairs(["ann", "bob", "ann", "cy"])
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert same.tolist() == [False, True, False, False, False, False]
    i, j, same = trial_pairs(np.array([3, 3, 3]))
    assert i.size == 3 and same.all()
    with pytest.raises(InputShapeError):
        trial_pairs(np.zeros((2, 2)))


def test_cosine_scores_match_the_formula_across_chunks(monkeypatch, rng):
    monkeypatch.setattr(trials_module, "_PAIRS_PER_CHUNK", 7)
    embeddings = rng.normal(size=(12, 5))
    i, j, _ = trial_pairs(range(12))
    scaled = embeddings * rng.uniform(0.1, 10, size=(12, 1))  # cosine ignores scale
    expected = np.array(
        [
            a @ b / np.linalg.norm(a) / np.linalg.norm(b)
            for a, b in zip(embeddings[i], embeddings[j], strict=True)
        ]
    )
    np.testing.assert_allclose(cosine_scores(scaled, i, j), expected)


def test_cosine_scores_reject_zero_embeddings_and_bad_indices():
    embeddings = np.array([[1.0, 0.0], [0.0, 0.0]])
    with pytest.raises(ConfigError, match=r"\[1\]"):
        cosine_scores(embeddings, np.array([0]), np.array([1]))
    with pytest.raises(ConfigError, match="outside"):
        cosine_scores(np.eye(2), np.array([0]), np.array([2]))
    with pytest.raises(InputShapeError):
        cosine_scores(np.ones(3), np.array([0]), np.array([1]))


def test_separable_speaker_clusters_verify_perfectly(rng):
    centres = rng.normal(size=(3, 16)) * 5
    speakers = np.repeat(["ann", "bob", "cy"], 4)
    embeddings = centres[np.repeat(np.arange(3), 4)] + rng.normal(scale=0.1, size=(12, 16))
    i, j, same = trial_pairs(speakers)
    report = verification_metrics(cosine_scores(embeddings, i, j), same)
    assert report.eer == 0.0 and report.num_trials == 66 and report.num_target == 18


# -- figures and files ------------------------------------------------------------------------------
@pytest.mark.parametrize("num_labels", [2, 45])
def test_confusion_matrix_png(tmp_path, rng, num_labels):
    labels = [f"word_{k}" for k in range(num_labels)]
    y_true = rng.integers(0, num_labels, 200)
    report = classification_metrics(y_true, np.where(rng.random(200) < 0.7, y_true, 0), labels=labels)
    path = plot_confusion_matrix(report, tmp_path / "cm.png")
    assert path == tmp_path / "cm.png"
    _read_png(path)


@pytest.mark.parametrize("separation", [1.0, 10.0])
def test_det_curve_png(tmp_path, separation):
    report = verification_metrics(*_gaussian_trials(separation, 500))
    _read_png(plot_det_curve(report, tmp_path / "det.png"))


def test_write_report_classification(tmp_path):
    report = classification_metrics([0, 1, 1], [0, 1, 0], labels=["yes", "no"])
    extra = {"task": "kws", "epochs": np.int64(3), "loss": float("nan"), "model": tmp_path / "m.keras"}
    paths = write_report(report, tmp_path / "run", extra=extra)
    assert set(paths) == {"metrics", "text", "confusion_matrix"}
    metrics = json.loads(paths["metrics"].read_text())
    assert metrics == {
        **json.loads(json.dumps(report.to_dict())),
        "task": "kws",
        "epochs": 3,
        "loss": None,
        "model": str(tmp_path / "m.keras"),
    }
    assert paths["text"].read_text() == report.to_text()
    _read_png(paths["confusion_matrix"])
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "confusion_matrix.png",
        "metrics.json",
        "report.txt",
    ]


def test_write_report_verification_and_overwrite(tmp_path):
    first = write_report(verification_metrics(*_gaussian_trials(1.0, 100)), tmp_path)
    second = write_report(verification_metrics(*_gaussian_trials(3.0, 100)), tmp_path)
    assert set(second) == {"metrics", "text", "det_curve"} and first == second
    assert json.loads(second["metrics"].read_text())["eer"] < 0.05
    _read_png(second["det_curve"])
    assert len(list(tmp_path.iterdir())) == 3  # no temporary files left behind


def test_write_report_refuses_extra_that_overwrites_metrics(tmp_path):
    report = classification_metrics([0], [0], labels=["yes"])
    with pytest.raises(ConfigError, match="accuracy"):
        write_report(report, tmp_path, extra={"accuracy": 1.0})
    with pytest.raises(ConfigError, match="object"):
        write_report(report, tmp_path, extra={"bad": object()})
    assert list(tmp_path.iterdir()) == []

"""``head: auto``: folds that keep speakers whole, the head chosen by cross-validation on embeddings (the
linear head where a standardized feature separates the classes, the mlp head where no hyperplane does),
the fallback with too few clips, and what a run records of the choice."""

import contextlib
import io
import json

import keras
import numpy as np
import pytest
import yaml
from audio_files import write_pitch_classes
from tiny_conv_base import tiny_base

from audio_transfer.cli.main import main
from audio_transfer.errors import ConfigError
from audio_transfer.heads import LinearHead
from audio_transfer.tasks import KeywordSpotter
from audio_transfer.tasks.head_families import AUTO_FALLBACK
from audio_transfer.training import TrainConfig, cross_validation_folds, make_task, select_head

SPEAKERS = 10


def clips(layout: str, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Frame embeddings ``(clips, 4 windows, 8 dims)``, labels and speakers: 2 clips per class from each of
    10 speakers.

    - ``"scaled"`` (3 classes): the class is one feature 1000 times smaller than the 7 noise features
      around it; standardizing each feature (the linear head) finds it, layer-normalising the clip's
      vector (the mlp head) drowns it.
    - ``"xor"`` (2 classes): the class is whether two features have the same sign: no hyperplane
      separates the classes, a hidden ReLU layer does.
    """
    rng = np.random.default_rng(seed)
    frames, labels, speakers = [], [], []
    for speaker in range(SPEAKERS):
        for kind in range(3 if layout == "scaled" else 4):
            for _ in range(2):
                x = rng.normal(size=(4, 8))
                if layout == "scaled":
                    x *= 10
                    x[:, 0] = 0.01 * (kind + rng.normal(scale=0.05))
                    label = kind
                else:
                    signs = np.array([kind >> 1, kind & 1]) * 2 - 1
                    x[:, :2] = 3 * signs + rng.normal(scale=0.3, size=2)
                    label = int(signs[0] == signs[1])
                frames.append(x)
                labels.append(label)
                speakers.append(f"speaker{speaker}")
    return np.asarray(frames, np.float32), np.asarray(labels), speakers


def scores_by_head(selection) -> dict[str, float]:
    return {f"{score['head']}/{score['pooling']}": score["mean_accuracy"] for score in selection.scores}


def test_the_linear_head_wins_where_a_standardized_feature_separates_the_classes():
    frames, labels, speakers = clips("scaled")
    selection = select_head(TrainConfig(augment=False), frames=frames, labels=labels, groups=speakers)
    assert selection.method == "cross-validation" and selection.folds_by == "speaker"
    assert selection.choice["head"] == "linear" and selection.choice["hidden_units"] == 0
    scores = scores_by_head(selection)
    assert set(scores) == {"linear/mean_max", "linear/mean", "mlp/mean_max"}
    assert scores["linear/mean_max"] >= 0.9 and scores["mlp/mean_max"] <= 0.5
    config = selection.apply(TrainConfig(augment=True))
    assert (config.head, config.pooling, config.augment, config.head_selection) == (
        "linear",
        selection.choice["pooling"],
        False,
        "cross-validation",
    )


def test_the_mlp_head_wins_where_no_hyperplane_separates_the_classes():
    frames, labels, speakers = clips("xor")
    config = TrainConfig(augment=False, hidden_units=32)
    selection = select_head(config, frames=frames, labels=labels, groups=speakers)
    assert selection.choice == {"head": "mlp", "pooling": "mean_max", "augment": False, "hidden_units": 32}
    scores = scores_by_head(selection)
    assert scores["mlp/mean_max"] >= 0.9 and max(scores["linear/mean_max"], scores["linear/mean"]) <= 0.7
    # The chosen settings build the task they describe.
    task = make_task(selection.apply(config), tiny_base(), ["different", "same"])
    assert not isinstance(task.head, LinearHead) and task.head.hidden_units == 32


def test_augmented_copies_of_a_held_out_clip_never_train_its_fold():
    # Labels drawn at random: nothing generalises, but a head that trained on copies of the held-out clips
    # (here exact copies) would recognise them.
    rng = np.random.default_rng(1)
    frames = rng.normal(size=(60, 4, 16)).astype(np.float32)
    labels = np.tile(np.arange(3), 20)
    speakers = [f"speaker{i // 6}" for i in range(60)]
    selection = select_head(
        TrainConfig(epochs=5),
        frames=frames,
        labels=labels,
        groups=speakers,
        augmented_frames=np.concatenate([frames, frames]),
        augmented_origin=np.tile(np.arange(60), 2),
    )
    augmented = [score for score in selection.scores if score["augment"]]
    assert len(augmented) == 3 and len(selection.scores) == 6
    assert all(score["mean_accuracy"] < 0.6 for score in augmented)


def test_grouped_folds_keep_every_speaker_whole_and_stratified_folds_share_every_class():
    labels = np.repeat(np.arange(4), 15)
    speakers = [f"speaker{i % 7}" if i % 11 else None for i in range(60)]
    folds = cross_validation_folds(labels=labels, groups=speakers, num_folds=5, seed=3)
    assert len(folds) == 5
    assert sorted(np.concatenate(folds).tolist()) == list(range(60))
    fold_of = {index: fold for fold, held_out in enumerate(folds) for index in held_out}
    for speaker in {s for s in speakers if s is not None}:
        assert len({fold_of[i] for i in range(60) if speakers[i] == speaker}) == 1
    stratified = cross_validation_folds(labels=labels, num_folds=5, seed=3)
    assert sorted(np.concatenate(stratified).tolist()) == list(range(60))
    for held_out in stratified:
        assert np.bincount(labels[held_out], minlength=4).tolist() == [3, 3, 3, 3]
    # Fewer speakers than folds: one fold per speaker.
    assert len(cross_validation_folds(labels=labels[:20], groups=["a", "b", "c"] * 6 + ["a", "b"])) == 3


def test_too_few_clips_per_class_fall_back_to_the_linear_probe():
    frames, labels, _ = clips("scaled")
    # One speaker's clips: 2 per class; any fold leaves a class fewer than 2 training clips.
    one_speaker = np.flatnonzero(np.arange(len(labels)) < 6)
    selection = select_head(
        TrainConfig(hidden_units=16), frames=frames[one_speaker], labels=labels[one_speaker]
    )
    assert selection.method == "fallback" and selection.scores == [] and selection.num_folds == 0
    assert selection.choice == AUTO_FALLBACK
    assert (
        "2 training clips" in selection.to_text() and "linear head, mean_max pooling" in selection.to_text()
    )
    config = selection.apply(TrainConfig(hidden_units=16))
    assert (config.head, config.hidden_units, config.head_selection) == ("linear", 0, "fallback")


def test_auto_is_the_default_and_builds_the_fallback_without_data():
    config = TrainConfig()
    assert config.head == "auto" and config.head_selection is None
    assert config.resolved().pooling is None  # left for the selection to choose
    assert isinstance(make_task(config, tiny_base(), ["a", "b"]).head, LinearHead)
    with pytest.raises(ConfigError, match="head must be one of auto, mlp, linear"):
        TrainConfig(head="svm")
    with pytest.raises(ConfigError, match="head_selection"):
        TrainConfig(head_selection="by hand")


def test_a_run_records_the_selection_in_selection_json_report_and_config(tmp_path):
    data = write_pitch_classes(tmp_path / "data", {"low": 300.0, "mid": 1000.0, "high": 3000.0})
    tiny_base().save(tmp_path / "tiny_base.keras")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(
            [
                "train", str(data), "--task", "kws", "--base", str(tmp_path / "tiny_base.keras"),
                "--out", str(tmp_path / "run"), "--set", "epochs=3", "--json",
            ]
        )  # fmt: skip
    assert code == 0, stdout.getvalue()
    run = tmp_path / "run"
    selection = json.loads((run / "selection.json").read_text())
    assert selection["method"] == "cross-validation" and selection["folds_by"] == "speaker"
    assert len(selection["scores"]) == 6  # 2 linear poolings and the mlp head, each clean and augmented
    for score in selection["scores"]:
        assert len(score["fold_accuracies"]) == selection["num_folds"] >= 2
        assert score["mean_accuracy"] == pytest.approx(np.mean(score["fold_accuracies"]))
    best = max(score["mean_accuracy"] for score in selection["scores"])
    chosen = next(s for s in selection["scores"] if all(s[k] == v for k, v in selection["choice"].items()))
    assert chosen["mean_accuracy"] == best
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["head_selection"] == "cross-validation"
    assert {key: config[key] for key in selection["choice"]} == selection["choice"]
    assert "Head selection (head: auto): cross-validation" in (run / "report.txt").read_text()
    loaded = keras.saving.load_model(run / "model.keras", safe_mode=True)
    assert isinstance(loaded, KeywordSpotter)
    assert isinstance(loaded.head, LinearHead) == (selection["choice"]["head"] == "linear")

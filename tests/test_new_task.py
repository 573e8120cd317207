"""A task defined in this file alone (no edit to the package) trains, evaluates, saves, loads and exports
through the same paths as the built-in tasks; every registered task keeps the task contract."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import shutil

import keras
import numpy as np
import pytest
from audio_files import write_pitch_classes
from tiny_conv_base import tiny_base

from audio_transfer.cli.main import main
from audio_transfer.data import decode_examples
from audio_transfer.errors import ConfigError
from audio_transfer.evaluation import ClassificationReport
from audio_transfer.export import export_run, export_tflite
from audio_transfer.export.options import FORMATS
from audio_transfer.heads import POOLING_NAMES
from audio_transfer.tasks import (
    AudioClassifier,
    Task,
    TrainingObjective,
    load_task,
    register_task,
    task_class,
    task_names,
)
from audio_transfer.training import (
    EVALUATIONS,
    SPLITS_FILE,
    TrainConfig,
    evaluate_task,
    load_run,
    train_run,
)
from audio_transfer.training.holdout import HOLDOUT_MODES

# main() points the package logger at the captured stderr: undone after every test.
pytestmark = pytest.mark.usefixtures("restore_package_logger")

PITCHES_HZ = {"low": 300.0, "mid": 1000.0, "high": 3000.0}


@register_task
@keras.saving.register_keras_serializable(package="audio_transfer_tests")
class ToneSorter(AudioClassifier):
    """Sorts tones by pitch: a classifier with its own name and defaults, declared here only."""

    task_name = "tone-sorter"
    default_pooling = "mean"
    default_context_seconds = 0.0
    default_clip_seconds = 0.4
    validation_hold_out = "clips"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Ten tones per pitch class (slightly detuned, one "speaker" each) and a tiny base file."""
    root = tmp_path_factory.mktemp("new_task")
    write_pitch_classes(root / "tones", PITCHES_HZ)
    tiny_base().save(root / "tiny_base.keras")
    return root


@pytest.fixture(scope="module")
def trained(workspace):
    config = TrainConfig(
        task="tone-sorter",
        data_dir=str(workspace / "tones"),
        base=str(workspace / "tiny_base.keras"),
        epochs=3,
        augment=False,
        head="mlp",  # the task's own pooling; head: auto may choose the linear probe's mean_max instead
    )
    return train_run(config, workspace / "run", verbose=0)


def _cli(*args: str) -> tuple[int, dict]:
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main([*args, "--json"])
    return code, json.loads(stdout.getvalue())


def test_the_new_task_trains_with_its_own_defaults(trained):
    assert type(trained.task) is ToneSorter
    assert trained.config.task == "tone-sorter" and trained.config.pooling == "mean"
    assert trained.config.clip_seconds == 0.4 and trained.task.context_seconds == 0.0
    assert trained.task.head.get_config()["pooling"] == "mean"
    assert trained.labels == ["high", "low", "mid"]
    # validation_hold_out="clips": 20% of every class's clips.
    validation = trained.examples("validation")
    assert sorted(e.label for e in validation) == ["high"] * 2 + ["low"] * 2 + ["mid"] * 2
    assert trained.evaluation_split == "validation" and trained.result.history[-1]["stage"] == "head"


def validation_clips(run):
    """The run's validation clips, decoded (the run reported on their stored embeddings)."""
    config = run.config
    return decode_examples(
        run.examples("validation"), sample_rate=config.sample_rate, clip_seconds=config.clip_seconds
    )


def test_the_new_task_evaluates_like_a_built_in_classifier(trained, workspace):
    clips = validation_clips(trained)
    report = evaluate_task(trained.task, clips.waveforms, clips.labels)
    assert isinstance(report, ClassificationReport) and report.labels == ("high", "low", "mid")
    # The run's report, from the stored embeddings through the head, is the report on the clips.
    assert trained.evaluation is None and trained.num_evaluation_clips == len(clips.waveforms)
    np.testing.assert_allclose(report.confusion_matrix, trained.report.confusion_matrix)
    code, data = _cli("evaluate", str(workspace / "run"), "--data", str(workspace / "tones"))
    assert code == 0, data
    assert data["num_examples"] == 30 and 0.0 <= data["accuracy"] <= 1.0


def test_the_run_folder_records_the_splits_and_loads_back(trained, workspace):
    run_dir = workspace / "run"
    assert (run_dir / SPLITS_FILE).is_file()
    loaded = load_run(run_dir)
    assert type(loaded.task) is ToneSorter and loaded.labels == trained.labels
    assert loaded.config == trained.config
    for split in ("train", "validation"):
        assert loaded.examples(split) == trained.examples(split)
    assert len(loaded.examples("train")) + len(loaded.examples("validation")) == 30
    held_out = {e.relative_path for e in loaded.examples("validation")}
    assert held_out.isdisjoint(e.relative_path for e in loaded.examples("train"))
    waveforms = validation_clips(trained).waveforms
    np.testing.assert_allclose(
        loaded.task.predict_waveforms(waveforms), trained.task.predict_waveforms(waveforms), atol=1e-6
    )


def test_the_new_task_exports_from_python_and_from_the_cli(trained, workspace, tmp_path):
    loaded = load_run(workspace / "run")
    validation = decode_examples(
        loaded.examples("validation"),
        sample_rate=loaded.config.sample_rate,
        clip_seconds=loaded.config.clip_seconds,
    )
    result = export_tflite(
        loaded.task,
        labels=loaded.labels,
        sample_rate=loaded.config.sample_rate,
        out=tmp_path / "python.tflite",
        held_out=(validation.waveforms, validation.label_indices(loaded.labels)),
        num_samples=validation.waveforms.shape[1],
    )
    assert result.report.top1_agreement == 1.0
    # The CLI calibrates and compares on the clips splits.csv records, not on a new split of data_dir:
    # a copy of the run whose data_dir no longer exists exports the same.
    copy = tmp_path / "run"
    shutil.copytree(workspace / "run", copy)
    loaded.config.replace(data_dir=str(tmp_path / "moved")).to_yaml(copy / "config.yaml")
    out = tmp_path / "cli.tflite"
    code, data = _cli("export", str(copy), "--format", "tflite", "--quantize", "int8", "--out", str(out))
    assert code == 0, data
    assert data["labels"] == ["high", "low", "mid"] and data["num_samples"] == 6400
    assert data["report"]["num_clips"] == len(loaded.examples("validation"))


def test_the_cli_knows_the_new_task_and_the_config_validates_against_the_registry():
    assert "tone-sorter" in task_names() and task_class("tone-sorter") is ToneSorter
    assert TrainConfig(task="tone-sorter").resolved().base == "speech_embedding"  # inherited default
    with pytest.raises(ConfigError, match=r"task must be one of kws, .*tone-sorter"):
        TrainConfig(task="tone-sorters")
    with pytest.raises(ConfigError, match="Unknown task 'nope'; the tasks are kws"):
        task_class("nope")


def test_registering_refuses_a_taken_name_and_a_class_that_is_not_a_task():
    class Impostor(AudioClassifier):
        task_name = "kws"

    with pytest.raises(ConfigError, match=r"'kws' is taken by audio_transfer\.tasks\.keyword_spotter"):
        register_task(Impostor)
    with pytest.raises(ConfigError, match="takes a Task subclass"):
        register_task(dict)
    register_task(ToneSorter)  # again: harmless


# -- the contract every registered task keeps ---------------------------------------------------------------
@pytest.mark.parametrize("name", task_names())
def test_every_registered_task_keeps_the_contract(name, tmp_path):
    cls = task_class(name)
    assert issubclass(cls, Task) and cls.task_name == name
    assert isinstance(cls.default_base, str) and cls.default_pooling in POOLING_NAMES
    assert cls.default_clip_seconds is None or cls.default_clip_seconds > 0
    assert cls.validation_hold_out in HOLDOUT_MODES and cls.evaluation in EVALUATIONS
    assert set(cls.export_formats) <= set(FORMATS)
    config = TrainConfig(task=name, head="mlp").resolved()
    assert (config.base, config.pooling) == (cls.default_base, cls.default_pooling)
    assert TrainConfig(task=name).resolved().pooling is None  # head: auto chooses it

    labels = ["a", "b", "c"]
    task = cls.from_settings(tiny_base(), labels, config.to_dict())
    assert type(task) is cls
    y = np.array([0, 1, 2, 1])
    objective = task.training_objective(y, config.to_dict())
    assert isinstance(objective, TrainingObjective) and objective.num_classes == 3
    frames = np.random.default_rng(0).normal(size=(4, 5, task.base.embedding_dim)).astype(np.float32)
    outputs = objective.head_model()(objective.inputs(frames, y))
    loss = float(objective.loss(objective.targets(y), outputs))
    assert np.isfinite(loss) and loss > 0

    task.save(tmp_path / "model.keras")
    assert type(load_task(tmp_path / "model.keras")) is cls


def test_export_run_takes_a_run_in_memory_and_checks_its_options(trained, tmp_path):
    in_memory = dataclasses.replace(trained, run_dir=None)
    result = export_run(in_memory, tmp_path / "memory.tflite")
    assert result.labels == ("high", "low", "mid") and result.num_samples == 6400
    assert result.report.num_clips == len(trained.examples("validation"))
    with pytest.raises(ConfigError, match="onnx"):
        export_run(in_memory, tmp_path / "x", format="onnx")
    with pytest.raises(ConfigError, match="--format tflite only"):
        export_run(in_memory, tmp_path / "x", format="saved_model", quantize="int8")
    assert not (tmp_path / "x").exists()

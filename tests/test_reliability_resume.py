"""An interrupted training resumes (issue 17): `train --resume` continues from the last completed epoch
of either stage and ends where an uninterrupted run with the same settings ends."""

from __future__ import annotations

import numpy as np
import pytest
from audio_files import write_pitch_classes
from tiny_conv_base import tiny_base

from audio_transfer.errors import ConfigError
from audio_transfer.training import CHECKPOINT_DIR, EpochCheckpoint, TrainConfig, train_run

PITCHES_HZ = {"low": 300.0, "mid": 1000.0, "high": 3000.0}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    write_pitch_classes(root / "tones", PITCHES_HZ)
    tiny_base().save(root / "tiny_base.keras")
    return root


@pytest.fixture(scope="module")
def config(workspace):
    return TrainConfig(
        task="classify",
        head="mlp",  # trained in epochs, each checkpointed (head: auto may pick the one-fit linear head)
        data_dir=str(workspace / "tones"),
        base=str(workspace / "tiny_base.keras"),
        clip_seconds=0.5,
        epochs=5,
        min_steps_per_epoch=4,
        patience=2,
        fine_tune_blocks=1,
        fine_tune_epochs=3,
        seed=3,
    )


@pytest.fixture(scope="module")
def uninterrupted(workspace, config):
    return train_run(config, workspace / "reference", verbose=0)


def interrupt_after(monkeypatch, stage: str, epoch: int) -> None:
    """Stop training with KeyboardInterrupt once ``stage`` has saved its epoch ``epoch``."""
    save = EpochCheckpoint.on_epoch_end

    def save_then_stop(self, index, logs=None):
        save(self, index, logs)
        if self.stage == stage and index + 1 == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(EpochCheckpoint, "on_epoch_end", save_then_stop)


@pytest.mark.parametrize(("stage", "epoch"), [("head", 2), ("fine_tune", 2)])
def test_a_resumed_run_ends_as_an_uninterrupted_one(
    uninterrupted, config, tmp_path, monkeypatch, stage, epoch
):
    out = tmp_path / "run"
    interrupt_after(monkeypatch, stage, epoch)
    with pytest.raises(KeyboardInterrupt):
        train_run(config, out, verbose=0)
    monkeypatch.undo()
    assert not out.exists()
    (partial,) = [item for item in tmp_path.iterdir() if item.name.startswith(".run.") and item.is_dir()]
    assert (partial / CHECKPOINT_DIR / f"{stage}.json").is_file()

    resumed = train_run(config, out, verbose=0, resume=True)
    assert [(row["stage"], row["epoch"]) for row in resumed.result.history] == [
        (row["stage"], row["epoch"]) for row in uninterrupted.result.history
    ]
    np.testing.assert_allclose(
        [row["loss"] for row in resumed.result.history],
        [row["loss"] for row in uninterrupted.result.history],
        rtol=1e-5,
    )
    assert resumed.result.best_epochs == uninterrupted.result.best_epochs
    for kept, reference in zip(resumed.task.weights, uninterrupted.task.weights, strict=True):
        if "float" in str(kept.dtype):  # the tiny base's int counter counts clips embedded, which differ:
            np.testing.assert_allclose(kept.numpy(), reference.numpy(), atol=1e-5)
    # the resumed run reuses the feature store the interrupted one made instead of embedding again
    assert (resumed.result.cache_hits, resumed.result.cache_misses) == (uninterrupted.result.cache_misses, 0)
    assert (out / "model.keras").is_file() and not (out / CHECKPOINT_DIR).exists()
    assert sorted(item.name for item in tmp_path.iterdir()) == [".run.lock", "run"]


def test_resuming_with_other_settings_is_refused_and_without_resume_the_partial_run_goes(
    config, tmp_path, monkeypatch, caplog
):
    out = tmp_path / "run"
    interrupt_after(monkeypatch, "head", 1)
    with pytest.raises(KeyboardInterrupt):
        train_run(config, out, verbose=0)
    monkeypatch.undo()
    with pytest.raises(ConfigError, match="other settings \\(epochs\\)"):
        train_run(config.replace(epochs=7), out, verbose=0, resume=True)
    assert any(item.name.startswith(".run.") and item.is_dir() for item in tmp_path.iterdir())
    train_run(config.replace(epochs=1, fine_tune_blocks=0), out, verbose=0)
    assert "train with --resume to continue one" in caplog.text
    assert sorted(item.name for item in tmp_path.iterdir()) == [".run.lock", "run"]

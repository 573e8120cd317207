"""The negative-weight schedule (``max_negative_weight``): the ``_unknown_`` examples weigh more epoch by
epoch in stage 1's batches, from cached embeddings and from a feature store, and a full-batch head fits
once at the schedule's last factor."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from tiny_conv_base import tiny_base

from audio_transfer.data import FeatureStoreWriter, StoreIdentity, StoreRecord
from audio_transfer.errors import ConfigError
from audio_transfer.tasks import KeywordSpotter
from audio_transfer.training import TrainConfig, Trainer
from audio_transfer.training.trainer import _EmbeddingBatches, _StoreBatches

LABELS = ["_unknown_", "yes", "no"]
Y = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2, 2])  # 6 negatives, 2 of each keyword
SHAPE = (3, 8)  # the tiny base's 8-dimensional frames


def trainer_for(max_negative_weight: float, *, head: str = "mlp", epochs: int = 3) -> Trainer:
    spotter = KeywordSpotter(tiny_base(), LABELS, head_family=head)
    config = TrainConfig(epochs=epochs, head=head, batch_size=len(Y), max_negative_weight=max_negative_weight)
    trainer = Trainer(spotter, config)
    trainer._objective = spotter.training_objective(Y, config.to_dict())
    return trainer


def negative_factor(batches) -> float:
    """The weight of an ``_unknown_`` example over its class weight, from one epoch's batches."""
    _, targets, weights = next(iter(batches.dataset))
    labels = np.argmax(targets.numpy(), axis=-1)
    weights = weights.numpy()
    class_weight = len(Y) / (3 * np.bincount(Y))  # inverse class frequency
    keyword = weights[labels != 0] / class_weight[labels[labels != 0]]
    np.testing.assert_allclose(keyword, 1.0, rtol=1e-6)  # keywords keep their class weight
    return float(np.mean(weights[labels == 0] / class_weight[0]))


def test_negatives_weigh_more_epoch_by_epoch_from_cached_embeddings():
    frames = np.random.default_rng(0).normal(size=(len(Y), *SHAPE)).astype(np.float32)
    batches = _EmbeddingBatches(frames, Y, trainer=trainer_for(5.0), seed=0)
    factors = []
    for epoch in range(4):  # the last epoch is 2: the factor stays at its maximum after it
        batches.epoch.assign(epoch)
        factors.append(negative_factor(batches))
    np.testing.assert_allclose(factors, [1.0, 3.0, 5.0, 5.0], rtol=1e-6)
    unscheduled = _EmbeddingBatches(frames, Y, trainer=trainer_for(1.0), seed=0)
    unscheduled.epoch.assign(2)
    assert negative_factor(unscheduled) == pytest.approx(1.0)


def test_negatives_weigh_more_epoch_by_epoch_from_a_store(tmp_path):
    identity = StoreIdentity("embeddings", "tiny", "abc", 16000, 1.0, 0.0, SHAPE)
    records = [
        StoreRecord(f"{LABELS[label]}/{index}.wav", LABELS[label], None, "clean", np.full(SHAPE, index, "f"))
        for index, label in enumerate(Y)
    ]
    with FeatureStoreWriter(tmp_path / "store", identity=identity) as writer:
        writer.add(records)
    trainer = trainer_for(5.0)
    batches = _StoreBatches(
        writer.store,
        trainer=trainer,
        labels=LABELS,
        keys={record.key for record in records},
        count=len(Y),
        seed=7,
        first_epoch=1,
    )
    assert negative_factor(batches) == pytest.approx(3.0)  # resumed at epoch 1: halfway
    batches.on_epoch_end(1)
    assert negative_factor(batches) == pytest.approx(5.0)


def test_a_full_batch_head_fits_at_the_last_factor():
    rng = np.random.default_rng(1)
    frames = (rng.normal(size=(len(Y), *SHAPE)) + Y[:, None, None]).astype(np.float32)
    probabilities = {}
    for weight in (1.0, 50.0):
        trainer = trainer_for(weight, head="linear")
        keras.utils.set_random_seed(0)
        history: list[dict] = []
        trainer._fit_full_batch(trainer._objective.full_batch_features(frames), Y, None, None, history)
        probabilities[weight] = keras.ops.convert_to_numpy(trainer.task.head(frames))
    # Negatives weighing 50 times more, the fit gives _unknown_ more probability on every negative clip and
    # on the clips on average.
    assert (probabilities[50.0][Y == 0, 0] > probabilities[1.0][Y == 0, 0]).all()
    assert probabilities[50.0][:, 0].mean() > probabilities[1.0][:, 0].mean()


def test_a_schedule_needs_negative_classes_and_a_positive_weight():
    with pytest.raises(ConfigError, match="max_negative_weight must be a positive number, received 0"):
        TrainConfig(max_negative_weight=0)
    spotter = KeywordSpotter(tiny_base(), ["yes", "no"])
    trainer = Trainer(spotter, TrainConfig(max_negative_weight=3.0))
    with pytest.raises(ConfigError, match=r"weighs the _unknown_ and _silence_ classes.*\['yes', 'no'\]"):
        trainer._negative_classes()

import logging

import keras
import numpy as np
import pytest
from tiny_conv_base import tiny_base

from audio_transfer.data import AudioExample
from audio_transfer.errors import ConfigError
from audio_transfer.tasks import KeywordSpotter, SpeakerVerifier
from audio_transfer.training import EmbeddingCache, TrainConfig, Trainer, hold_out_validation

FREQUENCIES_HZ = (300.0, 1000.0, 3000.0)


def tones(rng, per_class, seconds=0.5):
    """Noisy tones, one frequency band per class, random level and phase: (waveforms, labels)."""
    t = np.arange(round(16000 * seconds)) / 16000
    waveforms, labels = [], []
    for label, frequency in enumerate(FREQUENCIES_HZ):
        for _ in range(per_class):
            f = frequency * rng.uniform(0.9, 1.1)
            tone = rng.uniform(0.2, 0.8) * np.sin(2 * np.pi * f * t + rng.uniform(0, 6))
            waveforms.append(tone + rng.normal(scale=0.05, size=t.size))
            labels.append(label)
    return np.asarray(waveforms, np.float32), np.asarray(labels)


def gain_and_noise(waveforms, seed):
    rng = np.random.default_rng(seed)
    gains = rng.uniform(0.5, 1.5, size=(len(waveforms), 1))
    return (waveforms * gains + rng.normal(scale=0.05, size=waveforms.shape)).astype(np.float32)


def spotter(context_seconds=0.0):
    return KeywordSpotter(tiny_base(), ["low", "mid", "high"], context_seconds=context_seconds)


def clips_embedded(task):
    return int(task.base.clips_embedded.numpy())


# -- TrainConfig ---------------------------------------------------------------------------------------------
def test_config_round_trips_through_yaml(tmp_path):
    config = TrainConfig(task="speaker-id", epochs=7, keywords=["yes", "no"], learning_rate=0.002)
    text = config.to_yaml(tmp_path / "config.yaml")
    assert "epochs: 7" in text
    assert TrainConfig.from_yaml(tmp_path / "config.yaml") == config


def test_config_reads_yaml_exponents_and_refuses_unknown_settings(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate: 1e-3\nepochs: 4\n")
    assert TrainConfig.from_yaml(path).learning_rate == pytest.approx(0.001)
    path.write_text("epoch: 4\n")
    with pytest.raises(ConfigError, match=r"unknown settings epoch; known settings: .*epochs"):
        TrainConfig.from_yaml(path)


def test_config_validates_values_by_name():
    with pytest.raises(ConfigError, match="epochs must be a positive integer, received 0"):
        TrainConfig(epochs=0)
    with pytest.raises(ConfigError, match="task must be one of kws"):
        TrainConfig(task="asr")
    with pytest.raises(ConfigError, match="dropout must be a number in"):
        TrainConfig(dropout=1.0)


def test_resolved_config_fills_task_defaults():
    kws = TrainConfig(task="kws", head="mlp").resolved()
    assert (kws.base, kws.clip_seconds, kws.pooling) == ("speech_embedding", None, "mean_max")
    speaker = TrainConfig(task="speaker-id", head="mlp", base="mine.keras").resolved()
    assert (speaker.base, speaker.pooling) == ("mine.keras", "attentive_statistics")


# -- stage 1 and the cache -----------------------------------------------------------------------------------
def test_frozen_base_runs_once_per_clip_across_epochs(rng):
    x, y = tones(rng, 4)
    x_val, y_val = tones(rng, 2)
    task = spotter()
    config = TrainConfig(epochs=6, patience=100, augment_copies=2)
    trainer = Trainer(task, config, verbose=0)
    result = trainer.fit(
        x, y, validation=(x_val, y_val), keys=[f"t{i}" for i in range(len(x))], augment=gain_and_noise
    )
    assert len(result.history) == 6
    # Clean clips, two augmented copies and the validation clips: each through the base once in 6 epochs.
    assert clips_embedded(task) == 3 * len(x) + len(x_val)
    assert (result.num_augmented_clips, result.cache_misses) == (2 * len(x), 3 * len(x) + len(x_val))

    # Training again reuses the cached clean clips; only the (unkeyed) augmented copies run again.
    trainer.fit(x, y, keys=[f"t{i}" for i in range(len(x))], augment=gain_and_noise)
    assert clips_embedded(task) == 5 * len(x) + len(x_val)


def test_disk_cache_serves_a_new_process_and_notices_new_weights(tmp_path, rng):
    x, _ = tones(rng, 2)
    keys = [f"clip{i}" for i in range(len(x))]
    base = tiny_base()
    first = EmbeddingCache(base, cache_dir=tmp_path, settings={"clip_seconds": 0.5}).embed(x, keys=keys)
    assert len(list(tmp_path.rglob("*.npy"))) == len(x)

    again = EmbeddingCache(base, cache_dir=tmp_path, settings={"clip_seconds": 0.5})
    np.testing.assert_array_equal(again.embed(x, keys=keys), first)
    assert (again.hits, again.misses) == (len(x), 0)
    assert int(base.clips_embedded.numpy()) == len(x)

    other_settings = EmbeddingCache(base, cache_dir=tmp_path, settings={"clip_seconds": 1.0})
    other_settings.embed(x, keys=keys)
    assert other_settings.misses == len(x)

    base.project.bias.assign(np.ones(8, np.float32))
    changed = EmbeddingCache(base, cache_dir=tmp_path, settings={"clip_seconds": 0.5})
    assert not np.allclose(changed.embed(x, keys=keys), first)
    assert changed.misses == len(x)


def test_cache_refuses_mismatched_keys(rng):
    x, _ = tones(rng, 1)
    with pytest.raises(Exception, match="2 keys were given for 3 clips"):
        EmbeddingCache(tiny_base()).embed(x, keys=["a", "b"])


def test_head_learns_tones_on_cached_embeddings(rng):
    x, y = tones(rng, 8)
    x_val, y_val = tones(rng, 4)
    task = spotter(context_seconds=0.1)
    config = TrainConfig(epochs=40, patience=100, learning_rate=1e-2, batch_size=8)
    result = Trainer(task, config, verbose=0).fit(x, y, validation=(x_val, y_val), augment=gain_and_noise)
    accuracy = (task.predict_waveforms(x_val).argmax(-1) == y_val).mean()
    assert accuracy >= 0.8, accuracy
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert set(result.history[0]) >= {"stage", "epoch", "loss", "accuracy", "val_loss", "val_accuracy"}


def test_early_stopping_restores_the_best_epoch(rng):
    x, y = tones(rng, 4)
    # Validation labels contradict training: validation loss is best early and then worsens.
    x_val, y_val = x[:6], (y[:6] + 1) % 3
    snapshots = []

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append([w.copy() for w in task.head.get_weights()])

    task = spotter()
    config = TrainConfig(epochs=30, patience=2, learning_rate=3e-2, augment=False)
    result = Trainer(task, config, verbose=0, callbacks=[Snapshot()]).fit(x, y, validation=(x_val, y_val))
    val_losses = [row["val_loss"] for row in result.history]
    best = int(np.argmin(val_losses))
    assert len(val_losses) < 30 and best < len(val_losses) - 1
    assert result.best_epochs == {"head": best + 1}
    for kept, snapshot in zip(task.head.get_weights(), snapshots[best], strict=True):
        np.testing.assert_array_equal(kept, snapshot)
    assert not np.array_equal(task.head.get_weights()[-1], snapshots[-1][-1])


def test_class_weights_balance_the_classes():
    trainer = Trainer(spotter(), TrainConfig())
    labels = np.array([0] * 6 + [1] * 2 + [2] * 1)
    weights = trainer._sample_weights(labels)
    totals = [weights[labels == k].sum() for k in range(3)]
    np.testing.assert_allclose(totals, totals[0])
    assert weights.mean() == pytest.approx(1.0)
    assert Trainer(spotter(), TrainConfig(class_weighting=False))._sample_weights(labels) is None


def test_same_seed_gives_the_same_head(rng):
    x, y = tones(rng, 3)
    heads = []
    for _ in range(2):
        task = spotter()
        Trainer(task, TrainConfig(epochs=3, seed=5), verbose=0).fit(x, y, augment=gain_and_noise)
        heads.append(task.head.get_weights())
    for a, b in zip(*heads, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_history_csv_has_a_row_per_epoch(tmp_path, rng):
    x, y = tones(rng, 3)
    result = Trainer(spotter(), TrainConfig(epochs=3, augment=False), verbose=0).fit(x, y)
    lines = result.to_csv(tmp_path / "history.csv").read_text().splitlines()
    assert lines[0].startswith("stage,epoch,")
    assert [line.split(",")[:2] for line in lines[1:]] == [["head", "1"], ["head", "2"], ["head", "3"]]


# -- stage 2 -------------------------------------------------------------------------------------------------
def test_fine_tuning_changes_only_the_top_blocks(rng):
    x, y = tones(rng, 3)
    task = spotter()
    base = task.base
    before = {block.name: [w.copy() for w in block.get_weights()] for block in base.blocks}
    config = TrainConfig(epochs=2, fine_tune_blocks=1, fine_tune_epochs=2, augment=False)
    result = Trainer(task, config, verbose=0).fit(x, y, validation=(x, y), augment=gain_and_noise)
    assert [row["stage"] for row in result.history] == ["head"] * 2 + ["fine_tune"] * 2
    for name in ("conv1", "conv2"):
        for old, new in zip(before[name], base.get_layer(name).get_weights(), strict=True):
            np.testing.assert_array_equal(old, new)
    assert not np.array_equal(before["project"][0], base.project.get_weights()[0])
    assert not base.trainable_weights  # frozen again afterwards


# -- speaker verification ------------------------------------------------------------------------------------
def test_verifier_trains_its_embedding_with_aam_softmax(rng):
    x, y = tones(rng, 4)
    verifier = SpeakerVerifier(tiny_base(), projection_dim=6, pooling="attentive_statistics")
    before = verifier.head.projection.get_weights()[0].copy()
    config = TrainConfig(task="speaker-verification", epochs=15, learning_rate=1e-2, augment=False)
    result = Trainer(verifier, config, verbose=0).fit(x, y)
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert not np.array_equal(before, verifier.head.projection.get_weights()[0])
    embeddings = verifier.embed_clips(x)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)


def test_bare_verifier_has_nothing_to_train():
    with pytest.raises(ConfigError, match="nothing to train"):
        Trainer(SpeakerVerifier(tiny_base()), TrainConfig(task="speaker-verification"))


def test_training_labels_must_index_the_classes(rng):
    x, _ = tones(rng, 1)
    with pytest.raises(ConfigError, match=r"labels must be in \[0, 2\], received values from 0 to 5"):
        Trainer(spotter(), TrainConfig(epochs=1), verbose=0).fit(x, np.array([0, 1, 5]))


# -- validation hold-out ------------------------------------------------------------------------------------
def _examples(per_speaker, speakers, labels=("yes", "no")):
    return [
        AudioExample(None, label, speaker, f"{label}/{speaker}_nohash_{n}.wav")
        for label in labels
        for speaker in speakers
        for n in range(per_speaker)
    ]


def test_hold_out_is_speaker_disjoint_for_keywords():
    examples = _examples(2, [f"spk{i:02d}" for i in range(30)])
    train, validation = hold_out_validation(examples, fraction=0.3, hold_out="speakers", min_examples=10)
    assert validation and train
    assert not {e.speaker for e in train} & {e.speaker for e in validation}
    assert len(train) + len(validation) == len(examples)


def test_hold_out_is_stratified_per_class_for_speaker_identification():
    examples = _examples(12, ["ann"], labels=("ann", "bob", "eve"))
    train, validation = hold_out_validation(examples, fraction=0.25, hold_out="clips", min_examples=10)
    for label in ("ann", "bob", "eve"):
        assert sum(e.label == label for e in validation) == 3
        assert sum(e.label == label for e in train) == 9


def test_hold_out_of_whole_speakers_for_verification():
    examples = _examples(10, ["x"], labels=[f"speaker{i:02d}" for i in range(20)])
    train, validation = hold_out_validation(examples, fraction=0.3, hold_out="classes", min_examples=10)
    held = {e.label for e in validation}
    assert len(held) >= 2 and not held & {e.label for e in train}
    assert len(train) + len(validation) == len(examples)


def test_hold_out_none_keeps_every_example_for_training():
    examples = _examples(3, ["s1", "s2", "s3"])
    assert hold_out_validation(examples, fraction=0.5, hold_out="none", min_examples=1) == (examples, [])


def test_few_examples_all_train_and_the_log_says_so(caplog):
    examples = _examples(1, [f"spk{i}" for i in range(9)])
    with caplog.at_level(logging.WARNING, logger="audio_transfer"):
        train, validation = hold_out_validation(examples, fraction=0.2, hold_out="speakers", min_examples=10)
    assert (len(train), validation) == (len(examples), [])
    assert "Keeping every example for training" in caplog.text and "only 9 examples" in caplog.text


# -- datasets and optimizers -------------------------------------------------------------------------------
class _Batches(keras.utils.PyDataset):
    def __init__(self, x, y, batch_size):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index):
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[rows], self.y[rows]


def test_fit_takes_a_dataset_batched_or_not_as_it_takes_arrays(rng):
    import tensorflow as tf

    x, y = tones(rng, 3)
    config = TrainConfig(epochs=2, min_steps_per_epoch=2, augment=False, seed=4)
    sources = {
        "arrays": ((x, y), {}),
        "batched": ((tf.data.Dataset.from_tensor_slices((x, y)).batch(4),), {}),
        "clips": ((tf.data.Dataset.from_tensor_slices((x, y)),), {}),
        "pydataset": ((_Batches(x, y, 5),), {"validation": _Batches(x[:3], y[:3], 2)}),
    }
    heads = {}
    for name, (args, kwargs) in sources.items():
        task = spotter()
        result = Trainer(task, config, verbose=0).fit(*args, **kwargs)
        assert result.num_train_clips == len(x)
        heads[name] = task.head.get_weights()
    for name in ("batched", "clips"):
        for a, b in zip(heads["arrays"], heads[name], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_fit_refuses_datasets_it_cannot_read_and_says_what_to_pass(rng):
    import tensorflow as tf

    x, y = tones(rng, 1)
    trainer = Trainer(spotter(), TrainConfig(epochs=1), verbose=0)
    pairs = tf.data.Dataset.from_tensor_slices((x, y))
    with pytest.raises(ConfigError, match=r"infinite \(repeat\(\)\); pass a finite one"):
        trainer.fit(pairs.repeat())
    with pytest.raises(ConfigError, match="yields its own labels"):
        trainer.fit(pairs, y)
    with pytest.raises(ConfigError, match=r"\(waveform, label\) pairs.*Drop sample weights"):
        trainer.fit(tf.data.Dataset.from_tensor_slices((x, y, np.ones(len(y)))))
    with pytest.raises(ConfigError, match="need their labels"):
        trainer.fit(x)


def test_fit_takes_an_optimizer_or_a_factory_per_stage(rng):
    x, y = tones(rng, 2)
    optimizer = keras.optimizers.SGD(0.05)
    config = TrainConfig(epochs=1, min_steps_per_epoch=2, augment=False)
    Trainer(spotter(), config, verbose=0).fit(x, y, optimizer=optimizer)
    assert int(optimizer.iterations.numpy()) > 0

    rates = []

    def factory(learning_rate):
        rates.append(learning_rate)
        return keras.optimizers.Adam(learning_rate)

    config = TrainConfig(
        epochs=1, min_steps_per_epoch=2, fine_tune_blocks=1, fine_tune_epochs=1, augment=False,
        learning_rate=0.01, fine_tune_learning_rate=0.001,
    )  # fmt: skip
    Trainer(spotter(), config, verbose=0).fit(x, y, optimizer=factory)
    assert rates == [0.01, 0.001]
    optimizer = keras.optimizers.SGD(0.05, momentum=0.5)
    result = Trainer(spotter(), config, verbose=0).fit(x, y, optimizer=optimizer)  # stage 2: a copy
    assert [row["stage"] for row in result.history] == ["head", "fine_tune"]
    with pytest.raises(ConfigError, match=r"optimizer must be a keras\.optimizers\.Optimizer"):
        Trainer(spotter(), config, verbose=0).fit(x, y, optimizer=lambda rate: "adam")

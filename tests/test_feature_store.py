"""The feature store: records, shards, manifest, errors and the tf.data stream training reads."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audio_transfer.data import (
    FeatureStore,
    FeatureStoreWriter,
    SkippedFile,
    StoreIdentity,
    StoreRecord,
    decode_record,
    encode_record,
    finish_store,
    is_store,
    shard_is_complete,
    shard_name,
    shard_of,
    write_shard,
)
from audio_transfer.errors import StoreError

SHAPE = (3, 4)
IDENTITY = StoreIdentity("embeddings", "tiny", "abc", 16000, 1.0, 0.0, SHAPE)


def make_records(count: int, *, labels=("yes", "no", "no", "no")) -> list[StoreRecord]:
    """``count`` records; record ``i``'s features are all ``i`` so that tests can tell them apart."""
    return [
        StoreRecord(
            key=f"{labels[i % len(labels)]}/clip{i:04d}.wav",
            label=labels[i % len(labels)],
            speaker=f"s{i % 5}" if i % 7 else None,
            source="augmented" if i % 3 == 0 else "clean",
            features=np.full(SHAPE, i, np.float32),
        )
        for i in range(count)
    ]


def write_store(path, records, **options) -> FeatureStore:
    with FeatureStoreWriter(path, identity=IDENTITY, **options) as writer:
        writer.add(records)
        writer.add_skipped([SkippedFile("bad.wav", "not audio")])
    return writer.store


def test_record_round_trip_keeps_every_field():
    record = StoreRecord(
        "a/b.wav#augment1", "yes", None, "augmented", np.arange(12, dtype=np.float32).reshape(3, 4)
    )
    decoded = decode_record(encode_record(record))
    assert (decoded.key, decoded.label, decoded.speaker, decoded.source) == (
        "a/b.wav#augment1",
        "yes",
        None,
        "augmented",
    )
    np.testing.assert_array_equal(decoded.features, record.features)
    assert decoded.features.dtype == np.float32


def test_identity_round_trip_and_mismatches_name_each_field():
    assert StoreIdentity.from_dict(json.loads(json.dumps(IDENTITY.to_dict()))) == IDENTITY
    other = StoreIdentity("embeddings", "tiny", "abc", 8000, 1.0, 0.5, SHAPE)
    assert IDENTITY.mismatches(other) == [
        "sample_rate: store 16000, expected 8000",
        "context_seconds: store 0.0, expected 0.5",
    ]


def test_keys_and_shards_are_deterministic():
    assert shard_name(3, 16) == "shard-00003-of-00016.tfrecord"
    assert [shard_of(f"k{i}", 7) for i in range(50)] == [shard_of(f"k{i}", 7) for i in range(50)]
    assert len({shard_of(f"k{i}", 7) for i in range(50)}) > 1
    with pytest.raises(StoreError):
        shard_name(16, 16)


def test_writer_round_trip_over_several_shards(tmp_path):
    records = make_records(20)
    store = write_store(tmp_path / "store", records, shard_examples=6)
    assert is_store(tmp_path / "store")
    assert [shard.file for shard in store.shards] == [shard_name(i, 4) for i in range(4)]
    assert store.num_examples == 20 and store.labels == {"no": 15, "yes": 5}
    assert store.sources == {"augmented": 7, "clean": 13}
    assert [item.path for item in store.skipped] == ["bad.wav"]
    assert [example.key for example in store.examples()] == [record.key for record in records]
    assert store.examples()[0].speaker is None and store.examples()[1].speaker == "s1"
    features, labels = store.arrays(labels=["no", "yes"])
    np.testing.assert_array_equal(features[:, 0, 0], np.arange(20))
    np.testing.assert_array_equal(labels, [1 if i % 4 == 0 else 0 for i in range(20)])
    assert not list(tmp_path.glob(".*tmp"))  # the temporary folder was renamed into place
    # A transform keeps only its output of each batch, across batch and shard boundaries, in store order.
    keys = {record.key for record in records[3:17]}
    pooled, some_labels = store.arrays(
        labels=["no", "yes"], keys=keys, transform=lambda batch: batch.mean(axis=1), batch_size=4
    )
    np.testing.assert_array_equal(pooled, features[3:17].mean(axis=1))
    np.testing.assert_array_equal(some_labels, labels[3:17])


def test_writing_the_same_records_twice_gives_identical_shards(tmp_path):
    first = write_store(tmp_path / "a", make_records(10), shard_examples=4)
    second = write_store(tmp_path / "b", make_records(10), shard_examples=4)
    assert [s.sha256 for s in first.shards] == [s.sha256 for s in second.shards]


def test_shape_mismatch_is_refused_and_nothing_is_left(tmp_path):
    bad = StoreRecord("x", "yes", None, "clean", np.zeros((2, 2), np.float32))
    with (
        pytest.raises(StoreError, match=r"shape \(2, 2\)"),
        FeatureStoreWriter(tmp_path / "s", identity=IDENTITY) as writer,
    ):
        writer.add([bad])
    assert list(tmp_path.iterdir()) == []


def test_identity_mismatch_lists_every_field(tmp_path):
    write_store(tmp_path / "store", make_records(4))
    expected = StoreIdentity("embeddings", "other", "def", 16000, 1.0, 0.0, SHAPE)
    with pytest.raises(StoreError) as raised:
        FeatureStore.open(tmp_path / "store", expect=expected)
    assert "base: store 'tiny', expected 'other'" in str(raised.value)
    assert "base_digest: store 'abc', expected 'def'" in str(raised.value)
    assert "sample_rate" not in str(raised.value)
    assert FeatureStore.open(tmp_path / "store", expect=IDENTITY).num_examples == 4


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_a_damaged_shard_is_named_and_the_rest_stays_readable(tmp_path, damage):
    write_store(tmp_path / "store", make_records(12), shard_examples=4)
    victim = tmp_path / "store" / shard_name(1, 3)
    if damage == "missing":
        victim.unlink()
    else:
        victim.write_bytes(victim.read_bytes()[:-10])
    with pytest.raises(StoreError, match=shard_name(1, 3)) as raised:
        FeatureStore.open(tmp_path / "store")
    assert damage in str(raised.value) and "missing_ok=True" in str(raised.value)
    assert not shard_is_complete(tmp_path / "store", index=1, num_shards=3)
    assert shard_is_complete(tmp_path / "store", index=0, num_shards=3)
    store = FeatureStore.open(tmp_path / "store", missing_ok=True)
    assert [shard.file for shard in store.readable_shards] == [shard_name(0, 3), shard_name(2, 3)]
    features, _ = store.arrays(labels=["no", "yes"])
    np.testing.assert_array_equal(features[:, 0, 0], [0, 1, 2, 3, 8, 9, 10, 11])


def test_verify_catches_a_shard_changed_in_place(tmp_path):
    write_store(tmp_path / "store", make_records(4))
    shard = tmp_path / "store" / shard_name(0, 1)
    data = bytearray(shard.read_bytes())
    data[-20] ^= 0xFF
    shard.write_bytes(bytes(data))
    FeatureStore.open(tmp_path / "store")  # same size: only the hash tells
    with pytest.raises(StoreError, match="SHA-256"):
        FeatureStore.open(tmp_path / "store", verify=True)


def test_empty_and_incomplete_stores_are_refused(tmp_path):
    with pytest.raises(StoreError, match=r"no example.*bad\.wav"):
        write_store(tmp_path / "empty", [])
    assert not (tmp_path / "empty").exists()
    (tmp_path / "blank").mkdir()
    with pytest.raises(StoreError, match="is empty"):
        FeatureStore.open(tmp_path / "blank")
    write_store(tmp_path / "store", make_records(4))
    (tmp_path / "store" / "manifest.json").unlink()
    with pytest.raises(StoreError, match="incomplete"):
        FeatureStore.open(tmp_path / "store")


@pytest.mark.parametrize("location", ["local", "url"])
def test_shards_written_separately_are_finished_into_one_store(location, tmp_path, request):
    import tensorflow as tf

    root = str(tmp_path) if location == "local" else request.getfixturevalue("ram_url")
    records = make_records(9)
    buckets = [[r for r in records if shard_of(r.key, 3) == index] for index in range(3)]
    for index in (0, 2):
        write_shard(root, index=index, num_shards=3, records=buckets[index])
    with pytest.raises(StoreError, match=shard_name(1, 3)):
        finish_store(root, identity=IDENTITY, num_shards=3)
    assert not is_store(root)
    info = write_shard(root, index=1, num_shards=3, records=buckets[1], skipped=[SkippedFile("x", "y")])
    assert info.examples == len(buckets[1])
    store = finish_store(root, identity=IDENTITY, num_shards=3)
    assert store.num_examples == 9 and [item.path for item in store.skipped] == ["x"]
    assert sorted(example.key for example in store.examples()) == sorted(record.key for record in records)
    assert not [name for name in tf.io.gfile.listdir(root) if ".tmp" in name]  # every temporary renamed


def test_sources_of_a_class_can_weigh_the_same_in_all(tmp_path):
    records = [
        StoreRecord(f"w{i}", "no", None, "negatives", np.full(SHAPE, i, np.float32)) for i in range(90)
    ] + [StoreRecord(f"c{i}", "no", None, "clean", np.zeros(SHAPE, np.float32)) for i in range(10)]
    records += [StoreRecord(f"y{i}", "yes", None, "clean", np.ones(SHAPE, np.float32)) for i in range(20)]
    store = write_store(tmp_path / "store", records)
    plain = store.example_weights()
    balanced = store.example_weights(balance_sources=True)
    sources = np.array([example.source for example in store.examples()])
    labels = np.array([example.label for example in store.examples()])
    no_windows, no_clips, yes = (
        (labels == "no") & (sources == "negatives"),
        (labels == "no") & (sources == "clean"),
        labels == "yes",
    )
    # Classes weigh the same in all either way; the 90 windows and 10 clips of "no" only when balanced.
    for weights in (plain, balanced):
        assert weights[labels == "no"].sum() == pytest.approx(weights[yes].sum())
        assert weights.mean() == pytest.approx(1.0)
    assert plain[no_windows].sum() == pytest.approx(9 * plain[no_clips].sum())
    assert balanced[no_windows].sum() == pytest.approx(balanced[no_clips].sum())
    doubled = store.example_weights(balance_sources=True, source_weights={"negatives": 2.0})
    assert doubled[no_windows].sum() == pytest.approx(2 * doubled[no_clips].sum())
    _, _, streamed = next(
        iter(store.dataset(labels=["no", "yes"], batch_size=120, shuffle_buffer=0, balance_sources=True))
    )
    np.testing.assert_allclose(streamed.numpy(), balanced, rtol=1e-6)


def test_dataset_shuffles_filters_and_weights(tmp_path):
    store = write_store(tmp_path / "store", make_records(40), shard_examples=7)
    keys = {record.key for record in make_records(40)[:30]}

    def epoch(seed):
        batches = list(
            store.dataset(labels=["no", "yes"], batch_size=8, shuffle_buffer=5, seed=seed, keys=keys)
        )
        return np.concatenate([b[0].numpy()[:, 0, 0] for b in batches]), batches

    order, batches = epoch(1)
    assert sorted(order) == list(range(30))  # each kept example exactly once
    assert list(order) != list(range(30))
    np.testing.assert_array_equal(epoch(1)[0], order)  # deterministic for a seed
    assert list(epoch(2)[0]) != list(order)
    labels = np.concatenate([b[1].numpy() for b in batches])
    weights = np.concatenate([b[2].numpy() for b in batches])
    assert np.isclose(weights.mean(), 1.0)
    # Inverse class frequency: both classes weigh the same in total.
    assert np.isclose(weights[labels == 0].sum(), weights[labels == 1].sum())
    source_weighted = store.dataset(
        labels=["no", "yes"], batch_size=64, class_weights=False, source_weights={"augmented": 0.5}
    )
    features, _, weights = next(iter(source_weighted))
    augmented = features.numpy()[:, 0, 0] % 3 == 0
    assert np.isclose(weights.numpy().mean(), 1.0)
    np.testing.assert_allclose(weights.numpy()[augmented] * 2, weights.numpy()[~augmented][0], rtol=1e-6)


def test_dataset_repeats_with_full_batches_and_refuses_unknown_labels(tmp_path):
    store = write_store(tmp_path / "store", make_records(10))
    batches = list(store.dataset(labels=["no", "yes"], batch_size=4, shuffle_buffer=10, repeat=True).take(5))
    assert all(batch[0].shape == (4, *SHAPE) for batch in batches)
    order = np.concatenate([batch[0].numpy()[:, 0, 0] for batch in batches])
    assert sorted(order[:10]) == sorted(order[10:]) == list(range(10))  # each pass: every example once
    assert list(order[:10]) != list(order[10:])  # in a new order
    with pytest.raises(StoreError, match="'yes'"):
        store.dataset(labels=["no"], batch_size=4)


def test_dataset_pipeline_does_not_grow_with_the_store(tmp_path):
    """The pipeline holds the shard names and label tables, not the examples: its graph is the same size
    for 10 and 400 examples."""

    def graph_bytes(count):
        store = write_store(tmp_path / str(count), make_records(count))
        dataset = store.dataset(labels=["no", "yes"], batch_size=8, shuffle_buffer=4)
        return len(dataset._as_serialized_graph().numpy())

    small, large = graph_bytes(10), graph_bytes(400)
    assert abs(large - small) < 64


def test_a_seed_variable_gives_each_iteration_the_order_of_its_value(tmp_path):
    import tensorflow as tf

    tf.random.set_seed(0)  # a global seed of 0 must not matter (Dataset.shuffle refuses a tensor seed then)
    store = write_store(tmp_path / "store", make_records(20), shard_examples=6)
    seed = tf.Variable(7, dtype=tf.int64)
    dataset = store.dataset(labels=["no", "yes"], batch_size=5, shuffle_buffer=8, seed=seed)

    def order(batches):
        return [int(value) for batch in batches for value in batch[0].numpy()[:, 0, 0]]

    first = order(dataset)
    seed.assign(8)
    second = order(dataset)
    assert first != second
    assert first == order(store.dataset(labels=["no", "yes"], batch_size=5, shuffle_buffer=8, seed=7))
    assert second == order(store.dataset(labels=["no", "yes"], batch_size=5, shuffle_buffer=8, seed=8))


def test_an_augmented_copy_names_its_clip_even_with_hashes_in_file_names():
    from audio_transfer.data import StoreExample

    assert StoreExample("yes/a#1.wav#augment12", "yes", None, "augmented", "s").clip_key == "yes/a#1.wav"
    assert StoreExample("yes/a#1.wav", "yes", None, "clean", "s").clip_key == "yes/a#1.wav"

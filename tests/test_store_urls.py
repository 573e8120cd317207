"""Feature stores at URLs (``gs://``, ``s3://``...), exercised on TensorFlow's in-process ``ram://`` file
system, which ``tf.io.gfile`` reads and writes as it does buckets: the same records, errors and atomic writes
as a local store."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from test_feature_store import IDENTITY, make_records, write_store

from audio_transfer.atomic_files import (
    atomic_file,
    atomic_write,
    is_url,
    join_path,
    writable_folder,
    write_bytes,
    write_json,
)
from audio_transfer.data import (
    FeatureStore,
    is_store,
    shard_is_complete,
    shard_name,
    write_shard,
)
from audio_transfer.errors import OutputError, StoreError


def listing(url: str) -> list[str]:
    return sorted(tf.io.gfile.listdir(url))


def test_urls_are_told_from_local_paths_and_joined_without_folding():
    assert is_url("gs://bucket/store") and is_url("s3://b/k") and is_url("ram://x")
    assert not is_url("store") and not is_url("/tmp/gs:/x") and not is_url("C:\\data")
    assert join_path("gs://bucket/store/", "shard.json") == "gs://bucket/store/shard.json"
    assert str(join_path("local", "a")) == "local/a"


def test_writer_to_a_url_reads_back_the_records_of_a_local_store(ram_url, tmp_path):
    records = make_records(20)
    url = f"{ram_url}/store"
    store = write_store(url, records, shard_examples=6)
    local = write_store(tmp_path / "store", records, shard_examples=6)

    assert store.path == url and is_store(url)
    assert [shard.sha256 for shard in store.shards] == [shard.sha256 for shard in local.shards]
    assert listing(ram_url) == ["store"]  # the temporary folder is gone
    names = [shard_name(i, 4) for i in range(4)]
    sidecars = [name.replace(".tfrecord", ".json") for name in names]
    assert listing(url) == sorted(["manifest.json", *names, *sidecars])
    opened = FeatureStore.open(url, expect=IDENTITY, verify=True)
    assert [example.key for example in opened.examples()] == [record.key for record in records]
    assert [item.path for item in opened.skipped] == ["bad.wav"]
    features, labels = opened.arrays(labels=["no", "yes"])
    np.testing.assert_array_equal(features[:, 0, 0], np.arange(20))
    np.testing.assert_array_equal(labels, [1 if i % 4 == 0 else 0 for i in range(20)])
    batches = list(opened.dataset(labels=["no", "yes"], batch_size=8, shuffle_buffer=16).as_numpy_iterator())
    assert sorted(np.concatenate([batch[0][:, 0, 0] for batch in batches])) == list(range(20))


def test_a_url_store_is_replaced_with_its_manifest_moved_last(ram_url, monkeypatch):
    url = f"{ram_url}/store"
    write_store(url, make_records(12), shard_examples=4)
    renamed = []
    rename = tf.io.gfile.rename

    def spy(source, target, overwrite=False):
        renamed.append(target)
        rename(source, target, overwrite=overwrite)

    monkeypatch.setattr(tf.io.gfile, "rename", spy)
    store = write_store(url, make_records(5), shard_examples=4)
    moved = [target for target in renamed if target.startswith(url + "/")]
    assert moved[-1] == f"{url}/manifest.json" and len(moved) == 5  # 2 shards, 2 sidecars, then it
    assert store.num_examples == 5 and len(listing(url)) == 5  # the old shards are gone


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_a_damaged_shard_at_a_url_is_named_as_in_a_local_store(ram_url, damage):
    url = f"{ram_url}/store"
    write_store(url, make_records(12), shard_examples=4)
    victim = f"{url}/{shard_name(1, 3)}"
    if damage == "missing":
        tf.io.gfile.remove(victim)
    else:
        with tf.io.gfile.GFile(victim, "rb") as file:
            data = file.read()
        write_bytes(victim, data[:-10])
    with pytest.raises(StoreError, match=shard_name(1, 3)) as raised:
        FeatureStore.open(url)
    assert damage in str(raised.value) and url in str(raised.value)
    assert not shard_is_complete(url, index=1, num_shards=3)
    assert shard_is_complete(url, index=0, num_shards=3)
    store = FeatureStore.open(url, missing_ok=True)
    assert [shard.file for shard in store.readable_shards] == [shard_name(0, 3), shard_name(2, 3)]


def test_missing_and_incomplete_url_stores_are_named(ram_url):
    with pytest.raises(StoreError, match="does not exist"):
        FeatureStore.open(f"{ram_url}/nothing")
    write_shard(ram_url, index=0, num_shards=2, records=make_records(3))
    assert not is_store(ram_url)
    with pytest.raises(StoreError, match="incomplete"):
        FeatureStore.open(ram_url)


def test_url_write_leaves_no_temporary_and_a_failed_one_no_object(ram_url):
    path = f"{ram_url}/metrics.json"
    assert write_json(path, {"accuracy": np.float32(0.5)}) == path
    assert listing(ram_url) == ["metrics.json"]

    def half_then_fail(file):
        file.write(b'{"accuracy": ')
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="mid-write"):
        atomic_write(path, half_then_fail)
    with pytest.raises(RuntimeError, match="mid-write"):
        atomic_write(f"{ram_url}/new.json", half_then_fail)
    assert listing(ram_url) == ["metrics.json"]  # no temporary, no new.json
    with tf.io.gfile.GFile(path, "rb") as file:
        assert file.read() == b'{\n  "accuracy": 0.5\n}\n'  # the old object whole


def test_url_named_temporary_replaces_only_on_success_and_refusals_are_typed(ram_url, monkeypatch):
    path = f"{ram_url}/shard.tfrecord"
    with atomic_file(path) as temporary:
        assert temporary.startswith(f"{ram_url}/.shard.tfrecord.") and temporary.endswith(".tfrecord")
        with tf.io.TFRecordWriter(temporary) as writer:
            writer.write(b"record")
    assert listing(ram_url) == ["shard.tfrecord"]
    with pytest.raises(KeyError), atomic_file(f"{ram_url}/other.tfrecord") as temporary:
        with tf.io.TFRecordWriter(temporary) as writer:
            writer.write(b"record")
        raise KeyError("the writer failed")
    assert listing(ram_url) == ["shard.tfrecord"]

    def refuse(*args, **kwargs):
        raise tf.errors.PermissionDeniedError(None, None, "no permission")

    monkeypatch.setattr(tf.io.gfile, "rename", refuse)
    with pytest.raises(OutputError, match=rf"{ram_url}/labels\.txt: no permission.*credentials"):
        write_bytes(f"{ram_url}/labels.txt", b"yes\n")
    assert listing(ram_url) == ["shard.tfrecord"]


def test_writable_folder_accepts_a_url_and_leaves_nothing_behind(ram_url):
    folder = f"{ram_url}/out/store"
    assert writable_folder(folder) == folder
    assert tf.io.gfile.isdir(folder) and listing(folder) == []


def test_ctrl_c_of_embed_to_a_url_says_the_store_may_be_partly_written(
    ram_url, tmp_path, monkeypatch, capsys, restore_package_logger
):
    from audio_transfer.cli import embed
    from audio_transfer.cli.main import EXIT_INTERRUPTED, main

    def interrupt(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(embed, "run", interrupt)
    url = f"{ram_url}/store"
    assert main(["embed", str(tmp_path), "--base", "b", "--out", url]) == EXIT_INTERRUPTED
    assert f"Interrupted while writing {url}: it may hold a partial result" in capsys.readouterr().err


def test_a_scheme_tensorflow_cannot_read_is_a_typed_error_saying_what_to_install():
    url = "nosuchfs://bucket/store"
    with pytest.raises(StoreError, match=r"nosuchfs://bucket/store.*not implemented.*tensorflow-io"):
        is_store(url)
    with pytest.raises(StoreError, match="tensorflow-io"):
        FeatureStore.open(url)
    with pytest.raises(OutputError, match=r"nosuchfs://bucket/store.*tensorflow-io"):
        writable_folder(url)

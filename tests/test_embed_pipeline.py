"""The Beam feature-extraction pipeline (``audio-transfer embed``) on the DirectRunner with two worker
processes: sorted deterministic shards, skipped corrupt files, resuming, and equality with the in-process
embedder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from audio_files import write_speech_commands_tree, write_truncated_wav
from conftest import REPO_ROOT
from tiny_conv_base import tiny_base

from audio_transfer.audio import crop_or_pad, load_audio
from audio_transfer.cli.main import main
from audio_transfer.data.feature_store import FeatureStore, decode_record, shard_name, shard_of
from audio_transfer.embedding.embed_pipeline import list_examples, run_embed_pipeline
from audio_transfer.embedding.store_embedder import embed_waveforms
from audio_transfer.errors import ConfigError, DatasetError, DependencyError

pytest.importorskip("apache_beam")

TESTS_DIR = Path(__file__).resolve().parent
# A command's run starts two worker processes that import TensorFlow: bounded so that a hung worker fails
# the test.
RUN_TIMEOUT_SECONDS = 240
# The default tests run the DirectRunner's two workers as threads: two worker processes each import
# TensorFlow (about 35 s on a 2-core machine, against 3 s); the slow variant runs them as processes.
MODES = ["multi_threading", pytest.param("multi_processing", marks=pytest.mark.slow)]
_SEED_LOCK = threading.Lock()


def seeded_tiny_base():
    """``tiny_base()``, whose global seeding is not thread-safe, one thread at a time: threaded workers
    build equal bases (their digest is checked against the launcher's)."""
    with _SEED_LOCK:
        return tiny_base()


@pytest.fixture
def workers_import_tests(monkeypatch):
    """The worker processes unpickle ``tiny_conv_base.tiny_base`` by reference: they need tests/ on their
    path, and the repository (this worktree's package) before the installed one."""
    paths = [str(TESTS_DIR), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(path for path in paths if path))


@pytest.fixture
def dataset(tmp_path) -> Path:
    """3 words x 4 speakers of 1 s tones, a noise folder, and one truncated (undecodable) clip."""
    root = write_speech_commands_tree(tmp_path / "data", speakers=4)
    write_truncated_wav(root / "yes" / "broken_nohash_0.wav")
    return root


def _embed(data: Path, out: Path, mode: str = "multi_threading", **kwargs) -> FeatureStore:
    settings = {
        "base": seeded_tiny_base,
        "num_shards": 3,
        "batch_size": 4,
        "direct_num_workers": 2,
        "direct_running_mode": mode,
        **kwargs,
    }
    return run_embed_pipeline(data=data, out=out, **settings)


def _records(store_dir: Path, index: int, num_shards: int) -> list:
    import tensorflow as tf

    path = store_dir / shard_name(index, num_shards)
    return [decode_record(item.numpy()) for item in tf.data.TFRecordDataset(str(path))]


def _expected_features(data: Path, keys: list[str], *, clip_seconds: float, context_seconds: float):
    """What the in-process embedder makes of the same files, by key."""
    clips = np.stack(
        [
            crop_or_pad(load_audio(data / key, sample_rate=16000), num_samples=round(16000 * clip_seconds))
            for key in keys
        ]
    )
    base = tiny_base()
    frames = embed_waveforms(base, clips, context_samples=round(context_seconds * 16000))
    return dict(zip(keys, frames, strict=True))


@pytest.mark.parametrize("mode", MODES)
def test_pipeline_writes_sorted_shards_equal_to_the_in_process_embedder(
    mode, dataset, tmp_path, workers_import_tests
):
    out = tmp_path / "store"
    store = _embed(dataset, out, mode, clip_seconds=1.0, context_seconds=0.35)

    assert store.num_examples == 12
    assert store.labels == {"no": 4, "up": 4, "yes": 4}
    assert [Path(item.path).name for item in store.skipped] == ["broken_nohash_0.wav"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["identity"]["clip_seconds"] == 1.0 and manifest["identity"]["context_seconds"] == 0.35
    keys = []
    for index in range(3):
        records = _records(out, index, 3)
        shard_keys = [record.key for record in records]
        assert shard_keys == sorted(shard_keys)
        assert all(shard_of(key, 3) == index for key in shard_keys)
        keys += shard_keys
    assert sorted(keys) == sorted(
        f"{word}/spk{n:02d}_nohash_0.wav" for word in ("yes", "no", "up") for n in range(4)
    )
    expected = _expected_features(dataset, keys, clip_seconds=1.0, context_seconds=0.35)
    for index in range(3):
        for record in _records(out, index, 3):
            np.testing.assert_allclose(record.features, expected[record.key], atol=1e-5)
            assert record.label == record.key.split("/")[0] and record.speaker == record.key.split("/")[1][:5]


def test_rerun_after_losing_a_shard_rewrites_only_it_and_the_same_bytes(
    dataset, tmp_path, workers_import_tests
):
    out = tmp_path / "store"
    _embed(dataset, out)
    first = {path.name: path.read_bytes() for path in sorted(out.iterdir())}
    mtimes = {path.name: path.stat().st_mtime_ns for path in out.iterdir()}
    lost = shard_name(1, 3)
    (out / lost).unlink()
    (out / "manifest.json").unlink()

    store = _embed(dataset, out)

    assert {path.name: path.read_bytes() for path in sorted(out.iterdir())} == first
    kept = [
        name for name in mtimes if name not in (lost, "manifest.json", lost.replace(".tfrecord", ".json"))
    ]
    assert all((out / name).stat().st_mtime_ns == mtimes[name] for name in kept)
    keys = [example.key for example in store.examples()]
    assert len(keys) == len(set(keys)) == 12


def test_pipeline_writes_a_store_at_a_url_equal_to_a_local_one(dataset, tmp_path, ram_url):
    """Beam's workers (threads sharing the in-process ``ram://`` file system, as Dataflow's share a bucket)
    write the shards and the manifest through tf.io.gfile; nothing goes through the launcher's disk."""
    import tensorflow as tf

    url = f"{ram_url}/store"
    store = _embed(dataset, url, num_shards=2)
    local = _embed(dataset, tmp_path / "store", num_shards=2)

    assert store.path == url and store.num_examples == local.num_examples == 12
    assert store.labels == local.labels and store.skipped == local.skipped
    assert sorted(tf.io.gfile.listdir(url)) == sorted(path.name for path in (tmp_path / "store").iterdir())
    labels = sorted(local.labels)
    url_features, url_labels = FeatureStore.open(url, verify=True).arrays(labels=labels)
    local_features, local_labels = local.arrays(labels=labels)
    np.testing.assert_array_equal(url_labels, local_labels)
    np.testing.assert_allclose(url_features, local_features, atol=1e-5)
    assert [e.key for e in store.examples()] == [e.key for e in local.examples()]

    def contents() -> dict[str, bytes]:
        return {name: tf.io.gfile.GFile(f"{url}/{name}", "rb").read() for name in tf.io.gfile.listdir(url)}

    first = contents()
    tf.io.gfile.remove(f"{url}/{shard_name(1, 2)}")  # a lost shard: the rerun makes it again, the same
    _embed(dataset, url, num_shards=2)
    assert contents() == first


def test_glob_lists_keys_below_the_fixed_folder_and_labels_by_folder(dataset):
    examples, skipped = list_examples(f"{dataset}/*/*.wav")
    assert sorted({example.label for example in examples}) == ["no", "up", "yes"]  # no _background_noise_
    assert len(examples) == 13
    yes = [example for example in examples if example.label == "yes"]
    assert yes[0].key == "yes/broken_nohash_0.wav"
    assert yes[1].speaker == "spk00" and yes[1].path == os.fspath(dataset / "yes" / "spk00_nohash_0.wav")
    assert skipped == []
    with pytest.raises(DatasetError, match="matches no audio"):
        list_examples(f"{dataset}/*/*.flac")


def test_keywords_keep_their_classes_and_a_sample_of_unknown_as_training_on_the_folder_does(dataset):
    from audio_transfer.data import load_labelled_audio

    examples, _ = list_examples(dataset, keywords=["yes"], unknown_fraction=0.5)
    expected = load_labelled_audio(dataset, keywords=["yes"], unknown_fraction=0.5).examples
    assert sorted((e.key, e.label) for e in examples) == sorted((e.relative_path, e.label) for e in expected)
    assert {e.label for e in examples} == {"yes", "_unknown_"} and len(examples) == 5 + 3
    with pytest.raises(ConfigError, match="--keywords needs a dataset folder or manifest"):
        list_examples(f"{dataset}/*/*.wav", keywords=["yes"])


def test_manifest_listing_twice_the_same_file_keeps_one(dataset, tmp_path):
    manifest = tmp_path / "clips.csv"
    manifest.write_text(
        f"path,label\n{dataset}/yes/spk00_nohash_0.wav,yes\n{dataset}/yes/spk00_nohash_0.wav,yes\n"
    )
    examples, skipped = list_examples(manifest)
    assert len(examples) == 1
    assert len(skipped) == 1 and "listed again" in skipped[0].reason


def test_missing_beam_says_what_to_install(monkeypatch, dataset, tmp_path):
    monkeypatch.setitem(sys.modules, "apache_beam", None)
    with pytest.raises(DependencyError, match=r"pip install 'audio_transfer\[beam\]'"):
        run_embed_pipeline(data=dataset, base=seeded_tiny_base, out=tmp_path / "store")


def test_cli_passes_options_after_the_double_dash_to_beam_and_refuses_them_elsewhere(
    tmp_path, capsys, restore_package_logger
):
    code = main(
        [
            "embed",
            str(tmp_path / "missing"),
            "--base",
            "speech_embedding",
            "--out",
            str(tmp_path / "s"),
            "--json",
            "--",
            "--bogus_beam_option=1",
        ]
    )
    assert code == 2
    assert json.loads(capsys.readouterr().out)["error"] == "DatasetError"
    with pytest.raises(SystemExit) as exit_info:
        main(["info", str(tmp_path), "--", "--project=p"])
    assert exit_info.value.code == 2


@pytest.mark.slow
def test_real_base_matches_the_in_process_embedder(speech_commands_dir, tmp_path):
    """speech_embedding through Beam equals the in-process embedder on real clips, compared by key."""
    from audio_transfer.bases import load_base
    from audio_transfer.data import load_labelled_audio
    from audio_transfer.embedding.base_identity import store_identity
    from audio_transfer.embedding.store_embedder import embed_to_store

    data = tmp_path / "data"
    for word in ("yes", "no"):
        for clip in sorted((speech_commands_dir / word).glob("*.wav"))[:5]:
            (data / word).mkdir(parents=True, exist_ok=True)
            (data / word / clip.name).write_bytes(clip.read_bytes())
    beam_store = run_embed_pipeline(
        data=data, base="speech_embedding", out=tmp_path / "beam", direct_num_workers=2, num_shards=2
    )
    base = load_base("speech_embedding")
    identity = store_identity(
        base, base_name="speech_embedding", sample_rate=16000, clip_seconds=1.0, context_seconds=0.35
    )
    local_store = embed_to_store(
        tmp_path / "local", load_labelled_audio(data).examples, base=base, identity=identity
    )
    assert beam_store.identity == local_store.identity == identity
    local = {record.key: record.features for record in _all_records(local_store)}
    beam = {record.key: record.features for record in _all_records(beam_store)}
    assert sorted(local) == sorted(beam) and len(beam) == 10
    for key, features in beam.items():
        np.testing.assert_allclose(features, local[key], atol=1e-5)


def _all_records(store: FeatureStore) -> list:
    import tensorflow as tf

    files = sorted(store.path.glob("shard-*.tfrecord"))
    return [decode_record(item.numpy()) for item in tf.data.TFRecordDataset([str(f) for f in files])]


@pytest.mark.slow
def test_killed_command_resumes_to_the_same_store(dataset, tmp_path):
    """`audio-transfer embed` killed once a shard is written, then re-run, ends with every key once and the
    bytes of an uninterrupted run."""
    command = [
        sys.executable,
        "-m",
        "audio_transfer",
        "embed",
        str(dataset),
        "--base",
        "speech_embedding",
        "--num-shards",
        "4",
        "--direct-num-workers",
        "2",
        "--json",
    ]
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    reference = tmp_path / "reference"
    subprocess.run(
        [*command, "--out", str(reference)],
        env=environment,
        check=True,
        timeout=RUN_TIMEOUT_SECONDS,
        capture_output=True,
    )

    out = tmp_path / "store"
    process = subprocess.Popen(
        [*command, "--out", str(out)],
        env=environment,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while not list(out.glob("shard-*.json")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert not (out / "manifest.json").exists()

    result = subprocess.run(
        [*command, "--out", str(out)],
        env=environment,
        timeout=RUN_TIMEOUT_SECONDS,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["examples"] == 12
    assert {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")} == {
        p.name: p.read_bytes() for p in reference.iterdir() if not p.name.startswith(".")
    }

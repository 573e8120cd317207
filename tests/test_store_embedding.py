"""Embedding a dataset into a feature store in bounded chunks (audio_transfer.embedding)."""

from __future__ import annotations

import numpy as np
import pytest
from audio_files import write_corrupt_flac, write_pitch_classes
from tiny_conv_base import tiny_base

from audio_transfer.data import FeatureStore, decode_examples, load_labelled_audio
from audio_transfer.embedding import base_digest, embed_to_store, embed_waveforms, store_identity
from audio_transfer.errors import StoreError


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("tones")
    write_pitch_classes(root, {"low": 300.0, "high": 3000.0}, speakers=4)
    write_corrupt_flac(root / "low" / "broken.flac")
    return load_labelled_audio(root)


@pytest.fixture(scope="module")
def base():
    return tiny_base()


def identity_of(base, **overrides):
    settings = {"base_name": "tiny", "sample_rate": 16000, "clip_seconds": 0.5, "context_seconds": 0.1}
    return store_identity(base, **{**settings, **overrides})


def test_identity_follows_the_base_and_settings(base):
    identity = identity_of(base)
    assert identity.shape == (base.num_windows(8000 + 2 * 1600), base.embedding_dim)
    other = tiny_base(seed=1)
    assert identity_of(other).mismatches(identity) == [
        f"base_digest: store {base_digest(other)!r}, expected {identity.base_digest!r}"
    ]
    assert base_digest(tiny_base(seed=0)) == identity.base_digest  # a second instance: same weights
    assert identity_of(base, clip_seconds=1.0).shape != identity.shape


def add_noise(waveforms, seed):
    return waveforms + np.random.default_rng(seed).normal(0, 0.01, waveforms.shape).astype(np.float32)


def test_store_holds_the_embeddings_the_base_gives(dataset, base, tmp_path):
    identity = identity_of(base)
    store = embed_to_store(tmp_path / "store", dataset.examples, base=base, identity=identity, shuffle=False)
    clean = [example for example in dataset.examples if example.path.suffix != ".flac"]
    assert [example.key for example in store.examples()] == [example.relative_path for example in clean]
    assert [item.path.endswith("broken.flac") for item in store.skipped] == [True]
    waveforms = decode_examples(clean, sample_rate=16000, clip_seconds=0.5).waveforms
    features, _ = store.arrays(labels=dataset.labels)
    np.testing.assert_allclose(features, embed_waveforms(base, waveforms, context_samples=1600), atol=1e-5)
    with pytest.raises(StoreError, match="base_digest"):
        FeatureStore.open(tmp_path / "store", expect=identity_of(tiny_base(seed=1)))


def test_augmented_copies_are_deterministic_and_keyed_after_their_clip(dataset, base, tmp_path, monkeypatch):
    import audio_transfer.embedding.store_embedder as embedder

    monkeypatch.setattr(embedder, "CHUNK_CLIPS", 7)  # several chunks, each seeded on its own
    stores = [
        embed_to_store(
            tmp_path / name,
            dataset.examples,
            base=base,
            identity=identity_of(base),
            augment=add_noise,
            augment_copies=2,
            seed=5,
        )
        for name in ("a", "b")
    ]
    assert [shard.sha256 for shard in stores[0].shards] == [shard.sha256 for shard in stores[1].shards]
    keys = [example.key for example in stores[0].examples()]
    clean = [key for key in keys if "#" not in key]
    assert sorted(keys) == sorted([*clean, *(f"{key}#augment{k}" for key in clean for k in (0, 1))])
    assert stores[0].sources == {"augmented": 2 * len(clean), "clean": len(clean)}
    in_given_order = [e.relative_path for e in dataset.examples if e.path.suffix != ".flac"]
    assert sorted(clean) == sorted(in_given_order) and clean != in_given_order  # shuffled before writing

"""Training from a feature store (`audio-transfer train STORE`) and evaluating on one."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
from audio_files import write_pitch_classes
from tiny_conv_base import tiny_base

from audio_transfer.bases import load_base
from audio_transfer.cli.main import build_parser, main
from audio_transfer.cli.train import resolve_config
from audio_transfer.data import load_labelled_audio
from audio_transfer.embedding import embed_to_store, store_identity
from audio_transfer.errors import ConfigError, StoreError
from audio_transfer.training import TrainConfig, train_run


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("store_training")
    write_pitch_classes(root / "tones", {"low": 300.0, "mid": 1000.0, "high": 3000.0})
    tiny_base().save(root / "tiny_base.keras")
    embed_tones(root, root / "store")
    return root


def embed_tones(workspace, out) -> None:
    """The tones embedded by the tiny base (0.5 s clips, 0.1 s of context) into the store ``out``."""
    base = load_base(str(workspace / "tiny_base.keras"))
    identity = store_identity(
        base,
        base_name=str(workspace / "tiny_base.keras"),
        sample_rate=16000,
        clip_seconds=0.5,
        context_seconds=0.1,
    )
    embed_to_store(out, load_labelled_audio(workspace / "tones").examples, base=base, identity=identity)


def config_for(workspace, **overrides) -> TrainConfig:
    settings = {
        "task": "classify",
        "data_dir": str(workspace / "store"),
        "base": str(workspace / "tiny_base.keras"),
        "context_seconds": 0.1,
        "epochs": 2,
        "min_steps_per_epoch": 2,
    }
    return TrainConfig(**{**settings, **overrides})


def cli(*args: str) -> tuple[int, dict]:
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main([*args, "--json"])
    return code, json.loads(stdout.getvalue())


def test_a_run_trains_from_a_store_with_speakers_held_out(workspace):
    run = train_run(config_for(workspace), verbose=0)
    assert run.labels == ["high", "low", "mid"] and run.config.clip_seconds == 0.5
    assert run.evaluation_split == "validation" and run.evaluation is None
    result = run.result
    assert result.num_train_clips + run.num_evaluation_clips == 30
    assert 0 < run.num_evaluation_clips < 30
    assert (result.cache_hits, result.cache_misses) == (30, 0)
    assert run.report.num_examples == run.num_evaluation_clips


def test_the_cli_trains_from_a_store_and_evaluates_on_one(workspace):
    code, trained = cli(
        "train",
        str(workspace / "store"),
        "--task",
        "classify",
        "--base",
        str(workspace / "tiny_base.keras"),
        "--set",
        "context_seconds=0.1",
        "--epochs",
        "2",
        "--out",
        str(workspace / "run"),
    )
    assert code == 0, trained
    assert trained["evaluated_on"] == "validation" and trained["num_validation_clips"] > 0
    code, evaluated = cli("evaluate", str(workspace / "run"), "--data", str(workspace / "store"))
    assert code == 0, evaluated
    assert evaluated["num_examples"] == 30  # every clean clip of the store


def test_a_run_trains_from_a_store_at_a_url(workspace, ram_url):
    """``train gs://bucket/store``: the run reads the store's sidecars and shards through tf.io.gfile
    (``ram://`` here) and the CLI keeps the URL as given."""
    url = f"{ram_url}/store"
    embed_tones(workspace, url)
    args = build_parser().parse_args(["train", url, "--out", "run"])
    assert resolve_config(args).data_dir == url
    assert build_parser().parse_args(["evaluate", "run", "--data", url]).data == url

    run = train_run(config_for(workspace, data_dir=url, head="mlp", epochs=1), verbose=0)
    assert run.labels == ["high", "low", "mid"] and len(run.result.history) == 1
    assert run.result.num_train_clips + run.num_evaluation_clips == 30
    assert run.report.num_examples == run.num_evaluation_clips > 0


def test_a_store_of_another_base_or_settings_is_refused(workspace, tmp_path):
    other = tiny_base(seed=4)
    other.save(tmp_path / "other.keras")
    with pytest.raises(StoreError, match="base_digest"):
        train_run(config_for(workspace, base=str(tmp_path / "other.keras")), verbose=0)
    with pytest.raises(StoreError, match="context_seconds"):
        train_run(config_for(workspace, context_seconds=0.2), verbose=0)
    with pytest.raises(ConfigError, match="fine-tuning"):
        train_run(config_for(workspace, fine_tune_blocks=1), verbose=0)


def test_a_folder_run_embeds_into_a_store_that_cache_dir_keeps(workspace, tmp_path):
    config = config_for(workspace, data_dir=str(workspace / "tones"), cache_dir=str(tmp_path / "cache"))
    first = train_run(config, tmp_path / "run", verbose=0)
    clips = first.result.num_train_clips + first.num_evaluation_clips
    assert first.result.cache_misses == clips + 2 * first.result.num_train_clips  # two augmented copies
    (store,) = (tmp_path / "cache" / "stores").iterdir()
    assert (store / "manifest.json").is_file()
    assert not (tmp_path / "run" / "feature_store").exists()  # the staged store never reaches the run
    again = train_run(config, verbose=0)
    assert (again.result.cache_hits, again.result.cache_misses) == (first.result.cache_misses, 0)
    assert again.result.history == first.result.history

"""``train --base-weights PATH``: the weights file reaches the base's loader and is recorded in the run."""

import numpy as np
import yaml
from tiny_conv_base import tiny_base

from audio_transfer.audio import save_audio
from audio_transfer.cli.main import main


def test_base_weights_reach_load_base_and_the_run_config(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    for label, frequency in (("low", 300.0), ("high", 2000.0)):
        for index in range(4):
            t = np.arange(8000) / 16000
            tone = 0.5 * np.sin(2 * np.pi * frequency * t) + rng.normal(scale=0.01, size=t.size)
            save_audio(tmp_path / "data" / label / f"s{index}_nohash_0.wav", tone, sample_rate=16000)
    weights = tmp_path / "weights.h5"
    weights.write_bytes(b"stand-in")
    requested = []

    def fake_load_base(name, **kwargs):
        requested.append((name, kwargs))
        return tiny_base()

    monkeypatch.setattr("audio_transfer.training.training_run.load_base", fake_load_base)
    code = main(
        ["train", str(tmp_path / "data"), "--base", "yamnet", "--base-weights", str(weights),
         "--task", "classify", "--epochs", "1", "--out", str(tmp_path / "run")]
    )  # fmt: skip
    assert code == 0
    assert requested == [("yamnet", {"weights": str(weights.resolve())})]
    config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert config["base"] == "yamnet" and config["base_weights"] == str(weights.resolve())

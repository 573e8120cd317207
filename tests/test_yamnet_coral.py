"""YAMNet with the weights of Google Coral's int8 YAMNet (Apache-2.0, see tests/data_paths.py) against it.

The directory holds ``yamnet_spectra_in.tflite`` (log-mel patch (1, 96, 64) in, 521 AudioSet scores out),
``yamnet_test_audio.bin`` (15600 int16 samples at 16 kHz) and ``yamnet_test_spectra.bin`` (its 96 x 64
float32 log-mel patch). Skipped when the directory is absent.
"""

from __future__ import annotations

import numpy as np
import pytest
from tflite_conversion import run_tflite

from audio_transfer.bases.yamnet_base import YAMNetBase
from audio_transfer.bases.yamnet_weights import load_yamnet_weights


@pytest.fixture(scope="module")
def coral(coral_yamnet_dir) -> dict:
    model = coral_yamnet_dir / "yamnet_spectra_in.tflite"
    spectra = np.fromfile(coral_yamnet_dir / "yamnet_test_spectra.bin", dtype=np.float32).reshape(1, 96, 64)
    audio = np.fromfile(coral_yamnet_dir / "yamnet_test_audio.bin", dtype=np.int16)
    return {
        "model": model,
        "spectra": spectra,
        "waveform": (audio / 32768.0).astype(np.float32),
        "scores": run_tflite(model, spectra)[0],
        "base": load_yamnet_weights(YAMNetBase(include_audioset_head=True), model),
    }


def test_scores_on_the_test_spectra_match_the_int8_model(coral):
    base = coral["base"]
    ours = base.audioset_head(base.embed_patches(coral["spectra"][None])).numpy()[0, 0]
    expected = coral["scores"]
    assert np.corrcoef(ours, expected)[0, 1] >= 0.99
    assert np.argmax(ours) == np.argmax(expected)
    # The int8 model's scores are multiples of 1/256; ours are within a few steps of them.
    assert np.abs(ours - expected).max() < 4 / 256


def test_waveform_path_finds_the_same_top_class(coral):
    base = coral["base"]
    assert coral["waveform"].shape == (base.min_samples,)
    spectra = base.frontend(coral["waveform"][None]).numpy()
    assert spectra.shape == (1, 96, 64)
    difference = spectra - coral["spectra"]
    # Same spectra up to a gain: Coral's test patch is ~1.41 higher in log-mel everywhere (its mel
    # magnitudes are 4.1 times ours, as if its waveform were scaled by 4.1), with the same shape.
    assert np.corrcoef(spectra.ravel(), coral["spectra"].ravel())[0, 1] > 0.9999
    assert difference.std() < 0.05
    ours = base.audioset_scores(coral["waveform"][None]).numpy()[0, 0]
    assert np.argmax(ours) == np.argmax(coral["scores"])
    assert np.corrcoef(ours, coral["scores"])[0, 1] >= 0.99

"""Write the parity fixture of ``ge2e_speaker``: embeddings computed by the ORIGINAL Resemblyzer encoder.

The reference is Resemblyzer 0.1.4's own code (``resemblyzer.VoiceEncoder`` on PyTorch with
``pretrained.pt``, ``resemblyzer.audio.normalize_volume`` and ``VoiceEncoder.embed_utterance``), run on
real speech from the Speech Commands subset and on seeded synthetic audio. Voice-activity trimming
(``trim_long_silences``, which needs webrtcvad) is not part of the Keras base and is not applied here; when
webrtcvad is not installed a placeholder module stands in for it, which the code used never calls.

Needs torch (a tool here, not a dependency of audio_transfer); a CPU wheel in a separate folder keeps the
shared environment unchanged::

    pip install --no-deps --target /tmp/ge2e_torch torch==2.13.0 filelock fsspec
    pip download --no-deps -d /tmp/dl resemblyzer==0.1.4
    PYTHONPATH=/tmp/ge2e_torch python models/ge2e_speaker/make_parity_fixture.py \\
        --wheel /tmp/dl/Resemblyzer-0.1.4-py3-none-any.whl

The fixture keeps the names of the Speech Commands clips (the audio stays in ``../shared``), the synthetic
waveforms as int16 and, per case, the partial embeddings and the utterance embedding.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
import tempfile
import types
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SPEECH_DIR = REPO_ROOT.parent / "shared" / "data" / "speech_commands_subset"
DEFAULT_OUTPUT = REPO_ROOT / "tests" / "fixtures" / "ge2e_speaker_reference.npz"
SAMPLE_RATE = 16000

logger = logging.getLogger("make_parity_fixture")

# name -> (clips concatenated in order, number of samples kept or None for all of them)
SPEECH_CASES = {
    # three partials, the last one zero-padded
    "speaker_a_3s": (
        ["happy/6a27a9bf_nohash_0.wav", "yes/6a27a9bf_nohash_0.wav", "bird/6a27a9bf_nohash_0.wav"],
        None,
    ),
    # 40000 samples: the third partial covers 60 % < 75 % and is dropped; no padding at all
    "speaker_a_2_5s": (
        ["no/6a27a9bf_nohash_0.wav", "go/6a27a9bf_nohash_0.wav", "dog/6a27a9bf_nohash_0.wav"],
        40000,
    ),
    "speaker_b_4s": (
        [
            "happy/988e2f9a_nohash_0.wav",
            "yes/988e2f9a_nohash_0.wav",
            "no/988e2f9a_nohash_0.wav",
            "up/988e2f9a_nohash_0.wav",
        ],
        None,
    ),
    # one clip of 1 s: shorter than one partial (1.6 s), padded
    "speaker_b_1s": (["happy/988e2f9a_nohash_0.wav"], None),
}


def synthetic_cases(seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded voiced-like synthetic audio: a loud harmonic chirp with noise and a quiet (−45 dBFS) one."""
    rng = np.random.default_rng(seed)
    cases = {}
    for name, seconds, rms_dbfs in (("synthetic_loud_2s", 2.0, -20.0), ("synthetic_quiet_1_2s", 1.2, -45.0)):
        t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        f0 = 110.0 + 60.0 * np.sin(2 * np.pi * 0.7 * t) + rng.uniform(0, 40)
        phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
        voiced = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3.0 * t))
        wave = voiced + 0.3 * rng.standard_normal(t.size)
        wave *= 10 ** (rms_dbfs / 20) / np.sqrt(np.mean(wave**2))
        cases[name] = np.round(np.clip(wave, -1, 1) * 32767).astype(np.int16)
    return cases


def load_resemblyzer(wheel: Path, unpack_dir: Path):
    """Import resemblyzer from its wheel; webrtcvad is replaced by an unused placeholder when absent."""
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(unpack_dir)
    if importlib.util.find_spec("webrtcvad") is None:
        sys.modules["webrtcvad"] = types.ModuleType("webrtcvad")
    sys.path.insert(0, str(unpack_dir))
    import resemblyzer

    return resemblyzer


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--wheel", type=Path, default=Path("/tmp/dl/Resemblyzer-0.1.4-py3-none-any.whl"))
    parser.add_argument("--speech-dir", type=Path, default=DEFAULT_SPEECH_DIR)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import librosa
    import torch

    with tempfile.TemporaryDirectory() as unpack_dir:
        resemblyzer = load_resemblyzer(args.wheel, Path(unpack_dir))
        encoder = resemblyzer.VoiceEncoder(device="cpu", verbose=False)

    arrays: dict[str, np.ndarray] = {}
    waves: dict[str, np.ndarray] = {}
    for name, (clips, keep) in SPEECH_CASES.items():
        wave = np.concatenate([sf.read(args.speech_dir / clip, dtype="float32")[0] for clip in clips])
        waves[name] = wave[:keep]
        arrays[f"{name}/clips"] = np.array(clips)
        arrays[f"{name}/num_samples"] = np.array(len(waves[name]))
    for name, pcm in synthetic_cases().items():
        waves[name] = pcm.astype(np.float32) / 32768.0
        arrays[f"{name}/pcm16"] = pcm
    for name, wave in waves.items():
        normalized = resemblyzer.normalize_volume(
            wave, resemblyzer.audio.audio_norm_target_dBFS, increase_only=True
        )
        embedding, partials, _ = encoder.embed_utterance(normalized.astype(np.float32), return_partials=True)
        arrays[f"{name}/partial_embeddings"] = partials.astype(np.float32)
        arrays[f"{name}/utterance_embedding"] = embedding.astype(np.float32)
        logger.info("%s: %d samples, %d partials", name, len(wave), len(partials))
    arrays["case_names"] = np.array(list(waves))
    arrays["versions"] = np.array(
        [args.wheel.name, f"torch {torch.__version__}", f"librosa {librosa.__version__}"]
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.output, **arrays)
    logger.info("wrote %s (%d bytes)", args.output, args.output.stat().st_size)


if __name__ == "__main__":
    main()

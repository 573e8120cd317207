"""Seeded synthetic int16 clips shared by the front-end tests and the scripts that make their fixtures."""

from __future__ import annotations

import hashlib

import numpy as np

SAMPLE_RATE = 16000


def synthetic_int16_clips(seed: int = 0) -> dict[str, np.ndarray]:
    """Tone, chirp, noise, a quiet clip and a shorter clip with leading digital silence, as int16."""
    rng = np.random.default_rng(seed)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    chirp_phase = 2 * np.pi * (50.0 * t + 0.5 * (7900.0 - 50.0) * t**2)
    silence_then_tone = np.concatenate(
        [np.zeros(4000), 0.4 * np.sin(2 * np.pi * 1000.0 * t[:8345]) + 0.01 * rng.standard_normal(8345)]
    )
    clips = {
        "tone_440hz": 0.5 * np.sin(2 * np.pi * 440.0 * t),
        "chirp_50_7900hz": 0.3 * np.sin(chirp_phase),
        "white_noise": 0.1 * rng.standard_normal(SAMPLE_RATE),
        "quiet_noise": 0.001 * rng.standard_normal(SAMPLE_RATE),
        "silence_then_tone": silence_then_tone,
    }
    return {name: np.clip(np.round(x * 32767), -32767, 32767).astype(np.int16) for name, x in clips.items()}


def clips_digest(clips: dict[str, np.ndarray]) -> str:
    """SHA-256 over the clips' names and samples: shows when the generator no longer reproduces a fixture."""
    digest = hashlib.sha256()
    for name in sorted(clips):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(clips[name]).tobytes())
    return digest.hexdigest()

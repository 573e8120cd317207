"""In-graph audio front-ends: waveform to (log-)mel features with TFLite builtin ops only."""

from audio_transfer.features.compact_dft import compact_dft, frontend_layers
from audio_transfer.features.frame_patches import FramePatches
from audio_transfer.features.log_mel_spectrogram import LogMelSpectrogram
from audio_transfer.features.mfcc import MFCC
from audio_transfer.features.presets import (
    FRAME_PATCH_PRESETS,
    FRONTEND_PRESETS,
    get_frame_patches,
    get_frontend,
    list_frontends,
)
from audio_transfer.features.volume_normalization import VolumeNormalization

__all__ = [
    "FRAME_PATCH_PRESETS",
    "FRONTEND_PRESETS",
    "MFCC",
    "FramePatches",
    "LogMelSpectrogram",
    "VolumeNormalization",
    "compact_dft",
    "frontend_layers",
    "get_frame_patches",
    "get_frontend",
    "list_frontends",
]

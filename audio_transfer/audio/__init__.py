"""Audio files in and out: decode, resample, mix down, describe, write.

Public API: :func:`load_audio`, :class:`AudioBlockReader` (long files a block at a time),
:func:`save_audio`, :func:`audio_info`, :func:`verify_audio`, :func:`crop_or_pad`, :func:`resample`,
:func:`trim_silence`, :class:`AudioInfo`, ``AUDIO_EXTENSIONS`` and the error they raise,
:class:`~audio_transfer.errors.AudioDecodeError`.
"""

from audio_transfer.audio.audio_block_reader import AudioBlockReader
from audio_transfer.audio.audio_info import AudioInfo
from audio_transfer.audio.crop_or_pad import crop_or_pad
from audio_transfer.audio.io import AUDIO_EXTENSIONS, audio_info, load_audio, save_audio, verify_audio
from audio_transfer.audio.resample import resample
from audio_transfer.audio.trim_silence import trim_silence
from audio_transfer.errors import AudioDecodeError

__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioBlockReader",
    "AudioDecodeError",
    "AudioInfo",
    "audio_info",
    "crop_or_pad",
    "load_audio",
    "resample",
    "save_audio",
    "trim_silence",
    "verify_audio",
]

"""What an audio file's header (or a full decode) says about it."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class AudioInfo:
    """Facts about one audio file, as stored (before any resampling or mixdown).

    Args:
        path: the file.
        sample_rate: rate in Hz.
        channels: number of channels.
        num_samples: samples per channel.
        duration_seconds: ``num_samples / sample_rate``.
        format: container, in libsndfile's words (``"WAV"``, ``"FLAC"``, ``"OGG"``, ``"MP3"``); for files read
            through the audioread fallback, the upper-cased file extension.
        subtype: sample encoding (``"PCM_16"``, ``"PCM_24"``, ``"FLOAT"``, ``"VORBIS"``); ``None`` when the
            decoder does not say.

    Example:
        >>> info = audio_info("yes/0a7c2a8d_nohash_0.wav")  # doctest: +SKIP
        >>> info.duration_seconds, info.sample_rate, info.subtype  # doctest: +SKIP
        (1.0, 16000, 'PCM_16')
    """

    path: str
    sample_rate: int
    channels: int
    num_samples: int
    duration_seconds: float
    format: str
    subtype: str | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return dataclasses.asdict(self)

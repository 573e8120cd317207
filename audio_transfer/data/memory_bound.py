"""How much memory decoded clips take, checked against what the machine has before anything is decoded."""

from __future__ import annotations

import os

from audio_transfer.errors import ConfigError

_FLOAT32_BYTES = 4


def format_bytes(num_bytes: float) -> str:
    """``num_bytes`` in the largest binary unit that keeps the number at least 1: ``'596.0 GiB'``."""
    value = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def available_memory_bytes() -> int | None:
    """Memory the system can give this process now (``MemAvailable`` on Linux); ``None`` if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def check_clips_fit_in_memory(*, num_clips: int, clip_samples: int, sample_rate: int) -> None:
    """Raise ConfigError when ``num_clips`` float32 clips of ``clip_samples`` cannot fit in available memory.

    Args:
        num_clips: clips that will be held at once.
        clip_samples: samples per clip.
        sample_rate: their rate in Hz (for the message).

    Raises:
        ConfigError: saying how much memory the clips need and how much there is.

    Example:
        >>> check_clips_fit_in_memory(num_clips=30, clip_samples=16000, sample_rate=16000)
    """
    needed = _FLOAT32_BYTES * num_clips * clip_samples
    available = available_memory_bytes()
    if available is not None and needed > available:
        raise ConfigError(
            f"Decoding {num_clips} clips of {clip_samples / sample_rate:g} s at {sample_rate} Hz needs "
            f"{format_bytes(needed)} of memory, more than the {format_bytes(available)} available. Use a "
            "shorter clip length (--clip-seconds, the clip_seconds setting) or fewer files."
        )

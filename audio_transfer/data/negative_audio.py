"""Long recordings without the keywords, found and measured before any is decoded."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from audio_transfer.audio import audio_info
from audio_transfer.data._discovery import find_audio_files
from audio_transfer.data.skipped_file import SkippedFile
from audio_transfer.errors import AudioDecodeError, ConfigError

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class NegativeAudio:
    """The negative audio of a wake word's training: recordings of everyday sound without the keywords.

    Made by :meth:`from_paths` from files and folders (searched recursively). Only headers are read: the
    audio itself is decoded later, a block at a time, by whoever cuts it into windows, so hours of it never
    sit in memory.

    Attributes:
        files: ``(path, key, duration_seconds)`` of every usable file, sorted by key; ``key`` names the file
            the same way on every machine: ``<n>/<path relative to the n-th path given>`` (``<n>/<name>``
            for a file given directly).
        skipped: files left out: unreadable headers, and files shorter than one window.

    Example:
        >>> negatives = NegativeAudio.from_paths(["podcasts/", "kitchen.wav"], min_seconds=1.7)
        >>> f"{negatives.hours:.1f} h in {len(negatives.files)} files"  # doctest: +SKIP
        '12.4 h in 310 files'
    """

    files: tuple[tuple[Path, str, float], ...]
    skipped: tuple[SkippedFile, ...] = ()

    @property
    def hours(self) -> float:
        """Hours of usable audio."""
        return sum(duration for _, _, duration in self.files) / 3600.0

    @staticmethod
    def check_paths(paths: Sequence[str | os.PathLike]) -> None:
        """Raise :class:`~audio_transfer.errors.ConfigError` naming every path of ``paths`` that does not
        exist (training checks this before any work)."""
        missing = [os.fspath(path) for path in paths if not Path(path).exists()]
        if missing:
            raise ConfigError(
                f"The negative audio {', '.join(missing)} does not exist. Give files or folders of long "
                "recordings without the keywords (--negatives)."
            )

    @classmethod
    def from_paths(cls, paths: Sequence[str | os.PathLike], *, min_seconds: float) -> NegativeAudio:
        """The usable negative audio under ``paths``.

        Args:
            paths: audio files and folders of them.
            min_seconds: shortest usable file (one window of the model); shorter ones are skipped and
                counted.

        Raises:
            ConfigError: a path does not exist (checked for every path before anything else is read).
        """
        cls.check_paths(paths)
        files, skipped = [], []
        for index, given in enumerate(paths):
            given = Path(given)
            if given.is_dir():
                found, broken = find_audio_files(given)
                skipped += broken
                named = [(path, f"{index}/{path.relative_to(given).as_posix()}") for path in found]
            else:
                named = [(given, f"{index}/{given.name}")]
            for path, key in named:
                try:
                    duration = audio_info(path).duration_seconds
                except AudioDecodeError as error:
                    skipped.append(SkippedFile(os.fspath(path), str(error)))
                    continue
                if duration < min_seconds:
                    skipped.append(
                        SkippedFile(
                            os.fspath(path),
                            f"{duration:.2f} s is shorter than one {min_seconds:.2f} s window of the model",
                        )
                    )
                    continue
                files.append((path, key, duration))
        for item in skipped:
            logger.warning("Leaving out negative audio %s: %s", item.path, item.reason)
        negatives = cls(files=tuple(sorted(files, key=lambda item: item[1])), skipped=tuple(skipped))
        logger.info(
            "Negative audio: %.2f h in %d files (%d skipped).", negatives.hours, len(files), len(skipped)
        )
        return negatives

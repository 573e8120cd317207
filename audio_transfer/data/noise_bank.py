"""Background-noise recordings decoded for augmentation."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from audio_transfer.data._decode import decode_waveforms
from audio_transfer.data.audio_example import NOISE_LABEL, AudioExample
from audio_transfer.data.skipped_file import SkippedFile


@dataclasses.dataclass(frozen=True)
class NoiseBank:
    """Decoded background-noise recordings, mono at one rate.

    Args:
        waveforms: float32 ``(samples,)`` arrays, one per file, of any length.
        sample_rate: their rate in Hz.
        skipped: noise files that failed to decode.

    Example:
        >>> bank = NoiseBank.from_files(data.noise_files, sample_rate=16000)  # doctest: +SKIP
    """

    waveforms: list[np.ndarray]
    sample_rate: int
    skipped: list[SkippedFile] = dataclasses.field(default_factory=list)

    @classmethod
    def from_files(
        cls,
        paths: Sequence[str | os.PathLike],
        *,
        sample_rate: int = 16000,
        max_failure_fraction: float = 1.0,
    ) -> NoiseBank:
        """Decode noise files, skipping (with a warning) those that fail.

        Raises:
            DatasetError: more than ``max_failure_fraction`` of the files fail (by default never: a bank
                whose files all fail is empty, and augmentation then adds no noise).
        """
        examples = [AudioExample(Path(path), NOISE_LABEL) for path in paths]
        waveforms, _, skipped = decode_waveforms(
            examples, sample_rate=sample_rate, clip_samples=1, max_failure_fraction=max_failure_fraction
        )
        return cls(waveforms=waveforms, sample_rate=sample_rate, skipped=skipped)

    def __len__(self) -> int:
        return len(self.waveforms)

    def packed(self, *, min_samples: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All recordings end to end, each repeated to at least ``min_samples`` so a clip-long excerpt fits.

        Returns:
            ``(samples, starts, lengths)``: float32 ``(total,)``, int32 ``(files,)`` and int32 ``(files,)``.
        """
        tiled = [np.resize(waveform, max(len(waveform), min_samples)) for waveform in self.waveforms]
        lengths = np.asarray([len(waveform) for waveform in tiled], dtype=np.int32)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int32)
        samples = np.concatenate(tiled).astype(np.float32) if tiled else np.zeros(0, np.float32)
        return samples, starts, lengths

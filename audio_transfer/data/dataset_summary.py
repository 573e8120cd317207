"""What a labelled dataset holds, with every file proven to decode."""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import re
from pathlib import Path
from typing import Any

from audio_transfer.audio import AudioInfo, verify_audio
from audio_transfer.data._decode import parallel_map
from audio_transfer.data.labelled_audio import load_labelled_audio
from audio_transfer.data.skipped_file import SkippedFile
from audio_transfer.errors import AudioDecodeError

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class DatasetSummary:
    """Counts of a dataset's good files, and the bad files with reasons.

    Args:
        source: the folder or manifest.
        classes: number of good clips per class, classes sorted.
        num_examples: good clips in all classes.
        num_speakers: distinct speaker ids among the good clips.
        examples_without_speaker: good clips whose speaker is unknown.
        duration_seconds: total length of the good clips.
        sample_rates: number of good files (clips and noise) per sample rate in Hz.
        channels: number of good files per channel count.
        noise_files: good files of the noise bank (``_background_noise_``), not counted as clips.
        noise_duration_seconds: their total length.
        skipped: files that are not usable, with reasons.
    """

    source: str
    classes: dict[str, int]
    num_examples: int
    num_speakers: int
    examples_without_speaker: int
    duration_seconds: float
    sample_rates: dict[int, int]
    channels: dict[int, int]
    noise_files: list[str]
    noise_duration_seconds: float
    skipped: list[SkippedFile]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy, with ``num_classes``, ``num_noise_files`` and ``num_skipped`` added."""
        return {
            "source": self.source,
            "num_classes": len(self.classes),
            "num_examples": self.num_examples,
            "num_speakers": self.num_speakers,
            "examples_without_speaker": self.examples_without_speaker,
            "duration_seconds": round(self.duration_seconds, 3),
            "sample_rates": {str(rate): count for rate, count in self.sample_rates.items()},
            "channels": {str(channels): count for channels, count in self.channels.items()},
            "classes": dict(self.classes),
            "num_noise_files": len(self.noise_files),
            "noise_files": list(self.noise_files),
            "noise_duration_seconds": round(self.noise_duration_seconds, 3),
            "num_skipped": len(self.skipped),
            "skipped": [item.to_dict() for item in self.skipped],
        }

    def to_text(self) -> str:
        """A human-readable report."""
        rates = ", ".join(f"{rate} Hz ({count} files)" for rate, count in self.sample_rates.items())
        lines = [
            f"Dataset {self.source}",
            f"  {len(self.classes)} classes, {self.num_examples} clips, {self.num_speakers} speakers"
            + (
                f" ({self.examples_without_speaker} clips without speaker id)"
                if self.examples_without_speaker
                else ""
            )
            + f", {self.duration_seconds:.1f} s of audio",
            f"  sample rates: {rates or 'none'}",
            f"  noise bank: {len(self.noise_files)} files, {self.noise_duration_seconds:.1f} s",
            "  classes:",
            *(f"    {label:<24} {count:>6}" for label, count in self.classes.items()),
        ]
        if self.skipped:
            lines.append(f"  skipped {len(self.skipped)} files:")
            lines.extend(f"    {item.path}: {item.reason}" for item in self.skipped)
        return "\n".join(lines)


def summarize_dataset(
    source: str | os.PathLike,
    *,
    speaker_pattern: str | re.Pattern[str] | None = None,
    num_workers: int | None = None,
) -> DatasetSummary:
    """Summarise a dataset folder or manifest, decoding every file once to prove it is readable.

    A header can look fine over a stream that is not (a FLAC that loses sync half-way, a WAV cut short), so
    each file is decoded in full at its own rate (no resampling) and checked as :func:`load_audio` would; a
    file counts as good only then. Bad files are named in ``skipped`` with the reason and logged.

    Args:
        source: folder-per-class tree or CSV/TSV manifest (see :func:`load_labelled_audio`).
        speaker_pattern: regex with a ``speaker`` group, as in :func:`load_labelled_audio`.
        num_workers: decoding threads (default: up to 8, one per CPU).

    Returns:
        a :class:`DatasetSummary`.

    Raises:
        DatasetError: ``source`` is missing or holds no labelled audio.

    Example:
        >>> print(summarize_dataset("speech_commands").to_text())  # doctest: +SKIP
    """
    data = load_labelled_audio(source, speaker_pattern=speaker_pattern)
    paths = [example.path for example in data.examples] + list(data.noise_files)
    outcomes = dict(zip(paths, parallel_map(_verify, paths, num_workers=num_workers), strict=True))
    skipped = list(data.skipped)
    for path, outcome in outcomes.items():
        if isinstance(outcome, str):
            logger.warning("Bad audio file %s: %s", path, outcome)
            skipped.append(SkippedFile(os.fspath(path), outcome))
    good = [example for example in data.examples if isinstance(outcomes[example.path], AudioInfo)]
    good_noise = [path for path in data.noise_files if isinstance(outcomes[path], AudioInfo)]
    infos = [outcomes[path] for path in paths if isinstance(outcomes[path], AudioInfo)]
    counts = collections.Counter(example.label for example in good)
    return DatasetSummary(
        source=os.fspath(data.source),
        classes={label: counts[label] for label in sorted(counts)},
        num_examples=len(good),
        num_speakers=len({example.speaker for example in good if example.speaker}),
        examples_without_speaker=sum(example.speaker is None for example in good),
        duration_seconds=sum(outcomes[example.path].duration_seconds for example in good),
        sample_rates=dict(sorted(collections.Counter(info.sample_rate for info in infos).items())),
        channels=dict(sorted(collections.Counter(info.channels for info in infos).items())),
        noise_files=[os.fspath(path) for path in good_noise],
        noise_duration_seconds=sum(outcomes[path].duration_seconds for path in good_noise),
        skipped=skipped,
    )


def _verify(path: Path) -> AudioInfo | str:
    """The file's info when it decodes in full, else the reason it does not."""
    try:
        return verify_audio(path)
    except AudioDecodeError as error:
        return str(error)

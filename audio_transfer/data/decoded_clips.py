"""Decoded, fixed-length clips in memory: what embedding caches and evaluation read."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from audio_transfer.audio import crop_or_pad
from audio_transfer.checks import is_number, is_positive_int
from audio_transfer.data._decode import decode_waveforms
from audio_transfer.data.audio_example import AudioExample
from audio_transfer.data.memory_bound import check_clips_fit_in_memory
from audio_transfer.data.skipped_file import SkippedFile
from audio_transfer.errors import ConfigError, DatasetError


def clip_samples_for(*, sample_rate: int, clip_seconds: float) -> int:
    """Number of samples of a ``clip_seconds`` clip at ``sample_rate``, with both arguments checked."""
    if not is_positive_int(sample_rate):
        raise ConfigError(f"sample_rate must be a positive integer number of Hz, received {sample_rate!r}.")
    if not (is_number(clip_seconds) and clip_seconds > 0 and round(clip_seconds * sample_rate)):
        raise ConfigError(
            f"clip_seconds must be a positive number of seconds (at least one sample at {sample_rate} Hz), "
            f"received {clip_seconds!r}."
        )
    return round(clip_seconds * sample_rate)


def label_indices(labels_of_examples: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """int32 index in ``labels`` of each label; DatasetError naming a label that is not in ``labels``."""
    positions = {label: index for index, label in enumerate(labels)}
    unknown = sorted(set(labels_of_examples) - positions.keys())
    if unknown:
        raise DatasetError(
            f"Examples have labels {unknown} that are not in labels={list(labels)}. Pass the labels of the "
            "training set (LabelledAudio.labels) and load every split with the same keywords."
        )
    return np.asarray([positions[label] for label in labels_of_examples], dtype=np.int32)


@dataclasses.dataclass(frozen=True)
class DecodedClips:
    """Clips decoded to equal-length mono waveforms.

    Args:
        waveforms: float32 ``(n, samples)`` in [-1, 1].
        labels: label of each clip.
        speakers: speaker id of each clip, or ``None``.
        examples: the examples that decoded, in order (``waveforms[i]`` is ``examples[i]``).
        skipped: the files that failed, with reasons.
        sample_rate: rate in Hz of ``waveforms``.
    """

    waveforms: np.ndarray
    labels: list[str]
    speakers: list[str | None]
    examples: list[AudioExample]
    skipped: list[SkippedFile]
    sample_rate: int

    def label_indices(self, labels: Sequence[str]) -> np.ndarray:
        """int32 ``(n,)`` index of each clip's label in ``labels``."""
        return label_indices(self.labels, labels)


def decode_examples(
    examples: Sequence[AudioExample],
    *,
    sample_rate: int = 16000,
    clip_seconds: float = 1.0,
    max_failure_fraction: float = 0.1,
    num_workers: int | None = None,
) -> DecodedClips:
    """Decode examples to mono ``clip_seconds`` clips at ``sample_rate``, centre-cropped or centre-padded.

    Each file is decoded once (in parallel threads); a file that fails is skipped with a warning naming it
    and listed in ``skipped``.

    Args:
        examples: the clips (from :func:`load_labelled_audio` or :func:`split_examples`).
        sample_rate: rate in Hz to resample to.
        clip_seconds: length of every clip; longer files keep their middle, shorter ones are zero-padded
            on both sides.
        max_failure_fraction: raise when more than this share of the files fail (a single bad file among
            others never raises; 1 never raises, even when nothing decodes).
        num_workers: decoding threads (default: up to 8, one per CPU).

    Returns:
        a :class:`DecodedClips`.

    Raises:
        DatasetError: too many files fail to decode, listing some of them with reasons.
        ConfigError: the clips would not fit in the memory available (checked before decoding).

    Example:
        >>> clips = decode_examples(splits["test"], sample_rate=16000, clip_seconds=1.0)  # doctest: +SKIP
        >>> clips.waveforms.shape  # doctest: +SKIP
        (30, 16000)
    """
    clip_samples = clip_samples_for(sample_rate=sample_rate, clip_seconds=clip_seconds)
    check_clips_fit_in_memory(num_clips=len(examples), clip_samples=clip_samples, sample_rate=sample_rate)
    waveforms, kept, skipped = decode_waveforms(
        examples,
        sample_rate=sample_rate,
        clip_samples=clip_samples,
        max_failure_fraction=max_failure_fraction,
        num_workers=num_workers,
    )
    kept_examples = [examples[index] for index in kept]
    stacked = (
        np.stack([crop_or_pad(waveform, num_samples=clip_samples) for waveform in waveforms])
        if waveforms
        else np.zeros((0, clip_samples), np.float32)
    )
    return DecodedClips(
        waveforms=stacked,
        labels=[example.label for example in kept_examples],
        speakers=[example.speaker for example in kept_examples],
        examples=kept_examples,
        skipped=skipped,
        sample_rate=sample_rate,
    )

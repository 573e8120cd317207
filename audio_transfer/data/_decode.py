"""Decode many examples in parallel, skipping the files that fail."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np

from audio_transfer.audio import audio_info, load_audio
from audio_transfer.checks import is_number
from audio_transfer.data.audio_example import AudioExample
from audio_transfer.data.skipped_file import SkippedFile
from audio_transfer.errors import AudioDecodeError, ConfigError, DatasetError
from audio_transfer.progress import track

logger = logging.getLogger(__name__)

# How many bad files a DatasetError lists.
_LISTED_FAILURES = 5
# Sources of excerpts up to this long (background-noise files) are decoded once and cut in memory; longer
# ones (hours of negative audio) are read an excerpt at a time.
_CACHED_SOURCE_SECONDS = 600.0

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


def parallel_map(
    function: Callable[[_Item], _Result], items: Sequence[_Item], *, num_workers: int | None = None
) -> list[_Result]:
    """``[function(item) for item in items]`` in threads (libsndfile and soxr release the GIL); in order."""
    with ThreadPoolExecutor(max_workers=num_workers or min(8, os.cpu_count() or 1)) as pool:
        return list(track(pool.map(function, items), "Decoding audio files", total=len(items)))


def check_failure_fraction(max_failure_fraction: float) -> None:
    if not (is_number(max_failure_fraction) and 0.0 <= max_failure_fraction <= 1.0):
        raise ConfigError(f"max_failure_fraction must be in [0, 1], received {max_failure_fraction!r}.")


def raise_if_too_many_failures(
    skipped: Sequence[SkippedFile], total: int, max_failure_fraction: float
) -> None:
    """Raise DatasetError when more than ``max_failure_fraction`` of ``total`` files failed.

    A single bad file among others never raises (one bad file must not stop a run); every file failing
    raises unless ``max_failure_fraction`` is 1 (which never raises).
    """
    failed = len(skipped)
    if failed == 0 or max_failure_fraction >= 1.0:
        return
    if failed < total and (failed == 1 or failed <= max_failure_fraction * total):
        return
    listing = "; ".join(f"{item.path}: {item.reason}" for item in skipped[:_LISTED_FAILURES])
    more = f" (and {failed - _LISTED_FAILURES} more)" if failed > _LISTED_FAILURES else ""
    enough = math.ceil(100 * failed / total) / 100
    raise DatasetError(
        f"{failed} of {total} audio files failed to decode, more than max_failure_fraction="
        f"{max_failure_fraction:g} allows: {listing}{more}. Fix or remove these files, or skip them with "
        f"max_failure_fraction={enough:g} (`--max-failure-fraction {enough:g}` on train, evaluate and "
        "export)."
    )


def _decode_one(
    example: AudioExample,
    *,
    sample_rate: int,
    clip_samples: int,
    noise_cache: dict[Path, np.ndarray],
    durations: dict[Path, float],
) -> np.ndarray:
    """Mono float32 waveform of one example at ``sample_rate``: the whole file, or for a generated clip its
    ``clip_samples``-long excerpt of the source file (cut from ``noise_cache`` when the source is there,
    else read from the file, whose length ``durations`` holds)."""
    if not example.generated:
        return load_audio(example.path, sample_rate=sample_rate)
    if example.path is None:
        return np.zeros(clip_samples, np.float32)
    if example.path in noise_cache:
        noise = noise_cache[example.path]
        start = min(round(example.offset_seconds * sample_rate), max(len(noise) - clip_samples, 0))
        excerpt = noise[start : start + clip_samples]
    else:
        duration = durations[example.path]
        excerpt = load_audio(
            example.path,
            sample_rate=sample_rate,
            offset_seconds=max(min(example.offset_seconds, duration - clip_samples / sample_rate), 0.0),
            duration_seconds=clip_samples / sample_rate,
        )[:clip_samples]
    return (excerpt * np.float32(example.gain)).astype(np.float32)


def decode_waveforms(
    examples: Sequence[AudioExample],
    *,
    sample_rate: int,
    clip_samples: int,
    max_failure_fraction: float,
    num_workers: int | None = None,
) -> tuple[list[np.ndarray], list[int], list[SkippedFile]]:
    """Decode every example once, in threads.

    Returns:
        the waveforms that decoded, their indices in ``examples``, and the files skipped (each logged).

    Raises:
        DatasetError: too many failures (see :func:`raise_if_too_many_failures`).
    """
    check_failure_fraction(max_failure_fraction)
    # Short files behind generated excerpts (background noise) are decoded once, before the threads start.
    noise_cache: dict[Path, np.ndarray] = {}
    durations: dict[Path, float] = {}
    noise_failures: dict[Path, str] = {}
    for path in sorted({example.path for example in examples if example.generated and example.path}):
        try:
            durations[path] = audio_info(path).duration_seconds
            if durations[path] <= _CACHED_SOURCE_SECONDS:
                noise_cache[path] = load_audio(path, sample_rate=sample_rate)
        except AudioDecodeError as error:
            noise_failures[path] = str(error)

    def attempt(example: AudioExample) -> np.ndarray | str:
        if example.generated and example.path in noise_failures:
            return noise_failures[example.path]
        try:
            return _decode_one(
                example,
                sample_rate=sample_rate,
                clip_samples=clip_samples,
                noise_cache=noise_cache,
                durations=durations,
            )
        except AudioDecodeError as error:
            return str(error)

    outcomes = parallel_map(attempt, examples, num_workers=num_workers)
    waveforms, kept, skipped = [], [], []
    for index, (example, outcome) in enumerate(zip(examples, outcomes, strict=True)):
        if isinstance(outcome, str):
            logger.warning("Skipping %s (%s): %s", example.path, example.label, outcome)
            skipped.append(SkippedFile(os.fspath(example.path or example.relative_path), outcome))
        else:
            waveforms.append(outcome)
            kept.append(index)
    if skipped:
        logger.warning("Skipped %d of %d clips that failed to decode.", len(skipped), len(examples))
    raise_if_too_many_failures(skipped, len(examples), max_failure_fraction)
    return waveforms, kept, skipped

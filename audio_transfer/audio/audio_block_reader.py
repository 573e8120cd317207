"""Decode a long audio file a block at a time, in memory that does not grow with the file."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from audio_transfer.audio.audio_info import AudioInfo
from audio_transfer.audio.io import (
    _SF_ERR_UNRECOGNISED_FORMAT,
    _check_complete,
    _check_finite,
    _check_sample_rate,
    _decode_error,
    _existing_file,
    _sound_file_info,
    _warn_beyond_full_scale,
    audio_info,
    load_audio,
)
from audio_transfer.errors import ConfigError

DEFAULT_BLOCK_SECONDS = 60.0


class AudioBlockReader:
    """Iterates over an audio file in consecutive mono float32 blocks at ``sample_rate``.

    The blocks joined are what :func:`~audio_transfer.audio.load_audio` returns for the file (channels
    averaged, resampled with soxr HQ carrying its state across blocks, clipped to [-1, 1]), but only one
    block of the file is decoded at a time, so hours of audio take the memory of ``block_seconds``. The
    stream is checked as it is read, as ``load_audio`` checks it: NaN/Inf samples raise at their block, a
    file cut short raises after its last block. Formats libsndfile does not read (decoded by audioread)
    are decoded whole, then handed out in blocks.

    Args:
        path: the audio file.
        sample_rate: rate in Hz of the blocks, or ``None`` for the file's own rate.
        block_seconds: seconds of the file's audio decoded per block.

    Attributes:
        info: the file's :class:`~audio_transfer.audio.AudioInfo` (from its header).
        samples_read: samples handed out so far (at ``sample_rate``); after a whole pass, the length of
            the decoded audio.

    Raises:
        AudioDecodeError: as :func:`~audio_transfer.audio.load_audio` (on construction for a missing,
            empty or unrecognised file; while iterating for a corrupt stream).

    Example:
        >>> reader = AudioBlockReader("ten_hours.flac", sample_rate=16000)  # doctest: +SKIP
        >>> peak = max(float(np.abs(block).max()) for block in reader)  # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        sample_rate: int | None = 16000,
        block_seconds: float = DEFAULT_BLOCK_SECONDS,
    ) -> None:
        _check_sample_rate(path, sample_rate)
        if (
            isinstance(block_seconds, bool)
            or not isinstance(block_seconds, (int, float))
            or not 0 < block_seconds < math.inf
        ):
            raise ConfigError(
                f"block_seconds must be a positive number of seconds, received {block_seconds!r}."
            )
        self.path = Path(path)
        self.info: AudioInfo = audio_info(self.path)
        self.sample_rate = self.info.sample_rate if sample_rate is None else sample_rate
        self.block_frames = max(1, round(block_seconds * self.info.sample_rate))
        self.samples_read = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        self.samples_read = 0
        for block in self._blocks():
            self.samples_read += len(block)
            yield block

    def _blocks(self) -> Iterator[np.ndarray]:
        path = _existing_file(self.path)
        try:
            sound_file = sf.SoundFile(os.fspath(path))
        except sf.LibsndfileError as error:
            if error.code != _SF_ERR_UNRECOGNISED_FORMAT:
                raise _decode_error(path, error) from None
            waveform = load_audio(path, sample_rate=self.sample_rate)
            for start in range(0, len(waveform), self.block_frames):
                yield waveform[start : start + self.block_frames]
            return
        with sound_file:
            info = _sound_file_info(path, sound_file)
            resampler = None
            if info.sample_rate != self.sample_rate:
                resampler = soxr.ResampleStream(
                    info.sample_rate, self.sample_rate, 1, dtype="float32", quality="HQ"
                )
            frames_read, warned = 0, False
            while True:
                try:
                    samples = sound_file.read(self.block_frames, dtype="float32", always_2d=True)
                except (sf.LibsndfileError, RuntimeError) as error:
                    raise _decode_error(path, error) from None
                _check_finite(path, samples, info.sample_rate, offset=frames_read)
                warned = warned or _warn_beyond_full_scale(path, samples, info)
                frames_read += len(samples)
                last = len(samples) < self.block_frames
                block = samples.mean(axis=1)
                if resampler is not None:
                    block = resampler.resample_chunk(block, last=last)
                if len(block):
                    yield np.clip(block, -1.0, 1.0).astype(np.float32, copy=False)
                if last:
                    break
            log = sound_file.extra_info
        _check_complete(path, info, frames_read, log)

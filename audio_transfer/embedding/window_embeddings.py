"""Frame embeddings of every window of a long recording, as the streaming detector hears them."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import numpy as np

from audio_transfer.audio import AudioBlockReader
from audio_transfer.bases import AudioBase
from audio_transfer.bases.streamable_base import StreamableBase
from audio_transfer.checks import is_number
from audio_transfer.data import UNKNOWN_LABEL, FeatureStoreWriter, NegativeAudio, SkippedFile, StoreRecord
from audio_transfer.embedding.store_embedder import embed_waveforms
from audio_transfer.errors import AudioDecodeError, ConfigError
from audio_transfer.progress import track

logger = logging.getLogger(__name__)

# Window positions embedded at once: bounds the audio and embeddings in memory.
BLOCK_WINDOWS = 256


def window_embeddings(
    path: str | os.PathLike,
    *,
    base: AudioBase,
    clip_seconds: float,
    context_seconds: float,
    stride_seconds: float,
    block_windows: int = BLOCK_WINDOWS,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The base's frame embeddings of every window position of a recording, a block at a time.

    A window is a clip with ``context_seconds`` of the recording's own audio on both sides: what
    :class:`~audio_transfer.streaming.KeywordDetector` and the streaming model score at each position, so a
    head trained on these windows learns the inputs it will see in a stream (a clip padded with silence, as
    training clips are, is another input). A base that streams
    (:class:`~audio_transfer.bases.StreamableBase`) runs once per hop over the recording when the stride is
    a multiple of its hop; other bases run on each window. Only ``block_windows`` windows' audio and
    embeddings are in memory at a time.

    Args:
        path: the recording (any length; shorter than one window yields nothing).
        base: the frozen base.
        clip_seconds: the model's clip length.
        context_seconds: the task's context on each side of the clip.
        stride_seconds: time between window positions.
        block_windows: window positions embedded at once.

    Yields:
        ``(starts_seconds, frames)``: float64 ``(n,)`` start times of the windows (of the clip and its
        context) and float32 ``(n, windows_per_clip, embedding_dim)`` embeddings, in time order.

    Raises:
        AudioDecodeError: the recording cannot be decoded (at its start, or at the block that fails).

    Example:
        >>> for starts, frames in window_embeddings("podcast.flac", base=base, clip_seconds=1.0,
        ...                                         context_seconds=0.35, stride_seconds=0.5):
        ...     scores = head(frames)  # doctest: +SKIP
    """
    if not (is_number(stride_seconds) and stride_seconds > 0):
        raise ConfigError(f"stride_seconds must be a positive number, received {stride_seconds!r}.")
    sample_rate = base.sample_rate
    window = round(clip_seconds * sample_rate) + 2 * round(context_seconds * sample_rate)
    stride = max(1, round(stride_seconds * sample_rate))
    span = (block_windows - 1) * stride + window
    advance = block_windows * stride
    pending = np.zeros(0, np.float32)
    first = 0  # index of the window position that starts at pending[0]
    for block in AudioBlockReader(path, sample_rate=sample_rate):
        pending = np.concatenate([pending, block])
        while len(pending) >= span:
            yield _embedded(pending[:span], first, base=base, window=window, stride=stride)
            pending, first = pending[advance:], first + block_windows
    if len(pending) >= window:
        yield _embedded(pending, first, base=base, window=window, stride=stride)


def window_key(file_key: str, start_seconds: float) -> str:
    """The store key of the window of a negative recording starting at ``start_seconds``:
    ``negatives/<file key>@<start, ms>``."""
    return f"negatives/{file_key}@{round(start_seconds * 1000):d}"


def write_negative_windows(
    writer: FeatureStoreWriter,
    negatives: NegativeAudio,
    *,
    base: AudioBase,
    stride_seconds: float,
    source: str = "negatives",
) -> tuple[list[str], list[SkippedFile]]:
    """Write every window of ``negatives`` (every ``stride_seconds``) into ``writer`` as ``_unknown_``
    records of ``source``, keyed by :func:`window_key`; the speaker of a window is its file, so that a
    file's windows stay together in splits and folds. The clip length and context are the writer
    identity's. A file that fails to decode part-way keeps the windows before the failure and is listed as
    skipped.

    Returns:
        the keys written and the files that failed.
    """
    identity = writer.identity
    keys, skipped = [], []
    for path, file_key, _ in track(negatives.files, "Embedding negative audio"):
        speaker = f"negatives:{file_key}"
        try:
            for starts, frames in window_embeddings(
                path,
                base=base,
                clip_seconds=identity.clip_seconds,
                context_seconds=identity.context_seconds,
                stride_seconds=stride_seconds,
            ):
                records = [
                    StoreRecord(window_key(file_key, start), UNKNOWN_LABEL, speaker, source, row)
                    for start, row in zip(starts, frames, strict=True)
                ]
                writer.add(records)
                keys += [record.key for record in records]
        except AudioDecodeError as error:
            logger.warning("Negative audio %s failed to decode: %s", path, error)
            skipped.append(SkippedFile(os.fspath(path), str(error)))
    writer.add_skipped(skipped)
    return keys, skipped


def _embedded(
    audio: np.ndarray, first: int, *, base: AudioBase, window: int, stride: int
) -> tuple[np.ndarray, np.ndarray]:
    """Start times and embeddings of the windows of ``audio`` (at least one window long)."""
    count = 1 + (len(audio) - window) // stride
    starts = (first + np.arange(count)) * stride / base.sample_rate
    per_clip = base.num_windows(window)
    if isinstance(base, StreamableBase) and stride % base.stream_hop_samples == 0:
        step = stride // base.stream_hop_samples
        frames = base.stream_embeddings(audio[np.newaxis], count=(count - 1) * step + per_clip)[0]
        positions = np.arange(count)[:, np.newaxis] * step + np.arange(per_clip)[np.newaxis, :]
        return starts, frames[positions].astype(np.float32, copy=False)
    windows = np.lib.stride_tricks.sliding_window_view(audio, window)[::stride][:count]
    return starts, embed_waveforms(base, np.ascontiguousarray(windows))

"""Hard-negative mining: the windows of negative audio a trained wake word fires on."""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from typing import Any

import numpy as np

from audio_transfer.data import UNKNOWN_LABEL, NegativeAudio, StoreRecord
from audio_transfer.embedding import window_embeddings, window_key
from audio_transfer.errors import AudioDecodeError
from audio_transfer.progress import track
from audio_transfer.tasks import Classifier

logger = logging.getLogger(__name__)

# Most windows one round adds (the highest-scoring): bounds the memory a badly trained model's round takes.
MAX_MINED_WINDOWS = 20_000
# Files named as firing most in a round's summary.
_LISTED_FILES = 5
_HEAD_BATCH = 1024


@dataclasses.dataclass(frozen=True)
class MiningRound:
    """What one round of :func:`mine_hard_negatives` found.

    Attributes:
        round: the round, from 1.
        hours: hours of negative audio scanned.
        false_accepts: false accepts of the model as trained before the round: runs of consecutive windows
            whose keyword probability reached the threshold, counted once per run (as a detector with a
            refractory period of one window counts them).
        false_accepts_per_hour: ``false_accepts / hours``.
        windows_added: windows added as ``_unknown_`` examples (every window that fired, up to
            :data:`MAX_MINED_WINDOWS`, the highest-scoring first).
        top_files: the files with the most false accepts, ``(file key, false accepts)``: a file that keeps
            firing round after round may hold the keyword itself.
    """

    round: int
    hours: float
    false_accepts: int
    false_accepts_per_hour: float
    windows_added: int
    top_files: tuple[tuple[str, int], ...]

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "top_files": [list(item) for item in self.top_files]}


def mine_hard_negatives(
    task: Classifier,
    negatives: NegativeAudio,
    *,
    clip_seconds: float,
    stride_seconds: float,
    threshold: float,
    round_index: int,
) -> tuple[list[StoreRecord], MiningRound]:
    """Scan ``negatives`` with ``task`` as the streaming detector would, and collect the windows that fire.

    Every window position (every ``stride_seconds``; the clip with ``task.context_seconds`` of the file's
    own audio around it) is embedded by the task's frozen base (:func:`~audio_transfer.embedding.
    window_embeddings`) and scored by its head; a window fires when a keyword's probability (any label not
    starting with ``_``) reaches ``threshold``. Only the fired windows' embeddings are kept.

    Args:
        task: the trained classifier (frozen base, trained head).
        negatives: the negative audio.
        clip_seconds: the task's clip length.
        stride_seconds: time between scored windows.
        threshold: keyword probability that counts as firing.
        round_index: the round (names the records: ``mined/r<round>/<file key>@<ms>``).

    Returns:
        the fired windows as ``_unknown_`` records of source ``"mined"``, and the round's summary.
    """
    keyword_columns = [index for index, label in enumerate(task.labels) if not label.startswith("_")]
    head = task.head_model()
    fired: list[tuple[float, StoreRecord]] = []
    per_file: Counter[str] = Counter()
    for path, file_key, _ in track(negatives.files, f"Mining round {round_index}"):
        previous_fired = False
        try:
            for starts, frames in window_embeddings(
                path,
                base=task.base,
                clip_seconds=clip_seconds,
                context_seconds=task.context_seconds,
                stride_seconds=stride_seconds,
            ):
                scores = np.concatenate(
                    [
                        np.asarray(head(frames[i : i + _HEAD_BATCH], training=False))
                        for i in range(0, len(frames), _HEAD_BATCH)
                    ]
                )[:, keyword_columns].max(axis=1)
                for start, score, row in zip(starts, scores, frames, strict=True):
                    hit = score >= threshold
                    if hit and not previous_fired:
                        per_file[file_key] += 1
                    previous_fired = hit
                    if hit:
                        key = f"mined/r{round_index}/" + window_key(file_key, start).removeprefix(
                            "negatives/"
                        )
                        record = StoreRecord(key, UNKNOWN_LABEL, f"negatives:{file_key}", "mined", row)
                        fired.append((float(score), record))
                if len(fired) > 2 * MAX_MINED_WINDOWS:
                    fired = sorted(fired, key=lambda item: -item[0])[:MAX_MINED_WINDOWS]
        except AudioDecodeError as error:
            logger.warning("Mining skips %s: %s", path, error)
    kept = [record for _, record in sorted(fired, key=lambda item: -item[0])[:MAX_MINED_WINDOWS]]
    hours = negatives.hours
    false_accepts = sum(per_file.values())
    summary = MiningRound(
        round=round_index,
        hours=round(hours, 6),
        false_accepts=false_accepts,
        false_accepts_per_hour=round(false_accepts / hours, 3) if hours else 0.0,
        windows_added=len(kept),
        top_files=tuple(per_file.most_common(_LISTED_FILES)),
    )
    logger.info(
        "Mining round %d: %d false accepts in %.2f h of negative audio (%.2f per hour); %d windows added. "
        "Most false accepts: %s",
        round_index,
        false_accepts,
        hours,
        summary.false_accepts_per_hour,
        len(kept),
        ", ".join(f"{key} ({count})" for key, count in summary.top_files) or "none",
    )
    return kept, summary

"""What the task verbs (train, evaluate, predict, enroll, verify) share: finding models and audio, and
scoring a task on clips. Imported by those verbs' ``run`` only, since it pulls in TensorFlow."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from audio_transfer.audio import AUDIO_EXTENSIONS
from audio_transfer.bases import load_base
from audio_transfer.checks import is_number
from audio_transfer.cli.output import terminal_safe
from audio_transfer.data import SkippedFile, find_audio_files
from audio_transfer.errors import DatasetError
from audio_transfer.tasks import SpeakerVerifier, Task
from audio_transfer.training import (
    MODEL_FILE,
    RunFolder,
    TrainingRun,
    load_run,
)

logger = logging.getLogger(__name__)

# Cosine score above which `verify` accepts a clip when neither --threshold nor a run's measured EER
# threshold is available; GE2E-style embeddings put same-speaker pairs mostly above it.
DEFAULT_VERIFY_THRESHOLD = 0.75


def load_model_run(source: str, *, safe_mode: bool = True) -> TrainingRun | None:
    """The run in a run folder or task ``.keras`` file ``source``; ``None`` for anything else (a base)."""
    folder = RunFolder.find(source)
    return None if folder is None else load_run(folder.model_path, safe_mode=safe_mode)


def verifier_for(source: str, run: TrainingRun | None) -> SpeakerVerifier:
    """The speaker verifier of ``run``, or of the bare base ``source`` names when there is no run.

    A run of another task verifies with its base's normalised mean embedding.
    """
    if run is None:
        return SpeakerVerifier(load_base(source))
    if run.task.evaluation == "verification":
        return run.task
    logger.warning(
        "%s is a %s, not a speaker verifier: verifying with its base's mean embedding.",
        source,
        type(run.task).__name__,
    )
    return SpeakerVerifier(run.task.base)


def classifier_run(source: str, run: TrainingRun | None) -> TrainingRun:
    """``run`` when it holds a classifier; DatasetError saying what ``source`` is otherwise."""
    if run is None:
        raise DatasetError(
            f"{source!r} is neither a run folder holding {MODEL_FILE} nor a task's .keras file. Give what "
            "`audio-transfer train --out RUN_DIR` wrote."
        )
    if run.task.evaluation != "classification":
        raise DatasetError(
            f"{source} holds a {type(run.task).__name__}, which does not classify; for speaker verification "
            "use --task speaker-verification (evaluate) or the enroll/verify commands."
        )
    return run


def run_threshold(run: TrainingRun | None) -> float | None:
    """The EER threshold a verification run measured on its validation clips, if it recorded one."""
    if run is None or run.run_dir is None:
        return None
    value = RunFolder(run.run_dir).read_metrics().get("eer_threshold")
    return float(value) if is_number(value) else None


def audio_files(paths: Sequence[str | os.PathLike]) -> tuple[list[Path], list[SkippedFile]]:
    """The files given, with folders replaced by the audio files under them (sorted, recursively, as
    ``train`` and ``info`` find them), and the symbolic links under those folders that lead nowhere."""
    files, skipped = [], []
    for path in map(Path, paths):
        if path.is_dir():
            found, broken = find_audio_files(path)
            if not found and not broken:
                logger.warning("No audio files (%s) under %s.", ", ".join(AUDIO_EXTENSIONS), path)
            for item in broken:
                logger.warning("Skipping %s: %s", item.path, item.reason)
            files += found
            skipped += broken
        else:
            files.append(path)
    return files, skipped


def load_whole_clips(
    task: Task, paths: Sequence[Path]
) -> tuple[list[np.ndarray], list[Path], list[SkippedFile]]:
    """Whole files (no cropping) decoded for ``task`` (:meth:`Task.load_clips`), for speaker embeddings;
    undecodable files are skipped and listed, and DatasetError says when none decoded."""
    clips, kept, skipped = task.load_clips(paths, skip_undecodable=True)
    if not clips:
        raise DatasetError(
            f"None of the {len(paths)} audio files could be decoded"
            + (f", e.g. {skipped[0].path}: {skipped[0].reason}" if skipped else "")
            + "."
        )
    return clips, kept, skipped


def skipped_dicts(skipped: Sequence[SkippedFile]) -> list[dict[str, str]]:
    return [item.to_dict() for item in skipped]


def skipped_lines(skipped: Sequence[SkippedFile]) -> list[str]:
    """One text line per skipped file: ``PATH: skipped (REASON)``, both escaped for the terminal."""
    return [f"{terminal_safe(item.path)}: skipped ({terminal_safe(item.reason)})" for item in skipped]

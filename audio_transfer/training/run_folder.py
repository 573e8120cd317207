"""A training run's folder: the names of the files it holds, writing them, and reading them back."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras

from audio_transfer.atomic_files import (
    atomic_file,
    replace_directory,
    temporary_directory,
    write_json,
    write_text,
)
from audio_transfer.data import AudioExample
from audio_transfer.errors import ConfigError, DatasetError, OutputError
from audio_transfer.evaluation import ClassificationReport, VerificationReport, write_report
from audio_transfer.tasks import Task, is_task_file, load_task
from audio_transfer.training.head_selection import HeadSelection
from audio_transfer.training.run_lock import RunLock
from audio_transfer.training.train_config import TrainConfig
from audio_transfer.training.train_result import TrainResult

logger = logging.getLogger(__name__)

# The files of a run folder.
MODEL_FILE = "model.keras"
LABELS_FILE = "labels.txt"
CONFIG_FILE = "config.yaml"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
SPLITS_FILE = "splits.csv"
SELECTION_FILE = "selection.json"
# Training checkpoints, in a run's staging folder only (see RunFolder.staged).
CHECKPOINT_DIR = "checkpoint"

# The splits a run records, and the columns of SPLITS_FILE: a manifest (path,label,speaker first, so
# load_labelled_audio reads it too) with each clip's split and what identifies a generated excerpt.
SPLITS = ("train", "validation")
SPLIT_COLUMNS = ("path", "label", "speaker", "split", "relative_path", "generated", "offset_seconds", "gain")


class RunFolder:
    """The folder :func:`~audio_transfer.training.train_run` writes and
    :func:`~audio_transfer.training.load_run` reads.

    It holds:

    - ``model.keras``: the task (a Keras archive that loads in safe mode);
    - ``labels.txt``: one label per line: the classifier's labels in output order, or a verifier's
      training speakers;
    - ``config.yaml``: the resolved :class:`~audio_transfer.training.TrainConfig`;
    - ``history.csv``: one row per training epoch;
    - ``splits.csv``: the exact clips training used: a CSV manifest with columns
      ``path,label,speaker,split,relative_path,generated,offset_seconds,gain``, ``split`` being ``train``
      (the clips trained on; int8 export calibrates on them) or ``validation`` (the clips held out; export
      measures parity on them). ``path`` is absolute, empty for digital silence;
    - ``selection.json``: with ``head: auto``, the cross-validation scores of every head candidate and
      the choice (:meth:`HeadSelection.to_dict <audio_transfer.training.HeadSelection.to_dict>`);
    - ``metrics.json``, ``report.txt`` (with the head selection's scores after the metrics) and a figure
      when the CLI (``train``, ``evaluate --out``) wrote them.

    A run is written whole or not at all (:meth:`staged`): into a temporary folder beside the target,
    renamed into place when complete, while a lock beside it keeps other writers out; a reader sees the
    old run or the new one, never a mix, and files of an older run (``streaming.json``) do not survive it.
    A folder written before ``splits.csv`` existed reads as one without a splits record
    (:meth:`read_splits` returns ``None``).

    Args:
        path: the folder.
        model_path: the model file when it is not ``path / "model.keras"`` (a task ``.keras`` file given
            directly); the other files are read beside it.

    Example:
        >>> folder = RunFolder("runs/kws")
        >>> folder.read_splits()["validation"][0].label  # doctest: +SKIP
        'yes'
    """

    def __init__(self, path: str | os.PathLike, *, model_path: str | os.PathLike | None = None) -> None:
        self.path = Path(path)
        self.model_path = Path(model_path) if model_path is not None else self.path / MODEL_FILE

    @classmethod
    def at(cls, source: str | os.PathLike) -> RunFolder:
        """The run folder ``source`` is, or the folder of the model file ``source`` is."""
        path = Path(source).expanduser()
        return cls(path) if path.is_dir() else cls(path.parent, model_path=path)

    @classmethod
    def find(cls, source: str | os.PathLike) -> RunFolder | None:
        """The run folder ``source`` names: a folder holding ``model.keras``, or a task's ``.keras`` file
        (its folder holds the rest); ``None`` for anything else (a base name, say)."""
        path = Path(source).expanduser()
        if path.is_dir():
            return cls(path) if (path / MODEL_FILE).is_file() else None
        return cls(path.parent, model_path=path) if is_task_file(path) else None

    def file(self, name: str) -> Path:
        """The path of the file ``name`` (one of the ``*_FILE`` names) in the folder."""
        return self.model_path if name == MODEL_FILE else self.path / name

    def require(self, *names: str) -> None:
        """Raise ConfigError naming the folder and the first of ``names`` it lacks."""
        if not self.path.is_dir():
            raise ConfigError(f"RUN_DIR {self.path} is not a folder; pass the folder a training run wrote.")
        for name in names:
            if not self.file(name).is_file():
                raise ConfigError(f"{self.path} has no {name}; RUN_DIR must hold {', '.join(names)}.")

    # -- writing ------------------------------------------------------------------------------------------
    @classmethod
    @contextlib.contextmanager
    def staged(cls, path: str | os.PathLike, *, resume: bool = False) -> Iterator[RunFolder]:
        """A run folder written whole or not at all: lock ``path``, yield a :class:`RunFolder` in a
        temporary folder beside it, and rename that folder onto ``path`` when the block ends without an
        error (an older run there is replaced whole); on an error or an interruption nothing at ``path``
        changes.

        Everything is checked before the block runs, so a long training fails at once on an output it
        could never write: ``path`` must be a run folder, an empty folder or absent (never another file or
        folder), and its folder writable. A staging folder that holds training checkpoints
        (:data:`CHECKPOINT_DIR`) is kept when the block fails, so the run can resume; partial runs that an
        interrupted writer left beside ``path`` are removed with a warning, unless ``resume`` continues the
        newest of them (the block then finds its checkpoints in the staging folder). Checkpoints are
        removed before the run is renamed into place.

        Raises:
            OutputError: ``path`` cannot be written, is not a run folder, or another process is writing it
                (the error names its pid).

        Example:
            >>> with RunFolder.staged("runs/kws") as folder:  # doctest: +SKIP
            ...     folder.write(task=task, labels=labels, config=config)
        """
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise OutputError(f"Cannot write the run folder {path}: it is a file; choose another --out.")
        if path.is_dir() and any(path.iterdir()) and not (path / MODEL_FILE).is_file():
            raise OutputError(
                f"Cannot write the run folder {path}: it is a folder that holds no {MODEL_FILE}, so it is "
                "not a run this would replace; choose another --out."
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutputError(
                f"Cannot write the run folder {path}: {error}. Choose another --out."
            ) from error
        with RunLock(path):
            staging = _partial_run(path, resume=resume) or temporary_directory(path)
            try:
                yield cls(staging)
            except BaseException:
                if not (staging / CHECKPOINT_DIR).is_dir():
                    shutil.rmtree(staging, ignore_errors=True)
                raise
            shutil.rmtree(staging / CHECKPOINT_DIR, ignore_errors=True)
            try:
                replace_directory(staging, path)
            finally:
                shutil.rmtree(staging, ignore_errors=True)

    def write(
        self,
        *,
        task: Task,
        labels: Sequence[str],
        config: TrainConfig,
        result: TrainResult | None = None,
        splits: Mapping[str, Sequence[AudioExample]] | None = None,
        report: ClassificationReport | VerificationReport | None = None,
        summary: Mapping[str, Any] | None = None,
        selection: HeadSelection | None = None,
    ) -> dict[str, Path]:
        """Write the model, labels and settings and, when given, the history, the splits, the head
        selection (``selection.json``) and the report (``metrics.json`` with ``summary``'s entries,
        ``report.txt`` ending with the selection's scores, and its figure) into the folder (created if
        needed).

        Returns:
            the report's files by role (see :func:`~audio_transfer.evaluation.write_report`), empty
            without a report.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        self.write_model(task)
        text = "".join(f"{label}\n" for label in labels)
        write_text(self.file(LABELS_FILE), text)
        config.to_yaml(self.file(CONFIG_FILE))
        if result is not None:
            result.to_csv(self.file(HISTORY_FILE))
        if splits is not None:
            self.write_splits(splits)
        if selection is not None:
            write_json(self.file(SELECTION_FILE), selection.to_dict())
        if report is None:
            return {}
        notes = None if selection is None else selection.to_text()
        return write_report(report, self.path, extra=summary, notes=notes)

    def write_model(self, task: Task) -> Path:
        """Save ``task`` as the folder's model file, replacing it atomically."""
        with atomic_file(self.model_path) as temporary:
            task.save(temporary)
        return self.model_path

    def write_splits(self, splits: Mapping[str, Sequence[AudioExample]]) -> Path:
        """Write ``splits.csv``: every example of ``splits`` (split name -> examples) in order."""
        unknown = sorted(set(splits) - set(SPLITS))
        if unknown:
            raise ConfigError(f"A run records the splits {', '.join(SPLITS)}; received {', '.join(unknown)}.")
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(SPLIT_COLUMNS)
        for split, examples in splits.items():
            for example in examples:
                writer.writerow(
                    [
                        "" if example.path is None else os.fspath(Path(example.path).absolute()),
                        example.label,
                        example.speaker or "",
                        split,
                        example.relative_path,
                        int(example.generated),
                        repr(float(example.offset_seconds)),
                        repr(float(example.gain)),
                    ]
                )
        return write_text(self.file(SPLITS_FILE), buffer.getvalue())

    # -- reading ------------------------------------------------------------------------------------------
    def read_task(self, *, safe_mode: bool = True) -> Task:
        """The task in the model file (see :func:`~audio_transfer.tasks.load_task`)."""
        return load_task(self.model_path, safe_mode=safe_mode)

    def read_model(self, *, safe_mode: bool = True) -> keras.Model:
        """The model file as a task when it holds one, else as a plain Keras model."""
        try:
            if is_task_file(self.model_path):
                return self.read_task(safe_mode=safe_mode)
            return keras.saving.load_model(self.model_path, safe_mode=safe_mode)
        except (OSError, ValueError, TypeError) as error:
            raise ConfigError(f"Cannot load {self.model_path}: {error}") from error

    def read_labels(self) -> list[str] | None:
        """The labels in ``labels.txt``; ``None`` when there is none."""
        path = self.file(LABELS_FILE)
        if not path.is_file():
            return None
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]

    def read_config(self) -> TrainConfig | None:
        """The settings in ``config.yaml`` (absent settings take their defaults); ``None`` when there is
        none."""
        path = self.file(CONFIG_FILE)
        return TrainConfig.from_yaml(path) if path.is_file() else None

    def read_metrics(self) -> dict[str, Any]:
        """The entries of ``metrics.json``; empty when there is none."""
        path = self.file(METRICS_FILE)
        if not path.is_file():
            return {}
        try:
            metrics = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise DatasetError(f"Cannot read {path}: {error}.") from error
        return metrics if isinstance(metrics, dict) else {}

    def read_splits(self) -> dict[str, list[AudioExample]] | None:
        """The clips training used, by split (``"train"``, ``"validation"``), in the order training had
        them; ``None`` for a folder without ``splits.csv`` (written before runs recorded their splits)."""
        path = self.file(SPLITS_FILE)
        if not path.is_file():
            return None
        splits: dict[str, list[AudioExample]] = {split: [] for split in SPLITS}
        try:
            with open(path, newline="", encoding="utf-8") as stream:
                rows = list(csv.DictReader(stream))
            for line, row in enumerate(rows, start=2):
                if row.get("split") not in splits:
                    raise ValueError(f"line {line}: split must be one of {', '.join(SPLITS)}")
                splits[row["split"]].append(
                    AudioExample(
                        Path(row["path"]) if row["path"] else None,
                        row["label"],
                        row["speaker"] or None,
                        row["relative_path"],
                        generated=row["generated"] == "1",
                        offset_seconds=float(row["offset_seconds"]),
                        gain=float(row["gain"]),
                    )
                )
        except (OSError, KeyError, TypeError, ValueError) as error:
            raise DatasetError(
                f"Cannot read {path} ({error}); it must have the columns {','.join(SPLIT_COLUMNS)}."
            ) from error
        return splits


def latest_checkpoint(path: str | os.PathLike) -> Path | None:
    """The checkpoint folder (:data:`CHECKPOINT_DIR`) of the newest staging folder an interrupted training
    of the run folder ``path`` left beside it, or ``None``; only reads (a worker that is not the chief
    resumes from it)."""
    resumable = _resumable(_leftovers(Path(path)))
    return resumable[-1] / CHECKPOINT_DIR if resumable else None


def _leftovers(path: Path) -> list[Path]:
    """The staging and moved-aside folders of ``path`` beside it, oldest first."""
    leftovers = [*path.parent.glob(f".{path.name}.*.tmp"), *path.parent.glob(f".{path.name}.*.old")]
    return sorted((item for item in leftovers if item.is_dir()), key=lambda item: item.stat().st_mtime)


def _resumable(folders: list[Path]) -> list[Path]:
    return [item for item in folders if item.suffix == ".tmp" and (item / CHECKPOINT_DIR).is_dir()]


def _partial_run(path: Path, *, resume: bool) -> Path | None:
    """With ``resume``, the newest staging folder an interrupted training of ``path`` left with its
    checkpoints; every other leftover beside ``path`` is removed, with a warning (the caller holds the
    lock, so no live writer owns them)."""
    folders = _leftovers(path)
    resumable = _resumable(folders)
    kept = resumable[-1] if resume and resumable else None
    if resume and kept is None:
        logger.warning("There is no interrupted run of %s to resume: training from the start.", path)
    for leftover in folders:
        if leftover != kept:
            logger.warning(
                "Removing %s, a partial run an interrupted training left behind%s.",
                leftover,
                "" if resume or leftover not in resumable else " (train with --resume to continue one)",
            )
            shutil.rmtree(leftover, ignore_errors=True)
    if kept is not None:
        logger.info("Resuming the interrupted run in %s.", kept)
    return kept

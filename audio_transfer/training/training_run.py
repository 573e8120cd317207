"""A training run from a dataset folder to a run folder, and loading a run folder back."""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from audio_transfer.atomic_files import writable_folder
from audio_transfer.audio import audio_info
from audio_transfer.bases import AudioBase, load_base
from audio_transfer.data import (
    AudioExample,
    DecodedClips,
    LabelledAudio,
    NoiseBank,
    SkippedFile,
    decode_examples,
    load_labelled_audio,
    load_splits,
    raise_if_too_many_failures,
)
from audio_transfer.errors import AudioDecodeError, ConfigError, DatasetError
from audio_transfer.evaluation import ClassificationReport, VerificationReport
from audio_transfer.tasks import Classifier, Task, task_class
from audio_transfer.training.embedding_cache import EmbeddingCache
from audio_transfer.training.head_selection import HeadSelection, select_head
from audio_transfer.training.holdout import hold_out_validation
from audio_transfer.training.run_folder import CHECKPOINT_DIR, CONFIG_FILE, SPLITS, SPLITS_FILE, RunFolder
from audio_transfer.training.task_evaluation import error_rate, evaluate_task
from audio_transfer.training.train_config import TrainConfig
from audio_transfer.training.train_result import TrainResult
from audio_transfer.training.trainer import Trainer

logger = logging.getLogger(__name__)

# Bounds of the clip length measured from the data when clip_seconds is not set.
MIN_AUTO_CLIP_SECONDS = 0.5
MAX_AUTO_CLIP_SECONDS = 6.0


@dataclasses.dataclass
class TrainingRun:
    """A trained task with its settings, as :func:`train_run` returns it or :func:`load_run` reads it.

    Args:
        task: the trained model.
        config: the resolved settings (``sample_rate``, ``clip_seconds``, ``base``... filled in).
        labels: the classifier's labels in output order; for speaker verification, the training speakers.
        run_dir: the run folder, when saved or loaded.
        result: the training history (``None`` for a loaded run).
        evaluation: clips to report metrics on: validation clips, else the training clips.
        evaluation_split: ``"validation"`` or ``"train"``: which clips ``evaluation`` holds.
        skipped: files left out (undecodable, unreadable).
        splits: the examples training used, by split (``"train"``, ``"validation"``); see :meth:`examples`.
        train_seconds: wall time of training (``None`` for a loaded run).
        report: the task's metrics on ``evaluation`` (see :func:`evaluate_task`), when trained.
        report_files: the files :meth:`save` wrote the report to, by role (``metrics``, ``text``, figure).
        selection: how ``head: auto`` chose the head (``selection.json``, and in ``report.txt``); ``None``
            when the head was set by hand, the task has no classifier head, or the run was loaded.
    """

    task: Task
    config: TrainConfig
    labels: list[str]
    run_dir: Path | None = None
    result: TrainResult | None = None
    evaluation: DecodedClips | None = None
    evaluation_split: str | None = None
    skipped: list[SkippedFile] = dataclasses.field(default_factory=list)
    splits: dict[str, list[AudioExample]] | None = None
    train_seconds: float | None = None
    report: ClassificationReport | VerificationReport | None = None
    report_files: dict[str, Path] = dataclasses.field(default_factory=dict)
    selection: HeadSelection | None = None

    def examples(self, split: str) -> list[AudioExample]:
        """The examples of ``split`` exactly as training used them: ``"train"`` (the clips trained on, the
        ones to calibrate an int8 export on) or ``"validation"`` (the clips training held out; empty when
        nothing was). Decode them with :func:`audio_transfer.data.decode_examples` at
        ``config.sample_rate`` and ``config.clip_seconds``.

        Raises:
            ConfigError: ``split`` is not ``"train"`` or ``"validation"``.
            DatasetError: the run has no record of its splits (a run folder written before runs kept
                ``splits.csv``).

        Example:
            >>> held_out = load_run("runs/kws").examples("validation")  # doctest: +SKIP
        """
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {', '.join(SPLITS)}, received {split!r}.")
        if self.splits is None and self.run_dir is not None:
            self.splits = RunFolder(self.run_dir).read_splits()
        if self.splits is None:
            where = f"{self.run_dir} has no {SPLITS_FILE}" if self.run_dir else "this run has no splits"
            raise DatasetError(
                f"{where}: it was trained before runs recorded their clips. Train it again to record them, "
                "or split the data yourself (audio_transfer.data.load_splits)."
            )
        return list(self.splits[split])

    def summary(self) -> dict[str, Any]:
        """What training did, as plain data (``metrics.json`` holds it beside the report's metrics)."""
        result = self.result
        return {
            "run_dir": None if self.run_dir is None else str(self.run_dir),
            "task": self.config.task,
            "base": self.config.base,
            "num_train_clips": None if result is None else result.num_train_clips,
            "num_augmented_clips": None if result is None else result.num_augmented_clips,
            "num_validation_clips": (
                len(self.evaluation.waveforms) if self.evaluation_split == "validation" else 0
            ),
            "evaluated_on": self.evaluation_split,
            "best_epochs": None if result is None else result.best_epochs,
            "train_seconds": None if self.train_seconds is None else round(self.train_seconds, 2),
            "skipped": [item.to_dict() for item in self.skipped],
        }

    def save(self, run_dir: str | os.PathLike) -> Path:
        """Write the run folder whole (see :meth:`RunFolder.staged`): ``model.keras``, ``labels.txt``,
        ``config.yaml``, and ``history.csv``, ``splits.csv`` and the report when the run has them."""
        with RunFolder.staged(run_dir) as staging:
            self.write_into(staging, final=Path(run_dir))
        return self.run_dir

    def write_into(self, folder: RunFolder, *, final: Path) -> None:
        """Write the run's files into ``folder``, a staging folder that becomes ``final``."""
        self.run_dir = final
        written = folder.write(
            task=self.task,
            labels=self.labels,
            config=self.config,
            result=self.result,
            splits=self.splits,
            report=self.report,
            summary=self.summary() if self.report is not None else None,
            selection=self.selection,
        )
        self.report_files = {role: final / path.name for role, path in written.items()}


def make_task(config: TrainConfig, base: AudioBase, labels: list[str]) -> Task:
    """A fresh task of ``config.task`` over ``base``, its head shaped by ``config`` (see
    :meth:`Task.from_settings`)."""
    config = config.resolved()
    return task_class(config.task).from_settings(base, labels, config.to_dict())


def train_run(
    config: TrainConfig,
    out_dir: str | os.PathLike | None = None,
    *,
    verbose: int = 1,
    resume: bool = False,
) -> TrainingRun:
    """Train ``config.task`` on ``config.data_dir`` and, with ``out_dir``, save the run there.

    Loads the base and the labelled clips, holds out validation clips the way the task declares
    (``validation_hold_out``; see :func:`hold_out_validation`) when ``config.val_data_dir`` is not given,
    decodes every clip once to ``config.clip_seconds``, trains with :class:`Trainer` (embeddings cached,
    augmented copies from the dataset's background noise) and returns the run. A task validated on classes
    it never trains on (``validation_hold_out == "classes"``) trains every epoch and is then compared, on
    the validation clips, with its ``untrained_alternative()``; the better one is kept. ``run.report``
    holds :func:`evaluate_task`'s metrics on ``run.evaluation``.

    With ``out_dir`` the run folder is a transaction (see :meth:`RunFolder.staged`): it is locked and
    checked before any work, written into a temporary folder beside it, and renamed into place whole when
    training and its report are done; an error or an interruption leaves what was there before. Training
    checkpoints every epoch of both stages into that temporary folder, which an interrupted run leaves
    behind: ``resume=True`` continues it from its last completed epoch and ends as an uninterrupted run
    with the same settings would; without it, the leftover is removed and training starts afresh.

    Args:
        config: the settings; ``config.data_dir`` is required (a folder per class, or a manifest).
        out_dir: run folder to write (see :class:`RunFolder`: ``model.keras``, ``labels.txt``,
            ``config.yaml``, ``history.csv``, ``splits.csv``, ``metrics.json``, ``report.txt`` and a
            figure); ``None`` keeps the run in memory.
        verbose: Keras verbosity: 0 silent, 1 progress bars, 2 one line per epoch.
        resume: continue the training that an interrupted ``train_run`` into ``out_dir`` left (with the
            same settings, else ConfigError), instead of starting afresh.

    Returns:
        a :class:`TrainingRun`; ``run.evaluation`` holds the validation clips (``(clips, samples)``
        float32) when some were held out, else the training clips; ``run.examples("train")`` and
        ``run.examples("validation")`` the examples of each split.

    Example:
        >>> run = train_run(TrainConfig(task="kws", data_dir="digits", keywords=["yes", "no"]), "runs/yes_no")
        >>> run.task.classify(clip)
    """
    if config.data_dir is None:
        raise ConfigError("data_dir is not set: give the training folder (folder per class) or manifest.")
    if out_dir is None:
        if resume:
            raise ConfigError("resume continues a run folder: give out_dir, the folder it was training.")
        return _train(config, verbose=verbose)
    with RunFolder.staged(out_dir, resume=resume) as staging:
        checkpoint_dir = staging.path / CHECKPOINT_DIR
        _check_resumed_settings(checkpoint_dir, config)
        run = _train(config, verbose=verbose, checkpoint_dir=checkpoint_dir)
        run.write_into(staging, final=Path(out_dir))
    return run


def split_examples(
    config: TrainConfig, *, hold_out: str
) -> tuple[LabelledAudio, list[AudioExample], list[AudioExample]]:
    """The labelled data of ``config.data_dir`` and the training and validation examples a run trains
    and validates on: ``config.val_data_dir`` when given, else ``hold_out`` (a task's
    ``validation_hold_out``, see :func:`hold_out_validation`) of the data.

    A task validated on classes it never trains on (``hold_out == "classes"``: verification on other
    speakers) takes a validation folder whole, since it shares no classes with training.

    Returns:
        ``(data, train_examples, validation_examples)``.
    """
    load_kwargs = {
        "keywords": config.keywords,
        "unknown_fraction": config.unknown_fraction,
        "silence_fraction": config.silence_fraction,
        "seed": config.seed,
    }
    if config.val_data_dir is not None and hold_out == "classes":
        data = load_labelled_audio(config.data_dir, **load_kwargs)
        return data, data.examples, load_labelled_audio(config.val_data_dir, **load_kwargs).examples
    if config.val_data_dir is not None:
        data, splits = load_splits(
            config.data_dir, validation_source=config.val_data_dir, test_fraction=0.0, **load_kwargs
        )
        return data, splits["train"], splits["validation"]
    data = load_labelled_audio(config.data_dir, **load_kwargs)
    train, validation = hold_out_validation(
        data.examples,
        fraction=config.validation_fraction,
        hold_out=hold_out,
        min_examples=config.min_examples_for_validation,
        seed=config.seed,
    )
    return data, train, validation


def _check_resumed_settings(checkpoint_dir: Path, config: TrainConfig) -> None:
    """Record the settings a checkpointed training starts with; refuse to resume one with others."""
    path = checkpoint_dir / CONFIG_FILE
    if not path.is_file():
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        config.to_yaml(path)
        return
    saved = TrainConfig.from_yaml(path).to_dict()
    changed = sorted(key for key, value in config.to_dict().items() if saved[key] != value)
    if changed:
        raise ConfigError(
            f"The interrupted run was training with other settings ({', '.join(changed)}); resume it with "
            "the settings it had, or train without --resume to start afresh."
        )


def _train(config: TrainConfig, *, verbose: int, checkpoint_dir: Path | None = None) -> TrainingRun:
    """:func:`train_run` without a run folder; ``checkpoint_dir`` as :class:`Trainer` takes it."""
    started = time.monotonic()
    config = config.resolved()
    if config.cache_dir is not None:
        writable_folder(config.cache_dir)
    cls = task_class(config.task)
    base_kwargs = {} if config.base_weights is None else {"weights": config.base_weights}
    base = load_base(config.base, **base_kwargs)
    if config.sample_rate != base.sample_rate:
        logger.info("Decoding at the base's %d Hz (config said %d Hz).", base.sample_rate, config.sample_rate)
        config = config.replace(sample_rate=base.sample_rate)
    data, train_examples, validation_examples = split_examples(config, hold_out=cls.validation_hold_out)
    # A task validated on classes it never trains on (verification: other speakers): its softmax runs over
    # its training classes only.
    unseen_classes = cls.validation_hold_out == "classes"
    if config.clip_seconds is None:
        config = config.replace(clip_seconds=cls.default_clip_seconds or auto_clip_seconds(train_examples))
    # Splits decode without a limit of their own: the limit applies once, to the dataset's count of files
    # (as `audio-transfer info` counts them), not to each split's.
    decode = functools.partial(
        decode_examples,
        sample_rate=config.sample_rate,
        clip_seconds=config.clip_seconds,
        max_failure_fraction=1.0,
    )
    train = decode(train_examples)
    validation = decode(validation_examples) if validation_examples else None
    skipped = [*data.skipped, *train.skipped, *(validation.skipped if validation else [])]
    raise_if_too_many_failures(
        skipped,
        len(data.skipped) + len(train_examples) + len(validation_examples),
        config.max_failure_fraction,
    )
    labels = sorted(set(train.labels)) if unseen_classes else list(data.labels)
    if len(labels) < 2:
        raise ConfigError(f"{config.data_dir} has {len(labels)} class; training needs at least two.")
    logger.info(
        "Training %s on %d clips of %d classes (%d validation clips) with base %s.",
        config.task,
        len(train.waveforms),
        len(labels),
        0 if validation is None else len(validation.waveforms),
        config.base,
    )

    cache = EmbeddingCache(
        base,
        cache_dir=config.cache_dir,
        settings={
            "base": config.base,
            **({} if config.base_weights is None else {"base_weights": config.base_weights}),
            "sample_rate": config.sample_rate,
            "clip_seconds": config.clip_seconds,
        },
    )
    augment = _augmenter(data.noise_files, sample_rate=config.sample_rate) if config.augment else None
    # -- head: auto: the head chosen by cross-validation on the training clips' embeddings ------------------
    selection = None
    if config.head == "auto" and issubclass(cls, Classifier):
        selection = _select_head(config, make_task(config, base, labels), cache, train, labels, augment)
        config = selection.apply(config)
    # -------------------------------------------------------------------------------------------------------
    keras.utils.set_random_seed(config.seed)  # the head's initial weights too
    task = make_task(config, base, labels)
    alternative = task.untrained_alternative() if unseen_classes and validation is not None else None
    if alternative is not None:
        untrained = (base.get_weights(), evaluate_task(alternative, validation.waveforms, validation.labels))
    # Validation on unseen classes cannot be scored by a softmax over the training classes: such a task
    # trains every epoch and is compared with its untrained alternative afterwards.
    trainer_validation = validation is not None and not unseen_classes
    result = Trainer(task, config, cache=cache, verbose=verbose, checkpoint_dir=checkpoint_dir).fit(
        train.waveforms,
        train.label_indices(labels),
        validation=(validation.waveforms, validation.label_indices(labels)) if trainer_validation else None,
        keys=[clip_key(example) for example in train.examples],
        validation_keys=[clip_key(e) for e in validation.examples] if trainer_validation else None,
        augment=augment,
    )
    if alternative is not None:
        task = _better_task(task, alternative, validation, *untrained)
    run = TrainingRun(
        task=task,
        config=config,
        labels=labels,
        selection=selection,
        result=result,
        evaluation=validation or train,
        evaluation_split="train" if validation is None else "validation",
        skipped=skipped,
        splits={
            "train": list(train.examples),
            "validation": [] if validation is None else validation.examples,
        },
    )
    run.report = evaluate_task(run.task, run.evaluation.waveforms, run.evaluation.labels)
    run.train_seconds = time.monotonic() - started
    return run


def _select_head(
    config: TrainConfig,
    task: Task,
    cache: EmbeddingCache,
    train: DecodedClips,
    labels: list[str],
    augment,
) -> HeadSelection:
    """:func:`select_head` on the training clips: their embeddings through ``cache`` (so the trainer's pass
    over them is free), and their augmented copies made as the trainer makes them, as ``task`` hears them
    (its context silence); folds by speaker for a task validated on unseen speakers, by class otherwise."""
    frames = cache.embed(
        keras.ops.convert_to_numpy(task.with_context(train.waveforms)),
        keys=[clip_key(example) for example in train.examples],
    )
    augmented = origin = None
    if augment is not None and config.augment_copies:
        copies = [
            cache.embed(
                keras.ops.convert_to_numpy(
                    task.with_context(augment(train.waveforms, config.seed * 1000 + k))
                )
            )
            for k in range(config.augment_copies)
        ]
        augmented = np.concatenate(copies)
        origin = np.tile(np.arange(len(train.waveforms)), len(copies))
    speakers = [example.speaker for example in train.examples]
    by_speaker = task.validation_hold_out == "speakers" and any(speaker is not None for speaker in speakers)
    return select_head(
        config,
        frames=frames,
        labels=train.label_indices(labels),
        groups=speakers if by_speaker else None,
        augmented_frames=augmented,
        augmented_origin=origin,
        num_classes=len(labels),
    )


def _better_task(
    trained: Task,
    alternative: Task,
    validation: DecodedClips,
    base_weights: list,
    untrained: ClassificationReport | VerificationReport,
) -> Task:
    """The trained task, or its untrained alternative when training did not lower the error on the
    validation classes (few training speakers teach an embedding that does not carry to new voices)."""
    report = evaluate_task(trained, validation.waveforms, validation.labels)
    trained_error, untrained_error = error_rate(report), error_rate(untrained)
    logger.info(
        "Validation error (%s): %.2f%% trained, %.2f%% untrained.",
        trained.evaluation,
        100 * trained_error,
        100 * untrained_error,
    )
    if trained_error < untrained_error:
        return trained
    logger.warning(
        "Training did not lower the error on the validation classes (%.2f%% against %.2f%% untrained): "
        "keeping the untrained %s. More training classes (speakers) would help.",
        100 * trained_error,
        100 * untrained_error,
        type(alternative).__name__,
    )
    trained.base.set_weights(base_weights)
    return alternative


def load_run(path: str | os.PathLike, *, safe_mode: bool = True) -> TrainingRun:
    """Load a run folder (or a ``model.keras`` file) written by :func:`train_run`.

    The settings come from ``config.yaml`` beside the model when present, else from the task's defaults;
    the splits (:meth:`TrainingRun.examples`) from ``splits.csv`` when present.

    Args:
        path: the run folder, or its ``model.keras``.
        safe_mode: see :func:`~audio_transfer.tasks.load_task` (``False`` for a run on a hub base).

    Returns:
        a :class:`TrainingRun` (without ``result`` and ``evaluation``).

    Example:
        >>> run = load_run("runs/kws")  # doctest: +SKIP
        >>> run.task.classify(waveforms)  # doctest: +SKIP
    """
    folder = RunFolder.at(path)
    task = folder.read_task(safe_mode=safe_mode)
    config = folder.read_config()
    if config is None:
        if task.task_name is None:
            raise ConfigError(
                f"{folder.path} has no {CONFIG_FILE} and {type(task).__name__} is not a "
                "registered task (no task_name): add the config.yaml its training wrote."
            )
        config = TrainConfig(task=task.task_name, sample_rate=task.sample_rate, clip_seconds=1.0).resolved()
    labels = list(getattr(task, "labels", None) or folder.read_labels() or [])
    return TrainingRun(
        task=task, config=config, labels=labels, run_dir=folder.path, splits=folder.read_splits()
    )


def auto_clip_seconds(examples: Sequence[AudioExample], *, percentile: float = 95.0) -> float:
    """A clip length that keeps most files whole: the ``percentile`` of their durations, rounded up to
    0.1 s, from :data:`MIN_AUTO_CLIP_SECONDS` to :data:`MAX_AUTO_CLIP_SECONDS` (1 s without real files)."""
    durations = []
    for example in examples:
        if example.path is not None and not example.generated:
            try:
                durations.append(audio_info(example.path).duration_seconds)
            except AudioDecodeError:
                continue  # decoding reports it
    if not durations:
        return 1.0
    seconds = math.ceil(float(np.percentile(durations, percentile)) * 10 - 1e-6) / 10
    seconds = min(max(seconds, MIN_AUTO_CLIP_SECONDS), MAX_AUTO_CLIP_SECONDS)
    logger.info(
        "Clips are %.1f s long (%.0fth percentile of %d files; choose with clip_seconds, `--clip-seconds`).",
        seconds,
        percentile,
        len(durations),
    )
    return seconds


def clip_key(example: AudioExample) -> str:
    """Embedding-cache key of an example: its file's identity, plus the excerpt for generated silence."""
    if example.path is None:
        return "digital-silence"
    key = EmbeddingCache.file_key(example.path)
    if example.generated:
        key += f"|excerpt|{example.offset_seconds}|{example.gain}"
    return key


def _augmenter(noise_files: list[Path], *, sample_rate: int):
    """``augment(waveforms, seed)`` with the default :class:`~audio_transfer.data.Augmentation` and noise."""
    from audio_transfer.data import Augmentation

    noise = NoiseBank.from_files(noise_files, sample_rate=sample_rate) if noise_files else None
    return functools.partial(_augment, Augmentation(), noise=noise, sample_rate=sample_rate)


def _augment(augmentation, waveforms, seed, *, noise, sample_rate):
    return augmentation.augment(waveforms, sample_rate=sample_rate, noise=noise, seed=seed)

"""A training run from a dataset folder to a run folder, and loading a run folder back."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from audio_transfer.atomic_files import writable_folder
from audio_transfer.audio import audio_info
from audio_transfer.bases import AudioBase, load_base
from audio_transfer.data import (
    SILENCE_LABEL,
    UNKNOWN_LABEL,
    AudioExample,
    DecodedClips,
    FeatureStore,
    FeatureStoreWriter,
    LabelledAudio,
    NegativeAudio,
    NoiseBank,
    RoomReverb,
    SkippedFile,
    StoreExample,
    StoreIdentity,
    decode_examples,
    is_store,
    load_labelled_audio,
    load_splits,
    raise_if_too_many_failures,
)
from audio_transfer.embedding import (
    check_store_for,
    example_key,
    store_identity,
    write_examples,
    write_negative_windows,
)
from audio_transfer.errors import AudioDecodeError, ConfigError, DatasetError, DependencyError, StoreError
from audio_transfer.evaluation import ClassificationReport, VerificationReport
from audio_transfer.synth import SynthesizedNegatives
from audio_transfer.tasks import Classifier, Task, task_class
from audio_transfer.training.distribution import distribution_strategy, is_chief
from audio_transfer.training.embedding_cache import EmbeddingCache
from audio_transfer.training.hard_negative_mining import MiningRound, mine_hard_negatives
from audio_transfer.training.head_selection import HeadSelection, select_head
from audio_transfer.training.holdout import hold_out_validation
from audio_transfer.training.run_folder import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    SPLITS,
    SPLITS_FILE,
    RunFolder,
    latest_checkpoint,
)
from audio_transfer.training.task_evaluation import error_rate, evaluate_store, evaluate_task
from audio_transfer.training.train_config import TrainConfig
from audio_transfer.training.train_result import TrainResult
from audio_transfer.training.trainer import Trainer

logger = logging.getLogger(__name__)

# The folder of a run's staging folder that holds the feature store of its clips while it trains (kept by
# an interruption so that a resumed run reuses it; removed before the run folder is complete).
STORE_DIR = "feature_store"

# Bounds of the clip length measured from the data when clip_seconds is not set.
MIN_AUTO_CLIP_SECONDS = 0.5
MAX_AUTO_CLIP_SECONDS = 6.0
# head: auto holds the embeddings of the clips it cross-validates in memory (a few KB each): beyond this many
# clean training clips it cross-validates a sample of whole speakers, enough for folds of hundreds of clips
# while the memory of training from a large store stays flat.
MAX_SELECTION_CLIPS = 4000


@dataclasses.dataclass
class TrainingRun:
    """A trained task with its settings, as :func:`train_run` returns it or :func:`load_run` reads it.

    Args:
        task: the trained model.
        config: the resolved settings (``sample_rate``, ``clip_seconds``, ``base``... filled in).
        labels: the classifier's labels in output order; for speaker verification, the training speakers.
        run_dir: the run folder, when saved or loaded.
        result: the training history (``None`` for a loaded run).
        evaluation: the decoded clips the report was computed on (validation clips, else the training
            clips) when training held waveforms (fine-tuning, verification); ``None`` when the report was
            computed from the feature store's embeddings (decode ``examples(evaluation_split)`` for clips).
        evaluation_split: ``"validation"`` or ``"train"``: which clips the report is on.
        num_evaluation_clips: how many clips the report is on.
        skipped: files left out (undecodable, unreadable).
        splits: the examples training used, by split (``"train"``, ``"validation"``); see :meth:`examples`.
            Synthesized negatives (a wake word's near-miss clips, made in a temporary folder) and windows
            of negative audio are not listed.
        train_seconds: wall time of training (``None`` for a loaded run).
        report: the task's metrics on ``evaluation`` (see :func:`evaluate_task`), when trained.
        report_files: the files :meth:`save` wrote the report to, by role (``metrics``, ``text``, figure).
        selection: how ``head: auto`` chose the head (``selection.json``, and in ``report.txt``); ``None``
            when the head was set by hand, the task has no classifier head, or the run was loaded.
        mining: the rounds of hard-negative mining (``config.mining_rounds``), then a last scan of the
            final model; in ``metrics.json``. Empty when there was none.
    """

    task: Task
    config: TrainConfig
    labels: list[str]
    run_dir: Path | None = None
    result: TrainResult | None = None
    evaluation: DecodedClips | None = None
    evaluation_split: str | None = None
    num_evaluation_clips: int = 0
    skipped: list[SkippedFile] = dataclasses.field(default_factory=list)
    splits: dict[str, list[AudioExample]] | None = None
    train_seconds: float | None = None
    report: ClassificationReport | VerificationReport | None = None
    report_files: dict[str, Path] = dataclasses.field(default_factory=dict)
    selection: HeadSelection | None = None
    mining: list[MiningRound] = dataclasses.field(default_factory=list)

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
            "num_validation_clips": self.num_evaluation_clips if self.evaluation_split == "validation" else 0,
            "evaluated_on": self.evaluation_split,
            "best_epochs": None if result is None else result.best_epochs,
            "train_seconds": None if self.train_seconds is None else round(self.train_seconds, 2),
            "skipped": [item.to_dict() for item in self.skipped],
            **({"mining": [item.to_dict() for item in self.mining]} if self.mining else {}),
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

    Loads the base and the labelled clips and holds out validation clips the way the task declares
    (``validation_hold_out``; see :func:`hold_out_validation`) when ``config.val_data_dir`` is not given. The
    training clips (with ``config.augment_copies`` augmented copies, noise from the dataset's background
    noise) and the validation clips are embedded by the frozen base into a feature store a bounded chunk at
    a time (:func:`audio_transfer.embedding.write_examples`): under ``config.cache_dir``, named by the data
    and settings so that a later run reuses it, else in the run's staging folder (a temporary folder without
    ``out_dir``), deleted when the run is done. :class:`Trainer` then streams the head's training from the
    store (:meth:`Trainer.fit_store`) and the report is computed from the stored validation embeddings, so
    memory does not grow with the number of clips. ``config.data_dir`` may itself be a feature store (a
    folder with ``manifest.json``): its clean clips are split by the same hold-out from their stored
    speakers, and its identity must match the base and settings. Waveforms are decoded in memory only where
    training needs them: fine-tuning (stage 2) and a task validated on classes it never trains on
    (``validation_hold_out == "classes"``), which trains every epoch and is then compared, on the
    validation clips, with its ``untrained_alternative()``; the better one is kept. ``run.report`` holds
    :func:`evaluate_task`'s metrics (:func:`evaluate_store`'s from the store).

    With ``out_dir`` the run folder is a transaction (see :meth:`RunFolder.staged`): it is locked and
    checked before any work, written into a temporary folder beside it, and renamed into place whole when
    training and its report are done; an error or an interruption leaves what was there before. Training
    checkpoints every epoch of both stages into that temporary folder, which an interrupted run leaves
    behind: ``resume=True`` continues it from its last completed epoch and ends as an uninterrupted run
    with the same settings would; without it, the leftover is removed and training starts afresh.

    Args:
        config: the settings; ``config.data_dir`` is required (a folder per class, a manifest, or a
            feature store of the base's embeddings).
        out_dir: run folder to write (see :class:`RunFolder`: ``model.keras``, ``labels.txt``,
            ``config.yaml``, ``history.csv``, ``splits.csv``, ``metrics.json``, ``report.txt`` and a
            figure); ``None`` keeps the run in memory.
        verbose: Keras verbosity: 0 silent, 1 progress bars, 2 one line per epoch.
        resume: continue the training that an interrupted ``train_run`` into ``out_dir`` left (with the
            same settings, else ConfigError), instead of starting afresh.

    Returns:
        a :class:`TrainingRun`; ``run.examples("train")`` and ``run.examples("validation")`` are the
        examples of each split (not recorded for a run from a store); ``run.evaluation`` holds the decoded
        clips of the report only when training decoded them (fine-tuning, verification).

    Example:
        >>> run = train_run(TrainConfig(task="kws", data_dir="digits", keywords=["yes", "no"]), "runs/yes_no")
        >>> run.task.classify(clip)
    """
    if config.data_dir is None:
        raise ConfigError("data_dir is not set: give the training folder (folder per class) or manifest.")
    strategy = distribution_strategy(config.strategy)  # before any other TensorFlow work
    if out_dir is None:
        if resume:
            raise ConfigError("resume continues a run folder: give out_dir, the folder it was training.")
        with tempfile.TemporaryDirectory(prefix="audio_transfer_store_") as work_dir, strategy.scope():
            return _train(config, verbose=verbose, work_dir=Path(work_dir))
    if not is_chief(config.strategy):
        return _train_worker(config, Path(out_dir), strategy, verbose=verbose, resume=resume)
    with RunFolder.staged(out_dir, resume=resume) as staging:
        checkpoint_dir = staging.path / CHECKPOINT_DIR
        _check_resumed_settings(checkpoint_dir, config)
        with strategy.scope():
            run = _train(
                config, verbose=verbose, checkpoint_dir=checkpoint_dir, work_dir=staging.path / STORE_DIR
            )
        run.write_into(staging, final=Path(out_dir))
    return run


def _train_worker(config: TrainConfig, out_dir: Path, strategy, *, verbose: int, resume: bool) -> TrainingRun:
    """:func:`train_run` on a worker that is not the chief: the same training, in step with the chief,
    checkpointing into a temporary folder that is removed; nothing is written at ``out_dir``. With
    ``resume`` it continues from the checkpoints of the chief's interrupted run of ``out_dir`` (the same
    path on a shared file system), which it only reads."""
    restore_dir = latest_checkpoint(out_dir) if resume else None
    if resume and restore_dir is None:
        logger.warning("There is no interrupted run of %s to resume: training from the start.", out_dir)
    if restore_dir is not None:
        _check_resumed_settings(restore_dir, config)
    with tempfile.TemporaryDirectory(prefix="audio-transfer-worker-") as scratch, strategy.scope():
        run = _train(
            config,
            verbose=verbose,
            checkpoint_dir=Path(scratch) / CHECKPOINT_DIR,
            restore_dir=restore_dir,
            work_dir=Path(scratch) / STORE_DIR,
        )
    logger.info("Worker done: the chief writes the run folder; nothing was written to %s.", out_dir)
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
    # The strategy says how to run, not what to train: a run interrupted on one machine resumes on several.
    changed = sorted(
        key for key, value in config.to_dict().items() if saved[key] != value and key != "strategy"
    )
    if changed:
        raise ConfigError(
            f"The interrupted run was training with other settings ({', '.join(changed)}); resume it with "
            "the settings it had, or train without --resume to start afresh."
        )


def _train(
    config: TrainConfig,
    *,
    verbose: int,
    work_dir: Path,
    checkpoint_dir: Path | None = None,
    restore_dir: Path | None = None,
) -> TrainingRun:
    """:func:`train_run` without a run folder, under the caller's distribution strategy scope;
    ``checkpoint_dir`` and ``restore_dir`` as :class:`Trainer` takes them; the feature store of a folder's
    clips is made in ``work_dir`` (kept there by an interruption, for a resumed run) unless
    ``config.cache_dir`` keeps it."""
    started = time.monotonic()
    config = config.resolved()
    if config.cache_dir is not None:
        writable_folder(config.cache_dir)
    cls = task_class(config.task)
    if cls.requires_keywords and not config.keywords:
        raise ConfigError(
            f"The {config.task} task needs the words to spot: give --keywords WORD[,WORD...] (keywords in "
            "the configuration), each the name of a class folder of the data; the other folders become "
            "_unknown_."
        )
    NegativeAudio.check_paths(config.negatives or [])
    base_kwargs = {} if config.base_weights is None else {"weights": config.base_weights}
    base = load_base(config.base, **base_kwargs)
    if config.sample_rate != base.sample_rate:
        logger.info("Decoding at the base's %d Hz (config said %d Hz).", base.sample_rate, config.sample_rate)
        config = config.replace(sample_rate=base.sample_rate)
    # A task validated on classes it never trains on (verification: other speakers): its softmax runs over
    # its training classes only.
    unseen_classes = cls.validation_hold_out == "classes"
    given_store = FeatureStore.open(config.data_dir) if is_store(config.data_dir) else None
    if given_store is not None:
        config = _check_store_settings(config, given_store, unseen_classes=unseen_classes)
        data, train_examples, validation_examples = _store_splits(
            config, given_store, hold_out=cls.validation_hold_out
        )
    else:
        data, train_examples, validation_examples = split_examples(config, hold_out=cls.validation_hold_out)
    if config.clip_seconds is None:
        config = config.replace(clip_seconds=cls.default_clip_seconds or auto_clip_seconds(train_examples))
    labels = sorted({e.label for e in train_examples}) if unseen_classes else list(data.labels)
    near_misses, negatives = _negative_data(config, data, given_store=given_store, work_dir=work_dir)
    data_train_examples = train_examples  # splits.csv lists the data's clips, not synthesized temporaries
    train_examples = train_examples + near_misses
    if (near_misses or negatives is not None) and UNKNOWN_LABEL not in labels:
        labels.insert(int(SILENCE_LABEL in labels), UNKNOWN_LABEL)
    if len(labels) < 2:
        raise ConfigError(f"{config.data_dir} has {len(labels)} class; training needs at least two.")

    keras.utils.set_random_seed(config.seed)  # the head's initial weights too
    task = make_task(config, base, labels)
    identity = store_identity(
        base,
        base_name=config.base,
        sample_rate=config.sample_rate,
        clip_seconds=config.clip_seconds,
        context_seconds=task.context_seconds,
    )
    augment = _augmenter(config, data.noise_files) if config.augment else None
    train_keys = [example_key(example) for example in train_examples]
    # A validation folder's paths may repeat the training folder's.
    prefix = "validation/" if config.val_data_dir is not None else ""
    validation_keys = [prefix + example_key(example) for example in validation_examples]
    if given_store is not None:
        check_store_for(task, given_store)
        store, made = given_store, 0
    else:
        store, made = _folder_store(
            config,
            identity,
            base,
            train_examples,
            validation_examples,
            validation_keys,
            augment,
            work_dir,
            negatives=negatives,
        )
    skipped = [*data.skipped, *(item for item in store.skipped if item not in data.skipped)]
    raise_if_too_many_failures(
        skipped,
        len(data.skipped) + len(train_examples) + len(validation_examples),
        config.max_failure_fraction,
    )
    if negatives is not None:  # short or unreadable negative recordings: listed, never fatal
        skipped += [item for item in negatives.skipped if item not in skipped]
    stored = store.examples()
    # Windows of negative audio train (a file's windows are one "speaker" for the folds of head: auto).
    in_train = {*train_keys, *(example.key for example in stored if example.source == "negatives")}
    in_store = {example.key for example in stored}
    train_stored = {example.key for example in stored if example.clip_key in in_train}
    train_clean = [example.key for example in stored if example.key in in_train]
    validation_stored = [key for key in validation_keys if key in in_store]
    logger.info(
        "Training %s on %d clips of %d classes (%d validation clips) with base %s.",
        config.task,
        len(train_clean),
        len(labels),
        len(validation_stored),
        config.base,
    )

    # Waveforms only where training needs them: fine-tuning trains on them, and a task validated on unseen
    # classes is compared with its untrained alternative on the validation clips.
    decode = functools.partial(
        decode_examples,
        sample_rate=config.sample_rate,
        clip_seconds=config.clip_seconds,
        max_failure_fraction=1.0,
    )
    train = decode(train_examples) if config.fine_tune_blocks else None
    validation = (
        decode(validation_examples)
        if validation_examples and (config.fine_tune_blocks or unseen_classes)
        else None
    )
    # -- head: auto: the head chosen by cross-validation on the training clips' stored embeddings -----------
    selection = None
    if config.head == "auto" and issubclass(cls, Classifier):
        if tf.distribute.get_strategy().num_replicas_in_sync > 1:
            selection = HeadSelection.fallback(
                num_clips=len(train_clean),
                reason="Training runs on several replicas (tf.distribute), where the cross-validation's own "
                "fits cannot run in step: the linear probe's settings are used (--set head=mlp or "
                "head=linear chooses by hand).",
            )
        else:
            selection = _select_head(config, task, store, stored, train_clean, labels)
        config = selection.apply(config)
        keras.utils.set_random_seed(config.seed)  # the chosen head's initial weights too
        task = make_task(config, base, labels)
        if not config.augment:
            train_stored = set(train_clean)
    # -------------------------------------------------------------------------------------------------------
    alternative = task.untrained_alternative() if unseen_classes and validation is not None else None
    if alternative is not None:
        untrained = (base.get_weights(), evaluate_task(alternative, validation.waveforms, validation.labels))
    # Validation on unseen classes cannot be scored by a softmax over the training classes: such a task
    # trains every epoch and is compared with its untrained alternative afterwards.
    trainer_validation = bool(validation_stored) and not unseen_classes
    result = Trainer(
        task, config, verbose=verbose, checkpoint_dir=checkpoint_dir, restore_dir=restore_dir
    ).fit_store(
        store,
        labels=labels,
        keys=train_stored,
        validation_keys=validation_stored if trainer_validation else None,
        waveforms=None if train is None else (train.waveforms, train.label_indices(labels)),
        validation=(
            (validation.waveforms, validation.label_indices(labels))
            if trainer_validation and validation is not None
            else None
        ),
        augment=augment if config.augment_copies else None,
    )
    mining: list[MiningRound] = []
    if config.mining_rounds and negatives is not None and isinstance(task, Classifier):
        task, result, mining = _mine_and_retrain(
            config,
            task,
            result,
            store,
            negatives,
            base=base,
            labels=labels,
            keys=train_stored,
            validation_keys=validation_stored if trainer_validation else None,
            work_dir=work_dir,
            verbose=verbose,
        )
    result = dataclasses.replace(result, cache_hits=len(stored) - made, cache_misses=made)
    if alternative is not None:
        task = _better_task(task, alternative, validation, *untrained)
    evaluation = validation or train
    if evaluation is None and task.evaluation != "classification":  # a verifier's report needs its clips
        evaluation = decode(train_examples)
    evaluation_split = "validation" if validation_stored else "train"
    if evaluation is not None:
        report = evaluate_task(task, evaluation.waveforms, evaluation.labels)
        num_evaluation_clips = len(evaluation.waveforms)
    else:  # the frozen base's embeddings are in the store: the head alone reports, a chunk at a time
        keys = validation_stored or train_clean
        report = evaluate_store(task, store, keys=keys)
        num_evaluation_clips = len(keys)
    if given_store is None and config.cache_dir is None:
        shutil.rmtree(work_dir, ignore_errors=True)
    run = TrainingRun(
        task=task,
        config=config,
        labels=labels,
        selection=selection,
        result=result,
        evaluation=evaluation,
        evaluation_split=evaluation_split,
        num_evaluation_clips=num_evaluation_clips,
        skipped=skipped,
        splits=None
        if given_store is not None
        else {"train": data_train_examples, "validation": validation_examples},
        report=report,
        mining=mining,
    )
    run.train_seconds = time.monotonic() - started
    return run


def _negative_data(
    config: TrainConfig, data: LabelledAudio, *, given_store: FeatureStore | None, work_dir: Path
) -> tuple[list[AudioExample], NegativeAudio | None]:
    """A wake word's negatives beyond the data's own clips: the near-miss clips eSpeak NG speaks (as
    ``_unknown_`` training examples) and the negative audio to window (``config.negatives``, the
    synthesized everyday speech and the data's background-noise files); ``([], None)`` when the run has
    neither ``negatives`` nor ``synth_negatives``."""
    if given_store is not None:
        if config.negatives:
            raise ConfigError(
                f"Cannot add --negatives to training from the feature store {given_store.path}: negative "
                "audio is windowed into the store a run makes from an audio folder. Train from the folder."
            )
        return [], None
    paths: list[str | os.PathLike] = list(config.negatives or [])
    near_misses: list[AudioExample] = []
    if paths or config.synth_negatives:  # the data's background noise is everyday audio too
        paths += data.noise_files
    if config.synth_negatives and config.keywords:
        folder = (
            Path(config.cache_dir).expanduser() / "synth-negatives" / _synth_digest(config)
            if config.cache_dir is not None
            else work_dir / "synth-negatives"
        )
        synthesized = SynthesizedNegatives.synthesize(
            config.keywords,
            out_dir=folder,
            clip_seconds=config.clip_seconds,
            sample_rate=config.sample_rate,
            speech_minutes=config.synth_speech_minutes,
            clips_per_phrase=config.synth_near_miss_clips,
            seed=config.seed,
            noise_files=data.noise_files,
        )
        if synthesized.near_miss_dir is not None:
            near_misses = [
                dataclasses.replace(
                    example, label=UNKNOWN_LABEL, relative_path=f"near_miss/{example.relative_path}"
                )
                for example in load_labelled_audio(synthesized.near_miss_dir).examples
            ]
        paths += synthesized.speech_files
        logger.info(
            "Synthesized negatives: %d near-miss clips of %d phrases, %d files of everyday speech.",
            len(near_misses),
            len(synthesized.phrases),
            len(synthesized.speech_files),
        )
    if not paths:
        return near_misses, None
    context = config.context_seconds
    context = task_class(config.task).default_context_seconds if context is None else context
    return near_misses, NegativeAudio.from_paths(paths, min_seconds=config.clip_seconds + 2 * context)


def _synth_digest(config: TrainConfig) -> str:
    """Names the synthesized negatives of ``config``'s keywords and settings in a cache folder."""
    settings = [
        config.keywords,
        config.clip_seconds,
        config.sample_rate,
        config.synth_speech_minutes,
        config.synth_near_miss_clips,
        config.seed,
    ]
    return hashlib.sha256(json.dumps(settings).encode()).hexdigest()[:20]


def _mine_and_retrain(
    config: TrainConfig,
    task: Classifier,
    result: TrainResult,
    store: FeatureStore,
    negatives: NegativeAudio,
    *,
    base: AudioBase,
    labels: list[str],
    keys: set[str],
    validation_keys: list[str] | None,
    work_dir: Path,
    verbose: int,
) -> tuple[Classifier, TrainResult, list[MiningRound]]:
    """``config.mining_rounds`` rounds of hard-negative mining on ``task`` (trained with ``result``): each
    scans ``negatives`` with the task (:func:`mine_hard_negatives`), adds the windows that fired to a copy of
    the store (its shards linked, not rewritten) and trains the head again from its initial weights on the
    store and those windows; a last scan measures the final model. Stops early when a round finds no false
    accept (the task and ``result`` are then returned as they came)."""
    rounds: list[MiningRound] = []
    made: list[Path] = []
    keys = set(keys)
    for round_index in range(1, config.mining_rounds + 2):
        records, summary = mine_hard_negatives(
            task,
            negatives,
            clip_seconds=config.clip_seconds,
            stride_seconds=config.mining_stride_seconds,
            threshold=config.mining_threshold,
            round_index=round_index,
        )
        rounds.append(summary)
        if not records or round_index > config.mining_rounds:
            break
        path = work_dir.parent / f".{work_dir.name}-mined-{round_index}"
        with FeatureStoreWriter(path, identity=store.identity) as writer:
            writer.add_store(store)
            writer.add(records)
        store = writer.store
        made.append(path)
        keys |= {record.key for record in records}
        keras.utils.set_random_seed(config.seed)
        task = make_task(config, base, labels)
        result = Trainer(task, config, verbose=verbose).fit_store(
            store, labels=labels, keys=keys, validation_keys=validation_keys
        )
    for path in made:
        shutil.rmtree(path, ignore_errors=True)
    return task, result, rounds


def _folder_store(
    config: TrainConfig,
    identity: StoreIdentity,
    base: AudioBase,
    train_examples: list[AudioExample],
    validation_examples: list[AudioExample],
    validation_keys: list[str],
    augment,
    work_dir: Path,
    *,
    negatives: NegativeAudio | None = None,
) -> tuple[FeatureStore, int]:
    """The feature store of a folder's training clips (with ``config.augment_copies`` augmented copies)
    and validation clips: under ``config.cache_dir`` (or ``work_dir``), named by a digest of the identity,
    the settings and the files, and reused when it is there whole; else made, a bounded chunk of clips at a
    time.

    Returns:
        the store and how many records were made now (0 when reused).
    """
    digest = _data_digest(
        config, identity, [*train_examples, *validation_examples], validation_keys, negatives
    )
    folder = Path(config.cache_dir).expanduser() / "stores" if config.cache_dir is not None else work_dir
    path = folder / f"store-{digest[:20]}"
    if is_store(path):
        try:
            store = FeatureStore.open(path, expect=identity)
            logger.info("Reusing the feature store %s (%d examples).", path, store.num_examples)
            return store, 0
        except StoreError as error:
            logger.warning("Making the feature store %s again: %s", path, error)
    path.parent.mkdir(parents=True, exist_ok=True)
    logger.info(
        "Embedding %d clips into the feature store %s.", len(train_examples) + len(validation_examples), path
    )
    order = np.random.default_rng(config.seed).permutation(len(train_examples))
    shuffled = [train_examples[index] for index in order]
    with FeatureStoreWriter(path, identity=identity) as writer:
        written, _ = write_examples(
            writer,
            shuffled,
            base=base,
            augment=augment,
            augment_copies=config.augment_copies if augment is not None else 0,
            augment_context=task_class(config.task).augment_context,
            seed=config.seed,
        )
        more, _ = write_examples(writer, validation_examples, base=base, keys=validation_keys)
        if negatives is not None:
            windows, _ = write_negative_windows(
                writer, negatives, base=base, stride_seconds=config.negative_stride_seconds
            )
            more += len(windows)
    return writer.store, written + more


def _data_digest(
    config: TrainConfig,
    identity: StoreIdentity,
    examples: list[AudioExample],
    validation_keys: list[str],
    negatives: NegativeAudio | None = None,
) -> str:
    """SHA-256 of what a folder's feature store holds: the identity, the augmentation settings, every
    example (key, label, speaker, file size and modification time, excerpt), in order, and the negative
    audio's files (key, size, modification time) and window stride."""
    digest = hashlib.sha256()
    settings = {
        "identity": identity.to_dict(),
        "augment": config.augment,
        "augment_copies": config.augment_copies,
        "augment_context": task_class(config.task).augment_context,
        "reverb": [config.reverb_probability, config.rir_files],
        "seed": config.seed,
        "validation_keys": len(validation_keys),
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for example in examples:
        stat = example.path.stat() if example.path is not None and example.path.exists() else None
        fields = (
            example_key(example),
            example.label,
            example.speaker,
            None if stat is None else (stat.st_size, stat.st_mtime_ns),
            example.offset_seconds,
            example.gain,
        )
        digest.update(json.dumps(fields).encode())
    digest.update(json.dumps(validation_keys).encode())
    if negatives is not None:
        files = [(key, path.stat().st_size, path.stat().st_mtime_ns) for path, key, _ in negatives.files]
        digest.update(json.dumps([config.negative_stride_seconds, files]).encode())
    return digest.hexdigest()


def _check_store_settings(config: TrainConfig, store: FeatureStore, *, unseen_classes: bool) -> TrainConfig:
    """``config`` with the store's clip length; ConfigError for a setting a store of embeddings cannot
    serve."""
    problems = [
        (config.fine_tune_blocks, "fine-tuning (--fine-tune-blocks) trains on waveforms"),
        (unseen_classes, f"{config.task} compares itself with its untrained alternative on waveforms"),
        (config.val_data_dir is not None, "validation clips are held out of the store's own examples"),
        (config.keywords is not None, "keywords are applied when the store is made"),
    ]
    for problem, why in problems:
        if problem:
            raise ConfigError(
                f"Cannot train {config.task} from the feature store {store.path} as asked: {why}. Train from "
                "the audio folder instead, or drop that setting."
            )
    if config.clip_seconds is None:
        config = config.replace(clip_seconds=store.identity.clip_seconds)
    return config


def _store_splits(
    config: TrainConfig, store: FeatureStore, *, hold_out: str
) -> tuple[LabelledAudio, list[AudioExample], list[AudioExample]]:
    """The store's clean examples as (file-less) examples keyed by their store keys, split by ``hold_out``
    the way :func:`split_examples` splits a folder (speaker-disjoint from the stored speakers)."""
    examples = [
        AudioExample(None, example.label, example.speaker, example.key)
        for example in store.examples()
        if example.source == "clean"
    ]
    data = LabelledAudio(
        examples=examples,
        labels=sorted(store.labels),
        noise_files=[],
        skipped=list(store.skipped),
        source=store.path,
    )
    train, validation = hold_out_validation(
        examples,
        fraction=config.validation_fraction,
        hold_out=hold_out,
        min_examples=config.min_examples_for_validation,
        seed=config.seed,
    )
    return data, train, validation


def _select_head(
    config: TrainConfig,
    task: Task,
    store: FeatureStore,
    stored: list[StoreExample],
    train_clean: list[str],
    labels: list[str],
) -> HeadSelection:
    """:func:`select_head` on the stored embeddings of the training clips and of their augmented copies;
    folds by speaker for a task validated on unseen speakers, by class otherwise. Beyond
    :data:`MAX_SELECTION_CLIPS` clean clips, a sample of whole speakers (of clips, without speakers) is
    cross-validated, so the folds' embeddings in memory stay bounded whatever the store's size."""
    by_key = {example.key: example for example in stored}
    chosen = set(_selection_sample(train_clean, by_key, seed=config.seed))
    clean = [example for example in stored if example.key in chosen]
    frames, label_indices = store.arrays(keys=chosen, labels=labels)
    augmented = origin = None
    copies = [example for example in stored if example.source != "clean" and example.clip_key in chosen]
    if config.augment and copies:
        augmented, _ = store.arrays(keys={example.key for example in copies}, labels=labels)
        position = {example.key: index for index, example in enumerate(clean)}
        origin = np.array([position[example.clip_key] for example in copies])
    speakers = [example.speaker for example in clean]
    by_speaker = task.validation_hold_out == "speakers" and any(speaker is not None for speaker in speakers)
    return select_head(
        config,
        frames=frames,
        labels=label_indices,
        groups=speakers if by_speaker else None,
        augmented_frames=augmented,
        augmented_origin=origin,
        num_classes=len(labels),
    )


def _selection_sample(keys: list[str], by_key: dict[str, StoreExample], *, seed: int) -> list[str]:
    """``keys``, or when there are more than :data:`MAX_SELECTION_CLIPS`, the clips of speakers drawn at
    random (seeded) until that many are reached (clips without a speaker count as their own speaker)."""
    if len(keys) <= MAX_SELECTION_CLIPS:
        return keys
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(by_key[key].speaker or f"clip:{key}", []).append(key)
    names = sorted(groups)
    sample: list[str] = []
    for index in np.random.default_rng(seed).permutation(len(names)):
        if len(sample) >= MAX_SELECTION_CLIPS:
            break
        sample += groups[names[index]]
    logger.info("Head selection cross-validates %d of the %d training clips.", len(sample), len(keys))
    return sample


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


def _augmenter(config: TrainConfig, noise_files: list[Path]):
    """``augment(waveforms, seed)``: room reverberation for ``config.reverb_probability`` of the clips (see
    :class:`~audio_transfer.data.RoomReverb`), then the default :class:`~audio_transfer.data.Augmentation`
    with the data's background noise."""
    from audio_transfer.data import Augmentation

    sample_rate = config.sample_rate
    noise = NoiseBank.from_files(noise_files, sample_rate=sample_rate) if noise_files else None
    reverb = None
    if config.reverb_probability:
        if config.rir_files:
            reverb = RoomReverb.from_files(
                config.rir_files, sample_rate=sample_rate, probability=config.reverb_probability
            )
        else:
            try:
                reverb = RoomReverb.simulated(
                    sample_rate=sample_rate, seed=config.seed, probability=config.reverb_probability
                )
            except DependencyError as error:
                logger.warning("No room reverberation in the augmented copies: %s", error)
    return functools.partial(_augment, Augmentation(), noise=noise, reverb=reverb, sample_rate=sample_rate)


def _augment(augmentation, waveforms, seed, *, noise, reverb, sample_rate):
    if reverb is not None:
        waveforms = reverb.apply(waveforms, seed=seed)
    return augmentation.augment(waveforms, sample_rate=sample_rate, noise=noise, seed=seed)

"""A training run from a dataset folder to a run folder, and loading a run folder back."""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from audio_transfer.atomic_files import atomic_write
from audio_transfer.audio import audio_info
from audio_transfer.bases import AudioBase, load_base
from audio_transfer.data import (
    AudioExample,
    DecodedClips,
    NoiseBank,
    SkippedFile,
    decode_examples,
    load_labelled_audio,
    load_splits,
)
from audio_transfer.errors import AudioDecodeError, ConfigError
from audio_transfer.evaluation import VerificationReport, cosine_scores, trial_pairs, verification_metrics
from audio_transfer.tasks import (
    AudioClassifier,
    Classifier,
    KeywordSpotter,
    SpeakerClassifier,
    SpeakerVerifier,
    Task,
    load_task,
)
from audio_transfer.training.embedding_cache import EmbeddingCache
from audio_transfer.training.holdout import hold_out_validation
from audio_transfer.training.train_config import TrainConfig
from audio_transfer.training.train_result import TrainResult
from audio_transfer.training.trainer import Trainer

logger = logging.getLogger(__name__)

# The files of a run folder (``audio-transfer export`` reads the first three).
MODEL_FILE = "model.keras"
LABELS_FILE = "labels.txt"
CONFIG_FILE = "config.yaml"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"

# Bounds of the clip length measured from the data when clip_seconds is not set.
MIN_AUTO_CLIP_SECONDS = 0.5
MAX_AUTO_CLIP_SECONDS = 6.0

# What validation holds out when no validation data is given (see hold_out_validation).
HOLD_OUT = {
    "kws": "speakers",
    "classify": "speakers",
    "speaker-id": "clips",
    "speaker-verification": "classes",
}

TASK_CLASSES: dict[str, type[Task]] = {
    "kws": KeywordSpotter,
    "classify": AudioClassifier,
    "speaker-id": SpeakerClassifier,
    "speaker-verification": SpeakerVerifier,
}


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
    """

    task: Task
    config: TrainConfig
    labels: list[str]
    run_dir: Path | None = None
    result: TrainResult | None = None
    evaluation: DecodedClips | None = None
    evaluation_split: str | None = None
    skipped: list[SkippedFile] = dataclasses.field(default_factory=list)

    def save(self, run_dir: str | os.PathLike) -> Path:
        """Write ``model.keras``, ``labels.txt``, ``config.yaml`` and ``history.csv`` into ``run_dir``."""
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        partial = run_dir / f".partial.{MODEL_FILE}"
        self.task.save(partial)
        os.replace(partial, run_dir / MODEL_FILE)
        text = "".join(f"{label}\n" for label in self.labels)
        atomic_write(run_dir / LABELS_FILE, lambda file: file.write(text.encode()))
        self.config.to_yaml(run_dir / CONFIG_FILE)
        if self.result is not None:
            self.result.to_csv(run_dir / HISTORY_FILE)
        self.run_dir = run_dir
        return run_dir


def task_name(task: Task) -> str:
    """The task's name in :data:`TASK_CLASSES` (``"kws"``, ``"speaker-id"``...)."""
    for name, cls in TASK_CLASSES.items():
        if type(task) is cls:
            return name
    raise ConfigError(f"{type(task).__name__} is not one of the trainable tasks {', '.join(TASK_CLASSES)}.")


def make_task(config: TrainConfig, base: AudioBase, labels: list[str]) -> Task:
    """A fresh task of ``config.task`` over ``base``, its head shaped by ``config``."""
    config = config.resolved()
    if config.task == "speaker-verification":
        return SpeakerVerifier(
            base,
            projection_dim=config.projection_dim or base.embedding_dim,
            pooling=config.pooling,
            dropout=config.dropout,
        )
    return TASK_CLASSES[config.task](
        base,
        labels,
        pooling=config.pooling,
        hidden_units=config.hidden_units,
        normalize=config.normalize,
        dropout=config.dropout,
        context_seconds=config.context_seconds,
    )


def train_run(
    config: TrainConfig, out_dir: str | os.PathLike | None = None, *, verbose: int = 1
) -> TrainingRun:
    """Train ``config.task`` on ``config.data_dir`` and, with ``out_dir``, save the run there.

    Loads the base and the labelled clips, holds out validation clips when ``config.val_data_dir`` is not
    given (see :func:`hold_out_validation`), decodes every clip once to ``config.clip_seconds``, trains with
    :class:`Trainer` (embeddings cached, augmented copies from the dataset's background noise) and returns
    the run. Metrics are left to :mod:`audio_transfer.evaluation` on ``run.evaluation``.

    Args:
        config: the settings; ``config.data_dir`` is required (a folder per class, or a manifest).
        out_dir: run folder to write (``model.keras``, ``labels.txt``, ``config.yaml``, ``history.csv``);
            ``None`` keeps the run in memory.
        verbose: Keras verbosity: 0 silent, 1 progress bars, 2 one line per epoch.

    Returns:
        a :class:`TrainingRun`; ``run.evaluation`` holds the validation clips (``(clips, samples)``
        float32) when some were held out, else the training clips.

    Example:
        >>> run = train_run(TrainConfig(task="kws", data_dir="digits", keywords=["yes", "no"]), "runs/yes_no")
        >>> run.task.classify(clip)
    """
    if config.data_dir is None:
        raise ConfigError("data_dir is not set: give the training folder (folder per class) or manifest.")
    config = config.resolved()
    base_kwargs = {} if config.base_weights is None else {"weights": config.base_weights}
    base = load_base(config.base, **base_kwargs)
    if config.sample_rate != base.sample_rate:
        logger.info("Decoding at the base's %d Hz (config said %d Hz).", base.sample_rate, config.sample_rate)
        config = config.replace(sample_rate=base.sample_rate)
    load_kwargs = {
        "keywords": config.keywords,
        "unknown_fraction": config.unknown_fraction,
        "silence_fraction": config.silence_fraction,
        "seed": config.seed,
    }
    verification = config.task == "speaker-verification"
    if config.val_data_dir is not None and verification:
        # Verification validates on other speakers: the folders need not share classes.
        data = load_labelled_audio(config.data_dir, **load_kwargs)
        train_examples = data.examples
        validation_examples = load_labelled_audio(config.val_data_dir, **load_kwargs).examples
    elif config.val_data_dir is not None:
        data, splits = load_splits(
            config.data_dir, validation_source=config.val_data_dir, test_fraction=0.0, **load_kwargs
        )
        train_examples, validation_examples = splits["train"], splits["validation"]
    else:
        data = load_labelled_audio(config.data_dir, **load_kwargs)
        train_examples, validation_examples = hold_out_validation(
            data.examples,
            fraction=config.validation_fraction,
            hold_out=HOLD_OUT[config.task],
            min_examples=config.min_examples_for_validation,
            seed=config.seed,
        )
    if config.clip_seconds is None:
        config = config.replace(clip_seconds=auto_clip_seconds(train_examples))
    decode = functools.partial(
        decode_examples,
        sample_rate=config.sample_rate,
        clip_seconds=config.clip_seconds,
        max_failure_fraction=config.max_failure_fraction,
    )
    train = decode(train_examples)
    validation = decode(validation_examples) if validation_examples else None
    # A verifier's softmax runs over its training speakers only; classifiers know every class.
    labels = sorted(set(train.labels)) if verification else list(data.labels)
    if len(labels) < 2:
        raise ConfigError(f"{config.data_dir} has {len(labels)} class; training needs at least two.")
    skipped = [*data.skipped, *train.skipped, *(validation.skipped if validation else [])]
    logger.info(
        "Training %s on %d clips of %d classes (%d validation clips) with base %s.",
        config.task,
        len(train.waveforms),
        len(labels),
        0 if validation is None else len(validation.waveforms),
        config.base,
    )

    task = make_task(config, base, labels)
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
    untrained = None
    if verification and validation is not None:
        untrained = (
            base.get_weights(),
            verification_report(SpeakerVerifier(base), validation.waveforms, validation.labels),
        )
    # Verification validates on unseen speakers, which a softmax over the training speakers cannot score:
    # it trains every epoch and is compared with the untrained base afterwards.
    classify_validation = validation is not None and not verification
    result = Trainer(task, config, cache=cache, verbose=verbose).fit(
        train.waveforms,
        train.label_indices(labels),
        validation=(validation.waveforms, validation.label_indices(labels)) if classify_validation else None,
        keys=[clip_key(example) for example in train.examples],
        validation_keys=[clip_key(e) for e in validation.examples] if classify_validation else None,
        augment=augment,
    )
    if untrained is not None:
        task = _better_verifier(task, validation, *untrained)
    run = TrainingRun(
        task=task,
        config=config,
        labels=labels,
        result=result,
        evaluation=validation or train,
        evaluation_split="train" if validation is None else "validation",
        skipped=skipped,
    )
    if out_dir is not None:
        run.save(out_dir)
    return run


def verification_report(verifier: SpeakerVerifier, clips, speakers: Sequence[str]) -> VerificationReport:
    """EER and minDCF of ``verifier`` over every pair of ``clips`` (a ``(clips, samples)`` array or a list
    of 1-D clips of any length) whose speakers are ``speakers``."""
    embeddings = verifier.embed_clips(clips)
    i, j, same = trial_pairs(list(speakers))
    return verification_metrics(cosine_scores(embeddings, i, j), same)


def _better_verifier(
    trained: SpeakerVerifier, validation: DecodedClips, base_weights: list, untrained: VerificationReport
) -> SpeakerVerifier:
    """The trained verifier, or the untrained base's when training did not lower the EER on the
    validation speakers (few training speakers teach an embedding that does not carry to new voices)."""
    report = verification_report(trained, validation.waveforms, validation.labels)
    logger.info(
        "Validation speakers' EER: %.2f%% trained, %.2f%% untrained.", 100 * report.eer, 100 * untrained.eer
    )
    if report.eer < untrained.eer:
        return trained
    logger.warning(
        "Training did not lower the EER on the validation speakers (%.2f%% against %.2f%% for the untrained "
        "base): keeping the untrained base's embedding. More training speakers would help.",
        100 * report.eer,
        100 * untrained.eer,
    )
    trained.base.set_weights(base_weights)
    return SpeakerVerifier(trained.base)


def load_run(path: str | os.PathLike, *, safe_mode: bool = True) -> TrainingRun:
    """Load a run folder (or a ``model.keras`` file) written by :func:`train_run`.

    The settings come from ``config.yaml`` beside the model when present, else from the task's defaults.

    Args:
        path: the run folder, or its ``model.keras``.
        safe_mode: see :func:`~audio_transfer.tasks.load_task` (``False`` for a run on a hub base).

    Returns:
        a :class:`TrainingRun` (without ``result`` and ``evaluation``).

    Example:
        >>> run = load_run("runs/kws")  # doctest: +SKIP
        >>> run.task.classify(waveforms)  # doctest: +SKIP
    """
    path = Path(path)
    model_path = path / MODEL_FILE if path.is_dir() else path
    task = load_task(model_path, safe_mode=safe_mode)
    config_path = model_path.parent / CONFIG_FILE
    if config_path.is_file():
        config = TrainConfig.from_yaml(config_path)
    else:
        config = TrainConfig(task=task_name(task), sample_rate=task.sample_rate, clip_seconds=1.0).resolved()
    if isinstance(task, Classifier):
        labels = list(task.labels)
    else:
        labels_path = model_path.parent / LABELS_FILE
        labels = labels_path.read_text().splitlines() if labels_path.is_file() else []
    return TrainingRun(task=task, config=config, labels=labels, run_dir=model_path.parent)


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

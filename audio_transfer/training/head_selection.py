"""``head: auto``: a classifier head, its pooling and augmentation chosen by cross-validation."""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from audio_transfer.errors import ConfigError, InputShapeError
from audio_transfer.heads import LINEAR_POOLING_NAMES, ClassificationHead, LinearHead
from audio_transfer.heads.pooling import get_pooling
from audio_transfer.tasks import task_class
from audio_transfer.tasks.head_families import AUTO_FALLBACK, LINEAR_DEFAULT_POOLING
from audio_transfer.training.cross_validation import cross_validation_folds
from audio_transfer.training.train_config import TrainConfig
from audio_transfer.training.trainer import inverse_frequency_weights

logger = logging.getLogger(__name__)

# Rows pooled at a time (bounds the pooling's temporaries).
_POOLED_ROWS = 4096
# Folds of the cross-validation: five is the usual compromise between the training share of each fold
# (80%, close to what the final head trains on) and the cost (one fit per candidate and fold). Where
# some fold would leave a class fewer than MIN_TRAIN_PER_CLASS training clips, more folds (smaller held-out
# parts) are tried, up to MAX_FOLDS, before falling back to AUTO_FALLBACK.
NUM_FOLDS = 5
# The fold heads of the mlp candidates have no validation clips to stop early on: they train for
# ``config.epochs`` up to this many (the default stage 1 length, which early stopping rarely reaches on few
# clips), so a long ``epochs`` meant to be cut by early stopping does not multiply the selection's cost.
MAX_FOLD_EPOCHS = 30
MAX_FOLDS = 10
MIN_TRAIN_PER_CLASS = 2

# The linear head's poolings: the two that have no weights (so the standardization is measured before the
# fit), mean+max first: the linear probe's, and the one that keeps a short word from being averaged away in
# a longer clip; plain mean halves the features, which can generalise better from very few clips.
LINEAR_POOLINGS = (LINEAR_DEFAULT_POOLING, "mean")

# The order candidates are listed and ties are broken in: the linear probe first (the baseline the
# task must match), then simpler before more training.
_FAMILY_ORDER = ("linear", "mlp")


@dataclasses.dataclass
class HeadSelection:
    """The head settings :func:`select_head` chose for ``head: auto``, with the scores they were chosen by.

    Args:
        choice: the settings chosen: ``{"head", "pooling", "augment", "hidden_units"}`` (0 for a linear
            head, ``config.hidden_units`` for an mlp one).
        method: ``"cross-validation"``, or ``"fallback"`` (:data:`AUTO_FALLBACK`) when the training data
            cannot be cross-validated (see ``reason``).
        scores: one entry per candidate, in grid order: ``head``, ``pooling``, ``augment``, ``hidden_units``,
            ``fold_accuracies`` (accuracy on each fold's held-out clean clips) and ``mean_accuracy``;
            empty for a fallback.
        num_folds: folds of the cross-validation (0 for a fallback).
        folds_by: ``"speaker"`` (every speaker's clips in one fold) or ``"class"`` (stratified).
        num_clips: clean training clips cross-validated.
        reason: why the grid is what it is, or why selection fell back.
        seconds: wall time of the selection.

    Example:
        >>> selection = select_head(config, frames=frames, labels=labels, groups=speakers)
        >>> config = selection.apply(config)  # head, pooling and augment chosen; head_selection recorded
        >>> print(selection.to_text())
    """

    choice: dict[str, Any]
    method: str
    scores: list[dict[str, Any]]
    num_folds: int
    folds_by: str
    num_clips: int
    reason: str
    seconds: float = 0.0

    @classmethod
    def fallback(
        cls, *, num_clips: int, reason: str, folds_by: str = "class", seconds: float = 0.0
    ) -> HeadSelection:
        """The choice where cross-validation cannot choose: :data:`AUTO_FALLBACK`, with ``reason``."""
        logger.info("Head selection: %s", reason)
        return cls(
            choice=dict(AUTO_FALLBACK),
            method="fallback",
            scores=[],
            num_folds=0,
            folds_by=folds_by,
            num_clips=num_clips,
            reason=reason,
            seconds=seconds,
        )

    def apply(self, config: TrainConfig) -> TrainConfig:
        """``config`` with the chosen settings and ``head_selection`` set to :attr:`method`."""
        return config.replace(**self.choice, head_selection=self.method)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``selection.json``."""
        return {**dataclasses.asdict(self), "seconds": round(self.seconds, 2)}

    def to_text(self) -> str:
        """The grid's scores and the choice, as lines for ``report.txt``."""
        lines = [f"Head selection (head: auto): {self.method}, {self.num_clips} training clips."]
        if self.method == "fallback":
            lines.append(f"  {self.reason}")
        else:
            lines.append(
                f"  {self.num_folds}-fold cross-validation, folds by {self.folds_by}; mean accuracy on the "
                "held-out clips of each fold:"
            )
            for score in self.scores:
                chosen = all(score[key] == value for key, value in self.choice.items())
                folds = " ".join(f"{accuracy:.3f}" for accuracy in score["fold_accuracies"])
                lines.append(
                    f"  {'*' if chosen else ' '} {_name(score):<44} {score['mean_accuracy']:7.2%}   ({folds})"
                )
        lines.append(f"  Chosen: {_name(self.choice)}.")
        return "\n".join(lines) + "\n"


def select_head(
    config: TrainConfig,
    *,
    frames: np.ndarray,
    labels: np.ndarray,
    groups: Sequence[str | None] | None = None,
    augmented_frames: np.ndarray | None = None,
    augmented_origin: np.ndarray | None = None,
    num_classes: int | None = None,
) -> HeadSelection:
    """Choose a classifier's head family, pooling and augmentation by k-fold cross-validation.

    Every candidate of the grid is fitted on each fold's training clips (their augmented copies added for
    the candidates with augmentation) and scored by its accuracy on the fold's held-out clean clips; the
    best mean accuracy wins, ties going to the earlier candidate. The fits run on the frozen base's frame
    embeddings as given: the base never runs here. The grid (see :data:`LINEAR_POOLINGS`):

    - the linear head (:class:`~audio_transfer.heads.LinearHead`, ``config.linear_c``) with each pooling of
      :data:`LINEAR_POOLINGS` (no hidden layer, whatever ``config.hidden_units``);
    - the mlp head (:class:`~audio_transfer.heads.ClassificationHead`, ``config.hidden_units``) with the
      task's pooling, trained as stage 1 trains it (AdamW, label smoothing, ``config.epochs`` epochs (at most
      :data:`MAX_FOLD_EPOCHS`) of at least ``config.min_steps_per_epoch`` steps; no early stopping, as
      there is no validation inside a fold);
    - each with augmentation off and, when ``augmented_frames`` are given, on.

    The context silence (``context_seconds``) is not part of the grid: every value would need the base
    run again over every clip and its augmented copies, where every candidate above reuses one pass.

    A pooling set in ``config.pooling`` is the only one tried. Folds hold whole speakers when ``groups`` is
    given, else are stratified by class (:func:`cross_validation_folds`). When no split into 2 to
    :data:`MAX_FOLDS` folds leaves every class at least :data:`MIN_TRAIN_PER_CLASS` training clips in every
    fold, the choice is :data:`~audio_transfer.tasks.head_families.AUTO_FALLBACK` (the linear probe).

    Args:
        config: the run's settings (``task``, the heads' and optimiser's settings).
        frames: ``(clips, windows, dim)`` float32 frame embeddings of the clean training clips.
        labels: ``(clips,)`` integer class of each clip.
        groups: ``(clips,)`` speaker of each clip (``None`` where unknown), or ``None`` to stratify.
        augmented_frames: ``(copies, windows, dim)`` embeddings of augmented copies of training clips.
        augmented_origin: ``(copies,)`` index into ``frames`` of the clip each copy was made from.
        num_classes: classes of the classifier (default: ``labels.max() + 1``).

    Returns:
        a :class:`HeadSelection`; :meth:`HeadSelection.apply` puts its choice in a config.

    Example:
        >>> selection = select_head(TrainConfig(task="kws"), frames=frames, labels=labels, groups=speakers)
        >>> selection.choice
        {'head': 'linear', 'pooling': 'mean_max', 'augment': False, 'hidden_units': 0}
    """
    started = time.monotonic()
    frames = np.asarray(frames, np.float32)
    labels = np.asarray(labels)
    if frames.ndim != 3 or labels.shape != (len(frames),) or not np.issubdtype(labels.dtype, np.integer):
        raise InputShapeError(
            f"select_head expects frames (clips, windows, dim) and integer labels (clips,), received shapes "
            f"{frames.shape} and {labels.shape}."
        )
    if (augmented_frames is None) != (augmented_origin is None):
        raise ConfigError("select_head takes augmented_frames and augmented_origin together, or neither.")
    if augmented_frames is not None:
        augmented_frames = np.asarray(augmented_frames, np.float32)
        augmented_origin = np.asarray(augmented_origin)
        if (
            augmented_origin.shape != (len(augmented_frames),)
            or augmented_frames.shape[1:] != frames.shape[1:]
        ):
            raise InputShapeError(
                f"augmented_frames {augmented_frames.shape} must match frames {frames.shape} but for the "
                f"first axis, with one origin per copy (received {augmented_origin.shape})."
            )
    num_classes = int(labels.max()) + 1 if num_classes is None else num_classes
    folds_by = "class" if groups is None else "speaker"
    candidates = _grid(config, augmented=augmented_frames is not None)
    folds = _viable_folds(labels, groups, num_classes=num_classes, seed=config.seed)
    if folds is None:
        reason = (
            f"No split into folds leaves every class at least {MIN_TRAIN_PER_CLASS} training clips in "
            "every fold: the linear probe's settings are used."
        )
        return HeadSelection.fallback(
            num_clips=len(labels), reason=reason, folds_by=folds_by, seconds=time.monotonic() - started
        )
    logger.info(
        "Head selection: %d candidates, %d-fold cross-validation by %s on %d clips.",
        len(candidates),
        len(folds),
        folds_by,
        len(labels),
    )
    # Every row a candidate may train on (clean clips, then augmented copies) and the fold its clip is in.
    clip_fold = np.zeros(len(labels), np.int64)
    for fold, held_out in enumerate(folds):
        clip_fold[held_out] = fold
    origin = np.arange(len(labels))
    if augmented_frames is not None:
        origin = np.concatenate([origin, augmented_origin])
    pooled: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    scores = []
    for candidate in candidates:
        keras.utils.set_random_seed(config.seed)
        rows = slice(None) if candidate["augment"] else slice(len(labels))
        y, row_fold = labels[origin[rows]], clip_fold[origin[rows]]
        pooling = candidate["pooling"]
        if pooling in LINEAR_POOLING_NAMES:
            # A pooling without weights pools every row once for all the candidates and folds: they fit on
            # the small pooled vectors, never on copies of the frames.
            if pooling not in pooled:
                pooled[pooling] = _pooled(pooling, frames, augmented_frames)
            x, clips = pooled[pooling][0][rows], pooled[pooling][1]
        else:
            x, clips = frames, frames
            if candidate["augment"]:
                x = np.concatenate([frames, augmented_frames])
        fit = (
            _mlp_fold_predictions
            if candidate["head"] == "mlp"
            else functools.partial(_linear_fold_predictions, frame_dim=frames.shape[-1])
        )
        predicted = fit(config, candidate, x, y, row_fold, clips, num_classes=num_classes)
        del x
        accuracies = [float(np.mean(predicted[held_out] == labels[held_out])) for held_out in folds]
        scores.append(
            {**candidate, "fold_accuracies": accuracies, "mean_accuracy": float(np.mean(accuracies))}
        )
        logger.info("Head selection: %s %.2f%%.", _name(candidate), 100 * scores[-1]["mean_accuracy"])
    best = max(range(len(scores)), key=lambda index: (scores[index]["mean_accuracy"], -index))
    choice = {key: scores[best][key] for key in ("head", "pooling", "augment", "hidden_units")}
    return HeadSelection(
        choice=choice,
        method="cross-validation",
        scores=scores,
        num_folds=len(folds),
        folds_by=folds_by,
        num_clips=len(labels),
        reason=(
            "Grid: the linear head with mean+max or mean pooling, the mlp head with the task's pooling, each "
            "with augmentation off and on (when the run augments)."
        ),
        seconds=time.monotonic() - started,
    )


def _grid(config: TrainConfig, *, augmented: bool) -> list[dict[str, Any]]:
    """The candidates: ``{"head", "pooling", "augment", "hidden_units"}`` in tie-breaking order."""
    cls = task_class(config.task)
    poolings = {
        "linear": [
            p for p in ([config.pooling] if config.pooling else LINEAR_POOLINGS) if p in LINEAR_POOLING_NAMES
        ],
        "mlp": [config.pooling or cls.default_pooling],
    }
    hidden_units = {"linear": 0, "mlp": config.hidden_units}
    augments = (False, True) if augmented else (False,)
    return [
        {"head": family, "pooling": pooling, "augment": augment, "hidden_units": hidden_units[family]}
        for family in _FAMILY_ORDER
        for pooling in poolings[family]
        for augment in augments
    ]


def _viable_folds(
    labels: np.ndarray, groups: Sequence[str | None] | None, *, num_classes: int, seed: int
) -> list[np.ndarray] | None:
    """The fewest folds from :data:`NUM_FOLDS` up to :data:`MAX_FOLDS` that leave every class at least
    :data:`MIN_TRAIN_PER_CLASS` training clips in every fold; ``None`` when there are none."""
    total = np.bincount(labels, minlength=num_classes)
    present = total > 0
    tried = set()
    for wanted in range(NUM_FOLDS, MAX_FOLDS + 1):
        folds = cross_validation_folds(labels=labels, groups=groups, num_folds=wanted, seed=seed)
        if len(folds) < 2 or len(folds) in tried:
            continue
        tried.add(len(folds))
        left = [total - np.bincount(labels[held_out], minlength=num_classes) for held_out in folds]
        if all((remaining[present] >= MIN_TRAIN_PER_CLASS).all() for remaining in left):
            return folds
    return None


def _pooled(
    pooling: str, frames: np.ndarray, augmented_frames: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, features)`` pooled clean clips then augmented copies, and ``(clips, features)`` the clean
    clips alone (a view), by the weight-free ``pooling``, a chunk of rows at a time."""
    layer = get_pooling(pooling)
    parts = [frames] if augmented_frames is None else [frames, augmented_frames]
    rows = np.concatenate(
        [
            keras.ops.convert_to_numpy(layer(part[start : start + _POOLED_ROWS]))
            for part in parts
            for start in range(0, len(part), _POOLED_ROWS)
        ]
    )
    return rows, rows[: len(frames)]


def _linear_fold_predictions(
    config, candidate, x, y, row_fold, clips, *, num_classes, frame_dim
) -> np.ndarray:
    """The predicted class of every clean clip ``clips[i]`` by a linear head fitted on the rows ``x``
    (labels ``y``) of the other folds than the clip's (``row_fold[:len(clips)]``); ``x`` and ``clips`` are
    pooled by the candidate's pooling (:func:`_pooled`) from frames of ``frame_dim`` features."""
    predicted = np.zeros(len(clips), np.int64)
    for fold in range(int(row_fold.max()) + 1):
        train, held_out = row_fold != fold, np.flatnonzero(row_fold[: len(clips)] == fold)
        head = LinearHead(num_classes, pooling=candidate["pooling"])
        head.build((None, None, frame_dim))
        head.fit(
            x[train],
            y[train],
            sample_weight=inverse_frequency_weights(y[train]) if config.class_weighting else None,
            inverse_regularization=config.linear_c,
            max_steps=config.linear_max_steps,
            tolerance=config.linear_tolerance,
        )
        probabilities = head.pooled_probabilities(clips[held_out])
        predicted[held_out] = np.argmax(keras.ops.convert_to_numpy(probabilities), axis=-1)
    return predicted


def _mlp_fold_predictions(config, candidate, x, y, row_fold, clips, *, num_classes) -> np.ndarray:
    """As :func:`_linear_fold_predictions` for the mlp head (``x`` and ``clips`` pooled for a weight-free
    pooling, frames for the others), trained as stage 1 trains it (AdamW, label smoothing,
    ``config.epochs`` epochs, at most :data:`MAX_FOLD_EPOCHS`, of at least ``config.min_steps_per_epoch``
    steps).

    The folds' heads train side by side in one Keras model, one head per fold, in one fit: every row
    reaches every head, weighted 0 in the loss of the head whose fold holds it (a per-fold sample weight),
    so the base-free fits cost about one fit instead of one per fold. An epoch passes over every row, so
    each head makes a few more steps per epoch than it would alone on its folds' rows."""
    num_folds = int(row_fold.max()) + 1
    cls = task_class(config.task)
    normalize = config.normalize if config.normalize is not None else getattr(cls, "default_normalize", True)
    pooling = candidate["pooling"]
    if pooling in LINEAR_POOLING_NAMES:
        # Pooled once by select_head (the same vector the head's pooling would give), which spares every
        # step the frames: the heads get the pooled vector as one window, which a mean pools as it is.
        x, clips = x[:, np.newaxis], clips[:, np.newaxis]
        pooling = "mean"
    frames = keras.Input((None, x.shape[-1]))
    heads = [
        ClassificationHead(
            num_classes,
            pooling=pooling,
            hidden_units=candidate["hidden_units"],
            dropout=config.dropout,
            normalize=normalize,
        )
        for _ in range(num_folds)
    ]
    model = keras.Model(frames, keras.ops.stack([head(frames) for head in heads], axis=1))
    model.compile(
        optimizer=keras.optimizers.AdamW(
            learning_rate=config.learning_rate, weight_decay=config.weight_decay
        ),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        steps_per_execution=32,
    )
    weights = np.zeros((len(y), num_folds), np.float32)
    for fold in range(num_folds):
        train = row_fold != fold
        weights[train, fold] = inverse_frequency_weights(y[train]) if config.class_weighting else 1.0
    # As stage 1: enough passes over few clips to make min_steps_per_epoch steps an epoch, each pass in a
    # new order; all the epochs' batches are fed as one Keras epoch (no per-epoch overhead to pay).
    passes = max(math.ceil(config.min_steps_per_epoch / math.ceil(len(y) / config.batch_size)), 1)
    rng = np.random.default_rng(config.seed)
    epochs = min(config.epochs, MAX_FOLD_EPOCHS)
    order = np.concatenate([rng.permutation(len(y)) for _ in range(passes * epochs)])
    targets = np.repeat(np.eye(num_classes, dtype=np.float32)[y][:, np.newaxis], num_folds, axis=1)
    tensors = tuple(tf.constant(part) for part in (x, targets, weights))
    batches = (
        tf.data.Dataset.from_tensor_slices(order)
        .batch(config.batch_size)
        .map(lambda rows: tuple(tf.gather(part, rows) for part in tensors))
        .prefetch(tf.data.AUTOTUNE)
    )
    model.fit(batches, epochs=1, shuffle=False, verbose=0)
    outputs = model.predict(clips, batch_size=256, verbose=0)
    return np.argmax(outputs[np.arange(len(clips)), row_fold[: len(clips)]], axis=-1)


def _name(settings: dict[str, Any]) -> str:
    augment = "augmented" if settings["augment"] else "clean"
    return f"{settings['head']} head, {settings['pooling']} pooling, {augment}"

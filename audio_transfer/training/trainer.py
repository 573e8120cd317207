"""Two-stage transfer learning: the head on cached embeddings of a frozen base, then optional fine-tuning."""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import sys
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from audio_transfer.data import SILENCE_LABEL, UNKNOWN_LABEL, FeatureStore
from audio_transfer.data.decoded_clips import label_indices
from audio_transfer.embedding import check_store_for
from audio_transfer.errors import ConfigError, InputShapeError
from audio_transfer.tasks import Task, TrainingObjective
from audio_transfer.training.embedding_cache import EmbeddingCache
from audio_transfer.training.epoch_checkpoint import EpochCheckpoint, ResumableEarlyStopping
from audio_transfer.training.train_config import TrainConfig
from audio_transfer.training.train_result import TrainResult

logger = logging.getLogger(__name__)

# Examples a stage-1 epoch read from a feature store is shuffled in: bounds its memory whatever the store's
# size (the store's records are written in a shuffled order, so a bounded buffer mixes the classes).
STORE_SHUFFLE_BUFFER = 4096

# Head steps per compiled call in stage 1: a step on cached embeddings is so cheap that Keras's per-step
# Python overhead would dominate the epoch otherwise.
_CACHED_STEPS_PER_EXECUTION = 32

# (waveforms, seed) -> augmented waveforms of the same shape; the same seed gives the same output.
Augment = Callable[[np.ndarray, int], np.ndarray]

# What fit() trains on besides (waveforms, labels) arrays: datasets of (waveform, label) pairs.
Dataset = tf.data.Dataset | keras.utils.PyDataset

# learning_rate -> a fresh optimizer; called once per stage.
OptimizerFactory = Callable[[float], keras.optimizers.Optimizer]


class Trainer:
    """Trains a task's head on a frozen base, then optionally fine-tunes the top blocks of the base.

    Stage 1 runs the frozen base once per clip (through an :class:`EmbeddingCache` with :meth:`fit`, or
    beforehand into a feature store read by :meth:`fit_store`, whose memory does not grow with the number of
    clips) and trains only the head on the frame embeddings, so an epoch costs a few milliseconds instead
    of a pass of the base.
    With augmentation, ``config.augment_copies`` augmented copies of every clip are made and embedded once.
    Stage 2 (``config.fine_tune_blocks > 0``) unfreezes the top blocks (``base.set_trainable(n)``) and
    trains the whole task on waveforms, freshly augmented every batch, at ``fine_tune_learning_rate``.
    Both stages stop early on the validation ``monitor`` and restore the best epoch's weights. A head that
    trains full-batch (the linear head, ``config.head == "linear"``; the objective's
    :attr:`~audio_transfer.tasks.TrainingObjective.trains_full_batch`) is instead fitted to convergence on
    all the cached embeddings at once in stage 1, as one epoch. Classes are
    weighted by inverse frequency. The loss and metrics are the task's own
    (:meth:`~audio_transfer.tasks.Task.training_objective`): classifiers train with label-smoothed
    cross-entropy; a :class:`~audio_transfer.tasks.SpeakerVerifier` trains its embedding with an additive
    angular margin softmax over the training speakers (the softmax layer is dropped afterwards). The
    optimizer is AdamW at ``config.learning_rate`` (``fine_tune_learning_rate`` in stage 2) with
    ``config.weight_decay`` unless :meth:`fit` is given another. Keras progress bars go to stderr.

    Args:
        task: the task to train: any :class:`~audio_transfer.tasks.Task` with a training objective (the
            classifiers, a :class:`~audio_transfer.tasks.SpeakerVerifier` with something to train).
        config: settings; see :class:`TrainConfig`.
        cache: embedding cache over ``task.base``; by default an in-memory one (or on disk under
            ``config.cache_dir``).
        verbose: Keras verbosity: 0 silent, 1 progress bars, 2 one line per epoch.
        callbacks: extra Keras callbacks for both stages.
        checkpoint_dir: save each stage's whole state here at the end of every epoch (see
            :class:`EpochCheckpoint`), and continue from what is saved there: a fit interrupted at any
            epoch and run again with the same data and settings ends with the weights and history an
            uninterrupted fit would have. ``None`` keeps no checkpoints.
        restore_dir: continue from the checkpoints saved here instead of ``checkpoint_dir``'s (a worker
            that is not the chief resumes from the chief's and writes its own elsewhere); ``None``:
            ``checkpoint_dir``.

    Under a ``tf.distribute`` strategy (build the task and call :meth:`fit` in ``strategy.scope()``) every
    dataset is sharded by data (each replica takes its share of every batch), so ``config.batch_size`` is
    the global batch; every worker runs the same callbacks, so early stopping stops them all at once.

    Example:
        >>> spotter = KeywordSpotter(load_base("speech_embedding"), labels)
        >>> result = Trainer(spotter, TrainConfig(epochs=30)).fit(x_train, y_train, validation=(x_val, y_val))
        >>> result.to_csv("history.csv")
    """

    def __init__(
        self,
        task: Task,
        config: TrainConfig | None = None,
        *,
        cache: EmbeddingCache | None = None,
        verbose: int = 1,
        callbacks: Sequence[keras.callbacks.Callback] = (),
        checkpoint_dir: str | os.PathLike | None = None,
        restore_dir: str | os.PathLike | None = None,
    ) -> None:
        if not isinstance(task, Task):
            raise ConfigError(f"Trainer trains an audio_transfer Task, received {type(task).__name__}.")
        task.check_trainable()
        self.task = task
        self.config = config or TrainConfig()
        self.cache = cache or EmbeddingCache(task.base, cache_dir=self.config.cache_dir)
        if self.cache.base is not task.base:
            raise ConfigError("The embedding cache must wrap the task's own base.")
        self.verbose = verbose
        self.callbacks = list(callbacks)
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.restore_dir = self.checkpoint_dir if restore_dir is None else Path(restore_dir)
        self._objective: TrainingObjective | None = None

    # -- public -----------------------------------------------------------------------------------------
    def fit(
        self,
        waveforms: np.ndarray | Dataset,
        labels: np.ndarray | None = None,
        *,
        validation: tuple[np.ndarray, np.ndarray] | Dataset | None = None,
        keys: Sequence[str] | None = None,
        validation_keys: Sequence[str] | None = None,
        augment: Augment | None = None,
        optimizer: keras.optimizers.Optimizer | OptimizerFactory | None = None,
    ) -> TrainResult:
        """Train on clips with integer labels (indices into the task's labels).

        The clips come as arrays (``waveforms`` and ``labels``) or as a dataset of ``(waveform, label)``
        pairs: a ``tf.data.Dataset`` or a ``keras.utils.PyDataset``, batched (``(batch, samples)`` waveforms
        with ``(batch,)`` labels) or not (``(samples,)`` with a scalar label); the two may be mixed across
        elements. A dataset is read once, to the end (it must be finite: no ``repeat()``), and its clips
        are then embedded, augmented and repeated exactly as arrays are; every clip must have the same
        length. A dataset that yields sample weights or one-hot labels is refused with the way to fix it.

        Args:
            waveforms: equal-length training clips ``(clips, samples)``, float32 at ``task.sample_rate``;
                or a dataset as described above.
            labels: ``(clips,)`` class index of each clip (speaker index for a verifier); ``None`` with a
                dataset.
            validation: ``(waveforms, labels)`` arrays or a dataset, for early stopping; ``None`` trains
                every epoch.
            keys, validation_keys: cache keys of the clips (see :meth:`EmbeddingCache.file_key`).
            augment: ``augment(waveforms, seed)``; used when ``config.augment`` is on.
            optimizer: ``None`` for AdamW (``config.learning_rate``, ``config.weight_decay``); a Keras
                optimizer, used as it is for stage 1 (stage 2 uses a copy of its settings at
                ``config.fine_tune_learning_rate``); or ``factory(learning_rate)`` returning a fresh
                optimizer, called once per stage. A head that trains full-batch fits without one in stage 1.

        Returns:
            the history of both stages; the task holds the kept weights, with its base frozen again.

        Example:
            >>> clips = tf.data.Dataset.from_tensor_slices((x_train, y_train)).batch(32)
            >>> Trainer(spotter, config).fit(clips, optimizer=lambda rate: keras.optimizers.SGD(rate))
        """
        config = self.config
        x, y = _clips_and_labels(waveforms, labels, "training")
        x_val, y_val = (None, None)
        if validation is not None:
            x_val, y_val = (
                _clips_and_labels(*validation, "validation")
                if isinstance(validation, tuple)
                else _clips_and_labels(validation, None, "validation")
            )
        self._objective = self.task.training_objective(y, config.to_dict())
        self._check_labels(y, "training")
        if y_val is not None:
            self._check_labels(y_val, "validation")
        keras.utils.set_random_seed(config.seed)
        augment = augment if config.augment and config.augment_copies else None
        hits, misses = self.cache.hits, self.cache.misses
        history: list[dict] = []
        best_epochs: dict[str, int] = {}

        self.task.base.set_trainable(False)
        frames = self._embed(x, keys)
        frame_labels = y
        if augment is not None:
            copies = [self._embed(augment(x, config.seed * 1000 + k)) for k in range(config.augment_copies)]
            frames = np.concatenate([frames, *copies])
            frame_labels = np.concatenate([y] * (1 + len(copies)))
        val_frames = self._embed(x_val, validation_keys) if x_val is not None else None
        if self._objective.trains_full_batch:
            features = self._objective.full_batch_features
            best_epochs["head"] = self._fit_full_batch(
                features(frames),
                frame_labels,
                None if val_frames is None else features(val_frames),
                y_val,
                history,
            )
        else:
            logger.info(
                "Stage 1: training the head on %d clips (%d clean, %d augmented) of cached embeddings for up "
                "to %d epochs.",
                len(frames),
                len(x),
                len(frames) - len(x),
                config.epochs,
            )
            best_epochs["head"] = self._fit_head_epochs(
                functools.partial(
                    _EmbeddingBatches,
                    frames,
                    frame_labels,
                    trainer=self,
                    seed=config.seed,
                    passes=self._passes(len(frame_labels)),
                ),
                validation=None if val_frames is None else self._dataset(val_frames, y_val),
                optimizer=optimizer,
                history=history,
            )

        self._fine_tune(x, y, x_val, y_val, augment, optimizer, history, best_epochs)
        return TrainResult(
            history=history,
            best_epochs=best_epochs,
            num_train_clips=len(x),
            num_augmented_clips=len(frames) - len(x),
            num_validation_clips=0 if x_val is None else len(x_val),
            cache_hits=self.cache.hits - hits,
            cache_misses=self.cache.misses - misses,
        )

    def fit_store(
        self,
        store: FeatureStore,
        *,
        labels: Sequence[str],
        keys: Collection[str],
        validation_keys: Collection[str] | None = None,
        waveforms: tuple[np.ndarray, np.ndarray] | None = None,
        validation: tuple[np.ndarray, np.ndarray] | None = None,
        augment: Augment | None = None,
        optimizer: keras.optimizers.Optimizer | OptimizerFactory | None = None,
    ) -> TrainResult:
        """Train stage 1 on frame embeddings streamed from a feature store, in bounded memory.

        Each epoch reads the examples of ``keys`` (clean clips and their augmented copies) through
        :meth:`FeatureStore.dataset`: shards interleaved, shuffled in blocks of :data:`STORE_SHUFFLE_BUFFER`
        examples, inverse-class-frequency weights, full batches of ``config.batch_size``, at least
        ``config.min_steps_per_epoch`` steps. Epoch ``e``'s order depends only on the seed and ``e``, so a
        resumed fit ends as an uninterrupted one. Validation reads ``validation_keys`` in store order. A
        head that trains full-batch (the linear head) reads its examples into memory (embeddings only).
        Stage 2 (``config.fine_tune_blocks > 0``) trains on waveforms, so it needs them in memory:
        ``waveforms`` and ``validation`` as :meth:`fit` takes them.

        Args:
            store: embeddings of the task's base with its context (its identity is checked).
            labels: class names; a label's index is the class the head outputs.
            keys: the training examples' keys, augmented copies included.
            validation_keys: the validation examples' keys; ``None`` trains every epoch.
            waveforms, validation: ``(waveforms, label indices)`` for stage 2 only.
            augment, optimizer: as :meth:`fit` takes them (``augment`` for stage 2).

        Returns:
            the history of both stages; ``cache_hits`` and ``cache_misses`` are 0 (the store was made
            before).

        Raises:
            StoreError: the store was made with another base, rate or context, or lacks a key's label.
            ConfigError: fine-tuning without ``waveforms``.

        Example:
            >>> store = FeatureStore.open("store")  # doctest: +SKIP
            >>> trainer = Trainer(spotter, config)  # doctest: +SKIP
            >>> trainer.fit_store(store, labels=spotter.labels, keys=train_keys)  # doctest: +SKIP
        """
        config = self.config
        check_store_for(self.task, store)
        keys = set(keys)
        examples = store.examples(keys)
        y = label_indices([example.label for example in examples], labels)
        validation_keys = None if validation_keys is None else set(validation_keys)
        if config.fine_tune_blocks and waveforms is None:
            raise ConfigError(
                "Fine-tuning (fine_tune_blocks > 0) trains on waveforms: pass them to "
                "fit_store(waveforms=...) or train with fine_tune_blocks=0."
            )
        self._objective = self.task.training_objective(y, config.to_dict())
        self._check_labels(y, "training")
        keras.utils.set_random_seed(config.seed)
        history: list[dict] = []
        best_epochs: dict[str, int] = {}
        self.task.base.set_trainable(False)
        clean = sum(example.source == "clean" for example in examples)
        num_validation = 0 if validation_keys is None else len(validation_keys)
        if self._objective.trains_full_batch:
            features, frame_labels = self._full_batch_features(store, labels=labels, keys=keys)
            val_features, y_val = (
                self._full_batch_features(store, labels=labels, keys=validation_keys)
                if validation_keys
                else (None, None)
            )
            weights = store.example_weights(
                keys=keys,
                class_weights=config.class_weighting,
                source_weights=config.source_weights,
                balance_sources=config.balance_sources,
            )
            best_epochs["head"] = self._fit_full_batch(
                features, frame_labels, val_features, y_val, history, sample_weight=weights
            )
            del features, val_features
        else:
            logger.info(
                "Stage 1: training the head on %d clips (%d clean, %d augmented) streamed from the feature "
                "store %s for up to %d epochs.",
                len(examples),
                clean,
                len(examples) - clean,
                store.path,
                config.epochs,
            )
            best_epochs["head"] = self._fit_head_epochs(
                functools.partial(
                    _StoreBatches,
                    store,
                    trainer=self,
                    labels=labels,
                    keys=keys,
                    count=len(examples),
                    seed=config.seed,
                ),
                validation=self._store_validation(store, labels, validation_keys)
                if validation_keys
                else None,
                optimizer=optimizer,
                history=history,
            )
        if config.fine_tune_blocks:
            x, y_clips = waveforms
            x_val, y_val = validation if validation is not None else (None, None)
            self._fine_tune(x, y_clips, x_val, y_val, augment, optimizer, history, best_epochs)
        return TrainResult(
            history=history,
            best_epochs=best_epochs,
            num_train_clips=clean,
            num_augmented_clips=len(examples) - clean,
            num_validation_clips=num_validation,
            cache_hits=0,
            cache_misses=0,
        )

    def _fine_tune(self, x, y, x_val, y_val, augment, optimizer, history: list[dict], best_epochs) -> None:
        """Stage 2: unfreeze the base's top ``config.fine_tune_blocks`` and train end to end on waveforms."""
        config = self.config
        if not config.fine_tune_blocks:
            return
        self.task.base.set_trainable(config.fine_tune_blocks)
        logger.info(
            "Stage 2: fine-tuning the top %d of %d blocks of the base with the head on waveforms for up "
            "to %d epochs at learning rate %g.",
            config.fine_tune_blocks,
            self.task.base.num_blocks,
            config.fine_tune_epochs,
            config.fine_tune_learning_rate,
        )
        model = self._objective.end_to_end_model()
        self._compile(model, self._optimizer(optimizer, config.fine_tune_learning_rate, stage=2))
        batches = functools.partial(_ShuffledBatches, x, y, trainer=self, seed=config.seed, augment=augment)
        try:
            best_epochs["fine_tune"] = self._run(
                "fine_tune",
                model,
                batches,
                validation=None if x_val is None else self._dataset(x_val, y_val),
                epochs=config.fine_tune_epochs,
                history=history,
            )
        finally:
            self.task.base.set_trainable(False)

    def _fit_head_epochs(self, batches, *, validation, optimizer, history: list[dict]) -> int:
        """Stage 1 of a head trained in epochs of mini-batches (``batches`` as :meth:`_run` takes them, from
        cached embeddings or a feature store); returns the best epoch."""
        head = self._objective.head_model()
        self._compile(
            head,
            self._optimizer(optimizer, self.config.learning_rate, stage=1),
            steps_per_execution=_CACHED_STEPS_PER_EXECUTION,
        )
        return self._run(
            "head", head, batches, validation=validation, epochs=self.config.epochs, history=history
        )

    def _fit_full_batch(
        self,
        features,
        y,
        val_features,
        y_val,
        history: list[dict],
        *,
        sample_weight: np.ndarray | None = None,
    ) -> int:
        """Stage 1 of a head that trains full-batch: one fit to convergence on the objective's
        :meth:`~audio_transfer.tasks.TrainingObjective.full_batch_features` of every training clip (clean
        and augmented), recorded as the stage's one epoch with the validation loss and accuracy; examples
        weigh ``sample_weight`` (default: the class weights). It is cheap and deterministic, so a resumed run
        fits it again from the start rather than checkpointing it."""
        logger.info(
            "Stage 1: fitting the head to convergence on all %d clips of cached embeddings at once.", len(y)
        )
        weights = self._sample_weights(y) if sample_weight is None else sample_weight
        negative = self._negative_classes()
        if negative is not None:  # one fit: at the schedule's last factor
            weights = (np.ones(len(y)) if weights is None else weights) * np.where(
                negative[y], self.config.max_negative_weight, 1.0
            )
        fitted = self._objective.fit_full_batch(features, y, sample_weight=weights)
        row = {"stage": "head", "epoch": 1, **fitted}
        if val_features is not None:
            outputs = self._objective.full_batch_outputs(val_features)
            row["val_loss"] = float(self._objective.loss(self._objective.targets(y_val), outputs))
            row["val_accuracy"] = float(np.mean(np.argmax(outputs, axis=-1) == y_val))
        history.append(row)
        logger.info("Stage head: fitted in %d solver steps.", row.get("steps", 0))
        return 1

    def _full_batch_features(
        self, store: FeatureStore, *, labels: Sequence[str], keys: Collection[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The objective's :meth:`~audio_transfer.tasks.TrainingObjective.full_batch_features` of the
        examples of ``keys`` and their label indices, in store order, read a batch at a time: memory holds
        the features (a linear head's pooled embeddings), never all the frames."""
        return store.arrays(keys=keys, labels=labels, transform=self._objective.full_batch_features)

    # -- the task's objective -----------------------------------------------------------------------------
    def _check_labels(self, y: np.ndarray, what: str) -> None:
        num_classes = self._objective.num_classes
        if len(y) and (y.min() < 0 or y.max() >= num_classes):
            raise ConfigError(
                f"The {what} labels must be in [0, {num_classes - 1}], received values from {y.min()} to "
                f"{y.max()}."
            )

    def _embed(self, waveforms: np.ndarray, keys: Sequence[str] | None = None) -> np.ndarray:
        """The base's frames of clips as the task sees them (with its context silence), via the cache."""
        return self.cache.embed(keras.ops.convert_to_numpy(self.task.with_context(waveforms)), keys=keys)

    def _dataset(self, x: np.ndarray, y: np.ndarray) -> tf.data.Dataset:
        """Validation batches of (inputs, targets), in order."""
        parts = (self._objective.inputs(x, y), self._objective.targets(y))
        return _sharded_by_data(
            tf.data.Dataset.from_tensor_slices(parts).batch(self.config.batch_size).prefetch(tf.data.AUTOTUNE)
        )

    def _store_validation(
        self, store: FeatureStore, labels: Sequence[str], keys: Collection[str]
    ) -> tf.data.Dataset:
        """Validation batches of (inputs, targets) read from ``store`` in its order."""
        batches = store.dataset(
            labels=labels, batch_size=self.config.batch_size, shuffle_buffer=0, keys=keys, class_weights=False
        )
        return _sharded_by_data(batches.map(_StoreBatches.to_model(self._objective, weighted=False)))

    def _passes(self, count: int) -> int:
        """Passes over ``count`` clips that make one stage-1 epoch of at least ``config.min_steps_per_epoch``
        steps (see :class:`_ShuffledBatches`)."""
        return max(math.ceil(self.config.min_steps_per_epoch / math.ceil(count / self.config.batch_size)), 1)

    def _optimizer(
        self,
        optimizer: keras.optimizers.Optimizer | OptimizerFactory | None,
        learning_rate: float,
        *,
        stage: int,
    ) -> keras.optimizers.Optimizer:
        """The optimizer of a stage: AdamW by default, the given one (a copy at ``learning_rate`` after
        stage 1), or the factory's."""
        if optimizer is None:
            return keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=self.config.weight_decay)
        if isinstance(optimizer, keras.optimizers.Optimizer):
            if stage == 1:
                return optimizer
            return type(optimizer).from_config({**optimizer.get_config(), "learning_rate": learning_rate})
        made = optimizer(learning_rate) if callable(optimizer) else optimizer
        if not isinstance(made, keras.optimizers.Optimizer):
            raise ConfigError(
                "optimizer must be a keras.optimizers.Optimizer or a function of the learning rate returning "
                f"one (e.g. lambda rate: keras.optimizers.SGD(rate)); it gave {type(made).__name__}."
            )
        return made

    def _compile(
        self, model: keras.Model, optimizer: keras.optimizers.Optimizer, *, steps_per_execution: int = 1
    ) -> None:
        multi_worker = isinstance(model.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy)
        model.compile(
            optimizer=optimizer,
            loss=self._objective.loss,
            metrics=self._objective.metrics,
            # Keras runs several steps per call in a tf.while_loop, where the workers' collective ops fail.
            steps_per_execution=1 if multi_worker else steps_per_execution,
        )
        if multi_worker:
            _fit_under_multi_worker(model)

    def _negative_classes(self) -> np.ndarray | None:
        """bool ``(num_classes,)``: the classes the negative-weight schedule weighs (``_unknown_`` and
        ``_silence_``), or ``None`` without a schedule (``max_negative_weight`` 1)."""
        if self.config.max_negative_weight == 1:
            return None
        labels = list(getattr(self.task, "labels", None) or ())
        negative = np.isin(labels, [UNKNOWN_LABEL, SILENCE_LABEL])
        if not negative.any():
            raise ConfigError(
                f"max_negative_weight={self.config.max_negative_weight:g} weighs the {UNKNOWN_LABEL} and "
                f"{SILENCE_LABEL} classes, but the task's classes are {labels}: train with keywords "
                "(--keywords) or leave max_negative_weight at 1."
            )
        return negative

    def _negative_weighting(
        self, epoch: Callable[[], tf.Tensor]
    ) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor] | None:
        """The negative-weight schedule in a ``tf.data`` pipeline: ``weigh(weight, label_index)``
        multiplies the weights of the negative examples by the factor at the 0-based epoch ``epoch()``
        reads as the batch is made, 1 at the first of ``config.epochs`` growing linearly to
        ``max_negative_weight`` at the last; ``None`` without a schedule."""
        negative = self._negative_classes()
        if negative is None:
            return None
        negative = tf.constant(negative)
        last = float(max(self.config.epochs - 1, 1))
        growth = self.config.max_negative_weight - 1.0

        def weigh(weight, label):
            progress = tf.minimum(tf.cast(epoch(), tf.float32), last) / last
            factor = tf.where(tf.gather(negative, label), 1.0 + growth * progress, 1.0)
            return weight * tf.cast(factor, weight.dtype)

        return weigh

    def _sample_weights(self, y: np.ndarray) -> np.ndarray | None:
        """Inverse class frequency per example, averaging 1 over the classes present."""
        return inverse_frequency_weights(y) if self.config.class_weighting else None

    def _run(self, stage, model, data, *, validation, epochs, history) -> int:
        """Fit ``model`` on ``data(first_epoch=...)``; append the epochs to ``history``; return the kept
        epoch (1-based). With a checkpoint folder the stage continues from its saved state, or is skipped
        with its kept weights when it had finished."""
        callbacks = list(self.callbacks)
        stopper = None
        if validation is not None:
            stopper = ResumableEarlyStopping(
                monitor=self.config.monitor,
                patience=self.config.patience,
                restore_best_weights=True,
                verbose=0,
            )
            callbacks.append(stopper)
        first_epoch, done = 0, []
        checkpoint = None
        if self.checkpoint_dir is not None:
            checkpoint = EpochCheckpoint(self.checkpoint_dir, stage=stage, stopper=stopper)
            _check_workers_resume_alike(checkpoint, self.restore_dir)
            saved = checkpoint.restore(model, directory=self.restore_dir)
            if saved is not None:
                first_epoch, done = int(saved["epochs_done"]), saved["history"]
                if saved["finished_best_epoch"] is not None:
                    logger.info("Stage %s finished before the interruption: keeping its weights.", stage)
                    history.extend(done)
                    return int(saved["finished_best_epoch"])
                if stopper is not None and saved["stopper"]["stopped_epoch"]:
                    first_epoch = epochs  # it had stopped early: only the best weights remain to restore
            if first_epoch:
                logger.info("Stage %s resumes after epoch %d.", stage, first_epoch)
            callbacks.append(checkpoint)
        batches = data(first_epoch=first_epoch)
        streamed = isinstance(batches, (_EmbeddingBatches, _StoreBatches))
        if streamed:
            callbacks.append(batches)
        with contextlib.redirect_stdout(sys.stderr):
            fitted = model.fit(
                batches.dataset if streamed else batches,
                validation_data=validation,
                epochs=epochs,
                initial_epoch=first_epoch,
                shuffle=False,  # the training data orders itself every epoch
                callbacks=callbacks,
                verbose=self.verbose,
            )
        metrics = fitted.history
        ran = len(metrics.get("loss", []))
        rows = [
            {
                "stage": stage,
                "epoch": first_epoch + epoch + 1,
                **{k: float(v[epoch]) for k, v in metrics.items()},
            }
            for epoch in range(ran)
        ]
        history.extend([*done, *rows])
        total = first_epoch + ran
        best = total if stopper is None or stopper.best_weights is None else stopper.best_epoch + 1
        if checkpoint is not None:
            checkpoint.finish(best)
        logger.info("Stage %s: kept epoch %d of %d.", stage, best, total)
        return best


def inverse_frequency_weights(labels: np.ndarray) -> np.ndarray:
    """``(clips,)`` float32 weight of each clip: the inverse of its class's frequency among ``labels``,
    averaging 1 over the classes present (``class_weighting``)."""
    counts = np.bincount(labels)
    weights = len(labels) / (np.count_nonzero(counts) * np.maximum(counts, 1))
    return weights[labels].astype(np.float32)


class _EmbeddingBatches(keras.callbacks.Callback):
    """Stage 1's batches of cached embeddings, in an order that depends only on the seed and the epoch,
    as a ``tf.data`` pipeline (no Python runs in it, so Ctrl-C finds no Python call in TensorFlow's threads).

    Each epoch passes over the clips ``passes`` times (see :class:`_ShuffledBatches`); the epoch number is
    a variable the pipeline reads when Keras starts iterating it for an epoch, and this callback advances it
    at every epoch's end. Pass :attr:`dataset` to ``fit`` and this object among its callbacks.
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        trainer: Trainer,
        seed: int,
        passes: int = 1,
        first_epoch: int = 0,
    ) -> None:
        super().__init__()
        objective = trainer._objective
        weights = trainer._sample_weights(y)
        self.epoch = tf.Variable(first_epoch, dtype=tf.int64, trainable=False)
        weigh = trainer._negative_weighting(self.epoch.value)
        if weigh is not None and weights is None:
            weights = np.ones(len(y), np.float32)
        parts = (objective.inputs(x, y), objective.targets(y)) + (() if weights is None else (weights,))
        tensors = tf.nest.map_structure(tf.convert_to_tensor, parts)
        labels = None if weigh is None else tf.constant(np.asarray(y, np.int32))

        def batch(rows):
            gathered = tf.nest.map_structure(lambda part: tf.gather(part, rows), tensors)
            if labels is None:
                return gathered
            inputs, targets, weight = gathered
            return inputs, targets, weigh(weight, tf.gather(labels, rows))

        count = len(y)

        def epoch_order(_):
            epoch = self.epoch.value()
            return tf.data.Dataset.from_tensor_slices(
                tf.concat(
                    [
                        tf.random.experimental.stateless_shuffle(
                            tf.range(count, dtype=tf.int64),
                            seed=tf.stack([tf.constant(seed, tf.int64), epoch * passes + p]),
                        )
                        for p in range(passes)
                    ],
                    axis=0,
                )
            )

        self.dataset = _sharded_by_data(
            tf.data.Dataset.range(1)
            .flat_map(epoch_order)
            .batch(trainer.config.batch_size)
            .apply(
                tf.data.experimental.assert_cardinality(math.ceil(count * passes / trainer.config.batch_size))
            )
            .map(batch)
            .prefetch(tf.data.AUTOTUNE)
        )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch.assign_add(1)


class _StoreBatches(keras.callbacks.Callback):
    """Stage 1's batches streamed from a feature store, in an order that depends only on the seed and the
    epoch: the store's pipeline reads its seed from a variable when Keras starts iterating it for an epoch,
    and this callback advances it at every epoch's end. Each epoch is ``passes`` passes over the examples
    (see :class:`_ShuffledBatches`) in full batches. Pass :attr:`dataset` to ``fit`` and this object among
    its callbacks."""

    def __init__(
        self,
        store: FeatureStore,
        *,
        trainer: Trainer,
        labels: Sequence[str],
        keys: Collection[str],
        count: int,
        seed: int,
        first_epoch: int = 0,
    ) -> None:
        super().__init__()
        config = trainer.config
        steps = math.ceil(count * trainer._passes(count) / config.batch_size)
        self.epoch = tf.Variable(seed * 1_000_003 + first_epoch, dtype=tf.int64, trainable=False)
        batches = (
            store.dataset(
                labels=labels,
                batch_size=config.batch_size,
                shuffle_buffer=STORE_SHUFFLE_BUFFER,
                seed=self.epoch,
                keys=keys,
                class_weights=config.class_weighting,
                source_weights=config.source_weights,
                balance_sources=config.balance_sources,
                repeat=True,
            )
            .take(steps)
            .apply(tf.data.experimental.assert_cardinality(steps))
        )
        weigh = trainer._negative_weighting(lambda: self.epoch.value() - seed * 1_000_003)
        if weigh is not None:
            batches = batches.map(lambda features, label, weight: (features, label, weigh(weight, label)))
        self.dataset = _sharded_by_data(batches.map(self.to_model(trainer._objective, weighted=True)))

    @staticmethod
    def to_model(objective: TrainingObjective, *, weighted: bool) -> Callable:
        """``(features, label_index, weight)`` → the model's ``(inputs, targets[, weight])``."""
        targets = tf.constant(np.asarray(objective.targets(np.arange(objective.num_classes))))

        def convert(features, label, weight):
            batch = (objective.inputs(features, label), tf.gather(targets, label))
            return (*batch, weight) if weighted else batch

        return convert

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch.assign_add(1)


class _ShuffledBatches(keras.utils.PyDataset):
    """Training batches of (inputs, targets[, class weights]) in a new order every epoch.

    Stage 1 batches cached embeddings, passing over them ``passes`` times per epoch (on a few dozen clips
    one pass is one or two steps, far too few for the head to converge in a sensible number of epochs);
    stage 2 batches waveforms, augmented afresh every epoch. Epoch ``e``'s order and augmentation depend
    only on the seed and ``e``, so a fit may start at any epoch and see what an uninterrupted one would.
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        trainer: Trainer,
        seed: int,
        passes: int = 1,
        augment: Augment | None = None,
        first_epoch: int = 0,
    ) -> None:
        super().__init__()
        self.x, self.y = x, y
        self.objective = trainer._objective
        self.batch_size = trainer.config.batch_size
        self.weights = trainer._sample_weights(y)
        self.seed = seed
        self.passes = passes
        self.augment = augment
        self.epoch = first_epoch
        self.order = self._order()

    def _order(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch])
        return np.concatenate([rng.permutation(len(self.x)) for _ in range(self.passes)])

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.batch_size)

    def __getitem__(self, index: int):
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        x, y = self.x[rows], self.y[rows]
        if self.augment is not None:
            x = self.augment(x, self.seed * 1_000_003 + self.epoch * 10_007 + index)
        batch = (self.objective.inputs(x, y), self.objective.targets(y))
        return batch if self.weights is None else (*batch, self.weights[rows])

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._order()


def _fit_under_multi_worker(model: keras.Model) -> None:
    """Work around two steps of Keras 3's ``fit`` that fail under MultiWorkerMirroredStrategy.

    Keras builds a model made under a strategy on a first batch averaged across the replicas with
    ``Strategy.reduce``, which refuses a structure of (inputs, targets, weights): forgetting the strategy
    makes Keras build the model when it traces the training step instead (``fit`` still runs under the
    strategy of the enclosing scope). And it averages each step's logs across workers along their first
    axis, which scalar logs lack: the steps return them with an axis of one. The epoch's logs (history,
    early stopping, checkpoints) are read from the metrics' variables, summed over every replica of every
    worker, so all workers see the same values.
    """
    model._distribute_strategy = None
    for name in ("train_step", "test_step"):
        setattr(model, name, functools.partial(_logs_with_an_axis, getattr(model, name)))


def _logs_with_an_axis(step, data):
    return tf.nest.map_structure(
        lambda value: tf.reshape(value, [1]) if value.shape.rank == 0 else value, step(data)
    )


def _check_workers_resume_alike(checkpoint: EpochCheckpoint, directory: Path | None) -> None:
    """Under MultiWorkerMirroredStrategy, raise ConfigError on every worker unless all of them would
    restore the same saved state of the checkpoint's stage from ``directory`` (or none): workers that
    start from different epochs or weights would not train in step. Runs before any worker restores (which
    builds the optimizer, creating variables, itself a collective step)."""
    strategy = tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    stage, saved = checkpoint.stage, checkpoint.saved(directory=directory)
    start = (
        [0.0, 0.0] if saved is None else [1 + saved["epochs_done"], 1 + (saved["finished_best_epoch"] or 0)]
    )
    local = tf.constant([*start, *(value * value for value in start)], tf.float32)
    sums = strategy.reduce("SUM", strategy.run(lambda: tf.identity(local)), axis=None).numpy()
    count = strategy.num_replicas_in_sync
    # Equal values on every replica exactly when count * sum of squares == (sum) ** 2 (Cauchy-Schwarz).
    if not np.allclose(count * sums[2:], sums[:2] ** 2):
        raise ConfigError(
            f"The workers would resume stage {stage} from different checkpoints (this one from "
            f"{'none' if saved is None else 'epoch ' + str(saved['epochs_done'])}): every worker "
            "resumes from the chief's interrupted run, so give each the chief's --out on a shared file "
            "system and --resume to all, or train afresh without --resume."
        )


def _sharded_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset`` of global batches, split by ``tf.distribute`` across the replicas of every worker (each
    takes its share of every batch, so every worker sees the same epoch order whatever the number of files:
    a store's few shards could not be split evenly by file)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _clips_and_labels(data, labels, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``(clips, samples)`` float32 waveforms and ``(clips,)`` int32 labels from arrays or a dataset."""
    if isinstance(data, (tf.data.Dataset, keras.utils.PyDataset)):
        if labels is not None:
            raise ConfigError(
                f"The {what} dataset yields its own labels: pass it alone, without labels (or pass arrays)."
            )
        x, y = _read_dataset(data, what)
    elif labels is None:
        raise ConfigError(
            f"The {what} waveforms need their labels: pass fit(waveforms, labels), or a tf.data.Dataset or "
            "keras.utils.PyDataset of (waveform, label) pairs."
        )
    else:
        x, y = np.asarray(data, dtype=np.float32), np.asarray(labels)
    if x.ndim != 2 or y.shape != (len(x),):
        raise InputShapeError(
            f"The {what} data must be waveforms (clips, samples) and labels (clips,), received shapes "
            f"{x.shape} and {y.shape}."
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise ConfigError(f"The {what} labels must be class indices (integers), received dtype {y.dtype}.")
    return x, y.astype(np.int32)


def _read_dataset(data: Dataset, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Every ``(waveform, label)`` element of a finite dataset, batched or not, as two arrays."""
    if isinstance(data, tf.data.Dataset):
        if data.cardinality() == tf.data.INFINITE_CARDINALITY:
            raise ConfigError(
                f"The {what} dataset is infinite (repeat()); pass a finite one: the trainer reads it once "
                "and repeats the clips itself (min_steps_per_epoch)."
            )
        elements = data.as_numpy_iterator()
    else:
        if data.num_batches is None:
            raise ConfigError(
                f"The {what} PyDataset has no length; give it __len__ (its number of batches) so that the "
                "trainer can read it once."
            )
        elements = (data[index] for index in range(data.num_batches))
    waveforms, labels = [], []
    for element in elements:
        if not isinstance(element, (tuple, list)) or len(element) != 2:
            size = len(element) if isinstance(element, (tuple, list)) else 1
            raise ConfigError(
                f"The {what} dataset must yield (waveform, label) pairs, received an element of {size} "
                "part(s). Drop sample weights: the trainer weights classes itself (class_weighting)."
            )
        x, y = np.asarray(element[0], np.float32), np.asarray(element[1])
        if x.ndim == 1:
            x, y = x[np.newaxis], y.reshape(1)
        waveforms.append(x)
        labels.append(y)
    if not waveforms:
        raise ConfigError(f"The {what} dataset yielded no clips.")
    lengths = sorted({x.shape[-1] for x in waveforms if x.ndim == 2})
    if len(lengths) > 1 or any(x.ndim != 2 for x in waveforms):
        raise InputShapeError(
            f"The {what} dataset must yield waveforms (samples,) or (batch, samples) of one length, "
            f"received lengths {lengths[:5]}: pad or crop every clip to one length (e.g. decode_examples "
            "with clip_seconds)."
        )
    if any(y.ndim != 1 for y in labels):
        raise InputShapeError(
            f"The {what} dataset's labels must be class indices, one per clip (not one-hot), received "
            f"shape {next(y.shape for y in labels if y.ndim != 1)}."
        )
    return np.concatenate(waveforms), np.concatenate(labels)

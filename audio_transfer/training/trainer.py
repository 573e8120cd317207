"""Two-stage transfer learning: the head on cached embeddings of a frozen base, then optional fine-tuning."""

from __future__ import annotations

import contextlib
import logging
import math
import sys
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from audio_transfer.errors import ConfigError, InputShapeError
from audio_transfer.heads.additive_angular_margin_softmax import AdditiveAngularMarginSoftmax
from audio_transfer.tasks.classifier import Classifier
from audio_transfer.tasks.speaker_verifier import SpeakerVerifier
from audio_transfer.tasks.task import Task
from audio_transfer.training.embedding_cache import EmbeddingCache
from audio_transfer.training.train_config import TrainConfig
from audio_transfer.training.train_result import TrainResult

logger = logging.getLogger(__name__)

# Head steps per compiled call in stage 1: a step on cached embeddings is so cheap that Keras's per-step
# Python overhead would dominate the epoch otherwise.
_CACHED_STEPS_PER_EXECUTION = 32

# (waveforms, seed) -> augmented waveforms of the same shape; the same seed gives the same output.
Augment = Callable[[np.ndarray, int], np.ndarray]


class Trainer:
    """Trains a task's head on a frozen base, then optionally fine-tunes the top blocks of the base.

    Stage 1 runs the frozen base once per clip (through an :class:`EmbeddingCache`) and trains only the
    head on the cached frame embeddings, so an epoch costs a few milliseconds instead of a pass of the base.
    With augmentation, ``config.augment_copies`` augmented copies of every clip are made and embedded once.
    Stage 2 (``config.fine_tune_blocks > 0``) unfreezes the top blocks (``base.set_trainable(n)``) and
    trains the whole task on waveforms, freshly augmented every batch, at ``fine_tune_learning_rate``.
    Both stages stop early on the validation ``monitor`` and restore the best epoch's weights. Classes are
    weighted by inverse frequency. Classifiers train with label-smoothed cross-entropy; a
    :class:`~audio_transfer.tasks.SpeakerVerifier` trains its embedding with an additive angular margin
    softmax over the training speakers (the softmax layer is dropped afterwards). Keras progress bars go to
    stderr.

    Args:
        task: the task to train (a :class:`Classifier` subclass or a :class:`SpeakerVerifier` with
            something to train).
        config: settings; see :class:`TrainConfig`.
        cache: embedding cache over ``task.base``; by default an in-memory one (or on disk under
            ``config.cache_dir``).
        verbose: Keras verbosity: 0 silent, 1 progress bars, 2 one line per epoch.
        callbacks: extra Keras callbacks for both stages.

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
    ) -> None:
        if not isinstance(task, (Classifier, SpeakerVerifier)):
            raise ConfigError(
                f"Trainer trains a Classifier or a SpeakerVerifier, received {type(task).__name__}."
            )
        if isinstance(task, SpeakerVerifier) and not task.head.has_weights:
            raise ConfigError(
                "This SpeakerVerifier has nothing to train (no projection_dim and no attention pooling); it "
                "verifies as it is. Give it projection_dim to train an embedding with AAM softmax."
            )
        self.task = task
        self.config = config or TrainConfig()
        self.cache = cache or EmbeddingCache(task.base, cache_dir=self.config.cache_dir)
        if self.cache.base is not task.base:
            raise ConfigError("The embedding cache must wrap the task's own base.")
        self.verbose = verbose
        self.callbacks = list(callbacks)
        self._margin_softmax: AdditiveAngularMarginSoftmax | None = None
        self._num_speakers = 0

    # -- public -----------------------------------------------------------------------------------------
    def fit(
        self,
        waveforms: np.ndarray,
        labels: np.ndarray,
        *,
        validation: tuple[np.ndarray, np.ndarray] | None = None,
        keys: Sequence[str] | None = None,
        validation_keys: Sequence[str] | None = None,
        augment: Augment | None = None,
    ) -> TrainResult:
        """Train on ``(clips, samples)`` waveforms with integer ``labels`` (indices into the task's labels).

        Args:
            waveforms: equal-length training clips, float32 at ``task.sample_rate``.
            labels: ``(clips,)`` class index of each clip (speaker index for a verifier).
            validation: ``(waveforms, labels)`` for early stopping; ``None`` trains every epoch.
            keys, validation_keys: cache keys of the clips (see :meth:`EmbeddingCache.file_key`).
            augment: ``augment(waveforms, seed)``; used when ``config.augment`` is on.

        Returns:
            the history of both stages; the task holds the kept weights, with its base frozen again.
        """
        config = self.config
        if isinstance(self.task, SpeakerVerifier):
            self._num_speakers = int(np.max(labels)) + 1 if np.size(labels) else 0
            if self._num_speakers < 2:
                raise ConfigError("Training a speaker verifier needs clips of at least 2 speakers.")
            self._margin_softmax = None
        x, y = self._check_data(waveforms, labels, "training")
        x_val, y_val = self._check_data(*validation, "validation") if validation is not None else (None, None)
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
        logger.info(
            "Stage 1: training the head on %d clips (%d clean, %d augmented) of cached embeddings for up to "
            "%d epochs.",
            len(frames),
            len(x),
            len(frames) - len(x),
            config.epochs,
        )
        head = self._stage_one_model()
        self._compile(head, config.learning_rate, steps_per_execution=_CACHED_STEPS_PER_EXECUTION)
        best_epochs["head"] = self._run(
            "head",
            head,
            self._dataset(frames, frame_labels, shuffle=True),
            validation=None if val_frames is None else self._dataset(val_frames, y_val, shuffle=False),
            epochs=config.epochs,
            history=history,
        )

        if config.fine_tune_blocks:
            self.task.base.set_trainable(config.fine_tune_blocks)
            logger.info(
                "Stage 2: fine-tuning the top %d of %d blocks of the base with the head on waveforms for up "
                "to %d epochs at learning rate %g.",
                config.fine_tune_blocks,
                self.task.base.num_blocks,
                config.fine_tune_epochs,
                config.fine_tune_learning_rate,
            )
            model = self._stage_two_model()
            self._compile(model, config.fine_tune_learning_rate)
            batches = _WaveformBatches(
                x, y, trainer=self, augment=augment, seed=config.seed, batch_size=config.batch_size
            )
            try:
                best_epochs["fine_tune"] = self._run(
                    "fine_tune",
                    model,
                    batches,
                    validation=None if x_val is None else self._dataset(x_val, y_val, shuffle=False),
                    epochs=config.fine_tune_epochs,
                    history=history,
                )
            finally:
                self.task.base.set_trainable(False)

        return TrainResult(
            history=history,
            best_epochs=best_epochs,
            num_train_clips=len(x),
            num_augmented_clips=len(frames) - len(x),
            num_validation_clips=0 if x_val is None else len(x_val),
            cache_hits=self.cache.hits - hits,
            cache_misses=self.cache.misses - misses,
        )

    # -- the objective, per kind of task ------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        if isinstance(self.task, Classifier):
            return len(self.task.labels)
        return self._num_speakers

    def _check_data(self, waveforms, labels, what: str) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(waveforms, dtype=np.float32)
        y = np.asarray(labels)
        if x.ndim != 2 or y.shape != (len(x),):
            raise InputShapeError(
                f"The {what} data must be waveforms (clips, samples) and labels (clips,), received shapes "
                f"{x.shape} and {y.shape}."
            )
        if not np.issubdtype(y.dtype, np.integer):
            raise ConfigError(
                f"The {what} labels must be class indices (integers), received dtype {y.dtype}."
            )
        if len(y) and (y.min() < 0 or y.max() >= self.num_classes):
            raise ConfigError(
                f"The {what} labels must be in [0, {self.num_classes - 1}], received values from {y.min()} "
                f"to {y.max()}."
            )
        return x, y.astype(np.int32)

    def _embed(self, waveforms: np.ndarray, keys: Sequence[str] | None = None) -> np.ndarray:
        """The base's frames of clips as the task sees them (with its context silence), via the cache."""
        return self.cache.embed(keras.ops.convert_to_numpy(self.task.with_context(waveforms)), keys=keys)

    def _margin_layer(self) -> AdditiveAngularMarginSoftmax:
        # One layer for both stages, so fine-tuning starts from the speaker centres stage 1 learned.
        if self._margin_softmax is None:
            self._margin_softmax = AdditiveAngularMarginSoftmax(
                self.num_classes,
                margin=self.config.aam_margin,
                scale=self.config.aam_scale,
                name="aam_softmax",
            )
        return self._margin_softmax

    def _stage_one_model(self) -> keras.Model:
        if isinstance(self.task, Classifier):
            return self.task.head_model()
        frames = keras.Input((None, self.task.base.embedding_dim), name="frame_embeddings")
        labels = keras.Input((), dtype="int32", name="labels")
        logits = self._margin_layer()(self.task.head(frames), labels=labels)
        return keras.Model([frames, labels], logits, name="verifier_head_training")

    def _stage_two_model(self) -> keras.Model:
        if isinstance(self.task, Classifier):
            return self.task
        waveform = keras.Input((None,), name="waveform")
        labels = keras.Input((), dtype="int32", name="labels")
        logits = self._margin_layer()(self.task(waveform), labels=labels)
        return keras.Model([waveform, labels], logits, name="verifier_training")

    def _inputs(self, x: np.ndarray, y: np.ndarray):
        return x if isinstance(self.task, Classifier) else (x, y)

    def _targets(self, y: np.ndarray) -> np.ndarray:
        if isinstance(self.task, Classifier):
            return np.eye(self.num_classes, dtype=np.float32)[y]
        return y

    def _dataset(self, x: np.ndarray, y: np.ndarray, *, shuffle: bool) -> tf.data.Dataset:
        """Batches of (inputs, targets[, class weights]); training batches reshuffled every epoch.

        A training epoch passes over the data as many times as it takes to make
        ``config.min_steps_per_epoch`` steps: on a few dozen clips one pass is one or two steps, far too
        few for the head to converge in a sensible number of epochs.
        """
        weights = self._sample_weights(y) if shuffle else None
        parts = (self._inputs(x, y), self._targets(y)) + (() if weights is None else (weights,))
        dataset = tf.data.Dataset.from_tensor_slices(parts)
        if not shuffle:
            return dataset.batch(self.config.batch_size).prefetch(tf.data.AUTOTUNE)
        passes = math.ceil(self.config.min_steps_per_epoch / math.ceil(len(y) / self.config.batch_size))
        dataset = dataset.shuffle(len(y), seed=self.config.seed, reshuffle_each_iteration=True)
        return dataset.repeat(max(passes, 1)).batch(self.config.batch_size).prefetch(tf.data.AUTOTUNE)

    def _compile(self, model: keras.Model, learning_rate: float, *, steps_per_execution: int = 1) -> None:
        if isinstance(self.task, Classifier):
            loss = keras.losses.CategoricalCrossentropy(label_smoothing=self.config.label_smoothing)
        else:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        optimizer = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=self.config.weight_decay)
        model.compile(
            optimizer=optimizer, loss=loss, metrics=["accuracy"], steps_per_execution=steps_per_execution
        )

    def _sample_weights(self, y: np.ndarray) -> np.ndarray | None:
        """Inverse class frequency per example, averaging 1 over the classes present."""
        if not self.config.class_weighting:
            return None
        counts = np.bincount(y, minlength=self.num_classes)
        weights = len(y) / (np.count_nonzero(counts) * np.maximum(counts, 1))
        return weights[y].astype(np.float32)

    def _run(self, stage, model, data, *, validation, epochs, history) -> int:
        """Fit ``model``; append the epochs to ``history``; return the kept epoch (1-based)."""
        callbacks = list(self.callbacks)
        stopper = None
        if validation is not None:
            stopper = keras.callbacks.EarlyStopping(
                monitor=self.config.monitor,
                patience=self.config.patience,
                restore_best_weights=True,
                verbose=0,
            )
            callbacks.append(stopper)
        with contextlib.redirect_stdout(sys.stderr):
            fitted = model.fit(
                data,
                validation_data=validation,
                epochs=epochs,
                shuffle=False,  # the training data shuffles itself every epoch
                callbacks=callbacks,
                verbose=self.verbose,
            )
        metrics = fitted.history
        ran = len(metrics.get("loss", []))
        for epoch in range(ran):
            history.append(
                {"stage": stage, "epoch": epoch + 1, **{k: float(v[epoch]) for k, v in metrics.items()}}
            )
        best = ran if stopper is None or stopper.best_weights is None else stopper.best_epoch + 1
        logger.info("Stage %s: kept epoch %d of %d.", stage, best, ran)
        return best


class _WaveformBatches(keras.utils.PyDataset):
    """Shuffled waveform batches for fine-tuning, augmented afresh every epoch, with class weights."""

    def __init__(
        self, x, y, *, trainer: Trainer, augment: Augment | None, seed: int, batch_size: int
    ) -> None:
        super().__init__()
        self.x, self.y = x, y
        self.trainer = trainer
        self.augment = augment
        self.seed = seed
        self.batch_size = batch_size
        self.weights = trainer._sample_weights(y)
        self.epoch = 0
        self.order = np.random.default_rng(seed).permutation(len(x))

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index: int):
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        x, y = self.x[rows], self.y[rows]
        if self.augment is not None:
            x = self.augment(x, self.seed * 1_000_003 + self.epoch * 10_007 + index)
        batch = (self.trainer._inputs(x, y), self.trainer._targets(y))
        return batch if self.weights is None else (*batch, self.weights[rows])

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = np.random.default_rng(self.seed + self.epoch).permutation(len(self.x))

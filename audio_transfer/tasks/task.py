"""What every task model shares: a pretrained base followed by a small head."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from audio_transfer.audio import crop_or_pad, load_audio
from audio_transfer.bases.audio_base import AudioBase
from audio_transfer.checks import is_number
from audio_transfer.data import SkippedFile
from audio_transfer.data.decoded_clips import clip_samples_for
from audio_transfer.errors import AudioDecodeError, ConfigError, InputShapeError
from audio_transfer.progress import track

if TYPE_CHECKING:
    from audio_transfer.tasks.training_objective import TrainingObjective

logger = logging.getLogger(__name__)


def is_audio_path(value) -> bool:
    """Whether ``value`` names a file (``str`` or path-like) rather than holding samples."""
    return isinstance(value, (str, os.PathLike))


@keras.saving.register_keras_serializable(package="audio_transfer")
class Task(keras.Model):
    """A task model: raw waveform → ``base`` frame embeddings → ``head`` output.

    The head is a separate layer taking the base's frame embeddings, so a trainer can fit it alone on
    embeddings computed once (see :meth:`head_model`) and the task then runs end to end on audio. Subclasses
    build their head in ``__init__`` from plain arguments and return those arguments from ``get_config``;
    the base is serialised whole, so ``keras.saving.load_model(path, safe_mode=True)`` restores a task.

    Args:
        base: the pretrained :class:`~audio_transfer.bases.AudioBase`.
        head: a layer mapping ``(batch, windows, base.embedding_dim)`` to the task's output.
        context_seconds: silence added before and after the clip inside the model, so that the base's
            windows also see the start and end of a word against silence (more, and more varied, windows
            to pool). The model's input stays the clip itself.

    Shapes:
        input ``(batch, samples)`` float32 at ``base.sample_rate``; output: the head's.

    What a task is, declared by its class and read by the trainer, :func:`~audio_transfer.training.train_run`
    and the CLI (a new task sets these, subclasses a task and registers itself with
    :func:`~audio_transfer.tasks.register_task`):

    - ``task_name``: its name in the registry, in ``TrainConfig.task`` and ``--task``;
    - ``default_base``: the base trained on when none is named;
    - ``default_clip_seconds``: training clip length; ``None`` measures it from the training files;
    - ``default_pooling``, ``default_context_seconds``: the head's temporal pooling and the silence added
      around a clip;
    - ``augment_context``: augmented training copies are made of the whole window the base hears (the
      clip with its context), so their noise surrounds the word as a stream's audio does, rather than of
      the clip padded with silence;
    - ``requires_keywords``: training needs ``keywords`` (the other classes of the data become
      ``_unknown_``);
    - ``default_reverb_probability``: share of augmented copies reverberated by room impulse responses;
    - ``default_synth_negatives``, ``default_mining_rounds``, ``default_source_weights``,
      ``default_balance_sources``: what training on negative audio does by default (see
      :class:`~audio_transfer.training.TrainConfig`: synthesized negatives, hard-negative mining rounds,
      per-source example weights);
    - ``validation_hold_out``: what validation holds out of the training data when no validation data is
      given: ``"speakers"`` (speaker-disjoint), ``"clips"`` (stratified per class, for classes that are
      speakers), ``"classes"`` (whole classes, for a task that must work on classes it never saw; its
      validation clips then never reach the trainer's softmax) or ``"none"``;
    - ``evaluation``: how it is measured and reported: ``"classification"`` (accuracy, per-class report)
      or ``"verification"`` (EER and minDCF over pairs of clips);
    - ``export_formats``: the formats ``audio-transfer export`` writes for it;
    - :meth:`from_settings` (a fresh task from training settings), :meth:`check_trainable`,
      :meth:`training_objective` (its loss, metrics and training models) and
      :meth:`untrained_alternative`.
    """

    task_name: ClassVar[str | None] = None
    default_base: ClassVar[str] = "speech_embedding"
    default_clip_seconds: ClassVar[float | None] = None
    default_pooling: ClassVar[str] = "mean"
    default_context_seconds: ClassVar[float] = 0.0
    requires_keywords: ClassVar[bool] = False
    augment_context: ClassVar[bool] = False
    default_synth_negatives: ClassVar[bool] = False
    default_mining_rounds: ClassVar[int] = 0
    default_reverb_probability: ClassVar[float] = 0.0
    default_balance_sources: ClassVar[bool] = False
    default_source_weights: ClassVar[Mapping[str, float]] = {}
    validation_hold_out: ClassVar[str] = "speakers"
    evaluation: ClassVar[str] = "classification"
    export_formats: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, base: AudioBase, head: keras.layers.Layer, *, context_seconds: float = 0.0, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        if not (is_number(context_seconds) and 0 <= context_seconds <= 10):
            raise ConfigError(f"context_seconds must be between 0 and 10, received {context_seconds!r}.")
        if not isinstance(base, AudioBase):
            raise ConfigError(
                f"base must be an audio_transfer AudioBase (see audio_transfer.bases.load_base), received "
                f"{type(base).__name__}."
            )
        self.base = base
        self.head = head
        self.context_seconds = float(context_seconds)
        self.context_samples = round(context_seconds * base.sample_rate)
        self._compiled_inference = None
        # Built at once (the base from a dummy clip if it is not built yet), so a task can be saved and its
        # head trained before it ever runs on audio.
        self.build()
        self.built = True

    # -- what training asks of a task ----------------------------------------------------------------------
    @classmethod
    def from_settings(cls, base: AudioBase, labels: list[str], settings: Mapping[str, Any]) -> Task:
        """A fresh, untrained task over ``base`` for the classes ``labels``, its head shaped by ``settings``
        (a :class:`~audio_transfer.training.TrainConfig` as a dict; ``None`` values take the class's
        defaults)."""
        raise ConfigError(f"{cls.__name__} cannot be built from training settings; it is not trainable.")

    def check_trainable(self) -> None:
        """Raise :class:`~audio_transfer.errors.ConfigError` saying why, when this task cannot train."""

    def training_objective(self, labels: np.ndarray, settings: Mapping[str, Any]) -> TrainingObjective:
        """What :class:`~audio_transfer.training.Trainer` fits for this task on integer class ``labels``
        (indices into the training classes), with ``settings`` as in :meth:`from_settings`."""
        raise ConfigError(f"{type(self).__name__} has no training objective; it cannot be trained.")

    def untrained_alternative(self) -> Task | None:
        """A model of this task that works without training, over the same base, which training keeps
        instead of the trained one when that one measures worse on validation classes it never saw; ``None``
        when there is none."""
        return None

    @property
    def sample_rate(self) -> int:
        """Sample rate in Hz the input waveform must have."""
        return self.base.sample_rate

    def build(self, input_shape=None) -> None:
        if not self.base.built:
            self.base(ops.zeros((1, self.base.min_samples)))
        if not self.head.built:
            self.head.build((None, None, self.base.embedding_dim))

    def get_build_config(self) -> dict:
        # Always recorded, so a task saved before it was ever called still loads with its weights.
        return {"input_shape": (None, None)}

    def with_context(self, waveform):
        """``(batch, samples)`` waveform with :attr:`context_seconds` of zeros added at both ends."""
        if not self.context_samples:
            return waveform
        return ops.pad(waveform, [[0, 0], [self.context_samples, self.context_samples]])

    def call(self, waveform, training=None):
        frames = self.base(self.with_context(waveform), training=training)
        return self.head(frames, training=training)

    def head_model(self) -> keras.Model:
        """A Keras model of the head alone, sharing its weights: ``(batch, windows, dim)`` → output."""
        frames = keras.Input((None, self.base.embedding_dim), name="frame_embeddings")
        return keras.Model(frames, self.head(frames), name=f"{self.name}_head")

    def predict_waveforms(
        self, waveforms, *, batch_size: int = 32, clip_seconds: float | None = None
    ) -> np.ndarray:
        """Run the task on clips or audio files, without progress bars; one output row per clip, in input
        order.

        Clips of equal length are batched together; one compiled function serves every length.

        Args:
            waveforms: a ``(clips, samples)`` array, one ``(samples,)`` clip, a sequence of 1-D clips of
                different lengths (float32 at :attr:`sample_rate`), an audio file path, or a sequence of
                paths (or of paths and clips), each decoded whole to mono at :attr:`sample_rate` (see
                :meth:`load_clips`).
            batch_size: clips per forward pass.
            clip_seconds: centre-crop or zero-pad every clip (and file) to this length, as the training
                clips were; ``None`` runs each clip at its own length.

        Raises:
            AudioDecodeError: a file does not decode (named).
            InputShapeError: no clips, or a clip that is not 1-D.
        """
        if isinstance(waveforms, np.ndarray) and waveforms.ndim in (1, 2):
            clips = [waveforms] if waveforms.ndim == 1 else list(waveforms)
        elif is_audio_path(waveforms):
            clips = [waveforms]
        else:
            clips = list(waveforms)
        if not clips:
            raise InputShapeError(f"{type(self).__name__} received no clips to run on.")
        clips = [
            load_audio(clip, sample_rate=self.sample_rate) if is_audio_path(clip) else clip for clip in clips
        ]
        for i, clip in enumerate(clips):
            if np.ndim(clip) != 1:
                raise InputShapeError(
                    f"{type(self).__name__} expects clips of shape (samples,), an array (clips, samples) or "
                    f"audio file paths; clip {i} has shape {np.shape(clip)}."
                )
        if clip_seconds is not None:
            num_samples = clip_samples_for(sample_rate=self.sample_rate, clip_seconds=clip_seconds)
            clips = [crop_or_pad(np.asarray(clip), num_samples=num_samples) for clip in clips]
        forward = self._inference_function()
        by_length: dict[int, list[int]] = {}
        for i, clip in enumerate(clips):
            by_length.setdefault(len(clip), []).append(i)
        rows: list[np.ndarray] = [np.empty(0)] * len(clips)
        chunks = [
            ids[start : start + batch_size]
            for ids in by_length.values()
            for start in range(0, len(ids), batch_size)
        ]
        for chunk in track(chunks, "Running the model on clips"):
            outputs = forward(np.stack([np.asarray(clips[i], np.float32) for i in chunk])).numpy()
            for i, row in zip(chunk, outputs, strict=True):
                rows[i] = row
        return np.stack(rows)

    def load_clips(
        self,
        paths: Sequence[str | os.PathLike],
        *,
        clip_seconds: float | None = None,
        skip_undecodable: bool = False,
    ) -> tuple[list[np.ndarray], list[Path], list[SkippedFile]]:
        """Decode audio files as the task hears them: mono float32 at :attr:`sample_rate`, whole or
        centre-cropped/zero-padded to ``clip_seconds`` (the training clips' length).

        Args:
            paths: the audio files.
            clip_seconds: length of every clip; ``None`` keeps each file whole.
            skip_undecodable: leave out files that do not decode (logged, and listed in the result) instead
                of raising.

        Returns:
            ``(clips, kept, skipped)``: the clips of the files that decoded and those files, in input order,
            and the files left out with the reason.

        Raises:
            AudioDecodeError: a file does not decode, without ``skip_undecodable`` (naming the file).

        Example:
            >>> clips, _, _ = spotter.load_clips(["yes.wav"], clip_seconds=1.0)  # doctest: +SKIP
            >>> clips[0].shape  # doctest: +SKIP
            (16000,)
        """
        num_samples = (
            None
            if clip_seconds is None
            else clip_samples_for(sample_rate=self.sample_rate, clip_seconds=clip_seconds)
        )
        clips, kept, skipped = [], [], []
        for path in track(paths, "Decoding audio files"):
            try:
                waveform = load_audio(path, sample_rate=self.sample_rate)
            except AudioDecodeError as error:
                if not skip_undecodable:
                    raise
                logger.warning("Skipping %s: %s", path, error)
                skipped.append(SkippedFile(os.fspath(path), str(error)))
                continue
            clips.append(waveform if num_samples is None else crop_or_pad(waveform, num_samples=num_samples))
            kept.append(Path(path))
        return clips, kept, skipped

    def _inference_function(self):
        """One compiled inference function for every clip length, made on first use and kept."""
        if self._compiled_inference is None:

            @tf.function(input_signature=[tf.TensorSpec((None, None), tf.float32)])
            def forward(batch):
                return self(batch, training=False)

            self._compiled_inference = forward
        return self._compiled_inference

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "base": keras.saving.serialize_keras_object(self.base),
            "context_seconds": self.context_seconds,
        }

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        config["base"] = keras.saving.deserialize_keras_object(config["base"])
        return cls(**config)

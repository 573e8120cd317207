"""Shared behaviour of the classification tasks: labels, a classification head, top-k predictions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from audio_transfer import checks
from audio_transfer.bases.audio_base import AudioBase
from audio_transfer.errors import ConfigError
from audio_transfer.heads.classification_head import ClassificationHead
from audio_transfer.heads.linear_head import LinearHead
from audio_transfer.tasks.classification_objective import ClassificationObjective
from audio_transfer.tasks.head_families import AUTO_FALLBACK, HEAD_FAMILIES, LINEAR_DEFAULT_POOLING
from audio_transfer.tasks.task import Task

# The head arguments a classifier stores in its config, per head family.
_HEAD_ARGS = {
    "mlp": ("pooling", "hidden_units", "dropout", "normalize", "attention_units"),
    "linear": ("pooling",),
}


@keras.saving.register_keras_serializable(package="audio_transfer")
class Classifier(Task):
    """A task that assigns each clip one of ``labels``, with probabilities in label order.

    :class:`KeywordSpotter`, :class:`SpeakerClassifier` and :class:`AudioClassifier` are classifiers with
    defaults suited to their data.

    Args:
        base: the pretrained base.
        labels: class names in output order (unique, at least 2).
        head_family: ``"mlp"``: a :class:`~audio_transfer.heads.ClassificationHead` (trained in
            mini-batches); ``"linear"``: a :class:`~audio_transfer.heads.LinearHead` (the standardized
            linear probe, fitted to convergence on the whole training set; it takes ``pooling`` only, and
            ``None`` pools with ``"mean_max"``). See :mod:`audio_transfer.tasks.head_families`.
        pooling, hidden_units, dropout, normalize, attention_units: see
            :class:`~audio_transfer.heads.ClassificationHead`.
        context_seconds: silence added around the clip inside the model (see :class:`Task`).
        ``None`` for ``pooling``, ``normalize`` or ``context_seconds`` takes the class's default.

    Shapes:
        input ``(batch, samples)`` float32; output ``(batch, len(labels))`` probabilities.
    """

    default_pooling = "mean_max"
    default_normalize = True
    export_formats = ("saved_model", "tflite")

    def __init__(
        self,
        base: AudioBase,
        labels: Sequence[str],
        *,
        head_family: str = "mlp",
        pooling: str | None = None,
        hidden_units: int = 0,
        dropout: float = 0.3,
        normalize: bool | None = None,
        attention_units: int = 64,
        context_seconds: float | None = None,
        **kwargs,
    ) -> None:
        labels = [str(label) for label in labels]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise ConfigError(f"labels must be unique; repeated: {', '.join(duplicates)}.")
        checks.choice("head_family", head_family, HEAD_FAMILIES)
        if head_family == "linear":
            if hidden_units:
                raise ConfigError(
                    f"hidden_units is for the mlp head; the linear head has none, received hidden_units="
                    f"{hidden_units!r} with head linear. Set hidden_units to 0 or head to mlp."
                )
            head = LinearHead(len(labels), pooling=pooling or LINEAR_DEFAULT_POOLING, name="head")
        else:
            head = ClassificationHead(
                len(labels),
                pooling=pooling or self.default_pooling,
                hidden_units=hidden_units,
                dropout=dropout,
                normalize=self.default_normalize if normalize is None else normalize,
                attention_units=attention_units,
                name="head",
            )
        if context_seconds is None:
            context_seconds = self.default_context_seconds
        super().__init__(base, head, context_seconds=context_seconds, **kwargs)
        self.labels = tuple(labels)
        self.head_family = head_family

    @classmethod
    def from_settings(cls, base: AudioBase, labels: list[str], settings: Mapping[str, Any]) -> Classifier:
        head = settings.get("head", "mlp")
        return cls(
            base,
            labels,
            # "auto" not yet resolved by head selection (no training data to choose with): its fallback.
            head_family=AUTO_FALLBACK["head"] if head == "auto" else head,
            pooling=settings.get("pooling"),
            hidden_units=settings.get("hidden_units", 0),
            normalize=settings.get("normalize"),
            dropout=settings.get("dropout", 0.3),
            context_seconds=settings.get("context_seconds"),
        )

    def training_objective(self, labels: np.ndarray, settings: Mapping[str, Any]) -> ClassificationObjective:
        """Label-smoothed cross-entropy (``settings["label_smoothing"]``) over :attr:`labels`; a linear head
        is fitted full-batch with ``settings["linear_c"]``, ``["linear_max_steps"]`` and
        ``["linear_tolerance"]`` (see :class:`ClassificationObjective`)."""
        return ClassificationObjective(
            self,
            label_smoothing=settings.get("label_smoothing", 0.0),
            inverse_regularization=settings.get("linear_c", 1.0),
            max_steps=settings.get("linear_max_steps", 1000),
            tolerance=settings.get("linear_tolerance", 1e-9),
        )

    def classify(
        self,
        waveforms,
        *,
        top_k: int = 1,
        batch_size: int = 32,
        clip_seconds: float | None = None,
    ) -> list[list[tuple[str, float]]]:
        """The ``top_k`` most likely labels of each clip, most likely first, with their probabilities.

        Args:
            waveforms: ``(clips, samples)`` float32 at :attr:`sample_rate`, one ``(samples,)`` clip, a list
                of clips, or audio file paths (one, or a list), decoded at :attr:`sample_rate`.
            top_k: labels returned per clip, from 1 to ``len(labels)``.
            batch_size: clips per forward pass.
            clip_seconds: centre-crop or zero-pad each clip to the training clip length; ``None`` runs
                each at its own length (see :meth:`Task.predict_waveforms`).

        Example:
            >>> spotter.classify("yes.wav", clip_seconds=1.0)  # doctest: +SKIP
            [[('yes', 0.93)]]
        """
        if not 1 <= top_k <= len(self.labels):
            raise ConfigError(f"top_k must be between 1 and {len(self.labels)}, received {top_k!r}.")
        probabilities = self.predict_waveforms(waveforms, batch_size=batch_size, clip_seconds=clip_seconds)
        order = np.argsort(-probabilities, axis=-1, kind="stable")[:, :top_k]
        return [
            [(self.labels[i], float(row[i])) for i in ranks]
            for row, ranks in zip(probabilities, order, strict=True)
        ]

    def get_config(self) -> dict:
        head = self.head.get_config()
        return {
            **super().get_config(),
            "labels": list(self.labels),
            "head_family": self.head_family,
            **{key: head[key] for key in _HEAD_ARGS[self.head_family]},
        }

"""Speaker verification: is this the enrolled speaker? Cosine scores between unit-length clip embeddings."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np

from audio_transfer.atomic_files import write_text
from audio_transfer.bases.audio_base import AudioBase
from audio_transfer.errors import ConfigError, DatasetError
from audio_transfer.heads.embedding_head import EmbeddingHead
from audio_transfer.tasks.margin_softmax_objective import MarginSoftmaxObjective
from audio_transfer.tasks.task import Task, is_audio_path

ENROLLMENTS_FORMAT = "audio_transfer.enrollments"
ENROLLMENTS_VERSION = 1


@keras.saving.register_keras_serializable(package="audio_transfer")
class SpeakerVerifier(Task):
    """Embeds clips into unit-length speaker embeddings; enrolls speakers and scores clips against them.

    Without a projection (the default) nothing needs training: a clip's embedding is the L2-normalised mean
    of the base's frame embeddings, so ``SpeakerVerifier(load_base("ge2e_speaker"))`` verifies out of the
    box. With ``projection_dim`` the head gains a projection (and, with attention poolings, learned
    weights over time) that :mod:`audio_transfer.training` trains with an additive angular margin softmax
    over the training speakers.

    A speaker's enrollment is the embeddings of their enrollment clips; the score of a clip is the cosine
    similarity between its embedding and the normalised mean of the enrollment (from -1 to 1; higher means
    more likely the same speaker). Enrollments live outside the model file: :meth:`save_enrollments` and
    :meth:`load_enrollments` write and read them as JSON.

    Args:
        base: the pretrained base (``ge2e_speaker`` by default in the CLI).
        projection_dim, pooling, dropout, attention_units: see :class:`~audio_transfer.heads.EmbeddingHead`.

    Shapes:
        input ``(batch, samples)`` float32; output ``(batch, embedding_dim)`` with unit L2 norm.

    Example:
        >>> verifier = SpeakerVerifier(load_base("ge2e_speaker"))
        >>> verifier.enroll("ann", [clip_1, clip_2, clip_3])
        >>> verifier.verify(new_clip, "ann")  # 0.83
    """

    task_name = "speaker-verification"
    default_base = "ge2e_speaker"
    default_pooling = "mean"
    # Verification must work for people never enrolled: validation holds out whole speakers, and the
    # trained embedding is kept only if it beats the untrained base's on them.
    validation_hold_out = "classes"
    evaluation = "verification"
    # The embedding model, with the enrollments format and threshold (audio_transfer.export.export_verifier).
    export_formats = ("saved_model", "tflite")

    def __init__(
        self,
        base: AudioBase,
        *,
        projection_dim: int | None = None,
        pooling: str | None = None,
        dropout: float = 0.0,
        attention_units: int = 64,
        **kwargs,
    ) -> None:
        head = EmbeddingHead(
            projection_dim,
            pooling=pooling or self.default_pooling,
            dropout=dropout,
            attention_units=attention_units,
            name="head",
        )
        super().__init__(base, head, **kwargs)
        self._enrolled: dict[str, np.ndarray] = {}

    @classmethod
    def from_settings(
        cls, base: AudioBase, labels: list[str], settings: Mapping[str, Any]
    ) -> SpeakerVerifier:
        """A verifier whose embedding has ``settings["projection_dim"]`` dimensions (the base's when
        ``None``); ``labels`` (the training speakers) are not part of the model. Its head is an embedding,
        so ``settings["head"]`` must be ``"auto"`` (the default, which leaves it as it is) or ``"mlp"``."""
        if settings.get("head", "auto") not in ("auto", "mlp"):
            raise ConfigError(
                f"head {settings['head']!r} is a classifier head; a speaker verifier trains an embedding. "
                "Leave head at auto (or mlp) for speaker-verification."
            )
        return cls(
            base,
            projection_dim=settings.get("projection_dim") or base.embedding_dim,
            pooling=settings.get("pooling"),
            dropout=settings.get("dropout", 0.0),
        )

    def check_trainable(self) -> None:
        if not self.head.has_weights:
            raise ConfigError(
                "This SpeakerVerifier has nothing to train (no projection_dim and no attention pooling); it "
                "verifies as it is. Give it projection_dim to train an embedding with AAM softmax."
            )

    def training_objective(self, labels: np.ndarray, settings: Mapping[str, Any]) -> MarginSoftmaxObjective:
        """An additive angular margin softmax (``settings["aam_margin"]``, ``["aam_scale"]``) over the
        training speakers ``labels`` index."""
        num_speakers = int(np.max(labels)) + 1 if np.size(labels) else 0
        if num_speakers < 2:
            raise ConfigError("Training a speaker verifier needs clips of at least 2 speakers.")
        return MarginSoftmaxObjective(
            self,
            num_classes=num_speakers,
            margin=settings.get("aam_margin", 0.2),
            scale=settings.get("aam_scale", 30.0),
        )

    def untrained_alternative(self) -> SpeakerVerifier:
        """The base's normalised mean embedding, which verifies without training."""
        return SpeakerVerifier(self.base)

    @property
    def embedding_dim(self) -> int:
        """Size of the clip embedding."""
        return int(self.head.compute_output_shape((None, None, self.base.embedding_dim))[-1])

    def embed_clips(self, clips, *, batch_size: int = 32) -> np.ndarray:
        """Unit-length embeddings ``(clips, embedding_dim)`` of a ``(clips, samples)`` array, a clip list,
        or audio file paths (each decoded whole, see :meth:`Task.predict_waveforms`)."""
        return self.predict_waveforms(clips, batch_size=batch_size)

    # -- enrollment ------------------------------------------------------------------------------------
    @property
    def enrolled(self) -> list[str]:
        """Names of the enrolled speakers, sorted."""
        return sorted(self._enrolled)

    def enroll(self, name: str, clips) -> np.ndarray:
        """Add ``clips`` of speaker ``name`` to their enrollment (created if new); returns its centroid.

        Args:
            name: speaker name (non-empty).
            clips: a ``(clips, samples)`` array or a sequence of 1-D clips at :attr:`sample_rate`, or audio
                file paths.
        """
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"A speaker name must be a non-empty string, received {name!r}.")
        embeddings = self.embed_clips(clips)
        previous = self._enrolled.get(name)
        self._enrolled[name] = embeddings if previous is None else np.concatenate([previous, embeddings])
        return self.centroid(name)

    def centroid(self, name: str) -> np.ndarray:
        """The unit-length mean embedding of speaker ``name``'s enrollment clips."""
        if name not in self._enrolled:
            enrolled = ", ".join(self.enrolled) or "nobody yet"
            raise ConfigError(
                f"Speaker {name!r} is not enrolled (enrolled: {enrolled}). Enroll them first, or load the "
                "enrollments file that holds them."
            )
        mean = self._enrolled[name].mean(axis=0)
        return mean / max(float(np.linalg.norm(mean)), 1e-12)

    def remove(self, name: str) -> None:
        """Forget speaker ``name``."""
        self.centroid(name)  # raises with the enrolled names when unknown
        del self._enrolled[name]

    def verify(self, clip: np.ndarray | str | os.PathLike, name: str) -> float:
        """Cosine similarity between ``clip`` (1-D, at :attr:`sample_rate`, or an audio file) and speaker
        ``name``."""
        centroid = self.centroid(name)
        clip = clip if is_audio_path(clip) else np.asarray(clip, np.float32)
        return float(self.embed_clips(clip)[0] @ centroid)

    def save_enrollments(self, path: str | Path) -> Path:
        """Write the enrollments (every clip embedding of every speaker) to a JSON file; returns the path."""
        path = Path(path)
        document = {
            "format": ENROLLMENTS_FORMAT,
            "version": ENROLLMENTS_VERSION,
            "embedding_dim": self.embedding_dim,
            "speakers": {name: self._enrolled[name].tolist() for name in self.enrolled},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(document))
        return path

    def load_enrollments(self, path: str | Path) -> list[str]:
        """Replace the enrollments with those in the JSON file ``path``; returns the speaker names."""
        path = Path(path)
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise DatasetError(f"Cannot read the enrollments file {path}: {error}.") from error
        if not isinstance(document, dict) or document.get("format") != ENROLLMENTS_FORMAT:
            raise DatasetError(
                f"{path} is not an audio_transfer enrollments file (no format {ENROLLMENTS_FORMAT!r}); "
                "write one with `audio-transfer enroll` or SpeakerVerifier.save_enrollments."
            )
        if document.get("embedding_dim") != self.embedding_dim:
            raise ConfigError(
                f"The enrollments in {path} hold {document.get('embedding_dim')}-d embeddings but this "
                f"model makes {self.embedding_dim}-d ones: they were made with another model. Enroll the "
                "speakers again with this model."
            )
        self._enrolled = {
            name: np.asarray(rows, np.float32).reshape(-1, self.embedding_dim)
            for name, rows in document["speakers"].items()
        }
        return self.enrolled

    def get_config(self) -> dict:
        head = self.head.get_config()
        return {
            **super().get_config(),
            **{key: head[key] for key in ("projection_dim", "pooling", "dropout", "attention_units")},
        }

"""How closely an exported speaker verifier follows its Keras model: EER of both on held-out speakers."""

from __future__ import annotations

import dataclasses

import numpy as np

from audio_transfer.errors import InputShapeError
from audio_transfer.evaluation import cosine_scores, trial_pairs, verification_metrics
from audio_transfer.export.parity_report import _JsonReport


@dataclasses.dataclass(frozen=True)
class VerifierParityReport(_JsonReport):
    """EER of an exported embedding model and of its Keras source on the same trials, and how far their
    embeddings and decisions differ.

    Every unordered pair of held-out clips is a trial (target when both clips come from one speaker), scored
    by the cosine similarity of the two clips' embeddings.

    Args:
        format: ``"tflite"`` or ``"saved_model"``.
        quantize: quantization of the export (``"none"``, ``"float16"`` or ``"dynamic"``).
        input_dtype: element type of the exported model's input (``"float32"`` or ``"int16"``).
        num_clips: held-out clips embedded.
        num_speakers: distinct speakers among them.
        num_target_trials, num_nontarget_trials: same-speaker and different-speaker pairs.
        keras_eer, exported_eer: equal error rates (0 to 1) of the Keras model and of the export.
        keras_eer_threshold, exported_eer_threshold: cosine score at each EER.
        threshold: the acceptance threshold shipped with the export (a score at or above it accepts).
        decision_agreement: fraction of trials both models accept or both reject at ``threshold``.
        min_embedding_cosine: lowest cosine similarity between a clip's Keras and exported embeddings (1 is
            identical up to length).
        max_abs_embedding_difference: largest absolute difference of any embedding component.
        size_bytes: size of the export (SavedModel: every file of the directory).
        mean_latency_ms: mean milliseconds per clip of one inference call.
        runtime: what ran the export.
    """

    format: str
    quantize: str
    input_dtype: str
    runtime: str
    size_bytes: int
    mean_latency_ms: float
    num_clips: int
    num_speakers: int
    num_target_trials: int
    num_nontarget_trials: int
    keras_eer: float
    exported_eer: float
    keras_eer_threshold: float
    exported_eer_threshold: float
    threshold: float
    decision_agreement: float
    min_embedding_cosine: float
    max_abs_embedding_difference: float

    @classmethod
    def compare(
        cls,
        *,
        keras_embeddings: np.ndarray,
        exported_embeddings: np.ndarray,
        speakers: np.ndarray,
        threshold: float | None,
        size_bytes: int,
        seconds_per_clip: float,
        format: str,
        quantize: str,
        input_dtype: str,
        runtime: str,
    ) -> VerifierParityReport:
        """Score every pair of clips with both models' embeddings and compare.

        Args:
            keras_embeddings, exported_embeddings: ``(clips, embedding_dim)`` of the same clips.
            speakers: ``(clips,)`` speaker of each clip (at least two speakers, one with two clips).
            threshold: the shipped acceptance threshold on the cosine score; ``None`` ships the export's
                EER threshold on these trials.
            size_bytes, seconds_per_clip, format, quantize, input_dtype, runtime: see the fields.

        Raises:
            InputShapeError: the embeddings differ in shape or do not match ``speakers``.
            ConfigError: the clips give no target or no non-target trial.
        """
        keras_embeddings = np.asarray(keras_embeddings, np.float64)
        exported_embeddings = np.asarray(exported_embeddings, np.float64)
        if keras_embeddings.shape != exported_embeddings.shape or keras_embeddings.shape[:1] != np.shape(
            speakers
        ):
            raise InputShapeError(
                f"Embeddings of shapes {keras_embeddings.shape} and {exported_embeddings.shape} do not pair "
                f"with {np.shape(speakers)} speakers."
            )
        i, j, same = trial_pairs(list(speakers))
        keras_scores = cosine_scores(keras_embeddings, i, j)
        exported_scores = cosine_scores(exported_embeddings, i, j)
        keras_report = verification_metrics(keras_scores, same)
        exported_report = verification_metrics(exported_scores, same)
        per_clip = np.arange(len(keras_embeddings))
        if threshold is None:
            threshold = exported_report.eer_threshold
        return cls(
            format=format,
            quantize=quantize,
            input_dtype=input_dtype,
            num_clips=len(keras_embeddings),
            num_speakers=len(set(speakers)),
            num_target_trials=int(same.sum()),
            num_nontarget_trials=int((~same).sum()),
            keras_eer=float(keras_report.eer),
            exported_eer=float(exported_report.eer),
            keras_eer_threshold=float(keras_report.eer_threshold),
            exported_eer_threshold=float(exported_report.eer_threshold),
            threshold=float(threshold),
            decision_agreement=float(np.mean((keras_scores >= threshold) == (exported_scores >= threshold))),
            min_embedding_cosine=float(
                _paired_cosines(keras_embeddings, exported_embeddings, per_clip).min()
            ),
            max_abs_embedding_difference=float(np.abs(keras_embeddings - exported_embeddings).max()),
            size_bytes=int(size_bytes),
            mean_latency_ms=1000.0 * float(seconds_per_clip),
            runtime=runtime,
        )

    def summary(self) -> str:
        """One line for people: both EERs, decision agreement at the threshold, embedding closeness."""
        return (
            f"EER Keras {self.keras_eer:.2%} / exported {self.exported_eer:.2%} on {self.num_clips} clips of "
            f"{self.num_speakers} held-out speakers ({self.num_target_trials} target, "
            f"{self.num_nontarget_trials} non-target trials), decisions agree on "
            f"{self.decision_agreement:.1%} at threshold {self.threshold:.3f}, min embedding cosine "
            f"{self.min_embedding_cosine:.5f}, {self.size_bytes} bytes, {self.mean_latency_ms:.2f} ms/clip "
            f"({self.runtime})"
        )


def _paired_cosines(first: np.ndarray, second: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Cosine similarity of ``first[k]`` and ``second[k]`` for each row ``k``."""
    return cosine_scores(np.concatenate([first, second]), rows, rows + len(first))

"""Closed-set speaker identification: which of the known speakers is talking."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from audio_transfer.bases.audio_base import AudioBase
from audio_transfer.tasks.classifier import Classifier


@keras.saving.register_keras_serializable(package="audio_transfer")
class SpeakerClassifier(Classifier):
    """Classifies a clip as one of ``speakers``.

    Attentive statistics pooling by default: the standard deviation of the frame embeddings describes how
    a voice varies, which plain means lose. See :class:`~audio_transfer.tasks.classifier.Classifier` for
    the other arguments.

    Args:
        base: the pretrained base (``ge2e_speaker`` by default in the CLI).
        speakers: speaker names in output order.

    Shapes:
        input ``(batch, samples)`` float32 waveform in [-1, 1] at ``base.sample_rate`` Hz (16 kHz), clips
        of the training length (``clip_seconds``, 3 s by default in training); output ``(batch,
        len(speakers))`` probabilities that sum to 1.

    Example:
        >>> identifier = SpeakerClassifier(load_base("ge2e_speaker"), ["ann", "bob", "eve"])
    """

    task_name = "speaker-id"
    default_base = "ge2e_speaker"
    default_pooling = "attentive_statistics"
    # Speaker bases (GE2E) give unit-length embeddings whose directions matter; layer normalisation would
    # re-centre them (accuracy with and without: benchmarks/RESULTS.md).
    default_normalize = False
    # The speakers are the classes: validation holds out some clips of every speaker.
    validation_hold_out = "clips"

    def __init__(self, base: AudioBase, speakers: Sequence[str], **kwargs) -> None:
        super().__init__(base, speakers, **kwargs)

    @property
    def speakers(self) -> tuple[str, ...]:
        return self.labels

    def get_config(self) -> dict:
        config = super().get_config()
        config["speakers"] = config.pop("labels")
        return config

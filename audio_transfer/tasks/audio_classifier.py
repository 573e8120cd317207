"""General sound classification: events, scenes, instruments."""

from __future__ import annotations

import keras

from audio_transfer.tasks.classifier import Classifier


@keras.saving.register_keras_serializable(package="audio_transfer")
class AudioClassifier(Classifier):
    """Classifies a clip as one of ``labels`` (sound events, scenes, instruments...).

    Mean+max temporal pooling by default: the mean describes steady sounds, the max short events. See
    :class:`~audio_transfer.tasks.classifier.Classifier` for the arguments.

    Shapes:
        input ``(batch, samples)`` float32 waveform in [-1, 1] at ``base.sample_rate`` Hz (16 kHz for the
        presets), clips of the training length (``clip_seconds``, 1 s by default); output ``(batch,
        len(labels))`` probabilities that sum to 1.

    Example:
        >>> classifier = AudioClassifier(load_base("yamnet"), ["dog", "siren", "rain"])
        >>> classifier.classify(waveforms)  # [[("siren", 0.88)], ...]
    """

    task_name = "classify"
    default_base = "speech_embedding"
    default_pooling = "mean_max"
    # Silence around the clip (inside the model), as for keywords: short sounds are seen whole.
    default_context_seconds = 0.35
    validation_hold_out = "speakers"

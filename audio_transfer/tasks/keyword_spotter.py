"""Keyword spotting: which of a few words (or silence, or another word) a short clip holds."""

from __future__ import annotations

import keras

from audio_transfer.tasks.classifier import Classifier


@keras.saving.register_keras_serializable(package="audio_transfer")
class KeywordSpotter(Classifier):
    """Classifies a clip as one of ``labels``: the keywords, plus ``_silence_`` / ``_unknown_`` when the
    training data has them.

    Mean+max temporal pooling by default (the max keeps a word from being averaged away in a longer clip);
    ``pooling="attention"`` is the alternative. See :class:`~audio_transfer.tasks.classifier.Classifier`
    for the arguments. The model adds ``context_seconds`` (0.35 s) of silence before and after the clip
    internally.

    Shapes:
        input ``(batch, samples)`` float32 waveform in [-1, 1] at ``base.sample_rate`` Hz (16 kHz for the
        presets), clips of the training length (``clip_seconds``, 1 s by default); output ``(batch,
        len(labels))`` probabilities that sum to 1.

    Example:
        >>> base = load_base("speech_embedding")
        >>> spotter = KeywordSpotter(base, ["yes", "no", "_silence_", "_unknown_"])
        >>> spotter.classify(waveforms, top_k=2)  # [[("yes", 0.93), ("_unknown_", 0.04)], ...]
    """

    task_name = "kws"
    default_base = "speech_embedding"
    default_pooling = "mean_max"
    # Silence around the clip (inside the model) lets speech_embedding's 0.775 s windows see each word whole
    # and at several offsets; 0.35 s makes a 1 s clip 1.7 s of audio to embed (accuracy by context length:
    # benchmarks/RESULTS.md, "Keyword context").
    default_context_seconds = 0.35
    # Validation measures voices the head never heard.
    validation_hold_out = "speakers"

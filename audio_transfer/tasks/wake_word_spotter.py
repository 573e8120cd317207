"""Wake words: one or a few keywords, told apart from hours of everyday audio."""

from __future__ import annotations

from typing import ClassVar

import keras

from audio_transfer.tasks.keyword_spotter import KeywordSpotter


@keras.saving.register_keras_serializable(package="audio_transfer")
class WakeWordSpotter(KeywordSpotter):
    """A keyword spotter trained the way wake words are: against negative audio by the hour.

    The model is a :class:`~audio_transfer.tasks.KeywordSpotter` (the same head over the last clip of base
    embeddings that the streaming detector runs); what differs is its training data, declared here and
    carried out by :func:`~audio_transfer.training.train_run`:

    - the keywords' clips are the positives, every other clip of the data is ``_unknown_`` (all of them:
      classes are balanced by weight, never by discarding negatives);
    - half the augmented copies are reverberated by room impulse responses (simulated rooms, or measured
      ones given as ``rir_files``);
    - augmented copies hear background noise around the clip, not silence, as the detector hears a word in
      a stream (negative windows are cut from streams, so silence around a clip would tell positives apart);
    - ``negatives`` (long recordings) are cut into windows of the detector's length and streamed into the
      feature store;
    - negatives spoken by eSpeak NG are added by default: minutes of everyday sentences read by many voices
      (near-miss phrases built from the keywords when ``synth_near_miss_clips`` asks for them);
    - within ``_unknown_``, each source (the data's clips, their augmented copies, negative windows,
      mined windows) weighs the same in all, so hours of windows do not drown the data's spoken negatives;
    - one round of hard-negative mining by default: the trained model scans the negative audio, the
      windows it fires on are added as ``_unknown_`` and weigh twice as much, and the head trains again.

    Shapes and arguments: as :class:`~audio_transfer.tasks.KeywordSpotter`.

    Example:
        >>> config = TrainConfig(task="wakeword", data_dir="recordings", keywords=["computer"],
        ...                      negatives=["podcasts/"])
        >>> run = train_run(config, "runs/computer")  # doctest: +SKIP
    """

    task_name = "wakeword"
    default_synth_negatives: ClassVar[bool] = True
    default_mining_rounds: ClassVar[int] = 1
    default_source_weights: ClassVar[dict[str, float]] = {"mined": 2.0}
    requires_keywords: ClassVar[bool] = True
    augment_context: ClassVar[bool] = True
    default_reverb_probability: ClassVar[float] = 0.5
    default_balance_sources: ClassVar[bool] = True

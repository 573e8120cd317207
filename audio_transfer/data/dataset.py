"""The tf.data pipeline of labelled clips for training and evaluation."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from audio_transfer.audio import crop_or_pad
from audio_transfer.checks import is_positive_int
from audio_transfer.data._decode import decode_waveforms
from audio_transfer.data.audio_example import AudioExample
from audio_transfer.data.augmentation import Augmentation
from audio_transfer.data.decoded_clips import clip_samples_for, decode_examples, label_indices
from audio_transfer.data.noise_bank import NoiseBank
from audio_transfer.errors import ConfigError, DatasetError

logger = logging.getLogger(__name__)


def make_dataset(
    examples: Sequence[AudioExample],
    *,
    labels: Sequence[str],
    sample_rate: int = 16000,
    clip_seconds: float = 1.0,
    batch_size: int = 32,
    training: bool = False,
    augmentation: Augmentation | None = None,
    noise_files: Sequence[str | os.PathLike] = (),
    seed: int = 0,
    max_failure_fraction: float = 0.1,
) -> tf.data.Dataset:
    """A ``tf.data`` pipeline of ``(waveform, label_index)`` batches.

    Every file is decoded once, when this function runs (files that fail are skipped with a warning naming
    them), and the decoded audio stays in memory: later epochs never decode again. Per epoch the pipeline
    then, for training, shuffles, crops ``clip_seconds`` at a random offset out of longer clips, batches and
    applies ``augmentation``; for evaluation it takes the centre ``clip_seconds`` in a fixed order. Clips
    shorter than ``clip_seconds`` are zero-padded on both sides in both modes. Everything random derives
    from ``seed``: two pipelines built alike yield the same batches, epoch after epoch.

    Args:
        examples: the clips.
        labels: class names; a clip's label index is its label's position here.
        sample_rate: rate in Hz of the waveforms.
        clip_seconds: length of every waveform.
        batch_size: clips per batch (the last batch may be smaller).
        training: shuffle, random crops and augmentation; otherwise fixed order and centre crops.
        augmentation: what to apply when ``training`` (ignored otherwise); ``None`` applies nothing.
        noise_files: background-noise files for the augmentation (e.g. ``LabelledAudio.noise_files``).
        seed: seed of shuffling, crops and augmentation.
        max_failure_fraction: raise when more than this share of files fail to decode.

    Returns:
        a dataset of ``(float32 (batch, samples), int32 (batch,))`` with ``samples = round(clip_seconds *
        sample_rate)``.

    Raises:
        DatasetError: no examples, a label not in ``labels``, or too many files failing to decode.
        ConfigError: an argument out of range.

    Example:
        >>> train = make_dataset(splits["train"], labels=data.labels, training=True,  # doctest: +SKIP
        ...                      augmentation=Augmentation(), noise_files=data.noise_files)
    """
    clip_samples = clip_samples_for(sample_rate=sample_rate, clip_seconds=clip_seconds)
    if not is_positive_int(batch_size):
        raise ConfigError(f"batch_size must be a positive integer, received {batch_size!r}.")
    if not examples:
        raise DatasetError("make_dataset received no examples. Check the dataset path and split fractions.")
    indices = label_indices([example.label for example in examples], labels)
    if not training:
        clips = decode_examples(
            examples,
            sample_rate=sample_rate,
            clip_seconds=clip_seconds,
            max_failure_fraction=max_failure_fraction,
        )
        dataset = tf.data.Dataset.from_tensor_slices((clips.waveforms, clips.label_indices(labels)))
        return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    waveforms, kept, _ = decode_waveforms(
        examples,
        sample_rate=sample_rate,
        clip_samples=clip_samples,
        max_failure_fraction=max_failure_fraction,
    )
    if not kept:
        raise DatasetError(f"None of the {len(examples)} clips decoded; see the warnings above for why.")
    # Pad short clips now so that the per-epoch work is only a random crop.
    waveforms = [crop_or_pad(w, num_samples=clip_samples) if len(w) < clip_samples else w for w in waveforms]
    ragged = tf.RaggedTensor.from_row_lengths(
        np.concatenate(waveforms), np.asarray([len(w) for w in waveforms], dtype=np.int64)
    )
    dataset = tf.data.Dataset.from_tensor_slices((ragged, indices[kept]))
    dataset = dataset.shuffle(len(kept), seed=seed, reshuffle_each_iteration=True)
    random_crop_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

    def random_crop(element, random_value):
        waveform, label = element
        seed_pair = tf.stack([tf.constant(seed, tf.int64), random_value])
        room = tf.cast(tf.shape(waveform)[0] - clip_samples + 1, tf.float32)
        start = tf.cast(tf.random.stateless_uniform([], seed_pair) * room, tf.int32)
        return tf.ensure_shape(waveform[start : start + clip_samples], [clip_samples]), label

    dataset = tf.data.Dataset.zip((dataset, random_crop_seeds)).map(
        random_crop, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    dataset = dataset.batch(batch_size)
    if augmentation is not None:
        noise = None
        if augmentation.uses_noise and noise_files:
            noise = NoiseBank.from_files(noise_files, sample_rate=sample_rate)
        elif augmentation.uses_noise:
            logger.warning(
                "Augmentation asks for background noise but no noise_files were given: none added."
            )
        packed_noise = augmentation.pack_noise(noise, clip_samples=clip_samples, sample_rate=sample_rate)
        augment_seeds = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True)

        def augment(batch, random_value):
            waveform, label = batch
            seed_pair = tf.stack([tf.constant(seed, tf.int64), random_value])
            return (
                augmentation.augment_tensor(
                    waveform, seed=seed_pair, sample_rate=sample_rate, noise=packed_noise
                ),
                label,
            )

        dataset = tf.data.Dataset.zip((dataset, augment_seeds)).map(
            augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
    return dataset.prefetch(tf.data.AUTOTUNE)

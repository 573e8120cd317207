"""Training-time waveform augmentation: time shift, background noise at a random SNR, gain."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf

from audio_transfer.checks import is_number
from audio_transfer.data.noise_bank import NoiseBank
from audio_transfer.errors import ConfigError, InputShapeError

# augment() on arrays works through this many clips at a time to bound the memory of its index tensors.
_CHUNK_CLIPS = 256


def _stateless_seed(seed: int | tuple[int, int] | tf.Tensor) -> tf.Tensor:
    if isinstance(seed, (int, np.integer)):
        seed = (int(seed), 0)
    return tf.cast(tf.convert_to_tensor(seed), tf.int64)


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Random waveform augmentation, each part switchable, reproducible from a seed.

    Applied in this order, independently to each clip: a time shift (zeros fill the gap), background noise
    from a :class:`NoiseBank` mixed at a signal-to-noise ratio drawn from ``snr_db_range``, a gain drawn
    from ``gain_db_range``; the result is clipped to [-1, 1].

    Args:
        time_shift_seconds: largest shift either way, in seconds; ``0`` switches shifting off.
        noise_probability: share of clips that get background noise, in [0, 1]; ``0`` switches noise off.
            Without a noise bank no noise is added.
        snr_db_range: ``(low, high)`` signal-to-noise ratio in dB, relative to each clip's RMS.
        gain_db_range: ``(low, high)`` gain in dB; ``None`` or ``(0, 0)`` switches gain off.

    Example:
        >>> augmentation = Augmentation(time_shift_seconds=0.1, gain_db_range=None)
        >>> bank = NoiseBank.from_files(data.noise_files, sample_rate=16000)  # doctest: +SKIP
        >>> copies = [  # doctest: +SKIP
        ...     augmentation.augment(clips, noise=bank, seed=(0, k)) for k in range(4)
        ... ]
    """

    time_shift_seconds: float = 0.1
    noise_probability: float = 0.8
    snr_db_range: tuple[float, float] = (5.0, 20.0)
    gain_db_range: tuple[float, float] | None = (-6.0, 6.0)

    def __post_init__(self) -> None:
        if not (is_number(self.time_shift_seconds) and self.time_shift_seconds >= 0):
            raise ConfigError(f"time_shift_seconds must be >= 0, received {self.time_shift_seconds!r}.")
        if not (is_number(self.noise_probability) and 0 <= self.noise_probability <= 1):
            raise ConfigError(f"noise_probability must be in [0, 1], received {self.noise_probability!r}.")
        for name in ("snr_db_range", "gain_db_range"):
            value = getattr(self, name)
            if value is None and name == "gain_db_range":
                continue
            if not (
                isinstance(value, (tuple, list))
                and len(value) == 2
                and all(is_number(bound) and math.isfinite(bound) for bound in value)
                and value[0] <= value[1]
            ):
                raise ConfigError(f"{name} must be a (low, high) pair of dB values, received {value!r}.")

    @property
    def uses_noise(self) -> bool:
        """Whether noise mixing is switched on (it still needs a noise bank)."""
        return self.noise_probability > 0

    def augment(
        self,
        waveforms: np.ndarray | tf.Tensor,
        *,
        sample_rate: int = 16000,
        noise: NoiseBank | None = None,
        seed: int | tuple[int, int] = 0,
    ) -> np.ndarray | tf.Tensor:
        """Augment a batch of clips; the same seed gives the same result.

        Args:
            waveforms: float32 ``(clips, samples)``, a NumPy array or a tensor.
            sample_rate: rate in Hz of ``waveforms`` (for ``time_shift_seconds``).
            noise: background noise to mix in, at ``sample_rate``; ``None`` adds none.
            seed: an int, or a pair of ints (e.g. ``(seed, copy_index)`` for several augmented copies).

        Returns:
            the augmented clips, same shape, a NumPy array for an array input and a tensor for a tensor.
        """
        is_array = not tf.is_tensor(waveforms)
        waveforms = tf.convert_to_tensor(waveforms, dtype=tf.float32)
        if waveforms.shape.rank != 2:
            raise InputShapeError(
                f"Augmentation.augment expects clips of shape (clips, samples), received shape "
                f"{tuple(waveforms.shape)}. Add a leading axis with waveforms[None] for one clip."
            )
        packed = self.pack_noise(noise, clip_samples=int(waveforms.shape[1]), sample_rate=sample_rate)
        seed = _stateless_seed(seed)
        chunks = [
            self.augment_tensor(
                waveforms[start : start + _CHUNK_CLIPS],
                seed=tf.random.experimental.stateless_fold_in(seed, index),
                sample_rate=sample_rate,
                noise=packed,
            )
            for index, start in enumerate(range(0, max(int(waveforms.shape[0]), 1), _CHUNK_CLIPS))
        ]
        result = tf.concat(chunks, axis=0)
        return result.numpy() if is_array else result

    def pack_noise(
        self, noise: NoiseBank | None, *, clip_samples: int, sample_rate: int
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor] | None:
        """The noise bank as tensors for :meth:`augment_tensor`, or ``None`` when no noise is mixed."""
        if noise is None or not len(noise) or not self.uses_noise:
            return None
        if noise.sample_rate != sample_rate:
            raise ConfigError(
                f"The noise bank is at {noise.sample_rate} Hz but the clips at {sample_rate} Hz. Build it "
                f"with NoiseBank.from_files(..., sample_rate={sample_rate})."
            )
        return tuple(tf.constant(array) for array in noise.packed(min_samples=clip_samples))

    def augment_tensor(
        self,
        waveforms: tf.Tensor,
        *,
        seed: tf.Tensor,
        sample_rate: int,
        noise: tuple[tf.Tensor, tf.Tensor, tf.Tensor] | None,
    ) -> tf.Tensor:
        """Graph-friendly core of :meth:`augment`, as ``tf.data`` pipelines call it.

        Args:
            waveforms: float32 ``(clips, samples)``.
            seed: int64 ``(2,)`` stateless seed.
            sample_rate: rate in Hz.
            noise: :meth:`pack_noise`'s tensors, or ``None``.
        """
        batch, num_samples = tf.shape(waveforms)[0], tf.shape(waveforms)[1]
        shift_seed, file_seed, offset_seed, snr_seed, mix_seed, gain_seed = tf.unstack(
            tf.random.experimental.stateless_split(seed, num=6)
        )
        max_shift = round(self.time_shift_seconds * sample_rate)
        if max_shift > 0:
            shift = tf.random.stateless_uniform(
                [batch], shift_seed, minval=-max_shift, maxval=max_shift + 1, dtype=tf.int32
            )
            padded = tf.pad(waveforms, [[0, 0], [max_shift, max_shift]])
            index = (max_shift - shift)[:, None] + tf.range(num_samples)[None, :]
            waveforms = tf.gather(padded, index, batch_dims=1)
        if noise is not None:
            samples, starts, lengths = noise
            file = tf.random.stateless_uniform(
                [batch], file_seed, minval=0, maxval=tf.shape(starts)[0], dtype=tf.int32
            )
            room = tf.cast(tf.gather(lengths, file) - num_samples + 1, tf.float32)
            offset = tf.cast(tf.random.stateless_uniform([batch], offset_seed) * room, tf.int32)
            index = (tf.gather(starts, file) + offset)[:, None] + tf.range(num_samples)[None, :]
            excerpt = tf.gather(samples, index)
            snr_db = tf.random.stateless_uniform([batch], snr_seed, *self.snr_db_range)
            signal_rms = tf.sqrt(tf.reduce_mean(tf.square(waveforms), axis=1))
            noise_rms = tf.sqrt(tf.reduce_mean(tf.square(excerpt), axis=1)) + 1e-9
            scale = signal_rms / (noise_rms * tf.pow(10.0, snr_db / 20.0))
            mixed = tf.random.stateless_uniform([batch], mix_seed) < self.noise_probability
            waveforms = waveforms + tf.where(mixed, scale, 0.0)[:, None] * excerpt
        if self.gain_db_range is not None and tuple(self.gain_db_range) != (0, 0):
            gain_db = tf.random.stateless_uniform([batch], gain_seed, *self.gain_db_range)
            waveforms = waveforms * tf.pow(10.0, gain_db / 20.0)[:, None]
        return tf.clip_by_value(waveforms, -1.0, 1.0)

"""Room reverberation for augmentation: clips convolved with room impulse responses."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence

import numpy as np

from audio_transfer.audio import load_audio
from audio_transfer.checks import is_number, is_positive_int
from audio_transfer.errors import ConfigError, DependencyError

logger = logging.getLogger(__name__)

# Image-source reflection order at most: beyond it the tail of a long reverberation is cut short, but a bank
# of rooms is simulated in seconds.
_MAX_ORDER = 30


@dataclasses.dataclass(frozen=True)
class RoomReverb:
    """Reverberation of clips by room impulse responses (RIRs), as a wake word hears its word across a room.

    Make one with :meth:`simulated` (shoebox rooms by pyroomacoustics' image-source method; ``pip install
    'audio_transfer[wakeword]'``) or :meth:`from_files` (measured RIRs, e.g. from the MIT or BUT ReverbDB
    collections). Each RIR is cut to start at its direct path (its largest sample), so a reverberated clip
    is not delayed, and scaled to unit energy.

    Args:
        impulse_responses: float32 RIRs at ``sample_rate``.
        sample_rate: their rate in Hz.
        probability: share of clips :meth:`apply` reverberates, in [0, 1].

    Example:
        >>> reverb = RoomReverb.simulated(sample_rate=16000, count=16)  # doctest: +SKIP
        >>> wet = reverb.apply(clips, seed=3)  # doctest: +SKIP
    """

    impulse_responses: tuple[np.ndarray, ...]
    sample_rate: int
    probability: float = 0.5

    def __post_init__(self) -> None:
        if not self.impulse_responses:
            raise ConfigError("RoomReverb needs at least one impulse response.")
        if not (is_number(self.probability) and 0 <= self.probability <= 1):
            raise ConfigError(f"probability must be in [0, 1], received {self.probability!r}.")
        object.__setattr__(
            self, "impulse_responses", tuple(_direct_path_first(rir) for rir in self.impulse_responses)
        )

    @classmethod
    def simulated(
        cls,
        *,
        sample_rate: int,
        count: int = 24,
        rt60_seconds: tuple[float, float] = (0.2, 0.8),
        seed: int = 0,
        probability: float = 0.5,
    ) -> RoomReverb:
        """``count`` shoebox rooms drawn at random: sides of 3-10 m by 2.5-4 m high, a reverberation time
        (RT60) drawn from ``rt60_seconds`` (absorption from Sabine's formula), the talker and the microphone
        at random places at least 0.5 m from the walls.

        Raises:
            DependencyError: pyroomacoustics is not installed.
        """
        try:
            import pyroomacoustics
        except ImportError as error:
            raise DependencyError(
                "Simulated room reverberation needs pyroomacoustics: pip install 'audio_transfer[wakeword]' "
                "(or give measured impulse responses)."
            ) from error
        if not is_positive_int(count):
            raise ConfigError(f"count must be a positive integer, received {count!r}.")
        low, high = rt60_seconds
        if not (is_number(low) and is_number(high) and 0 < low <= high):
            raise ConfigError(
                f"rt60_seconds must be (low, high) with 0 < low <= high, received {rt60_seconds!r}."
            )
        rng = np.random.default_rng([seed, count])
        responses = []
        for _ in range(count):
            room = np.array([rng.uniform(3.0, 10.0), rng.uniform(3.0, 10.0), rng.uniform(2.5, 4.0)])
            rt60 = rng.uniform(low, high)
            try:
                absorption, order = pyroomacoustics.inverse_sabine(rt60, room)
            except ValueError:  # the room cannot be that reverberant: the most reflective walls it allows
                absorption, order = 0.02, _MAX_ORDER
            simulation = pyroomacoustics.ShoeBox(
                room,
                fs=sample_rate,
                materials=pyroomacoustics.Material(absorption),
                max_order=min(order, _MAX_ORDER),
            )
            simulation.add_source(rng.uniform(0.5, room - 0.5))
            simulation.add_microphone(rng.uniform(0.5, room - 0.5))
            simulation.compute_rir()
            responses.append(np.asarray(simulation.rir[0][0], np.float32))
        return cls(tuple(responses), sample_rate, probability)

    @classmethod
    def from_files(
        cls, paths: Sequence[str | os.PathLike], *, sample_rate: int, probability: float = 0.5
    ) -> RoomReverb:
        """Measured RIRs from audio files, resampled to ``sample_rate``.

        Raises:
            AudioDecodeError: a file cannot be decoded.
        """
        return cls(
            tuple(load_audio(path, sample_rate=sample_rate) for path in paths), sample_rate, probability
        )

    def apply(self, waveforms: np.ndarray, *, seed: int) -> np.ndarray:
        """Reverberate a ``probability`` share of ``waveforms`` (float32 ``(clips, samples)``), each by an
        RIR drawn from the bank, keeping each clip's length and RMS level; the same seed gives the same
        result."""
        waveforms = np.asarray(waveforms, np.float32)
        rng = np.random.default_rng([seed, 104729])
        result = waveforms.copy()
        for index, clip in enumerate(waveforms):
            if rng.random() >= self.probability:
                continue
            rir = self.impulse_responses[rng.integers(len(self.impulse_responses))]
            size = len(clip) + len(rir) - 1
            wet = np.fft.irfft(np.fft.rfft(clip, size) * np.fft.rfft(rir, size), size)[: len(clip)]
            dry_rms, wet_rms = np.sqrt(np.mean(clip**2)), np.sqrt(np.mean(wet**2))
            result[index] = np.clip(wet * (dry_rms / wet_rms if wet_rms > 0 else 0.0), -1.0, 1.0)
        return result


def _direct_path_first(rir: np.ndarray) -> np.ndarray:
    rir = np.asarray(rir, np.float32).ravel()
    if not rir.size or not np.any(rir):
        raise ConfigError("An impulse response is empty or all zeros.")
    rir = rir[int(np.argmax(np.abs(rir))) :]
    return (rir / np.sqrt(np.sum(rir.astype(np.float64) ** 2))).astype(np.float32)

"""What :func:`~audio_transfer.synth.synthesize_keywords` varies from clip to clip: plain data."""

from __future__ import annotations

import dataclasses
import math

from audio_transfer.checks import is_int, is_number
from audio_transfer.errors import ConfigError
from audio_transfer.synth.speech_synthesizer import PITCH_LIMITS, RATE_WPM_LIMITS

# eSpeak NG's English accents. Left out: en-shaw (reads the Shavian alphabet).
ENGLISH_VOICES: tuple[str, ...] = (
    "en",  # British
    "en-029",  # Caribbean
    "en-gb-scotland",
    "en-gb-x-gbclan",  # Lancaster
    "en-gb-x-gbcwmd",  # West Midlands
    "en-gb-x-rp",  # Received Pronunciation
    "en-us",
    "en-us-nyc",
)

# eSpeak NG's voice variants (espeak-ng-data/voices/!v) that sound like a person; "" is the voice's own.
# Left out: the robots and effects (Demonic, UniRobot, anikaRobot, croak, robosoft*, whisper, whisperf,
# "Mr serious", Tweaky). Variants missing from an older eSpeak NG are skipped.
HUMAN_VARIANTS: tuple[str, ...] = (
    "",
    *(f"m{index}" for index in range(1, 9)),
    *(f"f{index}" for index in range(1, 6)),
    *(f"klatt{suffix}" for suffix in ("", "2", "3", "4", "5", "6")),
    "Alex", "Alicia", "Andrea", "Andy", "Annie", "AnxiousAndy", "Denis", "Diogo", "Gene", "Gene2",
    "Henrique", "Hugo", "Jacky", "Lee", "Marco", "Mario", "Michael", "Mike", "Nguyen", "Reed",
    "RicishayMax", "Storm", "adam", "anika", "announcer", "antonio", "aunty", "belinda", "benjamin",
    "boris", "caleb", "david", "ed", "edward", "grandma", "grandpa", "gustave", "ian", "iven", "john",
    "kaukovalta", "linda", "marcelo", "max", "michel", "miguel", "norbert", "pablo", "paul", "pedro",
    "quincy", "rob", "robert", "sandro", "shelby", "steph", "travis", "victor", "zac",
)  # fmt: skip


def _check_bounds(name: str, value: object, limits: tuple[float, float] | None, *, integer: bool) -> None:
    kind = is_int if integer else is_number
    if not (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(kind(bound) for bound in value)
        and all(math.isfinite(bound) for bound in value)
        and value[0] <= value[1]
        and (limits is None or (limits[0] <= value[0] and value[1] <= limits[1]))
    ):
        within = f" within [{limits[0]}, {limits[1]}]" if limits else ""
        kind = "integers" if integer else "numbers"
        raise ConfigError(f"{name} must be a (low, high) pair of {kind}{within}, received {value!r}.")


@dataclasses.dataclass(frozen=True)
class SynthSettings:
    """How synthesized keyword clips vary. Every range is ``(low, high)``, drawn uniformly per clip.

    The defaults are the best of the settings measured in ``benchmarks/synth_vs_real.py`` (synthetic
    spoken digits, tested on real Speech Commands digits).

    Args:
        voices: eSpeak NG language voices (accents) to cycle through.
        variants: voice variants combined with every voice (``""``: the voice's own); each ``voice+variant``
            is one speaker. Defaults that the installed eSpeak NG lacks are skipped; named ones must exist.
        rates_wpm: speaking rate in words per minute (eSpeak accepts 80 to 450).
        pitches: base pitch, 0 to 100 (50: the voice's own).
        pitch_ranges: intonation range, 0 (monotone) to 100 (50: the voice's own).
        endings: punctuation appended to the word, one drawn per clip (``"?"`` rises, ``"."`` falls).
        top_db: leading and trailing audio quieter than this many dB under the loudest 10 ms is cut.
        noise_probability: share of clips that get background noise, in [0, 1].
        snr_db_range: signal-to-noise ratio in dB of that noise.
        gain_db_range: level of the clip's peak in dB relative to full scale (after the noise).

    Example:
        >>> SynthSettings(voices=("en-us",), variants=("", "f2", "m3"), rates_wpm=(140, 200)).rates_wpm
        (140, 200)
    """

    voices: tuple[str, ...] = ENGLISH_VOICES
    variants: tuple[str, ...] = HUMAN_VARIANTS
    rates_wpm: tuple[int, int] = (80, 350)
    pitches: tuple[int, int] = (0, 100)
    pitch_ranges: tuple[int, int] = (0, 100)
    endings: tuple[str, ...] = ("", ".", "!", "?", ",", "...")
    top_db: float = 40.0
    noise_probability: float = 1.0
    snr_db_range: tuple[float, float] = (10.0, 40.0)
    gain_db_range: tuple[float, float] = (-20.0, -1.0)

    def __post_init__(self) -> None:
        for name in ("voices", "variants", "endings"):
            value = getattr(self, name)
            if not (
                isinstance(value, (tuple, list)) and value and all(isinstance(item, str) for item in value)
            ):
                raise ConfigError(f"{name} must be a non-empty tuple of strings, received {value!r}.")
        if any("+" in voice for voice in self.voices):
            raise ConfigError(f"voices are language voices without '+variant', received {self.voices!r}.")
        _check_bounds("rates_wpm", self.rates_wpm, RATE_WPM_LIMITS, integer=True)
        _check_bounds("pitches", self.pitches, PITCH_LIMITS, integer=True)
        _check_bounds("pitch_ranges", self.pitch_ranges, PITCH_LIMITS, integer=True)
        _check_bounds("snr_db_range", self.snr_db_range, None, integer=False)
        _check_bounds("gain_db_range", self.gain_db_range, (-120.0, 0.0), integer=False)
        if not (is_number(self.top_db) and self.top_db > 0):
            raise ConfigError(f"top_db must be a positive number of dB, received {self.top_db!r}.")
        if not (is_number(self.noise_probability) and 0 <= self.noise_probability <= 1):
            raise ConfigError(f"noise_probability must be in [0, 1], received {self.noise_probability!r}.")

"""A labelled keyword dataset spoken by eSpeak NG, in the Speech Commands layout."""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import os
import re
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from audio_transfer.atomic_files import write_text
from audio_transfer.audio import AUDIO_EXTENSIONS, save_audio, trim_silence
from audio_transfer.checks import is_int, is_number, is_positive_int
from audio_transfer.data import NoiseBank
from audio_transfer.errors import ConfigError
from audio_transfer.progress import track
from audio_transfer.synth.speech_synthesizer import RATE_WPM_LIMITS, SpeechSynthesizer
from audio_transfer.synth.synth_report import SynthReport
from audio_transfer.synth.synth_settings import HUMAN_VARIANTS, SynthSettings
from audio_transfer.synth.synthesize import get_synthesizer, synthesize

logger = logging.getLogger(__name__)

#: clips per word written by default: 100 gives each split of a speaker-disjoint split about 10 voices
#: (accuracy on real speech by count: benchmarks/RESULTS.md, "Clips per word").
DEFAULT_PER_WORD = 100
MANIFEST_NAME = "synth.json"
# A word that does not fit the clip is spoken again this much faster than needed, up to eSpeak's maximum.
_SPEED_UP_MARGIN = 1.1
# Seconds of the pink noise used when no noise files are given (excerpts are drawn from it).
_SYNTHETIC_NOISE_SECONDS = 10.0
_RESERVED_NAME = re.compile(r"^[._]|[/\\\x00]")


def speaker_id(voice: str) -> str:
    """The speaker id of a voice in file names: ``"en-us+m3"`` → ``"en-us-m3"``.

    Lower case letters, digits and ``-`` only, so Speech Commands' ``<speaker>_nohash_<n>`` rule parses it.

    Example:
        >>> speaker_id("en-gb-x-rp+Mr serious")
        'en-gb-x-rp-mr-serious'
    """
    return re.sub(r"[^a-z0-9]+", "-", voice.lower()).strip("-")


def synthesize_keywords(
    words: Sequence[str],
    *,
    out_dir: str | os.PathLike,
    per_word: int = DEFAULT_PER_WORD,
    seed: int = 0,
    sample_rate: int = 16000,
    clip_seconds: float = 1.0,
    settings: SynthSettings | None = None,
    noise_files: Sequence[str | os.PathLike] = (),
    backend: str | SpeechSynthesizer = "auto",
    overwrite: bool = False,
    spoken: Mapping[str, str] | None = None,
) -> SynthReport:
    """Speak each word ``per_word`` times with varied eSpeak NG voices into a folder-per-word dataset.

    For every clip: a ``voice+variant`` (clip ``n`` of every word takes the ``n``-th of a seeded shuffle of
    all voice x variant pairs, so each speaker says every word, as in Speech Commands), a rate, pitch,
    intonation range and final punctuation drawn from ``settings``. eSpeak's output is resampled to
    ``sample_rate``, its silent ends are trimmed, and the word is placed at a random offset in a
    ``clip_seconds`` clip. Background noise (excerpts of ``noise_files``, or seeded pink noise) is mixed
    in at a signal-to-noise ratio drawn from ``settings.snr_db_range``, and the clip's peak set to a level
    drawn from ``settings.gain_db_range``. A word longer than the clip at the drawn rate is spoken again
    faster (up to eSpeak's 450 words per minute); if it still does not fit it is skipped and listed in the
    report.

    Files: ``out_dir/<word>/<speaker>_nohash_<n>.wav`` (16-bit PCM) where ``speaker`` is
    :func:`speaker_id` of the voice, so :func:`~audio_transfer.data.load_labelled_audio` reads the speaker
    and :func:`~audio_transfer.data.split_examples` keeps each voice in one split; and
    ``out_dir/synth.json`` with the report and every clip's parameters. The same arguments write the same
    bytes.

    Args:
        words: the keywords; each is spoken as written and names its folder.
        out_dir: the dataset folder; created when missing.
        per_word: clips per word.
        seed: random seed.
        sample_rate: rate in Hz of the files.
        clip_seconds: length of every clip in seconds.
        settings: what varies and how much; ``None`` takes :class:`SynthSettings`' defaults.
        noise_files: background-noise recordings to mix in (e.g. Speech Commands' ``_background_noise_``);
            empty: seeded pink noise, which taught real speech better than white noise did.
        backend: see :func:`~audio_transfer.synth.get_synthesizer`.
        overwrite: delete the audio files already in the word folders first; without it, a word folder
            holding audio files is an error.
        spoken: what eSpeak NG says for a word, when not the word as written (phonemes in ``[[ ]]``, see
            :meth:`SpeechSynthesizer.phonemes`); the word still names the folder.

    Returns:
        a :class:`SynthReport`.

    Raises:
        ConfigError: bad words, counts, rates, voices or variants, or word folders that already hold audio.
        DependencyError: eSpeak NG is not installed; the message says how to install it.

    Example:
        >>> report = synthesize_keywords(["yes", "no"], out_dir="synth_data", per_word=50)  # doctest: +SKIP
        >>> report.counts  # doctest: +SKIP
        {'yes': 50, 'no': 50}
    """
    settings = settings if settings is not None else SynthSettings()
    words = _check_words(words)
    if not is_positive_int(per_word):
        raise ConfigError(f"per_word must be a positive integer, received {per_word!r}.")
    if not is_positive_int(sample_rate):
        raise ConfigError(f"sample_rate must be a positive integer number of Hz, received {sample_rate!r}.")
    if not (is_number(clip_seconds) and math.isfinite(clip_seconds) and clip_seconds > 0):
        raise ConfigError(f"clip_seconds must be a positive number, received {clip_seconds!r}.")
    if not is_int(seed) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, received {seed!r}.")
    engine = get_synthesizer(backend)
    voices = _voices(engine, settings)
    out_dir = Path(out_dir)
    _prepare_folders(out_dir, words, overwrite=overwrite)
    noise = _noise_bank(noise_files, sample_rate=sample_rate, seed=seed)
    clip_samples = round(clip_seconds * sample_rate)

    counts: dict[str, int] = {}
    skipped: list[str] = []
    clips: list[dict] = []
    # Clip n of every word is spoken by the same voice, so each speaker says every word (balanced splits).
    order = np.random.default_rng(seed).permutation(len(voices))
    for word in track(words, "Synthesizing words"):
        word_seed = (seed, zlib.crc32(word.encode("utf-8")))
        said = (spoken or {}).get(word, word)
        waveforms, records = [], []
        for index in range(per_word):
            rng = np.random.default_rng([*word_seed, index])
            voice = voices[order[index % len(voices)]]
            waveform, record = _speak(engine, said, voice, settings, rng, sample_rate, clip_samples)
            if waveform is None:
                skipped.append(f"{word} ({voice}, {record['rate_wpm']} wpm): {record['skipped']}")
            else:
                waveforms.append(_add_noise_and_gain(waveform, noise, settings, rng))
                records.append(record)
        clips += _write_clips(out_dir, word, waveforms, records, sample_rate)
        counts[word] = len(records)
        logger.info("Synthesized %d clips of %r", len(records), word)

    manifest = out_dir / MANIFEST_NAME
    report = SynthReport(
        out_dir=out_dir,
        counts=counts,
        voices=sorted({clip["voice"] for clip in clips}),
        skipped=skipped,
        backend=engine.name,
        sample_rate=sample_rate,
        clip_seconds=float(clip_seconds),
        seed=int(seed),
        manifest=manifest,
    )
    content = {"report": report.to_dict(), "settings": dataclasses.asdict(settings), "clips": clips}
    write_text(manifest, json.dumps(content, indent=1))
    return report


def _check_words(words: Sequence[str]) -> list[str]:
    if isinstance(words, str) or not isinstance(words, Sequence) or not words:
        raise ConfigError(
            f"words must be a non-empty list of strings such as ['yes', 'no'], received {words!r}."
        )
    checked = []
    for word in words:
        if not isinstance(word, str) or not word.strip() or _RESERVED_NAME.search(word.strip()):
            raise ConfigError(
                f"Cannot use {word!r} as a keyword: it must be non-empty text that does not start with "
                "'_' or '.' and holds no '/' or '\\' (it names the word's folder)."
            )
        checked.append(word.strip())
    duplicates = sorted({word for word in checked if checked.count(word) > 1})
    if duplicates:
        raise ConfigError(f"words holds duplicates: {', '.join(duplicates)}.")
    return checked


def _voices(engine: SpeechSynthesizer, settings: SynthSettings) -> list[str]:
    """Every ``voice+variant`` pair; default variants the engine lacks are dropped, others must exist."""
    available = set(engine.list_variants())
    variants = [
        variant
        for variant in settings.variants
        if not variant or variant in available or variant not in HUMAN_VARIANTS
    ]
    if len(variants) < len(settings.variants):
        logger.info(
            "%s lacks variants %s; skipping them.",
            engine.name,
            sorted(set(settings.variants) - set(variants)),
        )
    voices = [
        f"{voice}+{variant}" if variant else voice
        for voice, variant in itertools.product(settings.voices, variants)
    ]
    for voice in voices:
        engine.check_voice(voice)
    ids: dict[str, str] = {}
    for voice in voices:
        if ids.setdefault(speaker_id(voice), voice) != voice:
            raise ConfigError(
                f"Voices {ids[speaker_id(voice)]!r} and {voice!r} would share the speaker id "
                f"{speaker_id(voice)!r}; keep one of them."
            )
    return voices


def _prepare_folders(out_dir: Path, words: list[str], *, overwrite: bool) -> None:
    for word in words:
        existing = [
            path
            for path in (out_dir / word).glob("*")
            if path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS
        ]
        if existing and not overwrite:
            raise ConfigError(
                f"{os.fspath(out_dir / word)!r} already holds {len(existing)} audio files. Choose another "
                "--out, or pass overwrite=True (--overwrite) to replace them."
            )
        for path in existing:
            path.unlink()
        (out_dir / word).mkdir(parents=True, exist_ok=True)


def _noise_bank(noise_files: Sequence[str | os.PathLike], *, sample_rate: int, seed: int) -> NoiseBank:
    if noise_files:
        bank = NoiseBank.from_files(noise_files, sample_rate=sample_rate)
        if len(bank):
            return bank
        logger.warning("None of the %d noise files decodes; mixing pink noise instead.", len(noise_files))
    return NoiseBank(
        waveforms=[_pink_noise(round(_SYNTHETIC_NOISE_SECONDS * sample_rate), seed=seed)],
        sample_rate=sample_rate,
    )


def _pink_noise(num_samples: int, *, seed: int) -> np.ndarray:
    """Seeded 1/f (pink) noise: power falling 3 dB per octave, like room tone more than white noise is."""
    spectrum = np.fft.rfft(np.random.default_rng([seed, num_samples]).standard_normal(num_samples))
    frequencies = np.arange(len(spectrum), dtype=np.float64)
    frequencies[0] = 1.0  # keeps the (near-zero) mean
    return np.fft.irfft(spectrum / np.sqrt(frequencies), num_samples).astype(np.float32)


def _speak(
    engine: SpeechSynthesizer,
    word: str,
    voice: str,
    settings: SynthSettings,
    rng: np.random.Generator,
    sample_rate: int,
    clip_samples: int,
) -> tuple[np.ndarray | None, dict]:
    """One clip ``(clip_samples,)`` with the word at a random offset, and its parameters.

    ``None`` (and the reason in the parameters' ``"skipped"``) when the word does not fit the clip even at
    eSpeak's fastest rate, or when eSpeak produced no sound.
    """
    record = {
        "voice": voice,
        "text": word + settings.endings[rng.integers(len(settings.endings))],
        "rate_wpm": int(rng.integers(settings.rates_wpm[0], settings.rates_wpm[1] + 1)),
        "pitch": int(rng.integers(settings.pitches[0], settings.pitches[1] + 1)),
        "pitch_range": int(rng.integers(settings.pitch_ranges[0], settings.pitch_ranges[1] + 1)),
    }
    speech = _spoken(engine, record, settings, sample_rate)
    if len(speech) > clip_samples and record["rate_wpm"] < RATE_WPM_LIMITS[1]:
        faster = math.ceil(record["rate_wpm"] * _SPEED_UP_MARGIN * len(speech) / clip_samples)
        record["rate_wpm"] = min(faster, RATE_WPM_LIMITS[1])
        speech = _spoken(engine, record, settings, sample_rate)
    if len(speech) > clip_samples:
        return None, {**record, "skipped": f"longer than the clip ({len(speech) / sample_rate:.2f} s)"}
    if not np.any(speech):
        return None, {**record, "skipped": "eSpeak NG produced no sound"}
    offset = int(rng.integers(0, clip_samples - len(speech) + 1))
    clip = np.zeros(clip_samples, np.float32)
    clip[offset : offset + len(speech)] = speech
    record["offset_seconds"] = round(offset / sample_rate, 4)
    return clip, record


def _add_noise_and_gain(
    clip: np.ndarray, noise: NoiseBank, settings: SynthSettings, rng: np.random.Generator
) -> np.ndarray:
    """Mix an excerpt of the noise at a random SNR (relative to the clip's RMS), then set a random peak level.

    NumPy rather than :class:`~audio_transfer.data.Augmentation`: TensorFlow's multithreaded reductions can
    change the last bit of a sum from run to run, and the files must be the same bytes for a seed.
    """
    if rng.random() < settings.noise_probability:
        recording = noise.waveforms[rng.integers(len(noise))]
        recording = np.resize(recording, max(len(recording), len(clip)))  # tiled when shorter than the clip
        start = int(rng.integers(0, len(recording) - len(clip) + 1))
        excerpt = recording[start : start + len(clip)]
        snr_db = rng.uniform(*settings.snr_db_range)
        scale = _rms(clip) / (max(_rms(excerpt), 1e-9) * 10.0 ** (snr_db / 20.0))
        clip = clip + scale * excerpt
    peak_db = rng.uniform(*settings.gain_db_range)
    return (clip * (10.0 ** (peak_db / 20.0) / np.abs(clip).max())).astype(np.float32)


def _rms(waveform: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(waveform, dtype=np.float64))))


def _write_clips(
    out_dir: Path, word: str, waveforms: Sequence[np.ndarray], records: list[dict], sample_rate: int
) -> list[dict]:
    """Write ``<word>/<speaker>_nohash_<n>.wav`` files; the records with their relative paths."""
    per_speaker: dict[str, int] = {}
    written = []
    for waveform, record in zip(waveforms, records, strict=True):
        speaker = speaker_id(record["voice"])
        path = out_dir / word / f"{speaker}_nohash_{per_speaker.setdefault(speaker, 0)}.wav"
        per_speaker[speaker] += 1
        save_audio(path, waveform, sample_rate=sample_rate, subtype="PCM_16")
        written.append({"path": path.relative_to(out_dir).as_posix(), "label": word, **record})
    return written


def _spoken(engine: SpeechSynthesizer, record: dict, settings: SynthSettings, sample_rate: int) -> np.ndarray:
    waveform = synthesize(
        record["text"],
        voice=record["voice"],
        rate_wpm=record["rate_wpm"],
        pitch=record["pitch"],
        pitch_range=record["pitch_range"],
        sample_rate=sample_rate,
        backend=engine,
    )
    return trim_silence(waveform, sample_rate=sample_rate, top_db=settings.top_db)

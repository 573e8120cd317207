"""Negative audio for a wake word, spoken by eSpeak NG."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from audio_transfer.audio import save_audio
from audio_transfer.checks import is_number, is_positive_int
from audio_transfer.errors import ConfigError
from audio_transfer.progress import track
from audio_transfer.synth.everyday_text import EVERYDAY_SENTENCES
from audio_transfer.synth.near_miss_phrases import near_miss_phrases
from audio_transfer.synth.speech_synthesizer import SpeechSynthesizer
from audio_transfer.synth.synth_settings import SynthSettings
from audio_transfer.synth.synthesize import get_synthesizer, synthesize
from audio_transfer.synth.synthesize_keywords import _voices, speaker_id, synthesize_keywords

logger = logging.getLogger(__name__)

NEAR_MISS_FOLDER = "near_miss"
SPEECH_FOLDER = "speech"
# Length of one file of synthesized speech (one voice reading sentences).
_SPEECH_FILE_SECONDS = 60.0
# Pause between sentences, seconds.
_PAUSE_SECONDS = (0.2, 1.0)


@dataclasses.dataclass(frozen=True)
class SynthesizedNegatives:
    """Negatives of a wake word spoken by eSpeak NG: near-miss clips and long files of everyday speech.

    Make them with :meth:`synthesize`. The same arguments write the same files.

    Attributes:
        near_miss_dir: a folder-per-phrase dataset (Speech Commands layout, one speaker per voice) of the
            near-miss phrases (:func:`~audio_transfer.synth.near_miss_phrases`), ``clip_seconds`` each;
            ``None`` when none was asked for (``clips_per_phrase=0``).
        speech_files: files of everyday sentences, a minute each, each read by one voice.
        phrases: the near-miss phrases spoken: ``{folder name: what eSpeak NG said}`` (phonemes in ``[[ ]]``
            for the phrases built from the keywords' phonemes).

    Example:
        >>> negatives = SynthesizedNegatives.synthesize(["computer"], out_dir="negatives", clip_seconds=1.0)
        >>> len(negatives.speech_files)  # doctest: +SKIP
        10
    """

    near_miss_dir: Path | None
    speech_files: tuple[Path, ...]
    phrases: dict[str, str]

    @classmethod
    def synthesize(
        cls,
        keywords: Sequence[str],
        *,
        out_dir: str | os.PathLike,
        clip_seconds: float,
        sample_rate: int = 16000,
        speech_minutes: float = 10.0,
        clips_per_phrase: int = 12,
        seed: int = 0,
        noise_files: Sequence[str | os.PathLike] = (),
        backend: str | SpeechSynthesizer = "auto",
    ) -> SynthesizedNegatives:
        """Speak the keywords' near misses and ``speech_minutes`` of everyday sentences into ``out_dir``.

        Near-miss clips are made as :func:`~audio_transfer.synth.synthesize_keywords` makes keyword clips
        (varied voices, rates and pitches, background noise). Speech files are sentences of
        :data:`~audio_transfer.synth.everyday_text.EVERYDAY_SENTENCES` that hold no keyword, read in a
        seeded order by one voice each, a short pause between sentences, at a level drawn per file.

        Args:
            keywords: the wake words.
            out_dir: the folder written (its ``near_miss`` and ``speech`` folders are replaced).
            clip_seconds: length of a near-miss clip (the model's clip length).
            sample_rate: rate in Hz of the files.
            speech_minutes: minutes of everyday speech.
            clips_per_phrase: clips per near-miss phrase (0: no near misses).
            seed: random seed.
            noise_files: background noise for the near-miss clips (seeded pink noise when empty).
            backend: see :func:`~audio_transfer.synth.get_synthesizer`.

        Raises:
            ConfigError: bad counts or lengths, or every sentence holds a keyword.
            DependencyError: eSpeak NG is not installed.
        """
        if not (is_number(speech_minutes) and speech_minutes > 0):
            raise ConfigError(f"speech_minutes must be a positive number, received {speech_minutes!r}.")
        if not (is_positive_int(clips_per_phrase) or clips_per_phrase == 0):
            raise ConfigError(f"clips_per_phrase must be an integer >= 0, received {clips_per_phrase!r}.")
        out_dir = Path(out_dir)
        engine = get_synthesizer(backend)
        phrases = near_miss_phrases(keywords, synthesizer=engine, seed=seed) if clips_per_phrase else {}
        if phrases:
            synthesize_keywords(
                list(phrases),
                spoken=phrases,
                out_dir=out_dir / NEAR_MISS_FOLDER,
                per_word=clips_per_phrase,
                seed=seed,
                sample_rate=sample_rate,
                clip_seconds=clip_seconds,
                noise_files=noise_files,
                backend=engine,
                overwrite=True,
            )
        speech_files = _speech_files(
            keywords,
            out_dir=out_dir / SPEECH_FOLDER,
            sample_rate=sample_rate,
            seconds=speech_minutes * 60.0,
            seed=seed,
            engine=engine,
        )
        near_miss_dir = out_dir / NEAR_MISS_FOLDER if phrases else None
        return cls(near_miss_dir=near_miss_dir, speech_files=speech_files, phrases=phrases)


def _speech_files(
    keywords: Sequence[str],
    *,
    out_dir: Path,
    sample_rate: int,
    seconds: float,
    seed: int,
    engine: SpeechSynthesizer,
) -> tuple[Path, ...]:
    """Files of everyday sentences, :data:`_SPEECH_FILE_SECONDS` each, one voice each, ``seconds`` in all."""
    patterns = [re.compile(rf"\b{re.escape(keyword.lower())}\b") for keyword in keywords]
    sentences = [text for text in EVERYDAY_SENTENCES if not any(p.search(text.lower()) for p in patterns)]
    if not sentences:
        raise ConfigError(f"Every everyday sentence holds one of the keywords {list(keywords)}.")
    settings = SynthSettings()
    voices = _voices(engine, settings)
    rng = np.random.default_rng([seed, 7])
    for stale in out_dir.glob("*.wav") if out_dir.is_dir() else ():
        stale.unlink()
    files = []
    count = max(1, round(seconds / _SPEECH_FILE_SECONDS))
    for index in track(range(count), "Synthesizing negative speech"):
        voice = voices[rng.integers(len(voices))]
        parts, length = [], 0
        for sentence_index in rng.permutation(len(sentences)):
            if length >= _SPEECH_FILE_SECONDS * sample_rate:
                break
            speech = synthesize(
                sentences[sentence_index],
                voice=voice,
                rate_wpm=int(rng.integers(120, 260)),
                pitch=int(rng.integers(*settings.pitches)),
                pitch_range=int(rng.integers(*settings.pitch_ranges)),
                sample_rate=sample_rate,
                backend=engine,
            )
            pause = np.zeros(round(rng.uniform(*_PAUSE_SECONDS) * sample_rate), np.float32)
            parts += [speech, pause]
            length += len(speech) + len(pause)
        waveform = np.concatenate(parts)
        waveform *= np.float32(
            10.0 ** (rng.uniform(*settings.gain_db_range) / 20.0) / max(np.abs(waveform).max(), 1e-9)
        )
        path = out_dir / f"{index:03d}-{speaker_id(voice)}.wav"
        save_audio(path, waveform, sample_rate=sample_rate, subtype="PCM_16")
        files.append(path)
    logger.info("Synthesized %d files of negative speech (%.1f min).", len(files), seconds / 60.0)
    return tuple(files)

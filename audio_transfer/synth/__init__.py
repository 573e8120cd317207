"""Synthetic keyword data spoken offline by eSpeak NG.

Public API: :func:`synthesize_keywords` (a folder-per-word dataset in the Speech Commands layout, one speaker
id per voice) with :class:`SynthSettings` and :class:`SynthReport`; :func:`synthesize` (one text, one voice)
and :func:`get_synthesizer`; the backends :class:`SpeechSynthesizer` (interface), :class:`EspeakLibrary`
(eSpeak NG's C library from PyPI ``espeakng-loader``, driven through ctypes) and :class:`EspeakCommand` (the
``espeak-ng`` program); :func:`speaker_id`, ``ENGLISH_VOICES``, ``HUMAN_VARIANTS``; a wake word's
negatives: :class:`SynthesizedNegatives` (near-miss clips and everyday speech), :func:`near_miss_phrases`,
``EVERYDAY_SENTENCES``.

Example:
    >>> from audio_transfer.synth import synthesize_keywords
    >>> report = synthesize_keywords(["yes", "no"], out_dir="synth_data", per_word=100)  # doctest: +SKIP
"""

from audio_transfer.synth.espeak_command import EspeakCommand
from audio_transfer.synth.espeak_library import EspeakLibrary
from audio_transfer.synth.everyday_text import EVERYDAY_SENTENCES
from audio_transfer.synth.near_miss_phrases import near_miss_phrases
from audio_transfer.synth.speech_synthesizer import SpeechSynthesizer
from audio_transfer.synth.synth_report import SynthReport
from audio_transfer.synth.synth_settings import ENGLISH_VOICES, HUMAN_VARIANTS, SynthSettings
from audio_transfer.synth.synthesize import BACKENDS, get_synthesizer, synthesize
from audio_transfer.synth.synthesize_keywords import DEFAULT_PER_WORD, speaker_id, synthesize_keywords
from audio_transfer.synth.synthesized_negatives import SynthesizedNegatives

__all__ = [
    "BACKENDS",
    "DEFAULT_PER_WORD",
    "ENGLISH_VOICES",
    "EVERYDAY_SENTENCES",
    "HUMAN_VARIANTS",
    "EspeakCommand",
    "EspeakLibrary",
    "SpeechSynthesizer",
    "SynthReport",
    "SynthSettings",
    "SynthesizedNegatives",
    "get_synthesizer",
    "near_miss_phrases",
    "speaker_id",
    "synthesize",
    "synthesize_keywords",
]

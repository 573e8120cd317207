"""Phrases that sound like a keyword but are not it: the adversarial negatives of a wake word, built from the
keyword's phonemes."""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection, Iterable, Sequence

import numpy as np

from audio_transfer.checks import is_positive_int
from audio_transfer.errors import ConfigError
from audio_transfer.synth.everyday_text import EVERYDAY_SENTENCES
from audio_transfer.synth.speech_synthesizer import SpeechSynthesizer

# eSpeak NG's English consonants by manner of articulation: a near miss swaps one consonant for another of
# its manner (a place or voicing change: "marvin" → "narvin", "barvin"), or one vowel for another, so the
# phrase keeps the keyword's rhythm and most of its sound.
_CONSONANT_CLASSES = (
    ("p", "b", "t", "d", "k", "g"),  # stops
    ("m", "n", "N"),  # nasals
    ("f", "v", "T", "D", "s", "z", "S", "Z", "h"),  # fricatives
    ("tS", "dZ"),  # affricates
    ("l", "r", "w", "j"),  # approximants
)
_VOWELS = (
    *("a", "A:", "A@", "0", "O:", "V", "@", "3:", "E", "e@", "I", "i:", "U", "u:"),
    *("aI", "eI", "OI", "aU", "oU"),  # diphthongs
)
# eSpeak marks allophones with a suffix ("t#": a flapped t, "a#", "@2"); the broad phoneme is what is left.
_ALLOPHONE = re.compile(r"[#0-9]+$")
_STRESS = "',"
_VOWEL_START = set("aeiouAEIOUV03@")
_WORD = re.compile(r"[a-z']+")
# A vocabulary word is a near miss when at most this share of the keyword's phonemes must be changed,
# inserted or deleted to turn one into the other (and at least one must).
_MAX_EDIT_SHARE = 0.5


def near_miss_phrases(
    keywords: Sequence[str],
    *,
    synthesizer: SpeechSynthesizer,
    voice: str = "en-us",
    max_phrases: int = 24,
    seed: int = 0,
    vocabulary: Iterable[str] | None = None,
) -> dict[str, str]:
    """Near misses of the keywords, spoken as negatives so that a wake word learns the word, not its
    neighbourhood (openWakeWord builds its adversarial phrases from phonemes too).

    The keywords are transcribed into phonemes by ``synthesizer`` (eSpeak NG, as ``voice`` says them), and
    the near misses drawn in turn from four kinds:

    - parts of a keyword: its first or last syllables (``k@mpju:`` of ``computer``), each word of a
      several-word keyword alone;
    - one consonant swapped for another of the same manner (stops, nasals, fricatives, affricates,
      approximants): ``k@mpju:d3``, ``t@mpju:t3``;
    - one vowel swapped for another: ``k@mpjoUt3``;
    - everyday words (``vocabulary``, by default those of
      :data:`~audio_transfer.synth.everyday_text.EVERYDAY_SENTENCES`) whose phonemes differ from a
      keyword's in at most half of them (edit distance), closest first.

    A phrase pronounced as a keyword, or holding one, is never returned.

    Args:
        keywords: the wake words (several-word phrases allowed).
        synthesizer: the eSpeak NG backend that transcribes (:func:`~audio_transfer.synth.get_synthesizer`).
        voice: the accent of the transcription.
        max_phrases: most phrases returned per keyword.
        seed: which near misses are drawn.
        vocabulary: words to search for near misses.

    Returns:
        ``{name: spoken}``: a file-safe name (lower-case ASCII) of each phrase, and the text eSpeak NG speaks
        (phonemes in ``[[ ]]`` for the built ones, the word itself for vocabulary words).

    Raises:
        ConfigError: no keyword, or ``max_phrases`` not a positive integer.

    Example:
        >>> near_miss_phrases(["marvin"], synthesizer=get_synthesizer(), max_phrases=3)  # doctest: +SKIP
        {'m-a-v': "[[m'A@v]]", 'm-a-v-i-m': "[[m'A@vIm]]", 'starving': 'starving'}
    """
    if isinstance(keywords, str) or not keywords:
        raise ConfigError(f"keywords must be a non-empty list of words, received {keywords!r}.")
    if not is_positive_int(max_phrases):
        raise ConfigError(f"max_phrases must be a positive integer, received {max_phrases!r}.")
    words = sorted(
        set(_WORD.findall(" ".join(EVERYDAY_SENTENCES if vocabulary is None else vocabulary).lower()))
    )
    transcribed = synthesizer.phonemes([*keywords, *words], voice=voice)
    spoken_keywords = [_words(text) for text in transcribed[: len(keywords)]]
    word_phonemes = dict(zip(words, (_words(text) for text in transcribed[len(keywords) :]), strict=True))
    lowered = [" ".join(_WORD.findall(keyword.lower())) for keyword in keywords]
    phrases: dict[str, str] = {}
    for index, (keyword, phonemes) in enumerate(zip(lowered, spoken_keywords, strict=True)):
        rng = np.random.default_rng([seed, index])
        kinds = [
            _parts(keyword, phonemes),
            _swapped(phonemes, consonants=True),
            _swapped(phonemes, consonants=False),
            _close_words(phonemes, word_phonemes, exclude=keyword.split()),
        ]
        keyword_sequences = [_broad_sequence(other) for other in spoken_keywords]
        pools = [
            [(name, spoken) for name, spoken, said in kind if _is_near_miss(said, keyword_sequences)]
            for kind in kinds
        ]
        for pool in pools[:3]:  # the built kinds in a random order; close words stay closest first
            rng.shuffle(pool)
        for pool in pools:
            pool.reverse()  # drawn from the end
        chosen = 0
        while chosen < max_phrases and any(pools):
            for pool in pools:
                while pool and pool[-1][1] in phrases.values():
                    pool.pop()
                if pool and chosen < max_phrases:
                    name, spoken = pool.pop()
                    phrases[_unique(name, phrases)] = spoken
                    chosen += 1
    return phrases


def _unique(name: str, taken: Collection[str]) -> str:
    """``name``, numbered when taken: names drop what lower-case ASCII cannot tell apart (``N``, ``n``)."""
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{name}-{number}"
    return candidate


def _words(transcription: str) -> list[list[str]]:
    """``"h_'eI dZ_'A@_v_I_s"`` → ``[["h", "'eI"], ["dZ", "'A@", "v", "I", "s"]]``."""
    return [word.split("_") for word in transcription.split()]


def _broad(phoneme: str) -> str:
    """A phoneme without stress mark and allophone suffix: ``"'t#"`` → ``"t"``."""
    return _ALLOPHONE.sub("", phoneme.lstrip(_STRESS)) or phoneme.lstrip(_STRESS)


def _is_vowel(phoneme: str) -> bool:
    return _broad(phoneme)[:1] in _VOWEL_START


def _spoken(phonemes: list[list[str]]) -> str:
    """eSpeak's phoneme input for ``phonemes``; stressed on its first vowel when no stress is left."""
    words = [list(word) for word in phonemes]
    if not any(phoneme[:1] in _STRESS for word in words for phoneme in word):
        for word in words:
            vowel = next((i for i, phoneme in enumerate(word) if _is_vowel(phoneme)), None)
            if vowel is not None:
                word[vowel] = "'" + word[vowel]
                break
    return "[[" + " ".join("".join(word) for word in words) + "]]"


def _name(phonemes: list[list[str]]) -> str:
    """A file-safe name: each phoneme's letters, lower case, ``-`` between phonemes, ``_`` between words."""
    return "_".join(
        "-".join(re.sub(r"[^a-z]", "", _broad(phoneme).lower()) or "x" for phoneme in word)
        for word in phonemes
    )


def _built(phonemes: list[list[str]]) -> tuple[str, str, list[str]]:
    """A built near miss: its name, what eSpeak speaks, and its broad phonemes."""
    return _name(phonemes), _spoken(phonemes), _broad_sequence(phonemes)


def _is_near_miss(said: list[str], keywords: list[list[str]]) -> bool:
    """At least two phonemes, and no keyword's phonemes among them (in broad phonemes)."""
    return len(said) >= 2 and not any(_contains(said, keyword) for keyword in keywords)


def _broad_sequence(phonemes: list[list[str]]) -> list[str]:
    return [_broad(phoneme) for word in phonemes for phoneme in word if _broad(phoneme)]


def _contains(sequence: list[str], part: list[str]) -> bool:
    return any(sequence[i : i + len(part)] == part for i in range(len(sequence) - len(part) + 1))


def _syllable_starts(word: list[str]) -> list[int]:
    """Where each syllable of ``word`` starts: one consonant before a vowel goes to its syllable, of two or
    more the first stays with the previous one (``k@m|pju:|t3``)."""
    vowels = [i for i, phoneme in enumerate(word) if _is_vowel(phoneme)]
    starts = [0]
    for previous, vowel in itertools.pairwise(vowels):
        between = vowel - previous - 1
        starts.append(vowel - between + (1 if between >= 2 else 0))
    return starts


def _parts(keyword: str, phonemes: list[list[str]]) -> list[tuple[str, str, list[str]]]:
    found = []
    if len(phonemes) == len(keyword.split()) > 1:
        for word, said in zip(keyword.split(), phonemes, strict=True):
            found.append((word, word, _broad_sequence([said])))
    for word in phonemes:
        starts = _syllable_starts(word)
        for cut in starts[1:]:
            found += [_built([word[:cut]]), _built([word[cut:]])]
    return found


def _swapped(phonemes: list[list[str]], *, consonants: bool) -> list[tuple[str, str, list[str]]]:
    """``phonemes`` with one consonant swapped within its manner, or one vowel for another."""
    found = []
    for w, word in enumerate(phonemes):
        for p, phoneme in enumerate(word):
            broad = _broad(phoneme)
            if consonants:
                group = next((group for group in _CONSONANT_CLASSES if broad in group), ())
            else:
                group = _VOWELS if _is_vowel(phoneme) else ()
            stress = phoneme[: len(phoneme) - len(phoneme.lstrip(_STRESS))]
            for replacement in group:
                if replacement != broad:
                    changed = [list(other) for other in phonemes]
                    changed[w][p] = stress + replacement
                    found.append(_built(changed))
    return found


def _close_words(
    phonemes: list[list[str]], vocabulary: dict[str, list[list[str]]], *, exclude: list[str]
) -> list[tuple[str, str, list[str]]]:
    """Vocabulary words within :data:`_MAX_EDIT_SHARE` of the keyword's phonemes (of a several-word
    keyword's word), closest first; homophones (distance 0) are left out."""
    targets = [_broad_sequence([word]) for word in phonemes]
    scored = []
    for candidate, transcription in vocabulary.items():
        if candidate in exclude or len(candidate) < 3:
            continue
        said = _broad_sequence(transcription)
        distance = min(_edit_distance(said, target) / len(target) for target in targets)
        if 0 < distance <= _MAX_EDIT_SHARE:
            scored.append((distance, candidate, said))
    return [(word, word, said) for _, word, said in sorted(scored)]


def _edit_distance(a: list[str], b: list[str]) -> int:
    """Levenshtein distance between two phoneme sequences."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]

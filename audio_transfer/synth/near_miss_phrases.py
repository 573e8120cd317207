"""Phrases that sound like a keyword but are not it: the adversarial negatives of a wake word."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

from audio_transfer.checks import is_positive_int
from audio_transfer.errors import ConfigError
from audio_transfer.synth.everyday_text import EVERYDAY_SENTENCES

# A spelled syllable: leading consonants, a vowel group, and the consonants up to the next vowel group's
# onset (one consonant goes to the next syllable, as in "com-pu-ter").
_SYLLABLE = re.compile(r"[^aeiouy]*[aeiouy]+(?:[^aeiouy]*$|[^aeiouy](?=[^aeiouy]))?")
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "w", "sh", "ch")
_VOWELS = ("a", "e", "i", "o", "u", "ee", "oo", "ai")
_WORD = re.compile(r"[a-z']+")


def spelled_syllables(word: str) -> list[str]:
    """``word`` (lower-case letters) cut into spelled syllables; a word without vowels is one syllable.

    Example:
        >>> spelled_syllables("computer")
        ['com', 'pu', 'ter']
    """
    parts = _SYLLABLE.findall(word)
    if not parts or "".join(parts) != word:
        return [word]
    return parts


def near_miss_phrases(
    keywords: Sequence[str],
    *,
    max_phrases: int = 24,
    seed: int = 0,
    vocabulary: Iterable[str] | None = None,
) -> list[str]:
    """Near misses of the keywords, spoken as negatives so that a wake word learns the word, not its
    neighbourhood (openWakeWord builds its adversarial phrases the same way, from phonemes).

    Built from the spelling, without a pronunciation dictionary, in four kinds drawn in turn:

    - parts of a keyword: its first or last syllables (``"compu"``, ``"puter"``), each word of a
      several-word keyword alone;
    - one syllable's leading consonants changed (``"compuder"``, ``"bomputer"``);
    - one syllable's vowel changed (``"compoter"``);
    - everyday words (``vocabulary``, by default those of
      :data:`~audio_transfer.synth.everyday_text.EVERYDAY_SENTENCES`) that share a keyword's first or last
      syllable.

    A phrase that is a keyword, or holds one, is never returned.

    Args:
        keywords: the wake words (several-word phrases allowed).
        max_phrases: most phrases returned per keyword.
        seed: which near misses are drawn.
        vocabulary: words to search for shared syllables.

    Returns:
        the phrases, lower case, without duplicates.

    Raises:
        ConfigError: no keyword, or ``max_phrases`` not a positive integer.

    Example:
        >>> near_miss_phrases(["computer"], max_phrases=4)  # doctest: +SKIP
        ['com', 'bomputer', 'compoter', 'commuter']
    """
    if isinstance(keywords, str) or not keywords:
        raise ConfigError(f"keywords must be a non-empty list of words, received {keywords!r}.")
    if not is_positive_int(max_phrases):
        raise ConfigError(f"max_phrases must be a positive integer, received {max_phrases!r}.")
    words = sorted(
        set(_WORD.findall(" ".join(EVERYDAY_SENTENCES if vocabulary is None else vocabulary).lower()))
    )
    lowered = [" ".join(_WORD.findall(keyword.lower())) for keyword in keywords]
    phrases: list[str] = []
    for index, keyword in enumerate(lowered):
        rng = np.random.default_rng([seed, index])
        kinds = [
            _parts(keyword),
            _changed(keyword, _ONSETS, onset=True),
            _changed(keyword, _VOWELS, onset=False),
        ]
        kinds.append(_sharing_syllables(keyword, words))
        pools = [[phrase for phrase in kind if _is_near_miss(phrase, lowered)] for kind in kinds]
        for pool in pools:
            rng.shuffle(pool)
        chosen: list[str] = []
        while len(chosen) < max_phrases and any(pools):
            for pool in pools:
                while pool and (pool[-1] in chosen or pool[-1] in phrases):
                    pool.pop()
                if pool and len(chosen) < max_phrases:
                    chosen.append(pool.pop())
        phrases += chosen
    return phrases


def _is_near_miss(phrase: str, keywords: list[str]) -> bool:
    padded = f" {phrase} "
    return len(phrase.replace(" ", "")) >= 2 and not any(f" {keyword} " in padded for keyword in keywords)


def _parts(keyword: str) -> list[str]:
    words = keyword.split()
    found = list(words) if len(words) > 1 else []
    for word in words:
        syllables = spelled_syllables(word)
        for cut in range(1, len(syllables)):
            found += ["".join(syllables[:cut]), "".join(syllables[cut:])]
    return found


def _changed(keyword: str, replacements: Sequence[str], *, onset: bool) -> list[str]:
    """The keyword with one syllable's leading consonants (``onset``) or vowel group replaced."""
    words = keyword.split()
    found = []
    for position, word in enumerate(words):
        syllables = spelled_syllables(word)
        for index, syllable in enumerate(syllables):
            match = re.match(r"([^aeiouy]*)([aeiouy]+)(.*)", syllable)
            if match is None:
                continue
            head, vowel, tail = match.groups()
            for replacement in replacements:
                if replacement == (head if onset else vowel):
                    continue
                changed = replacement + vowel + tail if onset else head + replacement + tail
                spelled = "".join([*syllables[:index], changed, *syllables[index + 1 :]])
                found.append(" ".join([*words[:position], spelled, *words[position + 1 :]]))
    return found


def _sharing_syllables(keyword: str, vocabulary: list[str]) -> list[str]:
    """Everyday words that start with a keyword word's first syllable or end with its last one."""
    found = []
    for word in keyword.split():
        syllables = spelled_syllables(word)
        first, last = syllables[0], syllables[-1]
        for candidate in vocabulary:
            if candidate == word or len(candidate) < 3:
                continue
            if (len(first) >= 2 and candidate.startswith(first)) or (
                len(syllables) > 1 and len(last) >= 2 and candidate.endswith(last)
            ):
                found.append(candidate)
    return found

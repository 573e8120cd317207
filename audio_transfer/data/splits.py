"""Deterministic train/validation/test splits that keep each speaker in one split."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections.abc import Iterable, Sequence

from audio_transfer.checks import is_number
from audio_transfer.data.audio_example import AudioExample
from audio_transfer.data.labelled_audio import LabelledAudio, load_labelled_audio
from audio_transfer.errors import ConfigError, DatasetError

logger = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "validation", "test")
# Speech Commands' which_set() constant: the hash is reduced modulo this + 1.
_MAX_NUM_WAVS_PER_CLASS = 2**27 - 1


def _check_fractions(validation_fraction: float, test_fraction: float) -> None:
    for name, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not (is_number(value) and 0.0 <= value < 1.0):
            raise ConfigError(f"{name} must be a number in [0, 1), received {value!r}.")
    if validation_fraction + test_fraction >= 1.0:
        raise ConfigError(
            f"validation_fraction + test_fraction must be below 1 to leave clips for training, received "
            f"{validation_fraction!r} + {test_fraction!r}."
        )


def which_split(key: str, *, validation_fraction: float, test_fraction: float) -> str:
    """The split of a key (a speaker id or a clip's relative path), by a stable hash of the key.

    The same arithmetic as Speech Commands' ``which_set``: the SHA-1 of the key mapped to [0, 1]; below
    ``validation_fraction`` is validation, below ``validation_fraction + test_fraction`` test, else train.
    So for Speech Commands (key = speaker id) the splits equal its official validation and testing lists
    at the same percentages, and they do not change when files are added.

    Returns:
        ``"train"``, ``"validation"`` or ``"test"``.

    Example:
        >>> which_split("0a7c2a8d", validation_fraction=0.1, test_fraction=0.1)
        'train'
    """
    _check_fractions(validation_fraction, test_fraction)
    digest = int(hashlib.sha1(key.encode("utf-8")).hexdigest(), 16)
    position = (digest % (_MAX_NUM_WAVS_PER_CLASS + 1)) / _MAX_NUM_WAVS_PER_CLASS
    if position < validation_fraction:
        return "validation"
    if position < validation_fraction + test_fraction:
        return "test"
    return "train"


def split_examples(
    examples: Iterable[AudioExample], *, validation_fraction: float = 0.1, test_fraction: float = 0.1
) -> dict[str, list[AudioExample]]:
    """Split examples into train, validation and test by a stable hash (see :func:`which_split`).

    Examples with a speaker id are hashed by it, so every clip of a speaker lands in the same split; the
    others (and generated ``_silence_`` clips) by their ``relative_path``. The result does not depend on the
    order of ``examples`` or on other examples; fractions are met on average, not exactly (a dataset with
    few speakers can have an empty validation split).

    Args:
        examples: the clips.
        validation_fraction: share of keys sent to validation, in [0, 1).
        test_fraction: share of keys sent to test, in [0, 1); the two sum below 1.

    Returns:
        ``{"train": [...], "validation": [...], "test": [...]}``, each in the input order.
    """
    _check_fractions(validation_fraction, test_fraction)
    splits: dict[str, list[AudioExample]] = {name: [] for name in SPLITS}
    for example in examples:
        split = which_split(
            example.split_key, validation_fraction=validation_fraction, test_fraction=test_fraction
        )
        splits[split].append(example)
    for name, fraction in (("validation", validation_fraction), ("test", test_fraction)):
        if fraction > 0 and not splits[name]:
            logger.warning(
                "The %s split is empty: too few speakers or clips for %.0f%%.", name, 100 * fraction
            )
    return splits


def load_splits(
    source: str | os.PathLike,
    *,
    validation_source: str | os.PathLike | None = None,
    test_source: str | os.PathLike | None = None,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    keywords: Sequence[str] | None = None,
    **load_kwargs,
) -> tuple[LabelledAudio, dict[str, list[AudioExample]]]:
    """Load a dataset and split it, taking validation or test clips from separate folders when given.

    A split with its own source gets all that source's clips and none of ``source``'s (its fraction is
    ignored); the splits without one are hashed out of ``source`` as in :func:`split_examples`. Separate
    sources are loaded with the same keyword/silence rules and, when they have no ``_background_noise_``
    folder, share ``source``'s noise bank for their ``_silence_`` clips.

    Args:
        source: the training folder or manifest.
        validation_source: folder or manifest of the validation clips, if kept apart.
        test_source: folder or manifest of the test clips, if kept apart.
        validation_fraction: share of ``source`` sent to validation when there is no ``validation_source``.
        test_fraction: share of ``source`` sent to test when there is no ``test_source``.
        keywords: as :func:`load_labelled_audio`.
        **load_kwargs: the other arguments of :func:`load_labelled_audio`.

    Returns:
        ``source``'s :class:`LabelledAudio` (its labels and noise bank are the training set's) and the splits.

    Raises:
        DatasetError: a separate source has a class ``source`` lacks.
    """
    data = load_labelled_audio(source, keywords=keywords, **load_kwargs)
    separate = {"validation": validation_source, "test": test_source}
    splits = split_examples(
        data.examples,
        validation_fraction=0.0 if validation_source is not None else validation_fraction,
        test_fraction=0.0 if test_source is not None else test_fraction,
    )
    for name, other_source in separate.items():
        if other_source is None:
            continue
        other = load_labelled_audio(other_source, keywords=keywords, **load_kwargs)
        if not other.noise_files and data.noise_files:
            other = load_labelled_audio(
                other_source, keywords=keywords, **{**load_kwargs, "noise_files": data.noise_files}
            )
        extra = sorted(set(other.labels) - set(data.labels))
        if extra:
            raise DatasetError(
                f"The {name} set {os.fspath(other_source)!r} has classes the training set "
                f"{os.fspath(source)!r} lacks: {', '.join(extra)}. Give both the same class folders."
            )
        shared = data.speakers & other.speakers
        if shared:
            logger.warning(
                "%d speakers appear in both %s and the %s set %s (e.g. %s): scores on it will be optimistic.",
                len(shared),
                source,
                name,
                other_source,
                sorted(shared)[0],
            )
        splits[name] = list(other.examples)
        data = dataclasses.replace(data, skipped=[*data.skipped, *other.skipped])
    return data, splits

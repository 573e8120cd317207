"""Choosing validation clips out of the training data when no validation set is given."""

from __future__ import annotations

import collections
import dataclasses
import logging
from collections.abc import Sequence

import numpy as np

from audio_transfer.data import AudioExample, split_examples
from audio_transfer.errors import ConfigError

logger = logging.getLogger(__name__)

HOLDOUT_MODES = ("speakers", "clips", "classes", "none")


def hold_out_validation(
    examples: Sequence[AudioExample],
    *,
    fraction: float,
    hold_out: str,
    min_examples: int,
    seed: int = 0,
) -> tuple[list[AudioExample], list[AudioExample]]:
    """Split ``examples`` into training and validation clips, by what validation must measure.

    - ``hold_out="speakers"`` (keywords, sounds): speaker-disjoint, by the stable hash of
      :func:`audio_transfer.data.split_examples`, so validation measures voices the head never heard;
    - ``hold_out="clips"`` (speaker identification, where speakers are the classes): ``fraction`` of each
      class's clips, at least one, drawn at random (seeded);
    - ``hold_out="classes"`` (speaker verification, which must work for people never enrolled before):
      whole classes, by the same stable hash of the class name;
    - ``hold_out="none"``: nothing; every example trains.

    Nothing is held out when a class has fewer than ``min_examples`` clips (validation from so few would
    cost the head examples it needs and measure little), nor when the split leaves a class without training
    clips (or, holding out classes, either side with fewer than two); both are logged.

    Returns:
        ``(train, validation)``; ``validation`` is empty when nothing was held out.
    """
    if hold_out not in HOLDOUT_MODES:
        raise ConfigError(f"hold_out must be one of {', '.join(HOLDOUT_MODES)}; received {hold_out!r}.")
    if hold_out == "none":
        return list(examples), []
    counts = collections.Counter(example.label for example in examples)
    smallest = min(counts.values(), default=0)
    if smallest < min_examples:
        label = min(counts, key=counts.get)
        logger.warning(
            "Keeping every example for training, without validation: class %r has only %d examples (under "
            "%d). Early stopping is off; pass validation data (--val-data) to measure the model.",
            label,
            smallest,
            min_examples,
        )
        return list(examples), []
    if hold_out == "clips":
        return _stratified(examples, fraction=fraction, seed=seed)
    keyed = examples
    if hold_out == "classes":
        keyed = [dataclasses.replace(example, speaker=example.label) for example in examples]
    splits = split_examples(keyed, validation_fraction=fraction, test_fraction=0.0)
    in_validation = {id(example) for example in splits["validation"]}
    train = [e for e, k in zip(examples, keyed, strict=True) if id(k) not in in_validation]
    validation = [e for e, k in zip(examples, keyed, strict=True) if id(k) in in_validation]
    train_labels = {example.label for example in train}
    if hold_out == "classes":
        problem = None
        if min(len(train_labels), len(counts) - len(train_labels)) < 2:
            problem = f"{len(counts) - len(train_labels)} of {len(counts)} classes came out for validation"
    else:
        missing = sorted(set(counts) - train_labels)
        problem = f"classes {missing} would have no training clips" if missing else None
        if not validation:
            problem = "it came out empty"
    if problem:
        logger.warning(
            "Keeping every example for training, without validation: the %s-disjoint validation split "
            "failed (%s). Pass validation data (--val-data) to measure the model.",
            hold_out.rstrip("s"),
            problem,
        )
        return list(examples), []
    logger.info(
        "Held out %d of %d clips for validation, %s-disjoint from training.",
        len(validation),
        len(examples),
        hold_out.rstrip("s"),
    )
    return train, validation


def _stratified(
    examples: Sequence[AudioExample], *, fraction: float, seed: int
) -> tuple[list[AudioExample], list[AudioExample]]:
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = collections.defaultdict(list)
    for index, example in enumerate(examples):
        by_label[example.label].append(index)
    held = set()
    for indices in by_label.values():
        held.update(rng.choice(indices, size=max(1, round(fraction * len(indices))), replace=False).tolist())
    logger.info(
        "Held out %d of %d clips for validation, %.0f%% of each class.",
        len(held),
        len(examples),
        100 * fraction,
    )
    train = [example for index, example in enumerate(examples) if index not in held]
    validation = [example for index, example in enumerate(examples) if index in held]
    return train, validation

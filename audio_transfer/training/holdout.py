"""Choosing validation clips out of the training data when no validation set is given."""

from __future__ import annotations

import collections
import logging
from collections.abc import Sequence

import numpy as np

from audio_transfer.data import AudioExample, split_examples

logger = logging.getLogger(__name__)


def hold_out_validation(
    examples: Sequence[AudioExample],
    *,
    fraction: float,
    by_speaker: bool,
    min_examples: int,
    seed: int = 0,
) -> tuple[list[AudioExample], list[AudioExample]]:
    """Split ``examples`` into training and validation clips.

    Two ways, by what validation must measure:

    - ``by_speaker=True`` (keywords, sounds): speaker-disjoint, by the stable hash of
      :func:`audio_transfer.data.split_examples`, so validation measures voices the head never heard;
    - ``by_speaker=False`` (speaker identification, where speakers are the classes): ``fraction`` of each
      class's clips, at least one, drawn at random (seeded).

    Nothing is held out when a class has fewer than ``min_examples`` clips (validation from so few would
    cost the head examples it needs and measure little), nor when the speaker-disjoint split leaves a class
    without training clips; both are logged.

    Returns:
        ``(train, validation)``; ``validation`` is empty when nothing was held out.
    """
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
    if by_speaker:
        splits = split_examples(examples, validation_fraction=fraction, test_fraction=0.0)
        train, validation = splits["train"], splits["validation"]
        missing = sorted(set(counts) - {example.label for example in train})
        if missing or not validation:
            reason = f"classes {missing} would have no training clips" if missing else "it came out empty"
            logger.warning(
                "Keeping every example for training, without validation: the speaker-disjoint validation "
                "split failed (%s). Pass validation data (--val-data) to measure the model.",
                reason,
            )
            return list(examples), []
        logger.info(
            "Held out %d of %d clips (%d speakers) for validation, speaker-disjoint from training.",
            len(validation),
            len(examples),
            len({example.speaker for example in validation if example.speaker}),
        )
        return train, validation
    rng = np.random.default_rng(seed)
    held = set()
    by_label: dict[str, list[int]] = collections.defaultdict(list)
    for index, example in enumerate(examples):
        by_label[example.label].append(index)
    for indices in by_label.values():
        count = max(1, round(fraction * len(indices)))
        held.update(rng.choice(indices, size=count, replace=False).tolist())
    logger.info(
        "Held out %d of %d clips for validation, %.0f%% of each class.",
        len(held),
        len(examples),
        100 * fraction,
    )
    train = [example for index, example in enumerate(examples) if index not in held]
    validation = [example for index, example in enumerate(examples) if index in held]
    return train, validation

"""K-fold splits of training clips for head selection: whole speakers per fold, else stratified by class."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from audio_transfer import checks
from audio_transfer.errors import InputShapeError


def cross_validation_folds(
    *,
    labels: np.ndarray,
    groups: Sequence[str | None] | None = None,
    num_folds: int = 5,
    seed: int = 0,
) -> list[np.ndarray]:
    """The held-out clips of each fold of a k-fold split of ``labels``.

    With ``groups`` (one speaker per clip; ``None`` for a clip of an unknown speaker, which is a group
    of its own) every group's clips fall in one fold, so each fold measures voices its training part
    never heard; groups are dealt largest first to the fold with the fewest clips so far (ties broken by
    a seeded shuffle). Without groups, each class's clips are shuffled and dealt round the folds in turn
    (stratified), each class starting where the previous one stopped.

    Args:
        labels: ``(clips,)`` integer class of each clip.
        groups: ``(clips,)`` group of each clip, or ``None`` to stratify by class.
        num_folds: folds wanted (>= 2); fewer when there are fewer groups (or fewer clips in the largest
            class, stratified).
        seed: seeds the shuffles.

    Returns:
        one ``(held_out,)`` array of clip indices per fold, sorted; together they hold each clip once.

    Example:
        >>> folds = cross_validation_folds(labels=np.array([0, 0, 1, 1]), groups=["a", "b", "a", "b"])
        >>> [fold.tolist() for fold in folds]
        [[1, 3], [0, 2]]
    """
    num_folds = checks.integer("num_folds", num_folds, at_least=2)
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise InputShapeError(f"labels must have shape (clips,), received {labels.shape}.")
    rng = np.random.default_rng(seed)
    assignment = np.zeros(len(labels), np.int64)
    if groups is not None:
        if len(groups) != len(labels):
            raise InputShapeError(
                f"{len(groups)} groups were given for {len(labels)} clips; give one per clip."
            )
        keys = [
            f"group:{group}" if group is not None else f"clip:{index}" for index, group in enumerate(groups)
        ]
        members: dict[str, list[int]] = {}
        for index, key in enumerate(keys):
            members.setdefault(key, []).append(index)
        names = [sorted(members)[i] for i in rng.permutation(len(members))]
        names.sort(key=lambda name: -len(members[name]))  # stable: the shuffle breaks ties
        folds = min(num_folds, len(names))
        sizes = np.zeros(folds, np.int64)
        for name in names:
            fold = int(np.argmin(sizes))
            assignment[members[name]] = fold
            sizes[fold] += len(members[name])
    else:
        counts = np.bincount(labels) if len(labels) else np.zeros(0, np.int64)
        folds = max(min(num_folds, int(counts.max(initial=0))), 1)
        start = 0
        for label in np.flatnonzero(counts):
            indices = rng.permutation(np.flatnonzero(labels == label))
            assignment[indices] = (start + np.arange(len(indices))) % folds
            start = (start + len(indices)) % folds
    return [np.flatnonzero(assignment == fold) for fold in range(folds)]

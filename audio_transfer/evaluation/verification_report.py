"""Metrics of a speaker verifier from scored trials: EER, minDCF and the DET curve."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from audio_transfer.errors import ConfigError, InputShapeError


@dataclasses.dataclass(frozen=True, eq=False)
class VerificationReport:
    """Error rates of a verifier over every decision threshold, with EER and minDCF.

    A trial is accepted when its score is ``>= threshold``. ``thresholds`` runs from a value above every
    score (everything rejected: FAR 0, FRR 1) down through each distinct score to the lowest score
    (everything accepted: FAR 1, FRR 0); ``far`` and ``frr`` are the rates at each threshold, i.e. the
    points of the DET curve. Rates are fractions in [0, 1], not percent.

    Definitions:
        - **EER** is where the ROC, drawn as straight lines between its points, crosses FAR = FRR: the
          crossing is interpolated linearly between the two neighbouring thresholds. This is the
          definition of the usual ``brentq(lambda x: 1 - x - interp1d(fpr, tpr)(x), 0, 1)`` recipe
          (pyannote, Resemblyzer); nearest-point variants (Kaldi's ``compute-eer``, ``max(FAR, FRR)`` at
          the closest point) differ from it by less than one step of the curve. ``eer_threshold``
          interpolates the two neighbouring thresholds in the same proportion.
        - **minDCF** is the NIST SRE detection cost ``c_miss·p_target·FRR + c_fa·(1 − p_target)·FAR``
          minimised over the thresholds and normalised by ``min(c_miss·p_target, c_fa·(1 − p_target))``,
          the cost of always accepting or always rejecting; it therefore lies in [0, 1].

    Attributes:
        eer, eer_threshold, min_dcf, min_dcf_threshold: see above.
        p_target, c_miss, c_fa: the cost parameters of minDCF.
        num_target, num_nontarget: trials of the same speaker and of different speakers.
        thresholds, far, frr: ``(num_distinct_scores + 1,)`` DET curve points, thresholds descending.
    """

    eer: float
    eer_threshold: float
    min_dcf: float
    min_dcf_threshold: float
    p_target: float
    c_miss: float
    c_fa: float
    num_target: int
    num_nontarget: int
    thresholds: np.ndarray
    far: np.ndarray
    frr: np.ndarray

    @property
    def num_trials(self) -> int:
        return self.num_target + self.num_nontarget

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the curve, which has one point per distinct score)."""
        return {
            "kind": "verification",
            "eer": self.eer,
            "eer_threshold": self.eer_threshold,
            "min_dcf": self.min_dcf,
            "min_dcf_threshold": self.min_dcf_threshold,
            "p_target": self.p_target,
            "c_miss": self.c_miss,
            "c_fa": self.c_fa,
            "num_trials": self.num_trials,
            "num_target": self.num_target,
            "num_nontarget": self.num_nontarget,
        }

    def to_text(self) -> str:
        """A short report for people."""
        return (
            f"{self.num_trials} trials ({self.num_target} same speaker, {self.num_nontarget} different)\n"
            f"EER {self.eer:.2%} at threshold {self.eer_threshold:.4f}\n"
            f"minDCF {self.min_dcf:.4f} (p_target {self.p_target:g}, c_miss {self.c_miss:g}, "
            f"c_fa {self.c_fa:g}) at threshold {self.min_dcf_threshold:.4f}\n"
        )


def verification_metrics(
    scores: Sequence[float] | np.ndarray,
    same_speaker: Sequence[bool] | np.ndarray,
    *,
    p_target: float = 0.01,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> VerificationReport:
    """EER, minDCF and DET curve of scored trials (higher score = more likely the same speaker).

    Args:
        scores: ``(num_trials,)`` similarity of each trial, e.g. from :func:`cosine_scores`.
        same_speaker: ``(num_trials,)`` True for target trials (both clips from one speaker).
        p_target: prior probability of a target trial for minDCF (NIST SRE 2008–2010: 0.01).
        c_miss: cost of rejecting a target trial.
        c_fa: cost of accepting a non-target trial.

    Returns:
        a :class:`VerificationReport`; its docstring defines EER and minDCF.

    Raises:
        InputShapeError: the inputs are not one-dimensional or differ in length.
        ConfigError: NaN or infinite scores, no target or no non-target trial, or cost parameters out of
            range.

    Example:
        >>> report = verification_metrics([0.9, 0.8, 0.3, 0.1], [True, True, False, False])
        >>> report.eer, report.min_dcf
        (0.0, 0.0)
    """
    if not 0.0 < p_target < 1.0:
        raise ConfigError(f"p_target must lie strictly between 0 and 1, received {p_target!r}.")
    if not (c_miss > 0 and c_fa > 0):
        raise ConfigError(f"c_miss and c_fa must be positive, received c_miss={c_miss!r}, c_fa={c_fa!r}.")
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same_speaker)
    if scores.ndim != 1 or same.shape != scores.shape:
        raise InputShapeError(
            "scores and same_speaker must be one-dimensional and of equal length, received shapes "
            f"{scores.shape} and {same.shape}."
        )
    if same.dtype != np.bool_:
        if not np.isin(same, (0, 1)).all():
            raise ConfigError("same_speaker must hold booleans (or 0/1).")
        same = same.astype(bool)
    if not np.isfinite(scores).all():
        raise ConfigError(f"scores hold {int((~np.isfinite(scores)).sum())} NaN or infinite values.")
    num_target = int(same.sum())
    num_nontarget = int(same.size - num_target)
    if num_target == 0 or num_nontarget == 0:
        raise ConfigError(
            "verification needs at least one same-speaker and one different-speaker trial, received "
            f"{num_target} and {num_nontarget}: evaluate on at least two speakers with two clips or more."
        )

    thresholds, far, frr = _det_points(scores, same, num_target=num_target, num_nontarget=num_nontarget)
    eer, eer_threshold = _equal_error_rate(thresholds, far, frr)
    cost = c_miss * p_target * frr + c_fa * (1.0 - p_target) * far
    best = int(np.argmin(cost))
    normaliser = min(c_miss * p_target, c_fa * (1.0 - p_target))
    for array in (thresholds, far, frr):
        array.flags.writeable = False
    return VerificationReport(
        eer=eer,
        eer_threshold=eer_threshold,
        min_dcf=float(cost[best] / normaliser),
        min_dcf_threshold=float(thresholds[best]),
        p_target=float(p_target),
        c_miss=float(c_miss),
        c_fa=float(c_fa),
        num_target=num_target,
        num_nontarget=num_nontarget,
        thresholds=thresholds,
        far=far,
        frr=frr,
    )


def _det_points(
    scores: np.ndarray, same: np.ndarray, *, num_target: int, num_nontarget: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thresholds (descending) and the FAR/FRR of accepting ``score >= threshold`` at each."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    sorted_same = same[order]
    # Last position of each run of equal scores: the threshold accepts the whole run.
    run_end = np.r_[np.diff(sorted_scores) != 0, True]
    accepted_targets = np.cumsum(sorted_same)[run_end]
    accepted_nontargets = np.cumsum(~sorted_same)[run_end]
    above_all = np.nextafter(sorted_scores[0], np.inf)
    thresholds = np.r_[above_all, sorted_scores[run_end]]
    far = np.r_[0.0, accepted_nontargets / num_nontarget]
    frr = np.r_[1.0, (num_target - accepted_targets) / num_target]
    return thresholds, far, frr


def _equal_error_rate(thresholds: np.ndarray, far: np.ndarray, frr: np.ndarray) -> tuple[float, float]:
    """EER where the linearly interpolated curve crosses FAR = FRR, and the interpolated threshold."""
    gap = frr - far  # 1 at the first point, -1 at the last, non-increasing in between
    k = int(np.argmax(gap <= 0))  # first point at or past the crossing; k >= 1 since gap[0] = 1
    fraction = gap[k - 1] / (gap[k - 1] - gap[k])
    eer = far[k - 1] + fraction * (far[k] - far[k - 1])
    threshold = thresholds[k - 1] + fraction * (thresholds[k] - thresholds[k - 1])
    return float(eer), float(threshold)

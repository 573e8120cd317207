"""L2-regularised multinomial logistic regression fitted on a whole training set at once (L-BFGS, NumPy)."""

from __future__ import annotations

import numpy as np

from audio_transfer import checks
from audio_transfer.errors import InputShapeError

# Past curvature pairs L-BFGS keeps, and steps in a row of too little improvement that end the fit.
_MEMORY = 10
_PATIENCE = 5
# Rows the objective converts to float64 at a time: memory holds the features as given plus one such chunk
# (a few MB), however many rows there are.
_CHUNK_ROWS = 8192


def fit_softmax_regression(
    features,
    labels,
    *,
    num_classes: int,
    l2: float,
    sample_weight=None,
    center=None,
    scale=None,
    max_steps: int = 1000,
    tolerance: float = 1e-9,
) -> dict:
    """Minimise ``mean_i(w_i · cross_entropy_i) + l2 · ||kernel||²`` of ``softmax(x @ kernel + bias)``, where
    ``x = (features - center) * scale`` (``features`` as they are when neither is given).

    The objective is convex, so the fit reaches the one minimiser whatever the start; with
    ``l2 = 1 / (2·C·n)`` it is scikit-learn's ``LogisticRegression(C=C)`` objective divided by ``C·n``
    (same solution). The solver is L-BFGS with a backtracking line search, in float64, from zeros. It stops
    when the objective has improved by less than ``tolerance`` (relative) for five steps in a row, when
    the gradient vanishes or no step improves it any more, or after ``max_steps`` steps.

    Every evaluation of the objective reads the rows a chunk at a time, standardizing and converting each
    chunk to float64 as it goes: memory holds ``features`` as given (float32 stays float32) and one chunk,
    never a float64 or standardized copy of them all, so a fit on hundreds of thousands of examples costs
    their float32 features.

    Args:
        features: ``(n, features)`` inputs.
        labels: ``(n,)`` class indices in ``[0, num_classes)``.
        num_classes: number of classes (>= 2).
        l2: weight of the squared kernel norm (>= 0); the bias is not penalised.
        sample_weight: ``(n,)`` non-negative weight of each example's cross-entropy; ``None``: all 1.
        center: ``(features,)`` subtracted from every row before ``scale`` (standardize for a
            well-conditioned fit); ``None``: 0.
        scale: ``(features,)`` factor of every centered row; ``None``: 1.
        max_steps: most L-BFGS steps (>= 1).
        tolerance: relative improvement below which a step counts as no progress (>= 0).

    Returns:
        ``{"kernel": (features, num_classes), "bias": (num_classes,), "loss": the objective,
        "cross_entropy": its mean weighted cross-entropy, "accuracy": on ``features``, "steps": taken}``;
        the kernel applies to the standardized rows ``x``.

    Example:
        >>> fitted = fit_softmax_regression(x, y, num_classes=3, l2=1 / (2 * len(y)))
        >>> probabilities = softmax(x @ fitted["kernel"] + fitted["bias"])
    """
    num_classes = checks.integer("num_classes", num_classes, at_least=2)
    l2 = checks.number("l2", l2, at_least=0.0)
    max_steps = checks.integer("max_steps", max_steps, at_least=1)
    tolerance = checks.number("tolerance", tolerance, at_least=0.0)
    x = np.asarray(features)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    y = np.asarray(labels)
    if x.ndim != 2 or y.shape != (len(x),) or not len(x):
        raise InputShapeError(
            f"fit_softmax_regression expects features (n, features) and labels (n,) with n > 0, received "
            f"shapes {x.shape} and {y.shape}."
        )
    weights = np.ones(len(x)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    if weights.shape != (len(x),) or (weights < 0).any():
        raise InputShapeError(
            f"sample_weight must hold one non-negative weight per example ({len(x)}), received shape "
            f"{weights.shape}."
        )
    n, dim = x.shape
    shift, factor = (
        np.full(dim, default) if given is None else np.asarray(given, np.float64)
        for given, default in ((center, 0.0), (scale, 1.0))
    )
    if shift.shape != (dim,) or factor.shape != (dim,):
        raise InputShapeError(
            f"center and scale must hold one value per feature ({dim}), received shapes {shift.shape} and "
            f"{factor.shape}."
        )
    chunks = [slice(start, start + _CHUNK_ROWS) for start in range(0, n, _CHUNK_ROWS)]
    rows = np.arange(min(n, _CHUNK_ROWS))

    def objective(theta: np.ndarray) -> tuple[float, float, np.ndarray, int]:
        kernel, bias = theta[: dim * num_classes].reshape(dim, num_classes), theta[dim * num_classes :]
        weighted_log_likelihood, correct = 0.0, 0
        kernel_gradient, bias_gradient = 2 * l2 * kernel, np.zeros(num_classes)
        for part in chunks:
            inputs = (x[part] - shift) * factor
            logits = inputs @ kernel + bias
            logits -= logits.max(axis=1, keepdims=True)
            log_probabilities = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
            index, truth = rows[: len(inputs)], y[part]
            weighted_log_likelihood += float(weights[part] @ log_probabilities[index, truth])
            error = np.exp(log_probabilities)
            error[index, truth] -= 1.0
            error *= (weights[part] / n)[:, np.newaxis]
            kernel_gradient += inputs.T @ error
            bias_gradient += error.sum(axis=0)
            correct += int((logits.argmax(axis=1) == truth).sum())
        cross_entropy = -weighted_log_likelihood / n
        gradient = np.concatenate([kernel_gradient.ravel(), bias_gradient])
        return cross_entropy + l2 * float((kernel**2).sum()), cross_entropy, gradient, correct

    theta = np.zeros(dim * num_classes + num_classes)
    loss, cross_entropy, gradient, correct = objective(theta)
    pairs: list[tuple[np.ndarray, np.ndarray, float]] = []
    steps = stalled = 0
    while steps < max_steps and stalled < _PATIENCE and np.abs(gradient).max() > 1e-12:
        direction = _lbfgs_direction(gradient, pairs)
        if not pairs:
            direction /= max(np.linalg.norm(gradient), 1.0)
        slope = float(gradient @ direction)
        if slope >= 0:  # not a descent direction (rounding): restart from steepest descent
            pairs.clear()
            direction, slope = -gradient, -float(gradient @ gradient)
        rate = 1.0
        while True:
            candidate = theta + rate * direction
            new = objective(candidate)
            if new[0] <= loss + 1e-4 * rate * slope or rate < 1e-10:
                break
            rate /= 2
        if not new[0] < loss:
            break  # no step improves the objective: converged to rounding
        steps += 1
        improvement = (loss - new[0]) / max(abs(loss), abs(new[0]), 1.0)
        stalled = stalled + 1 if improvement < tolerance else 0
        step, change = candidate - theta, new[2] - gradient
        curvature = float(step @ change)
        if curvature > 1e-12:
            pairs = [*pairs[-(_MEMORY - 1) :], (step, change, 1.0 / curvature)]
        theta = candidate
        loss, cross_entropy, gradient, correct = new
    return {
        "kernel": theta[: dim * num_classes].reshape(dim, num_classes),
        "bias": theta[dim * num_classes :],
        "loss": loss,
        "cross_entropy": cross_entropy,
        "accuracy": correct / n,
        "steps": steps,
    }


def column_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """float64 ``(features,)`` mean and population standard deviation of the columns of ``(n, features)``
    ``features``, accumulated over chunks of rows: no float64 copy of them all is made.

    Example:
        >>> mean, std = column_statistics(np.array([[1.0, 5.0], [3.0, 5.0]], np.float32))
        >>> mean.tolist(), std.tolist()
        ([2.0, 5.0], [1.0, 0.0])
    """
    features = np.asarray(features)
    chunks = [features[start : start + _CHUNK_ROWS] for start in range(0, len(features), _CHUNK_ROWS)]
    mean = sum(chunk.sum(axis=0, dtype=np.float64) for chunk in chunks) / len(features)
    variance = sum(((chunk - mean) ** 2).sum(axis=0) for chunk in chunks) / len(features)
    return mean, np.sqrt(variance)


def _lbfgs_direction(gradient: np.ndarray, pairs: list[tuple[np.ndarray, np.ndarray, float]]) -> np.ndarray:
    """The L-BFGS two-loop recursion: ``-H·gradient`` for the inverse Hessian estimate of ``pairs``."""
    q = gradient.copy()
    alphas = []
    for step, change, rho in reversed(pairs):
        alpha = rho * float(step @ q)
        q -= alpha * change
        alphas.append(alpha)
    if pairs:
        step, change, _ = pairs[-1]
        q *= float(step @ change) / float(change @ change)
    for (step, change, rho), alpha in zip(pairs, reversed(alphas), strict=True):
        q += (alpha - rho * float(change @ q)) * step
    return -q

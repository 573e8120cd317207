"""Pooling, standardization and one softmax layer fitted to convergence: the linear probe as a head."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from audio_transfer import checks
from audio_transfer.errors import ConfigError, InputShapeError
from audio_transfer.heads.pooling import get_pooling
from audio_transfer.heads.softmax_regression import column_statistics, fit_softmax_regression

# Poolings without weights: the standardization is measured on pooled training embeddings before the fit.
LINEAR_POOLING_NAMES = ("mean", "mean_max")


@keras.saving.register_keras_serializable(package="audio_transfer")
class LinearHead(keras.layers.Layer):
    """Maps a clip's frame embeddings to class probabilities with a standardized linear softmax.

    ``pooling -> (x - mean) * scale -> softmax(x @ kernel + bias)``: the logistic-regression "linear probe"
    on frozen embeddings, folded into the graph (one dense layer once exported) so that it exports like
    every head. ``mean`` and ``scale`` are non-trainable weights measured on the training embeddings by
    :meth:`adapt` (as scikit-learn's ``StandardScaler``: the population standard deviation, 1 where it is
    0); ``kernel`` and ``bias`` are fitted on the whole training set at once by :meth:`fit` (L2-regularised
    multinomial logistic regression, to convergence).

    Args:
        num_classes: number of outputs (>= 2).
        pooling: ``"mean"`` or ``"mean_max"`` (:data:`LINEAR_POOLING_NAMES`): a pooling without weights, so
            that the standardization can be measured before the fit.

    Shapes:
        input ``(batch, windows, dim)`` float32; output ``(batch, num_classes)`` probabilities.

    Example:
        >>> head = LinearHead(3)
        >>> frames = np.random.default_rng(0).normal(size=(30, 12, 96)).astype("float32")
        >>> head.fit(frames, np.arange(30) % 3)["steps"] > 0
        True
        >>> tuple(head(frames).shape)
        (30, 3)
    """

    def __init__(self, num_classes: int, *, pooling: str = "mean_max", **kwargs) -> None:
        super().__init__(**kwargs)
        num_classes = checks.integer("num_classes", num_classes, at_least=2)
        self.pooling_name = checks.choice("pooling", pooling, LINEAR_POOLING_NAMES)
        self.num_classes = num_classes
        self.pooling = get_pooling(pooling)

    def build(self, input_shape) -> None:
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise InputShapeError(
                f"{type(self).__name__} expects (batch, windows, dim) embeddings with a known dim, received "
                f"shape {tuple(input_shape)}."
            )
        self.pooling.build(input_shape)
        shape = self.pooling.compute_output_shape(input_shape)
        features = shape[-1]
        self.mean = self.add_weight(shape=(features,), initializer="zeros", trainable=False, name="mean")
        self.scale = self.add_weight(shape=(features,), initializer="ones", trainable=False, name="scale")
        self.kernel = self.add_weight(
            shape=(features, self.num_classes), initializer="glorot_uniform", name="kernel"
        )
        self.bias = self.add_weight(shape=(self.num_classes,), initializer="zeros", name="bias")

    def call(self, inputs, training=None):
        return self.pooled_probabilities(self.pooling(inputs))

    def pooled_probabilities(self, pooled):
        """Class probabilities ``(clips, num_classes)`` of ``(clips, features)`` embeddings already pooled
        by :meth:`pool`: the head after its pooling."""
        # The standardization folded into the softmax layer's weights (constants once exported): one dense
        # layer on the pooled embeddings as they are.
        kernel = self.kernel * ops.expand_dims(self.scale, -1)
        bias = self.bias - ops.matmul(ops.expand_dims(self.mean, 0), kernel)[0]
        return ops.softmax(ops.matmul(pooled, kernel) + bias, axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def pool(self, frames) -> np.ndarray:
        """``(clips, windows, dim)`` frame embeddings → ``(clips, features)`` pooled, not standardized."""
        frames = np.asarray(frames, np.float32)
        if not self.built:
            self.build(frames.shape)
        return keras.ops.convert_to_numpy(self.pooling(frames))

    def adapt(self, pooled) -> None:
        """Set ``mean`` and ``scale`` from ``(clips, features)`` pooled training embeddings: afterwards the
        standardized training embeddings have mean 0 and (population) standard deviation 1 per feature.
        The statistics are accumulated in float64 over chunks of rows, without a float64 copy of them all."""
        pooled = np.asarray(pooled)
        if pooled.ndim != 2 or len(pooled) < 1:
            raise InputShapeError(
                f"{type(self).__name__}.adapt expects pooled embeddings (clips, features), received shape "
                f"{pooled.shape}."
            )
        mean, std = column_statistics(pooled)
        self.mean.assign(mean.astype(np.float32))
        self.scale.assign((1.0 / np.where(std > 0, std, 1.0)).astype(np.float32))

    def fit(
        self,
        frames,
        labels,
        *,
        sample_weight=None,
        inverse_regularization: float = 1.0,
        max_steps: int = 1000,
        tolerance: float = 1e-9,
    ) -> dict[str, float]:
        """Pool ``frames``, :meth:`adapt` to them, then fit the softmax layer to convergence on all of them.

        The objective is scikit-learn's ``LogisticRegression(C=inverse_regularization)`` divided by ``C·n``
        (the same minimiser): the mean (sample-weighted) cross-entropy of the ``n`` clips plus
        ``l2 · ||kernel||²`` with ``l2 = 1 / (2·C·n)``; the bias is not penalised. See
        :func:`~audio_transfer.heads.softmax_regression.fit_softmax_regression` for the solver (L-BFGS)
        and its stopping rule.

        Args:
            frames: ``(clips, windows, dim)`` frame embeddings of the training clips, or ``(clips,
                features)`` already pooled by :meth:`pool` (for a built head), which a trainer streaming
                many clips keeps instead of their frames.
            labels: ``(clips,)`` class indices in ``[0, num_classes)``.
            sample_weight: ``(clips,)`` weight of each clip's cross-entropy; ``None`` weighs all as 1.
            inverse_regularization: ``C`` above (> 0); larger fits the training data more closely.
            max_steps: most solver steps.
            tolerance: the fit stops once the loss improves by less than this fraction for a few steps.

        Returns:
            ``{"loss": regularised objective, "cross_entropy", "accuracy": on the training clips,
            "steps": solver steps}``.
        """
        inverse_regularization = checks.number("inverse_regularization", inverse_regularization, above=0.0)
        pooled = np.asarray(frames, np.float32) if np.ndim(frames) == 2 and self.built else self.pool(frames)
        labels = np.asarray(labels)
        if labels.shape != (len(pooled),) or not np.issubdtype(labels.dtype, np.integer):
            raise InputShapeError(
                f"{type(self).__name__}.fit expects one integer label per clip, {len(pooled)} in all; "
                f"received {labels.dtype} labels of shape {labels.shape}."
            )
        if len(labels) and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ConfigError(
                f"The labels must be in [0, {self.num_classes - 1}], received values from {labels.min()} to "
                f"{labels.max()}."
            )
        self.adapt(pooled)
        fitted = fit_softmax_regression(
            pooled,
            labels,
            num_classes=self.num_classes,
            sample_weight=sample_weight,
            center=keras.ops.convert_to_numpy(self.mean),
            scale=keras.ops.convert_to_numpy(self.scale),
            l2=1.0 / (2.0 * inverse_regularization * len(labels)),
            max_steps=max_steps,
            tolerance=tolerance,
        )
        self.kernel.assign(fitted["kernel"].astype(np.float32))
        self.bias.assign(fitted["bias"].astype(np.float32))
        return {key: fitted[key] for key in ("loss", "cross_entropy", "accuracy", "steps")}

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes, "pooling": self.pooling_name}

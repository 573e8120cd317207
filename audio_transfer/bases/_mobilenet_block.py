"""What the MobileNet v1 blocks (:class:`ConvBlock`, :class:`SeparableConvBlock`) share: arguments, config."""

from __future__ import annotations

import keras

from audio_transfer import checks
from audio_transfer.errors import ConfigError


class MobileNetBlock(keras.layers.Layer):
    """Validated ``filters``, ``kernel_size``, ``strides`` and ``batchnorm_epsilon`` and their config.

    Subclasses create their convolutions and batch normalizations (with :meth:`batch_norm`) in
    :meth:`create_layers`, which the constructor calls once the arguments are checked.
    """

    def __init__(
        self, *, filters: int, kernel_size: int, strides: int, batchnorm_epsilon: float = 1e-4, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        if not batchnorm_epsilon > 0:
            raise ConfigError(
                f"{type(self).__name__} {self.name!r}: batchnorm_epsilon must be positive, received "
                f"{batchnorm_epsilon!r}."
            )
        where = f"{type(self).__name__} {self.name!r}:"
        self.filters = checks.positive_int(f"{where} filters", filters)
        self.kernel_size = checks.positive_int(f"{where} kernel_size", kernel_size)
        self.strides = checks.positive_int(f"{where} strides", strides)
        self.batchnorm_epsilon = float(batchnorm_epsilon)
        self.create_layers()

    def create_layers(self) -> None:
        """Create the block's sublayers from ``filters``, ``kernel_size``, ``strides``."""
        raise NotImplementedError(f"{type(self).__name__} must create its layers.")

    def batch_norm(self, name: str) -> keras.layers.BatchNormalization:
        """YAMNet's batch normalization: learnt offset, no scale (``center=True, scale=False``)."""
        return keras.layers.BatchNormalization(
            center=True, scale=False, epsilon=self.batchnorm_epsilon, name=name
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "batchnorm_epsilon": self.batchnorm_epsilon,
        }

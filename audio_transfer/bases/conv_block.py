"""ConvBlock: convolution, batch normalization without scale, ReLU (the stem of MobileNet v1 / YAMNet)."""

from __future__ import annotations

import keras

from audio_transfer.bases._mobilenet_block import MobileNetBlock


@keras.saving.register_keras_serializable(package="audio_transfer")
class ConvBlock(MobileNetBlock):
    """A 'same'-padded convolution without bias, batch normalization (``center=True, scale=False``), ReLU.

    The first layer of YAMNet (``layer1`` of ``yamnet.py``: 32 filters 3x3, stride 2). The batch
    normalization runs in inference mode whenever the block is frozen (``trainable=False``).

    Args:
        filters: output channels.
        kernel_size: height and width of the square kernel.
        strides: stride on both axes.
        batchnorm_epsilon: the batch normalization's epsilon (YAMNet: 1e-4).
        **kwargs: ``keras.layers.Layer`` arguments.

    Shapes:
        input ``(batch, height, width, channels)``; output ``(batch, ceil(height / strides),
        ceil(width / strides), filters)``.

    Example:
        >>> ConvBlock(filters=32, kernel_size=3, strides=2)(np.zeros((1, 96, 64, 1), "float32")).shape
        TensorShape([1, 48, 32, 32])
    """

    def create_layers(self) -> None:
        self.conv = keras.layers.Conv2D(
            self.filters, self.kernel_size, strides=self.strides, padding="same", use_bias=False, name="conv"
        )
        self.bn = self.batch_norm("bn")

    def build(self, input_shape) -> None:
        self.conv.build(input_shape)
        self.bn.build(self.conv.compute_output_shape(input_shape))
        super().build(input_shape)

    def compute_output_shape(self, input_shape) -> tuple:
        return self.conv.compute_output_shape(input_shape)

    def call(self, inputs, training=None):
        return keras.ops.relu(self.bn(self.conv(inputs), training=training))

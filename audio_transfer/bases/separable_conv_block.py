"""SeparableConvBlock: the depthwise-separable unit of MobileNet v1 / YAMNet."""

from __future__ import annotations

import keras

from audio_transfer.bases._mobilenet_block import MobileNetBlock


@keras.saving.register_keras_serializable(package="audio_transfer")
class SeparableConvBlock(MobileNetBlock):
    """Depthwise convolution, batch norm, ReLU, then 1x1 pointwise convolution, batch norm, ReLU.

    One of the 13 blocks ``layer2`` ... ``layer14`` of YAMNet's ``yamnet.py``: both convolutions are
    'same'-padded without bias, both batch normalizations have ``center=True, scale=False``; the stride is
    applied by the depthwise convolution. The batch normalizations run in inference mode whenever the block
    is frozen (``trainable=False``).

    Args:
        filters: output channels of the pointwise convolution.
        kernel_size: height and width of the square depthwise kernel.
        strides: stride of the depthwise convolution on both axes.
        batchnorm_epsilon: the batch normalizations' epsilon (YAMNet: 1e-4).
        **kwargs: ``keras.layers.Layer`` arguments.

    Shapes:
        input ``(batch, height, width, channels)``; output ``(batch, ceil(height / strides),
        ceil(width / strides), filters)``.

    Example:
        >>> block = SeparableConvBlock(filters=128, kernel_size=3, strides=2)
        >>> block(np.zeros((1, 48, 32, 64), "float32")).shape
        TensorShape([1, 24, 16, 128])
    """

    def create_layers(self) -> None:
        self.depthwise_conv = keras.layers.DepthwiseConv2D(
            self.kernel_size, strides=self.strides, padding="same", use_bias=False, name="depthwise_conv"
        )
        self.depthwise_bn = self.batch_norm("depthwise_bn")
        self.pointwise_conv = keras.layers.Conv2D(
            self.filters, 1, padding="same", use_bias=False, name="pointwise_conv"
        )
        self.pointwise_bn = self.batch_norm("pointwise_bn")

    def build(self, input_shape) -> None:
        self.depthwise_conv.build(input_shape)
        depthwise_shape = self.depthwise_conv.compute_output_shape(input_shape)
        self.depthwise_bn.build(depthwise_shape)
        self.pointwise_conv.build(depthwise_shape)
        self.pointwise_bn.build(self.pointwise_conv.compute_output_shape(depthwise_shape))
        super().build(input_shape)

    def compute_output_shape(self, input_shape) -> tuple:
        return self.pointwise_conv.compute_output_shape(self.depthwise_conv.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        outputs = keras.ops.relu(self.depthwise_bn(self.depthwise_conv(inputs), training=training))
        return keras.ops.relu(self.pointwise_bn(self.pointwise_conv(outputs), training=training))

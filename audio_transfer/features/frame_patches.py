"""FramePatches: overlapping patches of consecutive feature frames, with TFLite builtin ops only."""

from __future__ import annotations

import keras
import tensorflow as tf

from audio_transfer import checks
from audio_transfer.errors import InputShapeError


@keras.saving.register_keras_serializable(package="audio_transfer")
class FramePatches(keras.layers.Layer):
    """Cut a feature sequence into patches of ``patch_length`` frames every ``patch_step`` frames.

    Only whole patches are produced: ``patches = 1 + (frames - patch_length) // patch_step`` (none when
    ``frames < patch_length``). The patch indices are computed in the graph from the number of frames
    (RANGE, MUL, ADD, then GATHER), so the layer is builtin-only in TFLite and accepts any number of
    frames.
    YAMNet uses 96-frame patches every 48 frames (``get_frame_patches("yamnet")``).

    Args:
        patch_length: frames per patch.
        patch_step: frames between the starts of consecutive patches.
        **kwargs: ``keras.layers.Layer`` arguments.

    Shapes:
        input ``(batch, frames, bins)``; output ``(batch, patches, patch_length, bins)``, same dtype.

    Example:
        >>> FramePatches(patch_length=96, patch_step=48)(np.zeros((2, 196, 64), "float32")).shape
        TensorShape([2, 3, 96, 64])
    """

    def __init__(self, *, patch_length: int, patch_step: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.patch_length = checks.positive_int("patch_length", patch_length)
        self.patch_step = checks.positive_int("patch_step", patch_step)

    def num_patches(self, num_frames: int) -> int:
        """Number of patches cut from ``num_frames`` frames."""
        return max(0, 1 + (num_frames - self.patch_length) // self.patch_step)

    def build(self, input_shape) -> None:
        if len(input_shape) != 3:
            raise InputShapeError(
                f"FramePatches {self.name!r} takes (batch, frames, bins) features; received an input of "
                f"shape {tuple(input_shape)}."
            )
        super().build(input_shape)

    def compute_output_shape(self, input_shape) -> tuple:
        frames = input_shape[1]
        patches = None if frames is None else self.num_patches(frames)
        return (input_shape[0], patches, self.patch_length, input_shape[2])

    def call(self, inputs):
        num_patches = tf.maximum(0, 1 + (tf.shape(inputs)[1] - self.patch_length) // self.patch_step)
        starts = tf.range(num_patches)[:, None] * self.patch_step
        indices = starts + tf.range(self.patch_length)[None, :]
        return tf.gather(inputs, indices, axis=1)

    def get_config(self) -> dict:
        return {**super().get_config(), "patch_length": self.patch_length, "patch_step": self.patch_step}

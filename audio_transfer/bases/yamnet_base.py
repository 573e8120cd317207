"""YAMNetBase: Google's YAMNet (MobileNet v1 on log-mel patches) rebuilt in Keras 3 as an AudioBase."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from audio_transfer.bases.audio_base import AudioBase
from audio_transfer.bases.conv_block import ConvBlock
from audio_transfer.bases.separable_conv_block import SeparableConvBlock
from audio_transfer.errors import ConfigError, InputShapeError
from audio_transfer.features import get_frame_patches, get_frontend

SAMPLE_RATE = 16000
PATCH_FRAMES = 96
MEL_BANDS = 64
EMBEDDING_DIM = 1024
NUM_AUDIOSET_CLASSES = 521
BATCHNORM_EPSILON = 1e-4
# (strides, filters) of the 13 depthwise-separable blocks layer2 ... layer14 of yamnet.py's _YAMNET_LAYER_DEFS
# (all 3x3); layer1 is a plain 3x3 convolution of 32 filters with stride 2.
SEPARABLE_BLOCKS: tuple[tuple[int, int], ...] = (
    (1, 64),
    (2, 128),
    (1, 128),
    (2, 256),
    (1, 256),
    (2, 512),
    (1, 512),
    (1, 512),
    (1, 512),
    (1, 512),
    (1, 512),
    (2, 1024),
    (1, 1024),
)
# A patch of 96 frames of 25 ms every 10 ms spans 95 * 160 + 400 = 15600 samples (Google calls it 0.96 s).
_FRAME_LENGTH, _FRAME_STEP, _PATCH_STEP = 400, 160, 48
MIN_SAMPLES = (PATCH_FRAMES - 1) * _FRAME_STEP + _FRAME_LENGTH


@keras.saving.register_keras_serializable(package="audio_transfer")
class YAMNetBase(AudioBase):
    """YAMNet: one 1024-d embedding per 0.96 s log-mel patch, every 0.48 s, from a 16 kHz waveform.

    The layers are those of ``yamnet.py`` in Google's ``models/research/audioset/yamnet``: the ``yamnet``
    front-end preset (64 HTK mel bands 125-7500 Hz of 25 ms frames every 10 ms, ``log(mel + 0.001)``), cut
    into patches of 96 frames every 48 frames (in the graph, with a gather: builtin-only in TFLite), then per
    patch a 3x3 stride-2 convolution of 32 filters (``layer1``), 13 depthwise-separable blocks
    (``layer2`` ... ``layer14``: 64, 128/2, 128, 256/2, 256, 512/2, 512 x 5, 1024/2, 1024), each convolution
    followed by batch normalization (``center=True, scale=False, epsilon=1e-4``) and ReLU, 'same' padding,
    and a global average pool to the 1024-d embedding. With ``include_audioset_head`` the 521-class AudioSet
    classifier (``logits``: dense + sigmoid) is built too, for :meth:`audioset_scores`.

    Blocks: ``blocks`` is ``[layer1, layer2, ..., layer14]``, the stem then the 13 separable blocks, so
    ``set_trainable(n)`` for ``n <= 13`` unfreezes the top ``n`` separable blocks and ``set_trainable(14)``
    the whole network. The front-end has no weights. The AudioSet head is not a block and stays frozen: it
    scores sounds, it is not fine-tuned.

    Windows: a patch spans 15600 samples (0.975 s: 96 frames of 400 samples every 160), hence
    ``window_seconds=0.975`` and ``min_samples=15600``; ``num_windows`` is exact. Only whole patches are
    embedded: unlike Google's ``yamnet_frames_model``, which pads the end of the waveform up to a whole hop,
    the end of a waveform that does not fill another patch is dropped (pad it to keep it).

    Weights: the constructor builds a randomly initialised network; load Google's weights with
    :func:`audio_transfer.bases.yamnet_weights.load_yamnet_weights` (``yamnet.h5``, a YAMNet ``.tflite``, or
    the TF Hub SavedModel).

    Args:
        include_audioset_head: build the 521-class AudioSet classifier.
        class_names: the 521 AudioSet display names, in class order (set by the weight loaders when the
            weight source has them); only with ``include_audioset_head``.
        **kwargs: ``keras.Model`` arguments (``name``).

    Shapes:
        input ``(batch, samples)`` float32 in [-1, 1] at 16 kHz; output ``(batch, patches, 1024)`` with
        ``patches = 1 + (max(samples, 15600) - 15600) // 7680``.

    Example:
        >>> base = YAMNetBase()
        >>> base(np.zeros((2, 32000), "float32")).shape
        TensorShape([2, 3, 1024])
    """

    def __init__(
        self,
        *,
        include_audioset_head: bool = False,
        class_names: Sequence[str] | None = None,
        **kwargs,
    ) -> None:
        kwargs.setdefault("name", "yamnet")
        super().__init__(
            sample_rate=SAMPLE_RATE,
            embedding_dim=EMBEDDING_DIM,
            min_samples=MIN_SAMPLES,
            window_seconds=MIN_SAMPLES / SAMPLE_RATE,
            hop_seconds=_PATCH_STEP * _FRAME_STEP / SAMPLE_RATE,
            **kwargs,
        )
        if not isinstance(include_audioset_head, bool):
            raise ConfigError(
                f"include_audioset_head must be True or False, received {include_audioset_head!r}."
            )
        self.include_audioset_head = include_audioset_head
        self.class_names = None
        if class_names is not None:
            self.set_class_names(class_names)
        self.frontend = get_frontend("yamnet")
        self.frame_patches = get_frame_patches("yamnet")
        self.stem = ConvBlock(
            filters=32, kernel_size=3, strides=2, batchnorm_epsilon=BATCHNORM_EPSILON, name="layer1"
        )
        self.separable_blocks = [
            SeparableConvBlock(
                filters=filters,
                kernel_size=3,
                strides=strides,
                batchnorm_epsilon=BATCHNORM_EPSILON,
                name=f"layer{index + 2}",
            )
            for index, (strides, filters) in enumerate(SEPARABLE_BLOCKS)
        ]
        self.audioset_head = (
            keras.layers.Dense(NUM_AUDIOSET_CLASSES, activation="sigmoid", name="logits")
            if include_audioset_head
            else None
        )
        self.build((None, None))

    def build(self, input_shape) -> None:
        # Build every layer now, the head too (call() does not use it), so that weight loaders,
        # count_params and saving work on a base that has never been called.
        if not self.frontend.built:
            self.frontend.build(input_shape)
        shape = (None, PATCH_FRAMES, MEL_BANDS, 1)
        for block in self.blocks:
            if not block.built:
                block.build(shape)
            shape = block.compute_output_shape(shape)
        if self.audioset_head is not None and not self.audioset_head.built:
            self.audioset_head.build((None, EMBEDDING_DIM))
        self.built = True

    @property
    def blocks(self) -> list[keras.layers.Layer]:
        """``[layer1 (stem), layer2, ..., layer14]``, bottom to top."""
        return [self.stem, *self.separable_blocks]

    def set_class_names(self, class_names: Sequence[str]) -> None:
        """Name the 521 AudioSet classes of the head, in class order."""
        if not self.include_audioset_head:
            raise ConfigError(
                "class_names name the AudioSet head's classes, but this YAMNetBase has no head: build it "
                "with include_audioset_head=True."
            )
        names = tuple(str(name) for name in class_names)
        if len(names) != NUM_AUDIOSET_CLASSES:
            raise ConfigError(
                f"YAMNet scores {NUM_AUDIOSET_CLASSES} AudioSet classes, but {len(names)} class names were "
                f"given. Pass the display_name column of yamnet_class_map.csv."
            )
        self.class_names = names

    def embed(self, waveform: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        return self.embed_patches(self.frame_patches(self.frontend(waveform)), training=training)

    def embed_patches(self, patches: tf.Tensor | np.ndarray, training: bool | None = None) -> tf.Tensor:
        """Embed log-mel patches: ``(batch, patches, 96, 64)`` -> ``(batch, patches, 1024)``.

        Args:
            patches: log-mel patches as the ``yamnet`` front-end and patching make them (96 frames of 64
                bands each).
            training: run the batch normalizations of trainable blocks in training mode.
        """
        patches = tf.convert_to_tensor(patches, dtype=tf.float32)
        if patches.shape.rank != 4 or tuple(patches.shape[2:]) != (PATCH_FRAMES, MEL_BANDS):
            raise InputShapeError(
                f"YAMNetBase.embed_patches takes log-mel patches of shape (batch, patches, {PATCH_FRAMES}, "
                f"{MEL_BANDS}), received shape {tuple(patches.shape)}."
            )
        shape = tf.shape(patches)
        outputs = tf.reshape(patches, [-1, PATCH_FRAMES, MEL_BANDS, 1])
        for block in self.blocks:
            outputs = block(outputs, training=training)
        embeddings = tf.reduce_mean(outputs, axis=[1, 2])
        return tf.reshape(embeddings, [shape[0], shape[1], EMBEDDING_DIM])

    def audioset_scores(self, waveform: tf.Tensor | np.ndarray) -> tf.Tensor:
        """AudioSet class scores in [0, 1] (independent sigmoids): ``(batch, patches, 521)``.

        Needs ``include_audioset_head=True``; ``class_names`` names the last axis when the weights came
        with them.
        """
        if self.audioset_head is None:
            raise ConfigError(
                "This YAMNetBase has no AudioSet head: build it with include_audioset_head=True and load "
                "weights that include the classifier."
            )
        return self.audioset_head(self(waveform))

    def set_trainable(self, trainable: bool | int) -> None:
        super().set_trainable(trainable)
        if self.audioset_head is not None:
            self.audioset_head.trainable = False

    def get_config(self) -> dict:
        # Every other hyper-parameter is fixed: skip AudioBase's, which this constructor does not take.
        return {
            **keras.Model.get_config(self),
            "include_audioset_head": self.include_audioset_head,
            "class_names": None if self.class_names is None else list(self.class_names),
        }

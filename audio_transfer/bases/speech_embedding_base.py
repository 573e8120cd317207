"""Google's speech_embedding network rebuilt in Keras 3: 16 kHz waveform in, one 96-d vector per 80 ms out."""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from audio_transfer.bases import _speech_embedding_hops as hops
from audio_transfer.bases.audio_base import AudioBase
from audio_transfer.bases.streamable_base import StreamableBase
from audio_transfer.errors import InputShapeError
from audio_transfer.features import get_frontend
from audio_transfer.progress import track

NUM_MEL_BINS = 32
WINDOW_FRAMES = 76
HOP_FRAMES = 8
# Embeddings computed per pass over a long stream (about 41 s of audio): bounds memory on hour-long files.
_EMBEDDINGS_PER_PASS = 512
LEAKY_SLOPE = 0.2
ACTIVATION_FLOOR = -0.4

# (name, filters, convolutions, pool size) per stage. Convolutions alternate (1, 3) 'same' on the mel axis
# and (3, 1) 'valid' in time; stage_1 starts with a 3x3 convolution instead of its first (1, 3) one.
_STAGES = (
    ("stage_1", 24, 3, (2, 2)),
    ("stage_2", 48, 4, (1, 2)),
    ("stage_3", 72, 4, (2, 2)),
    ("stage_4", 96, 4, (1, 2)),
    ("stage_5", 96, 4, (2, 2)),
)


@keras.saving.register_keras_serializable(package="audio_transfer", name="SpeechEmbeddingActivation")
class _FlooredLeakyReLU(keras.layers.Layer):
    """``max(leaky_relu(x, negative_slope), floor)``: the activation after every speech_embedding conv."""

    def __init__(self, *, negative_slope: float = LEAKY_SLOPE, floor: float = ACTIVATION_FLOOR, **kwargs):
        super().__init__(**kwargs)
        self.negative_slope = float(negative_slope)
        self.floor = float(floor)

    def call(self, inputs):
        return ops.maximum(ops.leaky_relu(inputs, negative_slope=self.negative_slope), self.floor)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(negative_slope=self.negative_slope, floor=self.floor)
        return config


def _conv_layers(name: str, filters: int, num_convs: int, *, first_index: int) -> list[keras.layers.Layer]:
    """The convolutions of one stage, each followed by the floored leaky ReLU.

    Convolution 0 is 3x3 (valid in time, one zero bin on each side of the mel axis); after it, odd
    convolutions are (1, 3) 'same' on the mel axis and even ones (3, 1) 'valid' in time.
    """
    layers: list[keras.layers.Layer] = []
    for index in range(first_index, first_index + num_convs):
        if index == 0:
            layers.append(keras.layers.ZeroPadding2D(((0, 0), (1, 1)), name=f"{name}_pad"))
            layers.append(keras.layers.Conv2D(filters, (3, 3), padding="valid", name=f"conv_{index}"))
        elif index % 2:
            layers.append(keras.layers.Conv2D(filters, (1, 3), padding="same", name=f"conv_{index}"))
        else:
            layers.append(keras.layers.Conv2D(filters, (3, 1), padding="valid", name=f"conv_{index}"))
        layers.append(_FlooredLeakyReLU(name=f"activation_{index}"))
    return layers


def _build_blocks() -> list[keras.Sequential]:
    """The five conv stages and the output projection, each a built ``keras.Sequential``."""
    blocks = []
    in_channels = 1
    conv_index = 0
    for name, filters, num_convs, pool_size in _STAGES:
        layers = [keras.Input(shape=(None, None, in_channels))]
        layers += _conv_layers(name, filters, num_convs, first_index=conv_index)
        layers.append(keras.layers.MaxPooling2D(pool_size, name=f"{name}_pool"))
        blocks.append(keras.Sequential(layers, name=name))
        in_channels = filters
        conv_index += num_convs
    output = keras.layers.Conv2D(96, (3, 1), padding="valid", use_bias=False, name=f"conv_{conv_index}")
    blocks.append(keras.Sequential([keras.Input(shape=(None, None, in_channels)), output], name="projection"))
    return blocks


@keras.saving.register_keras_serializable(package="audio_transfer")
class SpeechEmbeddingBase(StreamableBase, AudioBase):
    """Google's speech_embedding (TF Hub ``google/speech_embedding/1``) as a Keras 3 :class:`AudioBase`.

    Front-end: the ``"speech_embedding"`` preset of :func:`audio_transfer.features.get_frontend` (32 log-mel
    bins every 10 ms, scaled as the original). Network: 20 convolutions (batch norm folded in), each but the
    last followed by ``max(leaky_relu(x, 0.2), -0.4)``, and five max-pools, mapping a 76-frame (0.775 s)
    window of log-mel to one 96-d embedding. Windows start every 8 frames (80 ms).

    The network runs fully convolutionally over the whole spectrogram instead of once per window: its
    time-axis convolutions are 'valid' and its three time-axis pools of stride 2 multiply to a stride of
    exactly 8 frames, aligned with the window starts, so output ``k`` is the embedding of frames
    ``[8k, 8k + 76)``: the same numbers as windowing first, with no framing op and without recomputing the
    ~9.5x overlap between windows.

    It streams (:class:`~audio_transfer.bases.StreamableBase`): :meth:`stream_step` turns each 80 ms hop of
    1,280 samples into the next embedding, keeping the last 640 samples and the last 2 input rows of each
    time convolution as its state; the hop grid and its one difference from whole clips (the log-mel floor
    taken per hop) are described in ``audio_transfer/bases/_speech_embedding_hops.py``.

    Blocks (``set_trainable(n)`` unfreezes the top ``n``), bottom to top: ``stage_1`` (3x3, 1x3 and 3x1
    convs, 24 filters, 2x2 pool), ``stage_2`` (4 convs, 48 filters, 1x2 pool), ``stage_3`` (4 convs, 72
    filters, 2x2 pool), ``stage_4`` (4 convs, 96 filters, 1x2 pool), ``stage_5`` (4 convs, 96 filters, 2x2
    pool) and ``projection`` (3x1 conv to the 96-d embedding, no bias, no activation).

    The architecture is built here; pretrained weights (converted from openWakeWord's copy of Google's
    weights, see ``models/speech_embedding/``) are loaded with ``load_weights``.

    Shapes:
        input ``(batch, samples)`` float32 in [-1, 1] at 16 kHz; inputs shorter than ``min_samples`` (12512,
        0.782 s) are zero-padded. Output ``(batch, windows, 96)`` with
        ``windows = 1 + (samples - 12512) // 1280`` for ``samples >= 12512``.

    Example:
        >>> base = SpeechEmbeddingBase()
        >>> base.load_weights(pretrained_asset("speech_embedding", "speech_embedding.weights.h5"))
        >>> base(np.zeros((2, 16000), "float32")).shape
        TensorShape([2, 3, 96])
    """

    # int8 keeps stage_1 (3 small convs on the log-mel) in float32; what that buys and costs is measured in
    # benchmarks/RESULTS.md ("Float blocks of speech_embedding").
    int8_float_blocks = 1

    def __init__(self, **kwargs) -> None:
        # Frames of 512 samples (frame_span) every 160 (frame_step), no centre padding.
        frontend = get_frontend("speech_embedding")
        super().__init__(
            sample_rate=frontend.sample_rate,
            embedding_dim=96,
            min_samples=frontend.frame_span + (WINDOW_FRAMES - 1) * frontend.frame_step,
            window_seconds=0.775,
            hop_seconds=HOP_FRAMES * frontend.frame_step / frontend.sample_rate,
            **kwargs,
        )
        self.frontend = frontend
        self.stage_1, self.stage_2, self.stage_3, self.stage_4, self.stage_5, self.projection = (
            _build_blocks()
        )
        self.build((None, None))

    def build(self, input_shape) -> None:
        # The blocks are built Sequentials and the front-end has no weights: once the front-end has checked
        # the input rank, every weight exists, so ``load_weights`` and ``count_params`` work before a call.
        if not self.frontend.built:
            self.frontend.build(input_shape)
        self.built = True

    @property
    def blocks(self) -> list[keras.Sequential]:
        return [self.stage_1, self.stage_2, self.stage_3, self.stage_4, self.stage_5, self.projection]

    def embed(self, waveform: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        return self.embed_log_mel(self.frontend(waveform), training=training)

    def embed_log_mel(self, log_mel: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        """Run the network alone on the front-end's output.

        Args:
            log_mel: ``(batch, frames, 32)`` scaled log-mel as the ``"speech_embedding"`` front-end returns
                it (at least 76 frames).
            training: passed to the blocks.

        Returns:
            ``(batch, 1 + (frames - 76) // 8, 96)`` embeddings.
        """
        log_mel = tf.convert_to_tensor(log_mel, dtype=tf.float32)
        if log_mel.shape.rank != 3 or log_mel.shape[-1] != NUM_MEL_BINS:
            raise InputShapeError(
                f"{type(self).__name__}.embed_log_mel expects log-mel of shape (batch, frames, "
                f"{NUM_MEL_BINS}), received shape {tuple(log_mel.shape)}."
            )
        x = ops.expand_dims(log_mel, axis=-1)
        for block in self.blocks:
            x = block(x, training=training)
        return ops.squeeze(x, axis=2)

    def num_windows(self, num_samples: int) -> int:
        frames = self.frontend.num_frames(max(num_samples, self.min_samples))
        return 1 + (frames - WINDOW_FRAMES) // HOP_FRAMES

    # -- streaming: one 80 ms hop at a time (StreamableBase, see _speech_embedding_hops.py) ----------------
    @property
    def stream_hop_samples(self) -> int:
        """1,280 samples (8 log-mel frames): one embedding per hop."""
        return HOP_FRAMES * self.frontend.frame_step

    @property
    def stream_warmup_hops(self) -> int:
        """9: embedding ``k`` spans frames ``[8k, 8k + 76)``, whose last one hop ``k + 9`` computes."""
        return (WINDOW_FRAMES - HOP_FRAMES + hops.LEAD_FRAMES) // HOP_FRAMES

    @property
    def stream_state_size(self) -> int:
        """The last 640 samples, and the last 2 input rows of each of the 11 time convolutions."""
        return sum(math.prod(shape) for shape in self._stream_state_shapes())

    def stream_step(self, audio: tf.Tensor, state: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """One 80 ms hop, each piece of the network computed once.

        The log-mel frames are the 8 the hop completes, from the hop and the last 640 samples of the
        previous one, their 80 dB floor taken per hop. Every time convolution (kernel 3 in time) gets the
        last 2 rows of its input from the state, so each layer computes only its new rows; the time pools
        then pair exactly the rows a run over the whole spectrogram pairs, so one new embedding comes out.
        See :meth:`StreamableBase.stream_step` for arguments and shapes.
        """
        audio = tf.convert_to_tensor(audio, tf.float32)
        state = tf.convert_to_tensor(state, tf.float32)
        if audio.shape[-1] != self.stream_hop_samples or state.shape[-1] != self.stream_state_size:
            raise InputShapeError(
                f"{type(self).__name__}.stream_step takes audio (batch, {self.stream_hop_samples}) and state "
                f"(batch, {self.stream_state_size}), received {tuple(audio.shape)} and {tuple(state.shape)}."
            )
        shapes = self._stream_state_shapes()
        sizes = [math.prod(shape) for shape in shapes]
        parts = [
            tf.reshape(part, (-1, *shape))
            for part, shape in zip(tf.split(state, sizes, axis=1), shapes, strict=True)
        ]
        samples = tf.concat([parts.pop(0), audio], axis=1)
        next_parts = [samples[:, -self._stream_lead_samples :]]
        buffers = samples[:, tf.newaxis, : self._stream_buffer_samples]
        x = tf.expand_dims(hops.hop_log_mel(self.frontend, buffers, frames_per_hop=HOP_FRAMES), axis=-1)
        for layer in self._stream_layers():
            if hops.is_time_conv(layer):
                x = tf.concat([parts.pop(0), x], axis=1)
                next_parts.append(x[:, -(layer.kernel_size[0] - 1) :])
            x = layer(x, training=False)
        embedding = tf.reshape(x, (-1, 1, self.embedding_dim))
        next_state = hops.concat_flat(
            [tf.reshape(part, (-1, size)) for part, size in zip(next_parts, sizes, strict=True)]
        )
        return embedding, next_state

    def stream_embeddings(self, waveforms: np.ndarray, *, count: int) -> np.ndarray:
        """The numbers :meth:`stream_step` computes, with the network run over the spectrogram of up to
        512 hops at a time instead of once per hop. See :meth:`StreamableBase.stream_embeddings`."""
        waveforms = self._stream_input(waveforms, count=count)
        return np.concatenate(
            [
                _embed_hop_buffers(
                    self,
                    hops.hop_buffers(
                        waveforms,
                        hop=self.stream_hop_samples,
                        lead=self._stream_lead_samples,
                        span=self._stream_buffer_samples,
                        first_hop=first,
                        num_hops=min(_EMBEDDINGS_PER_PASS, count - first) + self.stream_warmup_hops,
                    ),
                ).numpy()
                for first in track(range(0, count, _EMBEDDINGS_PER_PASS), "Embedding audio hop by hop")
            ],
            axis=1,
        )

    @property
    def _stream_lead_samples(self) -> int:
        """Samples of the previous hop that a hop's frames reach back to (640)."""
        return hops.LEAD_FRAMES * self.frontend.frame_step

    @property
    def _stream_buffer_samples(self) -> int:
        """Samples the front-end reads per hop (1,632: 8 frames of 512 samples every 160)."""
        return self.frontend.frame_span + (HOP_FRAMES - 1) * self.frontend.frame_step

    def _stream_layers(self) -> list[keras.layers.Layer]:
        return [layer for block in self.blocks for layer in block.layers]

    def _stream_state_shapes(self) -> list[tuple[int, ...]]:
        """Shapes (without batch) of the state's parts: audio, then each time convolution's input rows."""
        shapes: list[tuple[int, ...]] = [(self._stream_lead_samples,)]
        shape = (1, HOP_FRAMES, NUM_MEL_BINS, 1)
        for layer in self._stream_layers():
            if hops.is_time_conv(layer):
                shapes.append((layer.kernel_size[0] - 1, *shape[2:]))
                shape = (shape[0], shape[1] + layer.kernel_size[0] - 1, *shape[2:])
            shape = tuple(layer.compute_output_shape(shape))
        return shapes

    def get_config(self) -> dict:
        # Every hyper-parameter is fixed: skip AudioBase's, which this constructor does not take.
        return keras.Model.get_config(self)


@tf.function(reduce_retracing=True)
def _embed_hop_buffers(base: SpeechEmbeddingBase, buffers: tf.Tensor) -> tf.Tensor:
    """Embeddings ``h0 .. h0 + hops - 10`` from the ``(batch, hops, 1632)`` buffers of hops ``h0 ..``."""
    frames = hops.hop_log_mel(base.frontend, buffers, frames_per_hop=HOP_FRAMES)
    return base.embed_log_mel(frames[:, hops.LEAD_FRAMES :], training=False)

"""The GE2E speaker encoder of Resemblyzer, rebuilt in Keras."""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from audio_transfer import checks
from audio_transfer.bases.audio_base import AudioBase
from audio_transfer.errors import ConfigError
from audio_transfer.features import get_frontend
from audio_transfer.features.volume_normalization import VolumeNormalization

SAMPLE_RATE = 16000
NUM_MEL_BINS = 40
FRAME_STEP = 160  # samples between mel frames of the "ge2e" front-end (10 ms)
PARTIAL_FRAMES = 160  # mel frames in one partial utterance (1.6 s)
PARTIAL_SAMPLES = PARTIAL_FRAMES * FRAME_STEP
HIDDEN_SIZE = 256
EMBEDDING_DIM = 256
TARGET_DBFS = -30.0


@keras.saving.register_keras_serializable(package="audio_transfer")
class GE2ESpeakerBase(AudioBase):
    """Resemblyzer's GE2E speaker encoder (Wan et al. 2018): one 256-d voice embedding per 1.6 s partial.

    The computation is Resemblyzer 0.1.4's ``VoiceEncoder.embed_utterance`` on a waveform preprocessed by
    ``normalize_volume`` (``preprocess_wav`` without its webrtcvad silence trimming, which is not included):

    1. optional volume normalisation of each clip to −30 dBFS, amplifying quiet clips only;
    2. zero padding so that the last partial is complete, and the "ge2e" power mel front-end (40 bins,
       25 ms Hann window, 10 ms hop, librosa's ``melspectrogram``);
    3. partials of 160 frames every ``round(100 / partials_per_second)`` frames (77 frames = 0.77 s by
       default), the last one kept only if the audio covers ``min_coverage`` of it, at least one always;
    4. per partial, three LSTM layers of 256 units whose last hidden state goes through a 256 × 256 linear
       projection, a ReLU and L2 normalisation.

    The utterance embedding is the L2-normalised mean of the partial embeddings: :meth:`embed_utterance`
    on waveforms, :meth:`pool_partials` on the output of the base (Keras tensors included). All clips of a
    batch share its length and so its partial layout: zero padding added to batch clips of different
    lengths is audio to the encoder (and lowers the level the volume normalisation measures).

    Called eagerly the LSTMs step in Python (seconds per call on CPU): use ``tf.function``, ``predict`` or
    ``fit``. Exports to TFLite with builtin ops (the LSTMs become ``WHILE`` loops).

    Blocks for ``set_trainable(n)``: ``lstm_1``, ``lstm_2``, ``lstm_3``, ``projection``. The architecture is
    built here; load the pretrained weights with ``load_base("ge2e_speaker")``.

    Args:
        normalize_volume: scale each clip whose RMS level is below −30 dBFS up to −30 dBFS first, as
            Resemblyzer's ``preprocess_wav`` does; turn off for audio normalised already.
        partials_per_second: partial utterances per second of audio (Resemblyzer's ``rate``), at least
            0.625 so that the partials cover the audio.
        min_coverage: fraction of the last partial the audio must cover for it to be kept, in (0, 1].

    Shapes:
        input ``(batch, samples)`` float32 at 16 kHz; output ``(batch, partials, 256)``, unit-norm rows.
        Input shorter than 1.6 s (25,600 samples) is padded to one partial.

    Example:
        >>> base = GE2ESpeakerBase()
        >>> partials = base(tf.zeros((2, 48000)))  # (2, 3, 256)
        >>> utterance = GE2ESpeakerBase.pool_partials(partials)  # (2, 256)
    """

    def __init__(
        self,
        *,
        normalize_volume: bool = True,
        partials_per_second: float = 1.3,
        min_coverage: float = 0.75,
        **kwargs,
    ) -> None:
        checks.boolean("normalize_volume", normalize_volume)
        if not checks.is_number(partials_per_second):
            raise ConfigError(f"partials_per_second must be a number, received {partials_per_second!r}.")
        step_frames = round(SAMPLE_RATE / partials_per_second / FRAME_STEP) if partials_per_second > 0 else 0
        if not 0 < step_frames <= PARTIAL_FRAMES:
            raise ConfigError(
                f"partials_per_second must be at least {SAMPLE_RATE / PARTIAL_SAMPLES} (partials must cover "
                f"the audio) and at most {SAMPLE_RATE / FRAME_STEP}, received {partials_per_second!r}."
            )
        if not (checks.is_number(min_coverage) and 0 < min_coverage <= 1):
            raise ConfigError(f"min_coverage must be in (0, 1], received {min_coverage!r}.")
        super().__init__(
            sample_rate=SAMPLE_RATE,
            embedding_dim=EMBEDDING_DIM,
            min_samples=PARTIAL_SAMPLES,
            window_seconds=PARTIAL_SAMPLES / SAMPLE_RATE,
            hop_seconds=step_frames * FRAME_STEP / SAMPLE_RATE,
            **kwargs,
        )
        self.normalize_volume = normalize_volume
        self.partials_per_second = float(partials_per_second)
        self.min_coverage = float(min_coverage)
        self._step_frames = step_frames
        # The last partial is kept when the audio covers at least this many of its samples.
        self._min_covered_samples = math.ceil(self.min_coverage * PARTIAL_SAMPLES)

        self.volume_normalization = (
            VolumeNormalization(target_dbfs=TARGET_DBFS, increase_only=True, name="volume_normalization")
            if normalize_volume
            else None
        )
        self.frontend = get_frontend("ge2e")
        self.lstm_1 = keras.layers.LSTM(HIDDEN_SIZE, return_sequences=True, name="lstm_1")
        self.lstm_2 = keras.layers.LSTM(HIDDEN_SIZE, return_sequences=True, name="lstm_2")
        self.lstm_3 = keras.layers.LSTM(HIDDEN_SIZE, name="lstm_3")
        self.projection = keras.layers.Dense(EMBEDDING_DIM, activation="relu", name="projection")
        self.build((None, None))

    def build(self, input_shape) -> None:
        if not self.frontend.built:
            self.frontend.build(input_shape)
        for layer, shape in (
            (self.lstm_1, (None, PARTIAL_FRAMES, NUM_MEL_BINS)),
            (self.lstm_2, (None, PARTIAL_FRAMES, HIDDEN_SIZE)),
            (self.lstm_3, (None, PARTIAL_FRAMES, HIDDEN_SIZE)),
            (self.projection, (None, HIDDEN_SIZE)),
        ):
            if not layer.built:
                layer.build(shape)
        self.built = True

    @property
    def blocks(self) -> list[keras.layers.Layer]:
        return [self.lstm_1, self.lstm_2, self.lstm_3, self.projection]

    def call(self, waveform, training=None):
        waveform = tf.convert_to_tensor(waveform, dtype=tf.float32)
        if self.volume_normalization is not None:
            # The level of the clip itself: before any zero padding.
            waveform = self.volume_normalization(waveform)
        padded = self.pad_to_min_samples(waveform)  # also checks the rank
        # Resemblyzer lays the partials out over the clip's own length, not over the padded one.
        return self._embed(padded, _length(waveform), training)

    def embed(self, waveform: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        return self._embed(waveform, _length(waveform), training)

    def _embed(self, waveform: tf.Tensor, num_samples, training: bool | None) -> tf.Tensor:
        """Partial embeddings of ``waveform`` (``num_samples`` of audio, then zeros) as Resemblyzer's."""
        if isinstance(num_samples, int):  # static length: static number of partials and output shape
            num_partials, padded_samples = (int(v) for v in self._partial_layout(num_samples, np))
        else:
            num_partials, padded_samples = self._partial_layout(num_samples, tf)
        waveform = tf.pad(waveform, [[0, 0], [0, padded_samples - _length(waveform)]])
        mel = self.frontend(waveform)
        starts = tf.range(num_partials) * self._step_frames
        frame_indices = starts[:, None] + tf.range(PARTIAL_FRAMES)[None, :]
        return self.encode_partials(tf.gather(mel, frame_indices, axis=1), training=training)

    def encode_partials(self, partial_mels: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        """Embed mel partials: ``(batch, partials, 160, 40)`` power mel → ``(batch, partials, 256)``.

        The encoder network alone, without the front-end and the slicing: what Resemblyzer's
        ``VoiceEncoder.forward`` computes on each partial.
        """
        partial_mels = tf.convert_to_tensor(partial_mels, dtype=tf.float32)
        num_partials = _length(partial_mels)
        hidden = tf.reshape(partial_mels, (-1, PARTIAL_FRAMES, NUM_MEL_BINS))
        hidden = self.lstm_1(hidden, training=training)
        hidden = self.lstm_2(hidden, training=training)
        hidden = self.lstm_3(hidden, training=training)
        embeddings = tf.math.l2_normalize(self.projection(hidden), axis=-1)
        return tf.reshape(embeddings, (-1, num_partials, EMBEDDING_DIM))

    def embed_utterance(self, waveform, training: bool | None = None):
        """Utterance embeddings ``(batch, 256)`` of ``(batch, samples)`` waveforms, Resemblyzer's way."""
        return self.pool_partials(self(waveform, training=training))

    @staticmethod
    def pool_partials(partial_embeddings):
        """L2-normalised mean over the partial axis: ``(batch, partials, 256)`` → ``(batch, 256)``.

        Works on tensors and on Keras tensors of a functional model.
        """
        return keras.ops.normalize(keras.ops.mean(partial_embeddings, axis=1), axis=-1)

    def num_windows(self, num_samples: int) -> int:
        """Number of partials for ``num_samples`` of audio, as Resemblyzer's ``compute_partial_slices``."""
        return int(self._partial_layout(num_samples, np)[0])

    def _partial_layout(self, num_samples, xp):
        """``(number of partials, padded length in samples)`` for ``num_samples`` of audio.

        Resemblyzer's ``compute_partial_slices`` and the zero padding of ``embed_utterance``, written once
        for ``xp=np`` (Python ints, static lengths) and ``xp=tf`` (int32 tensors, dynamic lengths).
        """
        num_frames = num_samples // FRAME_STEP + 1
        steps = xp.maximum(1, num_frames - PARTIAL_FRAMES + self._step_frames + 1)
        num_partials = (steps + self._step_frames - 1) // self._step_frames
        last_start = (num_partials - 1) * self._step_frames * FRAME_STEP
        drop_last = xp.logical_and(num_samples - last_start < self._min_covered_samples, num_partials > 1)
        num_partials = xp.where(drop_last, num_partials - 1, num_partials)
        padded = xp.maximum(
            num_samples, (num_partials - 1) * self._step_frames * FRAME_STEP + PARTIAL_SAMPLES
        )
        return num_partials, padded

    def get_config(self) -> dict:
        config = super().get_config()
        for fixed in ("sample_rate", "embedding_dim", "min_samples", "window_seconds", "hop_seconds"):
            config.pop(fixed)
        config.update(
            normalize_volume=self.normalize_volume,
            partials_per_second=self.partials_per_second,
            min_coverage=self.min_coverage,
        )
        return config


def _length(tensor: tf.Tensor):
    """Size of axis 1 (samples, partials): an int when static, a scalar tensor otherwise."""
    return tensor.shape[1] if tensor.shape[1] is not None else tf.shape(tensor)[1]

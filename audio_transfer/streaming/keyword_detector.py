"""Keyword detection in long audio: a trained classifier slid over the stream, posteriors smoothed."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import tensorflow as tf

from audio_transfer.bases.streamable_base import StreamableBase, as_streamable
from audio_transfer.checks import is_number, positive_int
from audio_transfer.errors import ConfigError, InputShapeError
from audio_transfer.progress import track
from audio_transfer.streaming.detection import Detection
from audio_transfer.streaming.detection_settings import DetectionSettings
from audio_transfer.streaming.posteriors import pick_detections, smooth_posteriors
from audio_transfer.tasks import Classifier, Task

logger = logging.getLogger(__name__)

DEFAULT_STRIDE_SECONDS = 0.08
# Window positions scored together when audio comes in blocks (see KeywordDetector.posteriors_of_blocks).
DEFAULT_BLOCK_WINDOWS = 512
_HEAD_BATCH = 4096
_CLIP_BATCH = 32


def keyword_labels(labels: Sequence[str]) -> list[str]:
    """The labels that are keywords: all but the ``_underscored_`` ones (``_silence_``, ``_unknown_``)."""
    return [label for label in labels if not label.startswith("_")]


class KeywordDetector:
    """Slides a keyword classifier over long audio and turns its posteriors into :class:`Detection` s.

    The classifier sees windows every ``stride_seconds``: its training clip with the task's
    ``context_seconds`` on both sides, which in a stream is the audio around the clip (inside the task
    model, on isolated clips, it is silence). For a spotter on a base that streams
    (:class:`~audio_transfer.bases.StreamableBase`, e.g. ``speech_embedding`` with its 80 ms hop) and a
    stride that is a multiple of the base's hop, the base runs once over the whole stream (one embedding per
    hop, each computed once, as the streaming TFLite model does on a device) and the head runs on every run
    of consecutive embeddings a window spans; for other classifiers base and head run on every window. The
    posteriors are then smoothed by a trailing moving average, and a keyword fires where its smoothed
    probability reaches the threshold, outside the refractory period of the previous detection (see
    :func:`~audio_transfer.streaming.pick_detections`). A detection reports the window that fired: the
    keyword lies somewhere in it, and a device listening live fires at its end. Long recordings go through
    :meth:`detect_blocks` with an :class:`~audio_transfer.audio.AudioBlockReader`: memory then stays the
    same whatever their length.

    On the streaming path posteriors equal the classifier's on each window apart from what the base
    documents as its streaming difference (speech_embedding takes its log-mel floor per hop, as on a device,
    instead of per training clip: the same numbers wherever the audio stays within 80 dB of the window's
    loudest frame). Each window is the
    base and head on the audio itself: with ``context_seconds`` > 0 the task model proper would instead pad
    the clip with silence.

    Args:
        spotter: a trained :class:`~audio_transfer.tasks.Classifier` (usually a ``KeywordSpotter``).
        clip_seconds: the training clip length (windows add the task's ``context_seconds`` around it).
        stride_seconds: time between window positions (default 0.08 s).
        settings: threshold, smoothing and refractory period (default :class:`DetectionSettings` ``()``).

    Example:
        >>> detector = KeywordDetector.from_path("runs/yes_no")
        >>> for detection in detector.detect(load_audio("kitchen.wav")):
        ...     print(detection.label, detection.end_seconds, detection.score)
    """

    def __init__(
        self,
        spotter: Classifier,
        *,
        clip_seconds: float,
        stride_seconds: float | None = None,
        settings: DetectionSettings | None = None,
    ) -> None:
        if not (isinstance(spotter, Task) and spotter.evaluation == "classification"):
            raise ConfigError(
                f"Detection needs a classifier (KeywordSpotter, AudioClassifier), received "
                f"{type(spotter).__name__}."
            )
        self.spotter = spotter
        self.labels = tuple(spotter.labels)
        self.keywords = tuple(keyword_labels(self.labels))
        if not self.keywords:
            raise ConfigError(
                f"The model's labels {list(self.labels)} hold no keyword: every label starts with '_'."
            )
        self.keyword_indices = tuple(self.labels.index(label) for label in self.keywords)
        self.sample_rate = spotter.sample_rate
        if not (is_number(clip_seconds) and clip_seconds > 0):
            raise ConfigError(f"clip_seconds must be positive, received {clip_seconds!r}.")
        self.clip_samples = round(clip_seconds * self.sample_rate)
        self.context_samples = spotter.context_samples
        self.window_samples = self.clip_samples + 2 * self.context_samples
        stride_seconds = DEFAULT_STRIDE_SECONDS if stride_seconds is None else stride_seconds
        self.stride_samples = round(stride_seconds * self.sample_rate) if stride_seconds > 0 else 0
        if self.stride_samples < 1:
            raise ConfigError(f"stride_seconds must be positive, received {stride_seconds!r}.")
        self.settings = settings or DetectionSettings()
        base = spotter.base
        streams = isinstance(base, StreamableBase)  # other bases run whole on every window
        if streams:
            as_streamable(base, purpose="Keyword detection")  # checks the base's hop
        self.uses_embeddings = streams and self.stride_samples % base.stream_hop_samples == 0
        if streams and not self.uses_embeddings:
            logger.warning(
                "stride %.3f s is not a multiple of the base's %.3f s hop: the whole model runs on every "
                "window, which is much slower.",
                stride_seconds,
                base.stream_hop_samples / self.sample_rate,
            )
        self._head = spotter.head_model()
        self._forward = None

    @classmethod
    def from_path(cls, path: str | os.PathLike, *, stride_seconds: float | None = None) -> KeywordDetector:
        """The detector of a run folder or ``.keras`` file, with the settings saved beside it, if any.

        The clip length comes from the run's ``config.yaml``; ``streaming.json`` (written by
        :func:`~audio_transfer.streaming.evaluate_stream`) supplies threshold, smoothing and refractory
        period.
        """
        from audio_transfer.training import load_run

        run = load_run(path)
        return cls(
            run.task,
            clip_seconds=run.config.clip_seconds,
            stride_seconds=stride_seconds,
            settings=DetectionSettings.for_model(run.run_dir),
        )

    @property
    def stride_seconds(self) -> float:
        return self.stride_samples / self.sample_rate

    @property
    def clip_seconds(self) -> float:
        return self.clip_samples / self.sample_rate

    def num_windows(self, num_samples: int) -> int:
        """Window positions in ``num_samples`` of audio (audio shorter than a window is padded to one)."""
        return 1 + (max(num_samples, self.window_samples) - self.window_samples) // self.stride_samples

    @property
    def window_seconds(self) -> float:
        """Length of the audio window the model hears: the clip with its context on both sides."""
        return self.window_samples / self.sample_rate

    def window_starts_seconds(self, num_samples: int) -> np.ndarray:
        """Start time of every window position, in seconds."""
        return np.arange(self.num_windows(num_samples)) * self.stride_samples / self.sample_rate

    def posteriors(self, waveform: np.ndarray) -> np.ndarray:
        """Class probabilities at every window position of one stream or of equal-length streams.

        Args:
            waveform: ``(samples,)`` or ``(streams, samples)`` float32 at :attr:`sample_rate`.

        Returns:
            ``(windows, classes)``, or ``(streams, windows, classes)`` for 2-D input; window ``m`` covers
            ``[m * stride_seconds, m * stride_seconds + window_seconds)``: a clip and ``context_seconds`` of
            audio on both sides.
        """
        waveforms = np.asarray(waveform, dtype=np.float32)
        if waveforms.ndim not in (1, 2) or waveforms.shape[-1] == 0:
            raise InputShapeError(
                f"Detection takes audio of shape (samples,) or (streams, samples); received shape "
                f"{waveforms.shape}."
            )
        batch = waveforms[np.newaxis] if waveforms.ndim == 1 else waveforms
        if batch.shape[1] < self.window_samples:
            batch = np.pad(batch, ((0, 0), (0, self.window_samples - batch.shape[1])))
        compute = self._embedding_posteriors if self.uses_embeddings else self._window_posteriors
        result = np.concatenate(
            [compute(batch[i : i + _CLIP_BATCH]) for i in range(0, len(batch), _CLIP_BATCH)]
        )
        return result[0] if waveforms.ndim == 1 else result

    def posteriors_of_blocks(
        self, blocks: Iterable[np.ndarray], *, block_windows: int = DEFAULT_BLOCK_WINDOWS
    ) -> Iterator[np.ndarray]:
        """:meth:`posteriors` of one stream that arrives in consecutive blocks, in bounded memory.

        The stream is scored ``block_windows`` window positions at a time, each run on just the audio
        those windows span (they overlap by ``window_seconds - stride_seconds``), so memory depends on
        ``block_windows`` and the block size, not on the stream's length. The rows joined equal
        :meth:`posteriors` of the whole stream (up to float rounding).

        Args:
            blocks: ``(samples,)`` float32 arrays at :attr:`sample_rate`, of any lengths, e.g. an
                :class:`~audio_transfer.audio.AudioBlockReader`.
            block_windows: window positions scored per run.

        Yields:
            ``(windows, classes)`` posteriors, consecutive runs of window positions of the stream.

        Example:
            >>> reader = AudioBlockReader("ten_hours.wav", sample_rate=detector.sample_rate)
            >>> posteriors = np.concatenate(list(detector.posteriors_of_blocks(reader)))
        """
        block_windows = positive_int("block_windows", block_windows)
        span = (block_windows - 1) * self.stride_samples + self.window_samples
        advance = block_windows * self.stride_samples
        pending = np.zeros(0, np.float32)  # audio from the start of the next window position on
        scored = 0
        for block in blocks:
            block = np.asarray(block, dtype=np.float32)
            if block.ndim != 1:
                raise InputShapeError(f"Audio blocks must have shape (samples,), received {block.shape}.")
            pending = np.concatenate([pending, block])
            while len(pending) >= span:
                yield self.posteriors(pending[:span])
                pending = pending[advance:]
                scored += block_windows
        if len(pending) >= self.window_samples or (scored == 0 and len(pending)):
            yield self.posteriors(pending)  # the last window positions, or one padded window
        elif scored == 0:
            raise InputShapeError("Detection received no audio: the blocks hold no samples.")

    def detect_blocks(
        self,
        blocks: Iterable[np.ndarray],
        settings: DetectionSettings | None = None,
        *,
        block_windows: int = DEFAULT_BLOCK_WINDOWS,
    ) -> list[Detection]:
        """:meth:`detect` on one stream that arrives in consecutive blocks (see
        :meth:`posteriors_of_blocks`); only the posteriors, a few floats per window position, are kept.

        Example:
            >>> detector.detect_blocks(AudioBlockReader("ten_hours.wav", sample_rate=detector.sample_rate))
        """
        runs = list(self.posteriors_of_blocks(blocks, block_windows=block_windows))
        return self.detections(np.concatenate(runs), settings)

    def detections(
        self, posteriors: np.ndarray, settings: DetectionSettings | None = None
    ) -> list[Detection]:
        """Detections in ``(windows, classes)`` posteriors of one stream (see :meth:`posteriors`)."""
        settings = settings or self.settings
        smoothed = smooth_posteriors(posteriors, window=self.smoothing_windows(settings))
        picked = pick_detections(
            smoothed,
            threshold=settings.threshold,
            refractory=self.refractory_windows(settings),
            classes=self.keyword_indices,
        )
        return [
            Detection(
                label=self.labels[column],
                start_seconds=row * self.stride_samples / self.sample_rate,
                end_seconds=(row * self.stride_samples + self.window_samples) / self.sample_rate,
                score=score,
            )
            for row, column, score in picked
        ]

    def detect(self, waveform: np.ndarray, settings: DetectionSettings | None = None) -> list[Detection]:
        """Keywords in one ``(samples,)`` stream, in time order; ``settings`` default to :attr:`settings`."""
        if np.ndim(waveform) != 1:
            raise InputShapeError(f"detect takes one (samples,) stream, received shape {np.shape(waveform)}.")
        return self.detections(self.posteriors(waveform), settings)

    def smoothing_windows(self, settings: DetectionSettings) -> int:
        """Window positions averaged by the smoothing of ``settings`` (at least 1)."""
        return settings.smoothing_windows(stride_seconds=self.stride_seconds)

    def refractory_seconds(self, settings: DetectionSettings) -> float:
        """The refractory period of ``settings``, or :attr:`window_seconds` when it leaves it unset."""
        return settings.refractory_seconds_for(window_seconds=self.window_seconds)

    def refractory_windows(self, settings: DetectionSettings) -> int:
        """Window positions a detection blocks, itself included (at least 1)."""
        return settings.refractory_windows(
            stride_seconds=self.stride_seconds, window_seconds=self.window_seconds
        )

    # -- the two ways of computing posteriors ---------------------------------------------------
    def _window_posteriors(self, batch: np.ndarray) -> np.ndarray:
        """Base and head on every window, its context the stream's audio: ``(streams, windows, classes)``."""
        windows = np.lib.stride_tricks.sliding_window_view(batch, self.window_samples, axis=1)
        windows = windows[:, :: self.stride_samples]
        count = windows.shape[1]
        flat = windows.reshape(-1, self.window_samples)
        forward = self._forward_function()
        probabilities = np.concatenate(
            [
                forward(np.ascontiguousarray(flat[i : i + _CLIP_BATCH])).numpy()
                for i in track(range(0, len(flat), _CLIP_BATCH), "Detecting keywords")
            ]
        )
        return probabilities.reshape(len(batch), count, -1)

    def _forward_function(self):
        if self._forward is None:
            spotter = self.spotter

            @tf.function(input_signature=[tf.TensorSpec((None, None), tf.float32)])
            def forward(windows):
                return spotter.head(spotter.base(windows, training=False), training=False)

            self._forward = forward
        return self._forward

    def _embedding_posteriors(self, batch: np.ndarray) -> np.ndarray:
        """The streaming base once per hop over each stream, then the head on clip-long runs of embeddings."""
        base = self.spotter.base
        step = self.stride_samples // base.stream_hop_samples
        per_clip = base.num_windows(self.window_samples)
        num_windows = self.num_windows(batch.shape[1])
        embeddings = base.stream_embeddings(batch, count=(num_windows - 1) * step + per_clip)
        positions = np.arange(num_windows)[:, np.newaxis] * step + np.arange(per_clip)[np.newaxis, :]
        runs = embeddings[:, positions].reshape(-1, per_clip, embeddings.shape[-1])
        outputs = [
            self._head(runs[i : i + _HEAD_BATCH], training=False).numpy()
            for i in range(0, len(runs), _HEAD_BATCH)
        ]
        return np.concatenate(outputs).reshape(len(batch), num_windows, -1)

"""A live keyword detector: audio chunks of any size in, detections out, in bounded memory."""

from __future__ import annotations

import collections
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from audio_transfer.checks import integer, positive_int
from audio_transfer.errors import ConfigError, InputShapeError
from audio_transfer.streaming.detection import Detection
from audio_transfer.streaming.detection_settings import DetectionSettings
from audio_transfer.streaming.keyword_detector import keyword_labels
from audio_transfer.streaming.streaming_spotter import NEXT_STATE_NAME, SCORES_NAME, StreamingSpotter

_INT16_SCALE = 1.0 / 32768.0


class _HopScorer(Protocol):
    """One step per hop, the state kept inside: a
    :class:`~audio_transfer.streaming.TFLiteStreamingSpotter`, or the Keras
    :class:`~audio_transfer.streaming.StreamingSpotter` that :meth:`WakeWordDetector.from_path` wraps."""

    hop_samples: int

    def step(self, hop: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None: ...


class WakeWordDetector:
    """Listens to a stream chunk by chunk and reports each keyword as soon as the audio completes it.

    Every :attr:`hop_samples` samples the streaming spotter runs once (its state carried from hop to hop)
    and scores the window that hop completes; the scores are smoothed, thresholded and held off by the
    refractory period exactly as :meth:`~audio_transfer.streaming.KeywordDetector.detect` does with
    ``stride_seconds`` equal to the hop, so the live detections equal ``detect`` on the whole recording.
    Memory stays bounded: the samples of an unfinished hop, the model's state, the last
    smoothing window of scores.

    Args:
        scorer: runs one hop (:class:`~audio_transfer.streaming.TFLiteStreamingSpotter`, or any object with
            ``hop_samples``, ``step(hop) -> (classes,) scores`` and ``reset()``).
        labels: the model's labels, in score order (keywords are those not starting with ``_``).
        sample_rate: the audio's sample rate, in Hz.
        window_samples: audio one set of scores covers (the clip with its context on both sides).
        warmup_hops: hops before the first whole window (their scores are ignored).
        settings: threshold, smoothing and refractory period (default :class:`DetectionSettings` ``()``).

    Example:
        >>> detector = WakeWordDetector.from_path("runs/computer")  # or "kws_stream.tflite"
        >>> while True:
        ...     chunk = microphone.read(1280)  # int16 or float32 samples at detector.sample_rate
        ...     for detection in detector.process(chunk):
        ...         print(detection.label, detection.end_seconds, detection.score)
    """

    def __init__(
        self,
        scorer: _HopScorer,
        *,
        labels: Sequence[str],
        sample_rate: int,
        window_samples: int,
        warmup_hops: int,
        settings: DetectionSettings | None = None,
    ) -> None:
        self.labels = tuple(labels)
        self.keywords = tuple(keyword_labels(self.labels))
        if not self.keywords:
            raise ConfigError(
                f"The model's labels {list(self.labels)} hold no keyword: every label starts with '_'."
            )
        self._keyword_indices = np.asarray([self.labels.index(label) for label in self.keywords])
        self.sample_rate = positive_int("sample_rate", sample_rate)
        self.window_samples = positive_int("window_samples", window_samples)
        self.warmup_hops = integer("warmup_hops", warmup_hops, at_least=0)
        self.scorer = scorer
        self.hop_samples = positive_int("hop_samples", scorer.hop_samples)
        self.settings = settings or DetectionSettings()
        hop_seconds = self.hop_samples / self.sample_rate
        self._smoothing = self.settings.smoothing_windows(stride_seconds=hop_seconds)
        self._refractory = self.settings.refractory_windows(
            stride_seconds=hop_seconds, window_seconds=self.window_samples / self.sample_rate
        )
        self._hop = np.zeros(self.hop_samples, np.float32)
        self.reset()

    @classmethod
    def from_path(cls, path: str | os.PathLike) -> WakeWordDetector:
        """The detector of a run folder (or ``.keras`` file), run with the Keras streaming step, or of a
        streaming ``.tflite`` file (with its ``PATH.streaming.json``), run with LiteRT.

        The detection settings are the run's ``streaming.json`` (chosen by ``evaluate-stream``) or those in
        the ``.tflite`` file's description.

        Raises:
            ConfigError: the run's base does not stream, or the ``.tflite`` file has no description.
        """
        path = Path(path)
        if path.suffix == ".tflite":
            return cls._from_tflite(path)
        from audio_transfer.training import load_run

        run = load_run(path)
        streaming = StreamingSpotter(run.task, clip_seconds=run.config.clip_seconds)
        return cls(
            _KerasHopScorer(streaming),
            labels=streaming.labels,
            sample_rate=streaming.sample_rate,
            window_samples=streaming.window_samples,
            warmup_hops=streaming.warmup_hops,
            settings=DetectionSettings.for_model(run.run_dir),
        )

    @classmethod
    def _from_tflite(cls, path: Path) -> WakeWordDetector:
        from audio_transfer.streaming.streaming_export import description_path
        from audio_transfer.streaming.tflite_streaming_spotter import TFLiteStreamingSpotter

        described = description_path(path)
        try:
            description = json.loads(described.read_text())
            settings = DetectionSettings(**description["detection"])
            arguments = {
                name: description[name] for name in ("labels", "sample_rate", "window_samples", "warmup_hops")
            }
        except (OSError, ValueError, TypeError, KeyError) as error:
            raise ConfigError(
                f"Cannot read {described}, the description of the streaming model {path}: {error!r}. Export "
                "it again with `audio-transfer export RUN_DIR --format tflite --streaming --out "
                f"{path}`."
            ) from error
        return cls(TFLiteStreamingSpotter.from_file(path), settings=settings, **arguments)

    def reset(self) -> None:
        """Start a new stream: forget the audio, the model's state, the scores and the last detection."""
        self.scorer.reset()
        self._filled = 0
        self._hops = 0
        self._recent = collections.deque(maxlen=self._smoothing)
        self._next_row = 0
        self.latest_posteriors = np.zeros((0, len(self.labels)), np.float32)

    def process(self, chunk: np.ndarray) -> list[Detection]:
        """The detections completed by the next ``chunk`` of the stream, in time order.

        Args:
            chunk: ``(samples,)`` int16 (scaled by 1/32768) or float32 (or float64) samples in [-1, 1] at
                :attr:`sample_rate`, any number of them.

        Returns:
            the :class:`Detection` s whose window ends in this chunk; times are seconds from the start of
            the stream (or the last :meth:`reset`). :attr:`latest_posteriors` holds the unsmoothed scores
            ``(windows, classes)`` of the windows the chunk completed.

        Raises:
            InputShapeError: ``chunk`` is not one-dimensional, or not int16 or float samples.
        """
        samples = _samples(chunk)
        detections, rows = [], []
        start = 0
        while start < len(samples):
            taken = min(self.hop_samples - self._filled, len(samples) - start)
            self._hop[self._filled : self._filled + taken] = samples[start : start + taken]
            self._filled += taken
            start += taken
            if self._filled == self.hop_samples:
                self._filled = 0
                scores = np.asarray(self.scorer.step(self._hop), np.float32)
                self._hops += 1
                row = self._hops - 1 - self.warmup_hops
                if row >= 0:
                    rows.append(scores)
                    detection = self._detection(row, scores)
                    if detection is not None:
                        detections.append(detection)
        if rows:
            self.latest_posteriors = np.stack(rows)
        else:
            self.latest_posteriors = np.zeros((0, len(self.labels)), np.float32)
        return detections

    @property
    def seconds_heard(self) -> float:
        """Audio processed since the start (or the last :meth:`reset`), in seconds."""
        return (self._hops * self.hop_samples + self._filled) / self.sample_rate

    def _detection(self, row: int, scores: np.ndarray) -> Detection | None:
        """Window ``row``'s scores smoothed; a detection where a keyword reaches the threshold outside the
        refractory period (as :func:`~audio_transfer.streaming.pick_detections` picks them)."""
        self._recent.append(scores.astype(np.float64))
        if row < self._next_row:
            return None
        smoothed = np.mean(self._recent, axis=0)
        keyword_scores = smoothed[self._keyword_indices]
        if keyword_scores.max() < self.settings.threshold:
            return None
        column = int(self._keyword_indices[np.argmax(keyword_scores)])
        self._next_row = row + self._refractory
        start = row * self.hop_samples
        return Detection(
            label=self.labels[column],
            start_seconds=start / self.sample_rate,
            end_seconds=(start + self.window_samples) / self.sample_rate,
            score=float(smoothed[column]),
        )


class _KerasHopScorer:
    """A :class:`~audio_transfer.streaming.StreamingSpotter`'s step with its state kept between hops."""

    def __init__(self, streaming: StreamingSpotter) -> None:
        self._streaming = streaming
        self.hop_samples = streaming.hop_samples
        self.reset()

    def reset(self) -> None:
        self._state = self._streaming.initial_state()

    def step(self, hop: np.ndarray) -> np.ndarray:
        outputs = self._streaming.step(hop[np.newaxis], self._state)
        self._state = outputs[NEXT_STATE_NAME].numpy()
        return outputs[SCORES_NAME].numpy()[0]


def _samples(chunk: np.ndarray) -> np.ndarray:
    """``chunk`` as float32 samples: int16 scaled by 1/32768, floats as they are."""
    if not isinstance(chunk, np.ndarray) or chunk.ndim != 1:
        raise InputShapeError(
            f"process takes a (samples,) numpy array of int16 or float32 samples, received "
            f"{type(chunk).__name__} of shape {np.shape(chunk)}."
        )
    if chunk.dtype == np.int16:
        return chunk.astype(np.float32) * np.float32(_INT16_SCALE)
    if chunk.dtype in (np.float32, np.float64):
        return chunk.astype(np.float32, copy=False)
    raise InputShapeError(
        f"process takes int16 or float32 samples, received dtype {chunk.dtype}: convert the chunk first "
        "(e.g. chunk.astype(np.float32) for samples in [-1, 1])."
    )

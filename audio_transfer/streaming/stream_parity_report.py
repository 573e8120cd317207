"""How an int8 streaming spotter detects against its float32 original, measured on held-out streams."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from audio_transfer.atomic_files import write_json
from audio_transfer.errors import ConfigError, ExportOutputError
from audio_transfer.streaming.detection_settings import DetectionSettings
from audio_transfer.streaming.keyword_detector import keyword_labels
from audio_transfer.streaming.posteriors import pick_detections, smooth_posteriors
from audio_transfer.streaming.stream_evaluation import _in_background
from audio_transfer.streaming.tflite_streaming_spotter import TFLiteStreamingSpotter

PARITY_SUFFIX = ".parity.json"
# The gate: int8 may miss at most this much more of the keyword streams than float at the threshold.
MAX_FALSE_REJECT_RATE_INCREASE = 0.01


def parity_path(model_path: str | os.PathLike) -> Path:
    """Where the stream parity report of an exported model goes: ``<file name>.parity.json`` beside it."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + PARITY_SUFFIX)


@dataclasses.dataclass(frozen=True)
class StreamParityReport:
    """False rejects and false accepts of a float32 and an int8 streaming spotter at one threshold.

    Both models run hop by hop (LiteRT) over the same held-out streams: keyword streams (one keyword clip in
    background each) and negative streams (audio without keywords); their scores are smoothed, thresholded
    and held off by the refractory period as on a device. A keyword stream is rejected when its own keyword
    does not fire; every detection on the negatives is a false accept.

    Args:
        threshold, smoothing_seconds, refractory_seconds: the detection settings applied.
        num_keyword_streams: keyword streams measured.
        negative_hours: length of the negative streams, in hours.
        float_results, int8_results: per model, ``false_rejects``, ``false_reject_rate``,
            ``false_accepts`` and ``false_accepts_per_hour``.
        max_abs_score_difference: largest |float - int8| of any unsmoothed score of any hop after warm-up.
        mean_abs_score_difference: the mean of those differences.
        detection_agreement: fraction of keyword streams both models detect or both miss.
        max_false_reject_rate_increase: the gate, ``MAX_FALSE_REJECT_RATE_INCREASE`` (1 point).
        passed: whether int8's false-reject rate exceeds float's by at most the gate.
        float_size_bytes, int8_size_bytes: the two files.
        audio: what the held-out streams were made of.

    Example:
        >>> report = StreamParityReport.measure(float_bytes, int8_bytes, keyword_streams=streams, ...)
        >>> report.passed, report.summary()  # doctest: +SKIP
    """

    threshold: float
    smoothing_seconds: float
    refractory_seconds: float
    num_keyword_streams: int
    negative_hours: float
    float_results: dict[str, float]
    int8_results: dict[str, float]
    max_abs_score_difference: float
    mean_abs_score_difference: float
    detection_agreement: float
    max_false_reject_rate_increase: float
    passed: bool
    float_size_bytes: int
    int8_size_bytes: int
    audio: str

    @classmethod
    def measure(
        cls,
        float_content: bytes,
        int8_content: bytes,
        *,
        keyword_streams: Sequence[np.ndarray],
        stream_keywords: Sequence[str],
        negative_streams: Sequence[np.ndarray],
        labels: Sequence[str],
        settings: DetectionSettings,
        warmup_hops: int,
        window_samples: int,
        sample_rate: int,
        audio: str,
    ) -> StreamParityReport:
        """Run both ``.tflite`` files over the streams and compare their detections.

        Args:
            float_content, int8_content: the two streaming models.
            keyword_streams: ``(samples,)`` float32 streams holding one keyword each.
            stream_keywords: the keyword of each of them.
            negative_streams: ``(samples,)`` float32 streams without keywords.
            labels: the models' labels.
            settings: threshold, smoothing and refractory period.
            warmup_hops: hops whose scores are ignored at the start of each stream.
            window_samples: audio one set of scores covers (for the default refractory period).
            sample_rate: of the streams, in Hz.
            audio: what the streams are made of, for the report.

        Raises:
            ConfigError: no keyword streams or no negative audio, or a stream keyword the models lack.
        """
        keywords = keyword_labels(labels)
        if not keyword_streams or not negative_streams or len(stream_keywords) != len(keyword_streams):
            raise ConfigError(
                "A stream parity report needs keyword streams (each with its keyword) and negative audio."
            )
        unknown = sorted(set(stream_keywords) - set(keywords))
        if unknown:
            raise ConfigError(f"The streams' keywords {unknown} are not keywords of the model {keywords}.")
        models = [TFLiteStreamingSpotter(content) for content in (float_content, int8_content)]
        hop_seconds = models[0].hop_samples / sample_rate
        smoothing = settings.smoothing_windows(stride_seconds=hop_seconds)
        refractory = settings.refractory_windows(
            stride_seconds=hop_seconds, window_seconds=window_samples / sample_rate
        )
        columns = [labels.index(keyword) for keyword in keywords]

        def detections(model: TFLiteStreamingSpotter, stream: np.ndarray) -> tuple[np.ndarray, list]:
            scores = model.run(stream)[warmup_hops:]
            picked = pick_detections(
                smooth_posteriors(scores, window=smoothing),
                threshold=settings.threshold,
                refractory=refractory,
                classes=columns,
            )
            return scores, picked

        differences = []
        detected = np.zeros((2, len(keyword_streams)), bool)
        for i, (stream, keyword) in enumerate(zip(keyword_streams, stream_keywords, strict=True)):
            runs = [detections(model, stream) for model in models]
            differences.append(np.abs(runs[0][0] - runs[1][0]).ravel())
            for m, (_, picked) in enumerate(runs):
                detected[m, i] = any(labels[column] == keyword for _, column, _ in picked)
        false_accepts = np.zeros(2, np.int64)
        for stream in negative_streams:
            runs = [detections(model, stream) for model in models]
            differences.append(np.abs(runs[0][0] - runs[1][0]).ravel())
            false_accepts += [len(picked) for _, picked in runs]
        hours = sum(len(stream) for stream in negative_streams) / sample_rate / 3600
        results = [
            {
                "false_rejects": int(np.sum(~detected[m])),
                "false_reject_rate": float(np.mean(~detected[m])),
                "false_accepts": int(false_accepts[m]),
                "false_accepts_per_hour": float(false_accepts[m] / hours),
            }
            for m in range(2)
        ]
        difference = np.concatenate(differences)
        increase = results[1]["false_reject_rate"] - results[0]["false_reject_rate"]
        return cls(
            threshold=float(settings.threshold),
            smoothing_seconds=float(settings.smoothing_seconds),
            refractory_seconds=float(refractory * hop_seconds),
            num_keyword_streams=len(keyword_streams),
            negative_hours=float(hours),
            float_results=results[0],
            int8_results=results[1],
            max_abs_score_difference=float(difference.max(initial=0.0)),
            mean_abs_score_difference=float(difference.mean()) if difference.size else 0.0,
            detection_agreement=float(np.mean(detected[0] == detected[1])),
            max_false_reject_rate_increase=MAX_FALSE_REJECT_RATE_INCREASE,
            passed=bool(increase <= MAX_FALSE_REJECT_RATE_INCREASE + 1e-12),
            float_size_bytes=len(float_content),
            int8_size_bytes=len(int8_content),
            audio=audio,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def write(self, path: str | os.PathLike) -> Path:
        """Write the report as JSON, atomically."""
        return write_json(path, self.to_dict(), error=ExportOutputError)

    def summary(self) -> str:
        """One line: FRR and false accepts of both models at the threshold, the gate, the score difference."""
        float_, int8 = self.float_results, self.int8_results
        verdict = "passed" if self.passed else "FAILED"
        return (
            f"at threshold {self.threshold:.3f}: FRR float {float_['false_reject_rate']:.1%} / int8 "
            f"{int8['false_reject_rate']:.1%} on {self.num_keyword_streams} keyword streams, false accepts "
            f"float {float_['false_accepts']} ({float_['false_accepts_per_hour']:.2f}/h) / int8 "
            f"{int8['false_accepts']} ({int8['false_accepts_per_hour']:.2f}/h) in "
            f"{self.negative_hours:.3f} h; gate int8 FRR - float FRR <= "
            f"{self.max_false_reject_rate_increase:.0%} {verdict}; max |score difference| "
            f"{self.max_abs_score_difference:.3f}; {self.float_size_bytes} -> {self.int8_size_bytes} bytes"
        )


def keyword_streams(
    clips: Sequence[np.ndarray],
    negatives: Sequence[np.ndarray],
    *,
    sample_rate: int,
    padding_seconds: float = 1.0,
    snr_db: float = 20.0,
    seed: int = 0,
) -> list[np.ndarray]:
    """Each keyword clip ``padding_seconds`` into background cut from ``negatives`` (joined and looped, a
    random excerpt per clip), ``snr_db`` below the clip, as ``evaluate-stream`` places them.

    Args:
        clips: ``(samples,)`` keyword clips.
        negatives: ``(samples,)`` audio without keywords, at ``sample_rate``.
        sample_rate: in Hz.
        padding_seconds: background before and after each clip.
        snr_db: level of the clip over its background, in dB.
        seed: picks the excerpts.

    Example:
        >>> streams = keyword_streams(yes_clips, [noise], sample_rate=16000)
    """
    joined = np.concatenate([np.asarray(stream, np.float32) for stream in negatives])
    if not len(joined):
        raise ConfigError("keyword_streams needs background audio: the negatives are empty.")
    padding = round(padding_seconds * sample_rate)
    length = 2 * padding + max(len(clip) for clip in clips)
    rng = np.random.default_rng(seed)
    offsets = np.arange(length)
    excerpts = np.stack([joined[(int(rng.integers(len(joined))) + offsets) % len(joined)] for _ in clips])
    return list(_in_background(clips, excerpts, padding_samples=padding, snr_db=snr_db))

"""Measuring a keyword detector on streams: false rejects on keyword clips, false accepts per hour."""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from audio_transfer.atomic_files import write_json
from audio_transfer.audio import AUDIO_EXTENSIONS, AudioBlockReader, load_audio
from audio_transfer.data import SkippedFile, load_labelled_audio
from audio_transfer.errors import AudioDecodeError, ConfigError, DatasetError, InputShapeError
from audio_transfer.evaluation import KeywordDetectionReport, plot_false_accept_curve
from audio_transfer.progress import track
from audio_transfer.streaming.detection_settings import STREAMING_FILE, DetectionSettings
from audio_transfer.streaming.keyword_detector import KeywordDetector
from audio_transfer.streaming.posteriors import pick_detections, smooth_posteriors

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLDS = np.round(np.concatenate([np.arange(1, 100) / 100, [0.995, 0.999]]), 3)
DET_FILE = "streaming_det.png"
REPORT_FILE = "streaming_report.json"
# Seconds of a negative file decoded at a time: hours of negatives are scored in bounded memory.
_NEGATIVE_BLOCK_SECONDS = 60.0


# Fewer false accepts than this over the negative audio cannot tell a rate from chance: a target of X per
# hour is resolved by at least RESOLVING_FALSE_ACCEPTS / X hours of negatives.
RESOLVING_FALSE_ACCEPTS = 3.0


@dataclasses.dataclass(frozen=True)
class StreamEvaluation:
    """What :func:`evaluate_stream` measured and chose.

    Args:
        report: false-reject rate and false accepts per hour at every threshold, on the evaluated audio.
        settings: the chosen threshold with the smoothing and refractory period it was measured with.
        chosen_index: index of the chosen threshold in ``report.thresholds``.
        target_met: whether a threshold stayed within the target on the audio that chose it (otherwise
            the highest one is chosen).
        positives: the keyword clip folder; negatives: the files of audio without keywords.
        skipped: files that could not be decoded, or class folders that are not keywords of the model.
        chosen_on: ``"validation"`` when the threshold was chosen on other audio
            (``validation_report``), ``"evaluated audio"`` when on the evaluated audio itself (its figures
            at the threshold are then optimistic).
        validation_report: the report on the validation audio that chose the threshold, when given.
        validation_positives, validation_negatives: that audio.
        warnings: what makes the figures unreliable (negative audio too short to resolve the target).
    """

    report: KeywordDetectionReport
    settings: DetectionSettings
    chosen_index: int
    target_met: bool
    positives: Path
    negatives: tuple[Path, ...]
    skipped: tuple[SkippedFile, ...] = ()
    chosen_on: str = "evaluated audio"
    validation_report: KeywordDetectionReport | None = None
    validation_positives: Path | None = None
    validation_negatives: tuple[Path, ...] = ()
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        validation = None
        if self.validation_report is not None:
            validation = {
                **self.validation_report.to_dict(),
                "chosen": self.validation_report.point(self.chosen_index),
                "positives": str(self.validation_positives),
                "negatives": [str(path) for path in self.validation_negatives],
            }
        return {
            **self.report.to_dict(),
            "chosen": self.report.point(self.chosen_index),
            "keyword_false_reject_rates": self.report.keyword_false_reject_rates(self.chosen_index),
            "target_fa_per_hour": self.settings.target_fa_per_hour,
            "target_met": self.target_met,
            "threshold_chosen_on": self.chosen_on,
            "validation": validation,
            "settings": self.settings.to_dict(),
            "positives": str(self.positives),
            "negatives": [str(path) for path in self.negatives],
            "skipped": [item.to_dict() for item in self.skipped],
            "warnings": list(self.warnings),
        }

    def to_text(self) -> str:
        lines = [self.report.to_text(self.chosen_index)]
        if self.chosen_on == "validation":
            lines.append(
                f"threshold chosen on the validation audio ({self.validation_positives}, "
                f"{self.validation_report.negative_hours:.3f} h without keywords)"
            )
        else:
            lines.append(
                "threshold chosen on this same audio: the figures at it are optimistic (choose it on other "
                "audio with --validation-positives and --validation-negatives)"
            )
        if not self.target_met:
            lines.append(
                f"no threshold reaches {self.settings.target_fa_per_hour:g} false accepts per hour; "
                "chose the highest"
            )
        lines += [f"warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)

    def save(
        self, model_dir: str | os.PathLike | None, *, out_dir: str | os.PathLike | None = None
    ) -> dict[str, Path]:
        """Write ``streaming.json`` (the chosen settings) into ``model_dir``, and the DET curve PNG and the
        full report JSON into ``out_dir`` (default ``model_dir``). Either may be ``None`` to skip its files.
        Every file is replaced atomically.

        Returns:
            the written paths by role: ``settings``, ``det_curve``, ``report``.
        """
        written = {}
        if model_dir is not None:
            Path(model_dir).mkdir(parents=True, exist_ok=True)
            written["settings"] = self.settings.write(Path(model_dir) / STREAMING_FILE)
            out_dir = model_dir if out_dir is None else out_dir
        if out_dir is not None:
            out_dir = Path(out_dir)
            out_dir.mkdir(parents=True, exist_ok=True)
            written["det_curve"] = plot_false_accept_curve(
                self.report,
                out_dir / DET_FILE,
                chosen_index=self.chosen_index,
                target_fa_per_hour=self.settings.target_fa_per_hour,
            )
            written["report"] = write_json(out_dir / REPORT_FILE, self.to_dict())
        return written


@dataclasses.dataclass(frozen=True)
class _Measured:
    """One pass of a detector over keyword clips and negative audio."""

    report: KeywordDetectionReport
    negatives: tuple[Path, ...]
    skipped: list[SkippedFile]


def evaluate_stream(
    detector: KeywordDetector,
    *,
    positives: str | os.PathLike,
    negatives: str | os.PathLike | Sequence[str | os.PathLike],
    target_fa_per_hour: float = 1.0,
    validation_positives: str | os.PathLike | None = None,
    validation_negatives: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    thresholds: Sequence[float] | None = None,
    settings: DetectionSettings | None = None,
    padding_seconds: float = 1.0,
    snr_db: float = 20.0,
    seed: int = 0,
) -> StreamEvaluation:
    """False-reject rate and false accepts per hour across thresholds; picks the threshold for a target.

    Positives are keyword clips in one folder per keyword (folders that are not keywords of the model,
    such as ``_background_noise_``, are skipped). Each clip is placed ``padding_seconds`` into a stream of
    background taken from the negatives (a random excerpt, mixed ``snr_db`` below the clip's level) with
    ``padding_seconds`` after it; it counts as detected at a threshold when its own keyword fires anywhere
    in that stream. Negatives are long recordings without keywords (a file, a folder searched recursively,
    or a list of them); every detection on them is a false accept. Negatives are read in blocks (see
    :class:`~audio_transfer.audio.AudioBlockReader`), twice: once to score them, once to copy out the
    background excerpts, so their length does not bound the memory.

    Smoothing and refractory period come from ``settings`` (default: the detector's); the threshold with
    the fewest false rejects within ``target_fa_per_hour`` is chosen (the highest threshold when none is),
    on the validation audio when given (``validation_positives`` and ``validation_negatives``, measured the
    same way), else on the evaluated audio itself, whose figures at the threshold are then optimistic. A
    warning is recorded (and logged) when negative audio is shorter than
    ``RESOLVING_FALSE_ACCEPTS / target_fa_per_hour`` hours: too short to tell the target from chance.

    Args:
        detector: the detector (see :meth:`KeywordDetector.from_path`).
        positives: folder of keyword clips, one sub-folder per keyword.
        negatives: audio without keywords.
        target_fa_per_hour: false accepts per hour the chosen threshold may make.
        validation_positives, validation_negatives: other audio to choose the threshold on (both or
            neither).
        thresholds: increasing thresholds to measure (default 0.01 .. 0.99 by 0.01, 0.995, 0.999).
        settings: smoothing and refractory period to measure with.
        padding_seconds: background before and after each keyword clip.
        snr_db: level of the clip over its background, in dB.
        seed: picks the background excerpts.

    Returns:
        A :class:`StreamEvaluation`; call :meth:`StreamEvaluation.save` to store the chosen settings.

    Example:
        >>> evaluation = evaluate_stream(
        ...     detector, positives="kws/test", negatives="speech/test",
        ...     validation_positives="kws/validation", validation_negatives="speech/validation",
        ... )
        >>> evaluation.save("runs/yes_no")  # streaming.json, streaming_det.png, streaming_report.json
    """
    settings = settings or detector.settings
    thresholds = np.asarray(DEFAULT_THRESHOLDS if thresholds is None else thresholds, dtype=np.float64)
    if padding_seconds < 0:
        raise ConfigError(f"padding_seconds must be >= 0, received {padding_seconds!r}.")
    if (validation_positives is None) != (validation_negatives is None):
        raise ConfigError(
            "Give both validation_positives and validation_negatives (keyword clips and audio without "
            "keywords to choose the threshold on), or neither."
        )
    if not target_fa_per_hour >= 0:
        raise ConfigError(f"target_fa_per_hour must be >= 0, received {target_fa_per_hour!r}.")
    measure = functools.partial(
        _measure,
        detector,
        thresholds=thresholds,
        settings=settings,
        padding_seconds=padding_seconds,
        snr_db=snr_db,
        seed=seed,
    )
    validation = None
    if validation_positives is not None:
        validation = measure(Path(validation_positives), validation_negatives)
    evaluated = measure(Path(positives), negatives)
    choosing = (validation or evaluated).report
    measured_audio = [("evaluated", evaluated), *([("validation", validation)] if validation else [])]
    warnings = [
        _resolution_warning(audio.report, target_fa_per_hour, what)
        for what, audio in measured_audio
        if audio.report.negative_hours * target_fa_per_hour < RESOLVING_FALSE_ACCEPTS
    ]
    for warning in warnings:
        logger.warning("%s", warning)
    index = choosing.threshold_index(target_fa_per_hour)
    target_met = index is not None
    if index is None:
        index = len(thresholds) - 1
        logger.warning(
            "No threshold keeps false accepts within %g per hour (%.2f per hour at %.3f); chose %.3f.",
            target_fa_per_hour,
            choosing.false_accepts_per_hour[index],
            thresholds[index],
            thresholds[index],
        )
    chosen = choosing.point(index)
    measured = {
        "false_reject_rate": chosen["false_reject_rate"],
        "false_accepts_per_hour": chosen["false_accepts_per_hour"],
        "stride_seconds": detector.stride_seconds,
        "num_positives": choosing.num_positives,
        "negative_hours": choosing.negative_hours,
        "padding_seconds": padding_seconds,
        "snr_db": snr_db,
        "chosen_on": "validation" if validation else "evaluated audio",
    }
    return StreamEvaluation(
        report=evaluated.report,
        settings=settings.replace(
            threshold=chosen["threshold"], target_fa_per_hour=target_fa_per_hour, measured=measured
        ),
        chosen_index=index,
        target_met=target_met,
        positives=Path(positives),
        negatives=evaluated.negatives,
        skipped=tuple(evaluated.skipped + (validation.skipped if validation else [])),
        chosen_on="validation" if validation else "evaluated audio",
        validation_report=validation.report if validation else None,
        validation_positives=None if validation_positives is None else Path(validation_positives),
        validation_negatives=validation.negatives if validation else (),
        warnings=tuple(warnings),
    )


def _resolution_warning(report: KeywordDetectionReport, target_fa_per_hour: float, what: str) -> str:
    needed = (
        f"at least {RESOLVING_FALSE_ACCEPTS / target_fa_per_hour:.1f} h"
        if target_fa_per_hour > 0
        else "a target above 0 (no length of audio shows a rate of 0)"
    )
    return (
        f"the {what} negative audio lasts {report.negative_hours:.2f} h: too short to resolve "
        f"{target_fa_per_hour:g} false accepts per hour (one false accept is already "
        f"{1 / report.negative_hours:.2f} per hour); give {needed} of audio without keywords"
    )


def _measure(
    detector: KeywordDetector,
    positives: Path,
    negatives: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    thresholds: np.ndarray,
    settings: DetectionSettings,
    padding_seconds: float,
    snr_db: float,
    seed: int,
) -> _Measured:
    """Detections of the keyword clips of ``positives`` in background, and false accepts on ``negatives``,
    at every threshold (see :func:`evaluate_stream`)."""
    clips, labels, skipped = _load_positives(positives, detector)
    smoothing = detector.smoothing_windows(settings)
    refractory = detector.refractory_windows(settings)

    def count(scores: np.ndarray, threshold: float, keyword: int | None) -> int:
        picked = pick_detections(
            scores, threshold=threshold, refractory=refractory, classes=detector.keyword_indices
        )
        return sum(1 for _, column, _ in picked if keyword is None or column == keyword)

    false_accepts = np.zeros(len(thresholds), np.int64)
    lengths: dict[Path, int] = {}  # samples of each negative file that decoded
    for path in track(_negative_files(negatives), "Scoring audio without keywords"):
        try:
            reader = _negative_reader(path, sample_rate=detector.sample_rate)
            posteriors = np.concatenate(list(detector.posteriors_of_blocks(reader)))
        except (AudioDecodeError, InputShapeError) as error:  # not audio, or no samples at this rate
            logger.warning("Skipping %s: %s", path, error)
            skipped.append(SkippedFile(os.fspath(path), str(error)))
            continue
        scores = smooth_posteriors(posteriors, window=smoothing)
        false_accepts += [count(scores, threshold, None) for threshold in thresholds]
        lengths[path] = reader.samples_read
    if not lengths:
        raise DatasetError(
            f"None of the negative files could be decoded ({skipped[-1].path}: {skipped[-1].reason})."
        )
    negative_seconds = sum(lengths.values()) / detector.sample_rate

    padding_samples = round(padding_seconds * detector.sample_rate)
    length = 2 * padding_samples + max(len(clip) for clip in clips)
    rng = np.random.default_rng(seed)
    starts = [int(rng.integers(0, sum(lengths.values()))) for _ in clips]
    excerpts = _background_excerpts(lengths, starts, length=length, sample_rate=detector.sample_rate)
    positive_streams = _in_background(clips, excerpts, padding_samples=padding_samples, snr_db=snr_db)
    detected = np.zeros((len(clips), len(thresholds)), bool)
    for i, posteriors in enumerate(detector.posteriors(positive_streams)):
        scores = smooth_posteriors(posteriors, window=smoothing)
        keyword = detector.labels.index(labels[i])
        detected[i] = [count(scores, threshold, keyword) > 0 for threshold in thresholds]

    report = KeywordDetectionReport(
        thresholds, detected, false_accepts, negative_seconds=negative_seconds, positive_labels=labels
    )
    return _Measured(report=report, negatives=tuple(lengths), skipped=skipped)


def _negative_files(negatives) -> list[Path]:
    sources = [negatives] if isinstance(negatives, (str, os.PathLike)) else list(negatives)
    files = []
    for source in map(Path, sources):
        if source.is_dir():
            files += sorted(
                path
                for path in source.rglob("*")
                if path.is_file() and path.name.lower().endswith(AUDIO_EXTENSIONS)
            )
        elif source.is_file():
            files.append(source)
        else:
            raise DatasetError(
                f"The negative audio {source} does not exist; give a long recording or a folder."
            )
    if not files:
        raise DatasetError(
            f"No audio files ({', '.join(AUDIO_EXTENSIONS)}) in {', '.join(map(str, sources))}."
        )
    return files


def _load_files(
    paths: Sequence[Path], *, sample_rate: int
) -> tuple[dict[Path, np.ndarray], list[SkippedFile]]:
    loaded, skipped = {}, []
    for path in track(paths, "Decoding audio files"):
        try:
            waveform = load_audio(path, sample_rate=sample_rate)
        except AudioDecodeError as error:
            logger.warning("Skipping %s: %s", path, error)
            skipped.append(SkippedFile(os.fspath(path), str(error)))
            continue
        if len(waveform):
            loaded[path] = waveform
        else:
            skipped.append(SkippedFile(os.fspath(path), "no samples"))
    return loaded, skipped


def _load_positives(
    folder: Path, detector: KeywordDetector
) -> tuple[list[np.ndarray], list[str], list[SkippedFile]]:
    """The keyword clips of ``folder`` (whole files) with their labels; other classes are skipped."""
    data = load_labelled_audio(folder, unknown_fraction=0.0)
    others = sorted(set(data.labels) - set(detector.keywords))
    skipped = list(data.skipped)
    if others:
        logger.warning(
            "%s: skipping folders that are not keywords of the model: %s.", folder, ", ".join(others)
        )
        skipped += [SkippedFile(os.fspath(folder / label), "not a keyword of the model") for label in others]
    examples = [example for example in data.examples if example.label in detector.keywords]
    clips, kept = _load_files([example.path for example in examples], sample_rate=detector.sample_rate)
    skipped += kept
    labels = [example.label for example in examples if example.path in clips]
    if not labels:
        raise DatasetError(
            f"{folder} holds no clips of the model's keywords ({', '.join(detector.keywords)}); give a "
            "folder with one sub-folder per keyword."
        )
    return [clips[example.path] for example in examples if example.path in clips], labels, skipped


def _negative_reader(path: Path, *, sample_rate: int) -> AudioBlockReader:
    return AudioBlockReader(path, sample_rate=sample_rate, block_seconds=_NEGATIVE_BLOCK_SECONDS)


def _background_excerpts(
    lengths: dict[Path, int], starts: Sequence[int], *, length: int, sample_rate: int
) -> np.ndarray:
    """``(len(starts), length)``: the excerpts at ``starts`` of the negatives joined end to end and looped.

    ``lengths`` gives each file's samples at ``sample_rate`` in joining order; the files are read again
    block by block and only the excerpts are kept.
    """
    total = sum(lengths.values())
    excerpts = np.empty((len(starts), length), np.float32)
    segments = []  # (excerpt, offset in it, start in the joined negatives, samples)
    for index, start in enumerate(starts):
        offset = 0
        while offset < length:
            position = (start + offset) % total
            size = min(length - offset, total - position)
            segments.append((index, offset, position, size))
            offset += size
    file_start = 0
    for path, file_length in lengths.items():
        block_start = file_start
        for block in _negative_reader(path, sample_rate=sample_rate):
            block_end = block_start + len(block)
            for index, offset, position, size in segments:
                low, high = max(position, block_start), min(position + size, block_end)
                if low < high:
                    excerpts[index, offset + low - position : offset + high - position] = block[
                        low - block_start : high - block_start
                    ]
            block_start = block_end
        file_start += file_length
    return excerpts


def _in_background(
    clips: Sequence[np.ndarray], excerpts: np.ndarray, *, padding_samples: int, snr_db: float
) -> np.ndarray:
    """``(clips, samples)``: each clip ``padding_samples`` into its background excerpt (one row of
    ``excerpts`` per clip, at least as long as the clip plus padding on both sides), scaled to sit
    ``snr_db`` below the clip's RMS level."""
    streams = np.empty(excerpts.shape, np.float32)
    for i, (clip, excerpt) in enumerate(zip(clips, excerpts, strict=True)):
        clip_rms = float(np.sqrt(np.mean(np.square(clip))))
        excerpt_rms = float(np.sqrt(np.mean(np.square(excerpt))))
        gain = clip_rms / (10 ** (snr_db / 20)) / excerpt_rms if excerpt_rms > 0 else 0.0
        streams[i] = gain * excerpt
        streams[i, padding_samples : padding_samples + len(clip)] += clip
    return streams

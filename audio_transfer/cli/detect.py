"""``audio-transfer detect MODEL LONG_AUDIO``: keywords in a long recording, with timestamps and scores."""

from __future__ import annotations

import argparse
from pathlib import Path

from audio_transfer.cli.output import EXIT_NO, EXIT_OK, CommandResult, terminal_safe


def add_detection_arguments(parser: argparse.ArgumentParser) -> None:
    """The stride/smoothing/refractory flags shared by ``detect`` and ``evaluate-stream``."""
    parser.add_argument(
        "--stride-seconds",
        type=float,
        default=None,
        metavar="S",
        help="time between window positions (default 0.08, the speech_embedding hop)",
    )
    parser.add_argument(
        "--smoothing-seconds",
        type=float,
        default=None,
        metavar="W",
        help="moving average of the scores over this span (default: the model's streaming.json, else 0.24)",
    )
    parser.add_argument(
        "--refractory-seconds",
        type=float,
        default=None,
        metavar="R",
        help=(
            "nothing fires this long after a detection (default: the model's streaming.json, else the "
            "length of the window the model hears)"
        ),
    )


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "detect",
        help="find keywords in long audio with a keyword spotter",
        description=(
            "Slide a trained keyword spotter (run folder or .keras file) over a long recording: its "
            "training clip length every --stride-seconds, scores smoothed by a moving average, a keyword "
            "fires where its smoothed score reaches the threshold, and nothing fires during the refractory "
            "period after a detection. Threshold and smoothing default to those `evaluate-stream` saved in "
            "the run folder (streaming.json). Prints each detection's window (seconds) and score; exits 1 "
            "when no keyword is detected."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="run folder or .keras file of a keyword spotter")
    parser.add_argument("audio", type=Path, metavar="LONG_AUDIO", help="audio file to search")
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        metavar="T",
        help="smoothed score that fires (default: the model's streaming.json, else 0.5)",
    )
    add_detection_arguments(parser)
    return parser


def run(args: argparse.Namespace) -> CommandResult:
    from audio_transfer.audio import AudioBlockReader
    from audio_transfer.streaming import STREAMING_FILE, KeywordDetector

    detector = KeywordDetector.from_path(args.model, stride_seconds=args.stride_seconds)
    settings = detector.settings.replace(
        threshold=args.threshold,
        smoothing_seconds=args.smoothing_seconds,
        refractory_seconds=args.refractory_seconds,
    )
    audio = AudioBlockReader(args.audio, sample_rate=detector.sample_rate)  # hours fit in memory
    detections = detector.detect_blocks(audio, settings)
    model_dir = Path(args.model) if Path(args.model).is_dir() else Path(args.model).parent
    saved = (model_dir / STREAMING_FILE).is_file()
    data = {
        "model": str(args.model),
        "audio": str(args.audio),
        "duration_seconds": audio.samples_read / detector.sample_rate,
        "keywords": list(detector.keywords),
        "threshold": settings.threshold,
        "smoothing_seconds": settings.smoothing_seconds,
        "refractory_seconds": detector.refractory_seconds(settings),
        "window_seconds": detector.window_seconds,
        "stride_seconds": detector.stride_seconds,
        "settings_from": STREAMING_FILE if saved else "defaults",
        "detections": [detection.to_dict() for detection in detections],
    }
    lines = [
        f"{d.start_seconds:8.2f} - {d.end_seconds:8.2f} s  {terminal_safe(d.label)}  {d.score:.3f}"
        for d in detections
    ]
    lines.append(
        f"{len(detections)} detections in {data['duration_seconds']:.1f} s of {terminal_safe(args.audio)} "
        "(threshold "
        f"{settings.threshold:g}, smoothing {settings.smoothing_seconds:g} s, refractory "
        f"{detector.refractory_seconds(settings):g} s)."
    )
    return CommandResult(data=data, text="\n".join(lines), exit_code=EXIT_OK if detections else EXIT_NO)

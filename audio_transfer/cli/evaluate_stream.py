"""``audio-transfer evaluate-stream MODEL --positives DIR --negatives AUDIO``: false rejects and false accepts
per hour of a keyword spotter run on streams, and the threshold for a false-accept budget."""

from __future__ import annotations

import argparse
from pathlib import Path

from audio_transfer.atomic_files import writable_folder
from audio_transfer.cli.detect import add_detection_arguments
from audio_transfer.cli.output import CommandResult, terminal_safe


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "evaluate-stream",
        help="false rejects and false accepts per hour of a keyword spotter; choose its threshold",
        description=(
            "Run a keyword spotter as `detect` does on keyword clips (--positives, one folder per keyword; "
            "each clip placed in background taken from the negatives) and on long audio without keywords "
            "(--negatives), at thresholds 0.01 to 0.999. Reports the false-reject rate and false accepts "
            "per hour at each and picks the threshold with the fewest false rejects within "
            "--target-fa-per-hour: on --validation-positives and --validation-negatives when given, so "
            "that the reported figures are not chosen on the audio they measure. Warns when the negative "
            "audio is too short to resolve the target. Saves the threshold with the smoothing and "
            "refractory period in the model's folder (streaming.json), where `detect` and `export` find "
            "it; the DET curve (streaming_det.png) and the full report (streaming_report.json) go to "
            "--out, default the model's folder."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="run folder or .keras file of a keyword spotter")
    parser.add_argument(
        "--positives", type=Path, required=True, metavar="DIR", help="keyword clips, one folder per keyword"
    )
    parser.add_argument(
        "--negatives",
        type=Path,
        nargs="+",
        required=True,
        metavar="LONG_AUDIO_OR_DIR",
        help="audio without keywords: files or folders (searched recursively)",
    )
    parser.add_argument(
        "--target-fa-per-hour",
        type=float,
        default=1.0,
        metavar="X",
        help="false accepts per hour the chosen threshold may make (default 1)",
    )
    parser.add_argument(
        "--validation-positives",
        type=Path,
        default=None,
        metavar="DIR",
        help="keyword clips to choose the threshold on (with --validation-negatives)",
    )
    parser.add_argument(
        "--validation-negatives",
        type=Path,
        nargs="+",
        default=None,
        metavar="LONG_AUDIO_OR_DIR",
        help="audio without keywords to choose the threshold on (with --validation-positives)",
    )
    add_detection_arguments(parser)
    parser.add_argument(
        "--padding-seconds",
        type=float,
        default=1.0,
        metavar="P",
        help="background before and after each keyword clip (default 1)",
    )
    parser.add_argument(
        "--snr-db",
        type=float,
        default=20.0,
        metavar="DB",
        help="keyword level over its background (default 20)",
    )
    parser.add_argument("--out", type=Path, default=None, metavar="DIR", help="folder for the PNG and report")
    parser.add_argument(
        "--no-save",
        action="store_true",
        help="do not write streaming.json into the model's folder (the PNG and report only with --out)",
    )
    return parser


def run(args: argparse.Namespace) -> CommandResult:
    from audio_transfer.streaming import KeywordDetector, evaluate_stream

    if args.out is not None:
        writable_folder(args.out)
    detector = KeywordDetector.from_path(args.model, stride_seconds=args.stride_seconds)
    settings = detector.settings.replace(
        smoothing_seconds=args.smoothing_seconds, refractory_seconds=args.refractory_seconds
    )
    evaluation = evaluate_stream(
        detector,
        positives=args.positives,
        negatives=args.negatives,
        target_fa_per_hour=args.target_fa_per_hour,
        validation_positives=args.validation_positives,
        validation_negatives=args.validation_negatives,
        settings=settings,
        padding_seconds=args.padding_seconds,
        snr_db=args.snr_db,
    )
    model_dir = Path(args.model) if Path(args.model).is_dir() else Path(args.model).parent
    written = evaluation.save(None if args.no_save else model_dir, out_dir=args.out)
    data = {
        "model": str(args.model),
        **evaluation.to_dict(),
        "written": {k: str(v) for k, v in written.items()},
    }
    lines = [f"{terminal_safe(args.model)}:", evaluation.to_text()]
    lines += [f"wrote {path}" for path in written.values()]
    return CommandResult(data=data, text="\n".join(lines))

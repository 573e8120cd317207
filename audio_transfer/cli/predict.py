"""``audio-transfer predict MODEL FILE_OR_DIR...``: the most likely labels of audio files."""

from __future__ import annotations

import argparse

from audio_transfer.cli._flags import add_safe_mode_argument
from audio_transfer.cli.output import CommandResult, terminal_safe


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "predict",
        help="label audio files with a trained model",
        description=(
            "Run a trained classifier (run folder or .keras file) on audio files and folders (searched "
            "recursively). Each file is decoded like the training clips: resampled to the model's rate and "
            "centre-cropped or padded to the run's clip length. Files that do not decode are listed as "
            "skipped."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="run folder or .keras file")
    parser.add_argument("paths", nargs="+", metavar="FILE_OR_DIR", help="audio files or folders")
    parser.add_argument("--top-k", type=int, default=1, metavar="K", help="labels per file (default 1)")
    add_safe_mode_argument(parser)
    return parser


def run(args: argparse.Namespace) -> CommandResult:
    from audio_transfer.cli._tasks import (
        audio_files,
        classifier_run,
        load_model_run,
        skipped_dicts,
        skipped_lines,
    )
    from audio_transfer.errors import DatasetError

    trained = classifier_run(args.model, load_model_run(args.model, safe_mode=args.safe_mode))
    files, unreachable = audio_files(args.paths)
    if not files and not unreachable:
        raise DatasetError(f"No audio files in {', '.join(map(str, args.paths))}.")
    clips, kept, undecodable = trained.task.load_clips(
        files, clip_seconds=trained.config.clip_seconds, skip_undecodable=True
    )
    skipped = [*unreachable, *undecodable]
    predictions = []
    if clips:
        ranked = trained.task.classify(clips, top_k=args.top_k)
        for path, top in zip(kept, ranked, strict=True):
            predictions.append(
                {
                    "file": str(path),
                    "label": top[0][0],
                    "score": top[0][1],
                    "top_k": [{"label": label, "score": score} for label, score in top],
                }
            )
    data = {"model": str(args.model), "predictions": predictions, "skipped": skipped_dicts(skipped)}
    lines = [
        f"{terminal_safe(p['file'])}: "
        + ", ".join(f"{terminal_safe(t['label'])} ({t['score']:.3f})" for t in p["top_k"])
        for p in predictions
    ]
    lines += skipped_lines(skipped)
    return CommandResult(data=data, text="\n".join(lines), exit_code=0 if predictions else 1)

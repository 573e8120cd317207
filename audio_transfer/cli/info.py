"""``audio-transfer info PATH``: describe an audio file, or summarise a dataset folder or manifest."""

from __future__ import annotations

import argparse
from pathlib import Path

from audio_transfer.audio import verify_audio
from audio_transfer.cli.output import CommandResult, terminal_safe
from audio_transfer.data import is_manifest, summarize_dataset


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "info",
        help="describe an audio file or a labelled dataset",
        description=(
            "For an audio file: duration, sample rate, channels, format and subtype (the whole file is "
            "decoded to check it). For a dataset folder (one sub-folder per class) or a .csv/.tsv manifest "
            "(path,label[,speaker]): classes with counts, speakers, duration, sample rates, noise files "
            "and every file that does not decode, with the reason."
        ),
    )
    parser.add_argument("path", type=Path, help="audio file, dataset folder or manifest")
    parser.add_argument(
        "--speaker-pattern",
        default=None,
        metavar="REGEX",
        help="regex with a (?P<speaker>...) group, searched in each clip's path relative to the dataset",
    )
    return parser


def run(args: argparse.Namespace) -> CommandResult:
    path: Path = args.path
    if path.is_dir() or is_manifest(path):
        summary = summarize_dataset(path, speaker_pattern=args.speaker_pattern)
        return CommandResult(data={"kind": "dataset", **summary.to_dict()}, text=summary.to_text())
    info = verify_audio(path)
    text = (
        f"{terminal_safe(info.path)}: {info.duration_seconds:.3f} s, {info.sample_rate} Hz, "
        f"{info.channels} channel"
        f"{'s' if info.channels != 1 else ''}, {info.format} {info.subtype or ''}".rstrip()
    )
    return CommandResult(data={"kind": "audio_file", **info.to_dict()}, text=text)

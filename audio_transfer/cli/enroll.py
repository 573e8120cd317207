"""``audio-transfer enroll MODEL --name NAME --enrollments FILE AUDIO...``: add a speaker's voice."""

from __future__ import annotations

import argparse
from pathlib import Path

from audio_transfer.cli.output import CommandResult, terminal_safe


def add_verifier_arguments(parser: argparse.ArgumentParser) -> None:
    """MODEL and --enrollments, shared with ``verify``."""
    parser.add_argument(
        "model",
        metavar="MODEL",
        help="speaker-verification run folder or .keras file, or a base name such as ge2e_speaker",
    )
    parser.add_argument(
        "--enrollments", type=Path, required=True, metavar="FILE.json", help="the enrolled speakers' file"
    )


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "enroll",
        help="enroll a speaker for verification",
        description=(
            "Embed a speaker's clips (whole files) and add them to the enrollments file (created if "
            "missing; enrolling a name again adds clips to it). Use the same MODEL with `verify`."
        ),
    )
    add_verifier_arguments(parser)
    parser.add_argument("--name", required=True, help="the speaker's name")
    parser.add_argument("paths", nargs="+", metavar="AUDIO", help="audio files or folders of the speaker")
    return parser


def run(args: argparse.Namespace) -> CommandResult:
    from audio_transfer.cli._tasks import (
        audio_files,
        load_model_run,
        load_whole_clips,
        skipped_dicts,
        verifier_for,
    )

    verifier = verifier_for(args.model, load_model_run(args.model))
    if args.enrollments.is_file():
        verifier.load_enrollments(args.enrollments)
    files, unreachable = audio_files(args.paths)
    clips, kept, undecodable = load_whole_clips(verifier, files)
    skipped = [*unreachable, *undecodable]
    verifier.enroll(args.name, clips)
    verifier.save_enrollments(args.enrollments)
    data = {
        "speaker": args.name,
        "num_clips": len(kept),
        "enrolled": verifier.enrolled,
        "enrollments": str(args.enrollments),
        "skipped": skipped_dicts(skipped),
    }
    text = (
        f"Enrolled {terminal_safe(args.name)} from {len(kept)} clips in {terminal_safe(args.enrollments)} "
        f"({len(verifier.enrolled)} speakers: {', '.join(map(terminal_safe, verifier.enrolled))})."
    )
    return CommandResult(data=data, text=text)

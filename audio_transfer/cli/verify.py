"""``audio-transfer verify MODEL --enrollments FILE AUDIO... [--name NAME]``: is it the enrolled speaker?"""

from __future__ import annotations

import argparse

from audio_transfer.cli.enroll import add_verifier_arguments
from audio_transfer.cli.output import CommandResult


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "verify",
        help="score audio files against enrolled speakers",
        description=(
            "Cosine similarity between each file's speaker embedding and the enrolled speaker's (--name), "
            "or every enrolled speaker's, best first. A score at or above the threshold accepts: "
            "--threshold, else the EER threshold the training run measured, else 0.75."
        ),
    )
    add_verifier_arguments(parser)
    parser.add_argument("paths", nargs="+", metavar="AUDIO", help="audio files or folders to verify")
    parser.add_argument("--name", default=None, help="claimed speaker (default: every enrolled speaker)")
    parser.add_argument("--threshold", type=float, default=None, help="acceptance threshold on the score")
    return parser


def run(args: argparse.Namespace) -> CommandResult:
    from audio_transfer.cli._tasks import (
        DEFAULT_VERIFY_THRESHOLD,
        audio_files,
        load_model_run,
        load_whole_clips,
        run_threshold,
        skipped_dicts,
        verifier_for,
    )
    from audio_transfer.errors import DatasetError

    trained = load_model_run(args.model)
    verifier = verifier_for(args.model, trained)
    if not args.enrollments.is_file():
        raise DatasetError(f"The enrollments file {args.enrollments} does not exist; enroll speakers first.")
    verifier.load_enrollments(args.enrollments)
    names = [args.name] if args.name is not None else verifier.enrolled
    for name in names:
        verifier.centroid(name)  # names the enrolled speakers when unknown
    threshold = args.threshold
    if threshold is None:
        threshold = run_threshold(trained)
    if threshold is None:
        threshold = DEFAULT_VERIFY_THRESHOLD
    clips, kept, skipped = load_whole_clips(audio_files(args.paths), sample_rate=verifier.sample_rate)
    embeddings = verifier.embed_clips(clips)
    results = []
    for path, embedding in zip(kept, embeddings, strict=True):
        scores = sorted(
            ((name, float(embedding @ verifier.centroid(name))) for name in names),
            key=lambda item: -item[1],
        )
        best, score = scores[0]
        results.append(
            {
                "file": str(path),
                "speaker": best,
                "score": score,
                "accepted": score >= threshold,
                "scores": dict(scores),
            }
        )
    data = {"threshold": threshold, "results": results, "skipped": skipped_dicts(skipped)}
    lines = [
        f"{r['file']}: {r['speaker']} {r['score']:.3f} {'accepted' if r['accepted'] else 'rejected'}"
        for r in results
    ]
    return CommandResult(data=data, text="\n".join([*lines, f"(threshold {threshold:.3f})"]))

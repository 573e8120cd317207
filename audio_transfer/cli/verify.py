"""``audio-transfer verify MODEL --enrollments FILE AUDIO... [--name NAME]``: is it the enrolled speaker?"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from audio_transfer.checks import is_number
from audio_transfer.cli.enroll import add_verifier_arguments
from audio_transfer.cli.output import EXIT_NO, EXIT_OK, CommandResult, terminal_safe
from audio_transfer.errors import ConfigError

logger = logging.getLogger(__name__)


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "verify",
        help="score audio files against enrolled speakers",
        description=(
            "Cosine similarity between each file's speaker embedding and the enrolled speaker's (--name), "
            "or every enrolled speaker's, best first. A score at or above the threshold accepts: "
            "--threshold, else the EER threshold in --threshold-from (what `evaluate --task "
            "speaker-verification --out DIR` measured for a bare base), else the one the training run "
            "measured, else 0.75. Exits 1 when a clip is rejected."
        ),
    )
    add_verifier_arguments(parser)
    parser.add_argument("paths", nargs="+", metavar="AUDIO", help="audio files or folders to verify")
    parser.add_argument("--name", default=None, help="claimed speaker (default: every enrolled speaker)")
    parser.add_argument("--threshold", type=float, default=None, help="acceptance threshold on the score")
    parser.add_argument(
        "--threshold-from",
        type=Path,
        default=None,
        metavar="DIR_OR_METRICS.json",
        help="the EER threshold of this metrics.json, or of the one in this folder (`evaluate --out DIR`)",
    )
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
    from audio_transfer.training import METRICS_FILE

    trained = load_model_run(args.model)
    verifier = verifier_for(args.model, trained)
    if not args.enrollments.is_file():
        raise DatasetError(f"The enrollments file {args.enrollments} does not exist; enroll speakers first.")
    verifier.load_enrollments(args.enrollments)
    names = [args.name] if args.name is not None else verifier.enrolled
    for name in names:
        verifier.centroid(name)  # names the enrolled speakers when unknown
    if args.threshold is not None:
        threshold, threshold_from = args.threshold, "--threshold"
    elif args.threshold_from is not None:
        threshold, threshold_from = _measured_threshold(args.threshold_from, model=args.model)
    elif (measured := run_threshold(trained)) is not None:
        threshold, threshold_from = measured, str(trained.run_dir / METRICS_FILE)
    else:
        threshold, threshold_from = DEFAULT_VERIFY_THRESHOLD, "default"
        logger.warning(
            "No measured threshold for %s: accepting at the default %g. Measure one with `evaluate %s "
            "--task speaker-verification --data DIR --out EVAL_DIR` and pass --threshold-from EVAL_DIR.",
            args.model,
            threshold,
            args.model,
        )
    files, unreachable = audio_files(args.paths)
    clips, kept, undecodable = load_whole_clips(verifier, files)
    skipped = [*unreachable, *undecodable]
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
    data = {
        "threshold": threshold,
        "threshold_from": threshold_from,
        "results": results,
        "skipped": skipped_dicts(skipped),
    }
    lines = [
        f"{terminal_safe(r['file'])}: {terminal_safe(r['speaker'])} {r['score']:.3f} "
        f"{'accepted' if r['accepted'] else 'rejected'}"
        for r in results
    ]
    text = "\n".join([*lines, f"(threshold {threshold:.3f} from {terminal_safe(threshold_from)})"])
    rejected = not all(r["accepted"] for r in results)
    return CommandResult(data=data, text=text, exit_code=EXIT_NO if rejected else EXIT_OK)


def _measured_threshold(source: Path, *, model: str) -> tuple[float, str]:
    """The EER threshold in ``source`` (a metrics.json, or a folder holding one) and the file it came from."""
    from audio_transfer.training import METRICS_FILE

    path = source / METRICS_FILE if source.is_dir() else source
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"--threshold-from {source}: cannot read {path} ({error}). Give the folder that `evaluate "
            "--task speaker-verification --out DIR` wrote, or its metrics.json."
        ) from error
    threshold = metrics.get("eer_threshold") if isinstance(metrics, dict) else None
    if not is_number(threshold):
        raise ConfigError(
            f"--threshold-from {source}: {path} has no eer_threshold; it comes from `evaluate --task "
            "speaker-verification --out DIR` or a speaker-verification run."
        )
    if metrics.get("model") not in (None, model):
        logger.warning(
            "%s measured %s, not %s: its threshold may not suit this model.", path, metrics["model"], model
        )
    return float(threshold), str(path)

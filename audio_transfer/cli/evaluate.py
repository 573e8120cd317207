"""``audio-transfer evaluate MODEL --data DIR``: per-class accuracy, or speaker verification EER/minDCF."""

from __future__ import annotations

import argparse
from pathlib import Path

from audio_transfer.cli._flags import add_safe_mode_argument
from audio_transfer.cli.output import CommandResult


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "evaluate",
        help="measure a trained model on a labelled folder",
        description=(
            "Classification models: accuracy, balanced accuracy, per-class precision/recall/F1 and the "
            "confusion matrix on DIR (one sub-folder per class, matched to the model's labels by name). "
            "With --task speaker-verification (implied for a speaker-verification run): EER and minDCF over "
            "every same/different-speaker pair of DIR (one sub-folder per speaker, whole files); MODEL may "
            "then also be a bare base name such as ge2e_speaker."
        ),
    )
    parser.add_argument("model", metavar="RUN_DIR_OR_MODEL", help="run folder, .keras file or base name")
    parser.add_argument("--data", type=Path, required=True, metavar="DIR", help="labelled folder or manifest")
    parser.add_argument(
        "--task",
        choices=("classification", "speaker-verification"),
        default=None,
        help="what to measure (default: what the model does)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, metavar="DIR", help="also write metrics.json, report.txt and a PNG"
    )
    add_safe_mode_argument(parser)
    return parser


def run(args: argparse.Namespace) -> CommandResult:
    from audio_transfer.cli._tasks import load_model_run
    from audio_transfer.evaluation import write_report
    from audio_transfer.tasks import SpeakerVerifier

    trained = load_model_run(args.model, safe_mode=args.safe_mode)
    task = args.task
    if task is None:
        is_verifier = trained is None or isinstance(trained.task, SpeakerVerifier)
        task = "speaker-verification" if is_verifier else "classification"
    measure = _verification if task == "speaker-verification" else _classification
    report, extra = measure(args, trained)
    if args.out is not None:
        write_report(report, args.out, extra=extra)
    data = {**report.to_dict(), **extra}
    return CommandResult(data=data, text=f"{args.model} on {args.data}:\n{report.to_text()}".rstrip())


def _classification(args: argparse.Namespace, trained):
    from audio_transfer.cli._tasks import classification_report, classifier_run, skipped_dicts
    from audio_transfer.data import decode_examples, load_labelled_audio
    from audio_transfer.errors import DatasetError

    trained = classifier_run(args.model, trained)
    config = trained.config
    # A keyword spotter trained with --keywords sees other words as _unknown_ (and noise as _silence_):
    # label DIR the same way, so a Speech Commands folder evaluates as it trained.
    data = load_labelled_audio(
        args.data,
        keywords=config.keywords,
        unknown_fraction=config.unknown_fraction,
        silence_fraction=config.silence_fraction,
        seed=config.seed,
    )
    unknown = sorted(set(data.labels) - set(trained.task.labels))
    if unknown:
        raise DatasetError(
            f"{args.data} has classes the model does not know: {', '.join(unknown)}. The model's labels: "
            f"{', '.join(trained.task.labels)}. Remove or rename those folders."
        )
    clips = decode_examples(
        data.examples, sample_rate=trained.task.sample_rate, clip_seconds=trained.config.clip_seconds
    )
    report = classification_report(trained.task, clips.waveforms, clips.labels)
    extra = {
        "model": str(args.model),
        "data": str(args.data),
        "skipped": skipped_dicts([*data.skipped, *clips.skipped]),
    }
    return report, extra


def _verification(args: argparse.Namespace, trained):
    from audio_transfer.cli._tasks import load_whole_clips, skipped_dicts, verifier_for
    from audio_transfer.data import load_labelled_audio
    from audio_transfer.training import verification_report

    verifier = verifier_for(args.model, trained)
    data = load_labelled_audio(args.data)
    examples = [example for example in data.examples if example.path is not None]
    clips, kept, skipped = load_whole_clips([e.path for e in examples], sample_rate=verifier.sample_rate)
    speakers = {example.path: example.label for example in examples}
    report = verification_report(verifier, clips, [speakers[path] for path in kept])
    extra = {
        "model": str(args.model),
        "data": str(args.data),
        "num_speakers": len(set(speakers.values())),
        "num_clips": len(clips),
        "skipped": skipped_dicts([*data.skipped, *skipped]),
    }
    return report, extra

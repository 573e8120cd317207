"""``audio-transfer evaluate MODEL --data DIR``: per-class accuracy, or speaker verification EER/minDCF."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from audio_transfer.atomic_files import writable_folder
from audio_transfer.cli._flags import add_failure_fraction_argument, add_safe_mode_argument, path_or_url
from audio_transfer.cli.output import CommandResult, terminal_safe
from audio_transfer.errors import ConfigError

if TYPE_CHECKING:  # importing audio_transfer.training loads TensorFlow; parsers must stay fast
    from audio_transfer.training import TrainConfig


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "evaluate",
        help="measure a trained model on a labelled folder",
        description=(
            "Classification models: accuracy, balanced accuracy, per-class precision/recall/F1 and the "
            "confusion matrix on DIR (one sub-folder per class, matched to the model's labels by name). "
            "With --task speaker-verification (implied for a speaker-verification run): EER and minDCF over "
            "every same/different-speaker pair of DIR (one sub-folder per speaker, whole files); MODEL may "
            "then also be a bare base name such as ge2e_speaker. An exported .tflite classifier is scored "
            "with LiteRT, as a device runs it (labels and sample rate from its metadata)."
        ),
    )
    parser.add_argument(
        "model",
        metavar="RUN_DIR_OR_MODEL",
        help="run folder, .keras file, exported .tflite classifier, or base name",
    )
    parser.add_argument(
        "--data",
        type=path_or_url,
        required=True,
        metavar="DIR",
        help="labelled folder or manifest, or (classifiers) a feature store of the run's base embeddings",
    )
    parser.add_argument(
        "--task",
        choices=("classification", "speaker-verification"),
        default=None,
        help="what to measure (default: what the model does)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write metrics.json, report.txt and a PNG (verification: `verify --threshold-from DIR` "
        "then accepts at its EER threshold)",
    )
    add_failure_fraction_argument(parser, default_help="default: the run's setting")
    add_safe_mode_argument(parser)
    return parser


def run(args: argparse.Namespace) -> CommandResult:
    from audio_transfer.cli._tasks import load_model_run
    from audio_transfer.evaluation import write_report

    if args.out is not None:
        writable_folder(args.out)
    task = args.task
    if _is_tflite(args.model):
        if task == "speaker-verification":
            raise ConfigError(
                "A .tflite file is a classifier: evaluate it without --task speaker-verification, or give "
                "the run folder to measure verification."
            )
        trained, task = None, "classification"
    else:
        trained = load_model_run(args.model, safe_mode=args.safe_mode)
    if task is None:
        is_verifier = trained is None or trained.task.evaluation == "verification"
        task = "speaker-verification" if is_verifier else "classification"
    measure = _verification if task == "speaker-verification" else _classification
    report, extra = measure(args, trained)
    if args.out is not None:
        write_report(report, args.out, extra=extra)
    data = {**report.to_dict(), **extra}
    heading = f"{terminal_safe(args.model)} on {terminal_safe(args.data)}:"
    return CommandResult(data=data, text=f"{heading}\n{report.to_text()}".rstrip())


def _classification(args: argparse.Namespace, trained):
    from audio_transfer.cli._tasks import classifier_run, skipped_dicts
    from audio_transfer.data import FeatureStore, decode_examples, is_store, load_labelled_audio
    from audio_transfer.errors import DatasetError
    from audio_transfer.training import classification_report, evaluate_store

    if is_store(args.data):
        if _is_tflite(args.model):
            raise ConfigError(
                f"{args.data} is a feature store of a base's embeddings; a .tflite classifier runs on audio. "
                "Give the run folder, or a folder of audio."
            )
        trained = classifier_run(args.model, trained)
        store = FeatureStore.open(args.data)
        report = evaluate_store(trained.task, store)
        extra = {"model": str(args.model), "data": str(args.data), "skipped": skipped_dicts(store.skipped)}
        return report, extra
    if _is_tflite(args.model):
        model, config = _exported_classifier(Path(args.model))
    else:
        trained = classifier_run(args.model, trained)
        model, config = trained.task, trained.config
    # A keyword spotter trained with --keywords sees other words as _unknown_ (and noise as _silence_):
    # label DIR the same way, so a Speech Commands folder evaluates as it trained.
    data = load_labelled_audio(
        args.data,
        keywords=config.keywords,
        unknown_fraction=config.unknown_fraction,
        silence_fraction=config.silence_fraction,
        seed=config.seed,
    )
    unknown = sorted(set(data.labels) - set(model.labels))
    if unknown:
        raise DatasetError(
            f"{args.data} has classes the model does not know: {', '.join(unknown)}. The model's labels: "
            f"{', '.join(model.labels)}. Remove or rename those folders."
        )
    clips = decode_examples(
        data.examples,
        sample_rate=model.sample_rate,
        clip_seconds=config.clip_seconds,
        max_failure_fraction=config.max_failure_fraction
        if args.max_failure_fraction is None
        else args.max_failure_fraction,
    )
    report = classification_report(model, clips.waveforms, clips.labels)
    extra = {
        "model": str(args.model),
        "data": str(args.data),
        "skipped": skipped_dicts([*data.skipped, *clips.skipped]),
    }
    return report, extra


def _is_tflite(source: str) -> bool:
    return Path(source).suffix.lower() == ".tflite"


@dataclasses.dataclass(frozen=True)
class _ExportedClassifier:
    """A ``.tflite`` classifier as the evaluation sees a task: its labels, rate and predictions."""

    labels: tuple[str, ...]
    sample_rate: int
    predict_waveforms: Callable[[np.ndarray], np.ndarray]


def _exported_classifier(path: Path) -> tuple[_ExportedClassifier, TrainConfig]:
    """The classifier in an exported ``.tflite`` file (labels and sample rate from its metadata) and the
    settings that label a folder for it: the file has no run settings, so a model with ``_unknown_`` or
    ``_silence_`` classes takes its other labels as the keywords, with the training defaults."""
    from audio_transfer.data import SILENCE_LABEL, UNKNOWN_LABEL
    from audio_transfer.errors import DatasetError, ExportError
    from audio_transfer.export import TFLiteClassifier, TFLiteMetadata
    from audio_transfer.training import TrainConfig

    if not path.is_file():
        raise DatasetError(f"{path} does not exist; give a .tflite file that `audio-transfer export` wrote.")
    content = path.read_bytes()
    try:
        metadata = TFLiteMetadata.read(content)
        classifier = TFLiteClassifier(content, num_threads=1)
    except ExportError as error:
        raise ExportError(
            f"{path}: {error} Give a .tflite file that `audio-transfer export` wrote."
        ) from error
    if classifier.num_classes != len(metadata.labels):
        raise DatasetError(
            f"{path} outputs {classifier.num_classes} scores but its metadata names {len(metadata.labels)} "
            "labels; export it again."
        )
    special = {UNKNOWN_LABEL, SILENCE_LABEL}
    config = TrainConfig(
        keywords=[label for label in metadata.labels if label not in special]
        if special & set(metadata.labels)
        else None,
        sample_rate=metadata.sample_rate,
        clip_seconds=classifier.num_samples / metadata.sample_rate,
    )
    return _ExportedClassifier(metadata.labels, metadata.sample_rate, classifier.predict), config


def _verification(args: argparse.Namespace, trained):
    from audio_transfer.cli._tasks import load_whole_clips, skipped_dicts, verifier_for
    from audio_transfer.data import load_labelled_audio
    from audio_transfer.training import verification_report

    verifier = verifier_for(args.model, trained)
    data = load_labelled_audio(args.data)
    examples = [example for example in data.examples if example.path is not None]
    clips, kept, skipped = load_whole_clips(verifier, [e.path for e in examples])
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

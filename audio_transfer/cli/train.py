"""``audio-transfer train DATA_DIR --task ... --out RUN_DIR``: train a task and write a run folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from audio_transfer.cli._flags import (
    add_failure_fraction_argument,
    add_set_argument,
    apply_settings,
    path_or_url,
    resolved,
    word_list,
)
from audio_transfer.cli.output import CommandResult
from audio_transfer.tasks import task_names
from audio_transfer.training import TrainConfig
from audio_transfer.training.train_config import STRATEGY_NAMES


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train",
        help="train a keyword spotter, speaker model or sound classifier on a labelled folder",
        description=(
            "Train a small head on a pretrained base (embeddings computed once and cached), optionally "
            "fine-tune the base's top blocks, and write RUN_DIR/model.keras, labels.txt, config.yaml, "
            "metrics.json, report.txt and history.csv. DATA_DIR has one sub-folder of audio per class (per "
            "speaker for speaker tasks), is a path,label[,speaker] manifest, or is a feature store of the "
            "base's embeddings (a folder with manifest.json; no fine-tuning then). Settings: defaults < "
            "--config file < --set KEY=VALUE < the other flags. Without --base, the task's default base "
            "trains (`audio-transfer bases` lists the tasks each base suits)."
        ),
    )
    parser.add_argument(
        "data_dir",
        type=path_or_url,
        metavar="DATA_DIR",
        help="training folder, manifest or feature store (local, or a URL such as gs://bucket/store)",
    )
    parser.add_argument("--task", choices=task_names(), default=None, help="what to train (default: kws)")
    parser.add_argument(
        "--base", default=None, help="base name (see `bases`), 'hub:<handle>' or a path (default: the task's)"
    )
    parser.add_argument(
        "--base-weights",
        type=Path,
        default=None,
        metavar="PATH",
        help="weights for a base that reads them from a file (yamnet: yamnet.h5, a YAMNet .tflite or a "
        "TF Hub SavedModel folder)",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="RUN_DIR", help="run folder to write")
    parser.add_argument("--epochs", type=int, default=None, help="head epochs (stage 1)")
    parser.add_argument(
        "--fine-tune-blocks",
        type=int,
        default=None,
        metavar="N",
        help="then fine-tune the base's top N blocks end to end (stage 2; default 0: off)",
    )
    parser.add_argument(
        "--keywords",
        type=word_list,
        default=None,
        help="kws, wakeword: words to spot (class folders of DATA_DIR); the other folders -> _unknown_",
    )
    parser.add_argument(
        "--negatives",
        type=Path,
        action="append",
        default=None,
        metavar="PATH",
        help="long recordings without the keywords (a file or a folder; repeatable): hours of speech, music, "
        "noise, cut into windows of the model's length and trained on as _unknown_ (wakeword)",
    )
    parser.add_argument(
        "--no-synth-negatives",
        dest="synth_negatives",
        action="store_false",
        default=None,
        help="wakeword: do not add negatives spoken by eSpeak NG (near-miss phrases, everyday speech)",
    )
    parser.add_argument(
        "--mining-rounds",
        type=int,
        default=None,
        metavar="N",
        help="hard-negative mining: N rounds of scanning the negative audio and training again on the "
        "windows that fired (default: 1 for wakeword, 0 otherwise)",
    )
    parser.add_argument(
        "--val-data",
        type=Path,
        default=None,
        metavar="DIR",
        help="validation folder (default: hold out unseen speakers of DATA_DIR)",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    parser.add_argument("--clip-seconds", type=float, default=None, help="clip length (default per task)")
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="keep base embeddings on disk here between runs"
    )
    parser.add_argument("--config", type=Path, default=None, metavar="FILE.yaml", help="settings file")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted training into --out from its last completed epoch (same settings)",
    )
    parser.add_argument(
        "--strategy",
        choices=STRATEGY_NAMES,
        default=None,
        help="tf.distribute strategy: one-device, mirrored (this machine's GPUs), multi-worker (the "
        "processes of TF_CONFIG; only the chief writes RUN_DIR) or auto (default: multi-worker when "
        "TF_CONFIG lists several, else mirrored with several GPUs, else one-device); batch_size is the "
        "global batch",
    )
    add_failure_fraction_argument(parser, default_help="default 0.1")
    add_set_argument(parser)
    return parser


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """The run's settings: defaults, then the --config file, then --set, then the flags given."""
    config = apply_settings(
        TrainConfig.from_yaml(args.config) if args.config else TrainConfig(), args.settings
    )
    flags = {
        "task": args.task,
        "base": args.base,
        "base_weights": None if args.base_weights is None else str(args.base_weights.resolve()),
        "data_dir": resolved(args.data_dir),
        "val_data_dir": None if args.val_data is None else str(args.val_data.resolve()),
        "epochs": args.epochs,
        "fine_tune_blocks": args.fine_tune_blocks,
        "keywords": args.keywords,
        "negatives": None if args.negatives is None else [str(path.resolve()) for path in args.negatives],
        "synth_negatives": args.synth_negatives,
        "mining_rounds": args.mining_rounds,
        "seed": args.seed,
        "clip_seconds": args.clip_seconds,
        "cache_dir": None if args.cache_dir is None else str(args.cache_dir),
        "max_failure_fraction": args.max_failure_fraction,
        "strategy": args.strategy,
    }
    return config.replace(**{key: value for key, value in flags.items() if value is not None}).resolved()


def run(args: argparse.Namespace) -> CommandResult:
    from audio_transfer.training import train_run

    config = resolve_config(args)
    # Progress bars on stderr: stdout carries only the result.
    verbose = 0 if args.json else 1 if sys.stderr.isatty() else 2
    trained = train_run(config, args.out, verbose=verbose, resume=args.resume)
    report, result = trained.report, trained.result
    metrics = report.to_dict()
    data = {
        **trained.summary(),
        "run_dir": None if trained.run_dir is None else str(trained.run_dir),
        "labels": trained.labels,
        "metrics": metrics,
        "files": {role: str(path) for role, path in trained.report_files.items()},
    }
    if "accuracy" in metrics:
        headline = f"{trained.evaluation_split} accuracy {metrics['accuracy']:.2%}"
    else:
        headline = f"{trained.evaluation_split} EER {metrics['eer']:.2%}"
    written = f"Run folder: {args.out}" if trained.run_dir else "A worker: the chief writes the run folder."
    mining = "".join(
        f"\nMining round {item.round}: {item.false_accepts} false accepts in {item.hours:.2f} h of negative "
        f"audio ({item.false_accepts_per_hour:.2f}/h), {item.windows_added} windows added."
        if index < len(trained.mining) - 1
        else f"\nAfter mining: {item.false_accepts} false accepts in {item.hours:.2f} h of negative audio "
        f"({item.false_accepts_per_hour:.2f}/h) at probability {trained.config.mining_threshold:g}."
        for index, item in enumerate(trained.mining)
    )
    text = (
        f"Trained {trained.config.task} ({len(trained.labels)} classes) on {result.num_train_clips} clips in "
        f"{trained.train_seconds:.0f} s: {headline}. {written}{mining}\n\n{report.to_text()}"
    )
    return CommandResult(data=data, text=text.rstrip())

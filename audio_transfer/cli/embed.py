"""``audio-transfer embed DATA --base NAME --out STORE [-- BEAM_OPTIONS]``: a feature store, made by an Apache
Beam pipeline on the DirectRunner or a cluster."""

from __future__ import annotations

import argparse
import os

from audio_transfer.cli._flags import word_list
from audio_transfer.cli.output import CommandResult, terminal_safe
from audio_transfer.tasks import task_names

# The runners `--runner` offers; Beam's others can be named in the pass-through options (`-- --runner=...`).
RUNNERS: tuple[str, ...] = ("DirectRunner", "DataflowRunner", "FlinkRunner", "SparkRunner", "PortableRunner")
# How many skipped files the text output lists.
_LISTED_SKIPPED = 5


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "embed",
        help="embed a dataset with a frozen base into a feature store (an Apache Beam pipeline)",
        description=(
            "Decode every clip of DATA to the training clip length, run the frozen base on it and write the "
            "frame embeddings to the feature store STORE (TFRecord shards, their sidecar indexes and "
            "manifest.json, which `audio-transfer train STORE` reads). DATA is a folder of class folders, "
            "a path,label[,speaker] manifest, or a glob on any file system Beam reads "
            "('gs://bucket/clips/*/*.wav': each file's folder is its label). Runs as an Apache Beam "
            "pipeline (pip install 'audio_transfer[beam]'): on this machine with the DirectRunner, or on "
            "a cluster with --runner and the runner's options after `--`. Files that do not decode are "
            "skipped and listed in the manifest. Re-running resumes: complete shards are kept, and the "
            "same inputs always give the same shards."
        ),
        epilog=(
            "Example on Dataflow: audio-transfer embed 'gs://b/clips/*/*.wav' --base speech_embedding "
            "--out gs://b/store --runner DataflowRunner -- --project P --region europe-west1 "
            "--temp_location gs://b/tmp"
        ),
    )
    parser.add_argument("data", metavar="DATA", help="dataset folder, manifest, or glob of audio files")
    parser.add_argument(
        "--base", required=True, help="base name (see `bases`), 'hub:<handle>' or a path every worker reads"
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="STORE",
        help="feature store folder to write: local, or a URL every worker writes (gs://bucket/store)",
    )
    parser.add_argument(
        "--task",
        choices=task_names(),
        default="kws",
        help="the task the store will train: its clip length and context are the defaults (default: kws)",
    )
    parser.add_argument(
        "--keywords",
        type=word_list,
        default=None,
        help="kws: words to spot; clips of the other folders become _unknown_ (as `train DATA "
        "--keywords` makes them; `train STORE` trains the store's classes as they are)",
    )
    parser.add_argument(
        "--unknown-fraction",
        type=float,
        default=None,
        metavar="F",
        help="with --keywords: cap _unknown_ clips at this share of the keyword clips (default: keep all)",
    )
    parser.add_argument(
        "--clip-seconds",
        type=float,
        default=None,
        help="crop or pad every clip to this length, as training will (default: the task's)",
    )
    parser.add_argument(
        "--context-seconds",
        type=float,
        default=None,
        help="silence added before and after each clip before the base (default: the task's)",
    )
    parser.add_argument(
        "--num-shards",
        type=int,
        default=None,
        metavar="N",
        help="shards of the store (default: one per 2048 clips); keep it when resuming",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="most clips per forward pass (default 64)")
    parser.add_argument("--runner", choices=RUNNERS, default="DirectRunner", help="Beam runner")
    parser.add_argument(
        "--direct-num-workers",
        type=int,
        default=None,
        metavar="N",
        help="DirectRunner: workers, e.g. the number of cores (default: one)",
    )
    parser.add_argument(
        "--direct-running-mode",
        choices=("multi_threading", "multi_processing", "in_memory"),
        default="multi_threading",
        help="DirectRunner: how its workers run (default: multi_threading, faster on one machine than "
        "processes that each start TensorFlow: benchmarks/RESULTS.md)",
    )
    # Filled by cli.main with what follows `--`: Beam pipeline options.
    parser.set_defaults(pass_through=[])
    return parser


def run(args: argparse.Namespace) -> CommandResult:
    from audio_transfer.embedding.embed_pipeline import run_embed_pipeline

    store = run_embed_pipeline(
        data=args.data,
        base=args.base,
        out=args.out,
        task=args.task,
        keywords=args.keywords,
        unknown_fraction=args.unknown_fraction,
        clip_seconds=args.clip_seconds,
        context_seconds=args.context_seconds,
        num_shards=args.num_shards,
        batch_size=args.batch_size,
        runner=args.runner,
        direct_num_workers=args.direct_num_workers,
        direct_running_mode=args.direct_running_mode,
        beam_args=args.pass_through,
    )
    skipped = [item.to_dict() for item in store.skipped]
    data = {
        "path": os.fspath(store.path),
        "examples": store.num_examples,
        "shards": len(store.shards),
        "skipped": skipped,
        "labels": store.labels,
        "identity": store.identity.to_dict(),
    }
    lines = [
        f"Wrote {store.num_examples} examples in {len(store.shards)} shards to {terminal_safe(store.path)}.",
        f"Skipped {len(skipped)} files" + (":" if skipped else "."),
        *(
            f"  {terminal_safe(item['path'])}: {terminal_safe(item['reason'])}"
            for item in skipped[:_LISTED_SKIPPED]
        ),
    ]
    if len(skipped) > _LISTED_SKIPPED:
        lines.append(f"  ... and {len(skipped) - _LISTED_SKIPPED} more (see manifest.json)")
    return CommandResult(data=data, text="\n".join(lines))

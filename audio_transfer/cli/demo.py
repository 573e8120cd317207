"""``audio-transfer demo [--data DIR] [--out DIR]``: from audio to an int8 TFLite keyword spotter, offline.

Offline and in a few minutes on a laptop: synthesize ten keywords with eSpeak NG (or take ``--data DIR``),
split the clips speaker-disjoint (voice-disjoint for synthetic data) into train, validation and test, train
a keyword spotter on the frozen ``speech_embedding`` base, measure it on the test voices, export it to int8
TFLite with its parity report, and print where everything went. Every step is the library's own
(:func:`~audio_transfer.synth.synthesize_keywords`, :func:`~audio_transfer.training.train_run`,
:func:`~audio_transfer.export.export_tflite`); this module only chains them.

Files under ``--out`` (default ``audio_transfer_demo``)::

    data/                       the synthesized dataset (not with --data)
    splits/{train,validation,test}.csv
    run/                        model.keras, labels.txt, config.yaml, history.csv,
                                metrics.json + report.txt + confusion_matrix.png (test set)
    kws_int8.tflite             int8 TFLite with Model Metadata, and kws_int8.tflite.report.json
    demo.json                   the summary printed with --json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from audio_transfer.atomic_files import write_text
from audio_transfer.cli._flags import add_set_argument, apply_settings
from audio_transfer.cli.output import CommandResult
from audio_transfer.errors import ConfigError, DatasetError

logger = logging.getLogger(__name__)

DEFAULT_WORDS: tuple[str, ...] = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
DEFAULT_PER_WORD = 100
# Head epochs: the head trains on cached embeddings (seconds per epoch); with ~700 clips the validation loss
# still falls after TrainConfig's 30 (early stopping keeps the best epoch).
DEFAULT_EPOCHS = 60
DEFAULT_OUT = Path("audio_transfer_demo")
SUMMARY_FILE = "demo.json"
# Marks a folder as the demo's, so a second demo may replace its files.
MARKER_FILE = ".audio-transfer-demo"
TFLITE_FILE = "kws_int8.tflite"
# Shares of speakers (voices) held out; the rest trains.
VALIDATION_FRACTION = 0.15
TEST_FRACTION = 0.15
CALIBRATION_CLIPS = 300


def _words(text: str) -> list[str]:
    words = [word.strip() for word in text.split(",") if word.strip()]
    if len(words) < 2:
        raise argparse.ArgumentTypeError(f"expected at least two comma-separated words, received {text!r}")
    return words


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, received {text!r}")
    return value


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo",
        help="synthesize keywords, train, evaluate on unseen voices and export int8 TFLite, offline",
        description=(
            "The whole path in one command, offline: synthesize ten keywords with eSpeak NG (or use --data "
            "DIR, one sub-folder per class), split speaker-disjoint into train/validation/test, train a "
            "keyword spotter on the frozen speech_embedding base, report its accuracy on the held-out "
            "speakers, export int8 TFLite and compare it with the Keras model (agreement, size, latency)."
        ),
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="DIR",
        help="your own labelled folder (one sub-folder of clips per class) instead of synthesized words",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, metavar="DIR", help=f"where to write (default {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--words",
        type=_words,
        default=list(DEFAULT_WORDS),
        help=f"words to synthesize (default {','.join(DEFAULT_WORDS)})",
    )
    parser.add_argument(
        "--per-word",
        type=_positive,
        default=DEFAULT_PER_WORD,
        metavar="N",
        help=f"synthesized clips per word, one voice each (default {DEFAULT_PER_WORD})",
    )
    parser.add_argument(
        "--epochs",
        type=_positive,
        default=DEFAULT_EPOCHS,
        metavar="N",
        help=f"head epochs, early-stopped (default {DEFAULT_EPOCHS})",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_set_argument(parser)
    return parser


def run(args: argparse.Namespace) -> CommandResult:
    stages = _Stages()
    _train_config(args)  # bad --set values stop the demo before it synthesizes anything
    out = _prepare_out(args.out)
    synthesized = None
    if args.data is None:
        with stages.stage("synth", f"Synthesizing {len(args.words)} words x {args.per_word} voices"):
            synthesized = _synthesize(args, out / "data")
    data_dir = args.data if args.data is not None else out / "data"

    with stages.stage("split", f"Splitting {data_dir} speaker-disjoint into train/validation/test"):
        splits = _write_splits(data_dir, out / "splits", seed=args.seed)
    with stages.stage("train", f"Training on frozen speech_embedding ({len(splits.train)} clips)"):
        trained = _train(args, splits, out / "run")
    with stages.stage("evaluate", f"Evaluating on {len(splits.test)} held-out clips"):
        test_clips, report, report_files = _evaluate(trained, splits, out / "run")
    with stages.stage("export", "Exporting int8 TFLite and comparing it with the Keras model"):
        exported = _export(trained, splits, test_clips, out / TFLITE_FILE, seed=args.seed)

    summary = _summary(
        args,
        out=out,
        data_dir=data_dir,
        synthesized=synthesized,
        splits=splits,
        trained=trained,
        report=report,
        report_files=report_files,
        exported=exported,
        seconds=stages.seconds(),
    )
    text = json.dumps(summary, indent=2) + "\n"
    write_text(out / SUMMARY_FILE, text)
    return CommandResult(data=summary, text=_text(summary))


class _Stages:
    """Announces each stage on stderr as it starts and keeps its wall-clock duration."""

    def __init__(self) -> None:
        self.started, self.cpu_started = time.monotonic(), time.process_time()
        self.durations: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str, message: str) -> Iterator[None]:
        begun = time.monotonic()
        sys.stderr.write(f"[demo {begun - self.started:5.0f} s] {message}\n")
        sys.stderr.flush()
        yield
        self.durations[name] = round(time.monotonic() - begun, 1)

    def seconds(self) -> dict[str, float]:
        """Seconds per stage, and in all: ``wall`` and ``cpu`` (this process's CPU time, every thread)."""
        return {
            **self.durations,
            "wall": round(time.monotonic() - self.started, 1),
            "cpu": round(time.process_time() - self.cpu_started, 1),
        }


def _prepare_out(out: Path) -> Path:
    """``out``, created and marked as the demo's; an existing non-empty folder must be an earlier demo's."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder for the demo's files.")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER_FILE).is_file():
        raise ConfigError(
            f"--out {out} already holds files that an earlier demo did not write (no {MARKER_FILE}); "
            "choose an empty or new folder."
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER_FILE).touch()
    return out


def _synthesize(args: argparse.Namespace, data_dir: Path):
    from audio_transfer.synth import synthesize_keywords

    # The folder is the demo's own (checked by _prepare_out), so an earlier demo's clips are replaced.
    return synthesize_keywords(
        args.words, out_dir=data_dir, per_word=args.per_word, seed=args.seed, overwrite=True
    )


class _Splits:
    """The three manifests written for the run, and the examples in them."""

    def __init__(self, folder: Path, data, splits: dict[str, list]) -> None:
        self.folder = folder
        self.labels = list(data.labels)
        self.train, self.validation, self.test = splits["train"], splits["validation"], splits["test"]
        self.noise_files = list(data.noise_files)
        self.test_speakers = sorted({example.speaker for example in self.test if example.speaker})

    def manifest(self, name: str) -> Path:
        return self.folder / f"{name}.csv"

    def counts(self) -> dict[str, dict[str, int]]:
        named = {"train": self.train, "validation": self.validation, "test": self.test}
        return {
            name: {
                "clips": len(examples),
                "speakers": len({example.speaker for example in examples if example.speaker}),
            }
            for name, examples in named.items()
        }


def _write_splits(data_dir: Path, folder: Path, *, seed: int) -> _Splits:
    """Split ``data_dir`` by speaker (stable hash, :func:`split_examples`); write a manifest per split."""
    from audio_transfer.data import NOISE_LABEL, load_labelled_audio, split_examples, write_manifest

    data = load_labelled_audio(data_dir, seed=seed)
    splits = _Splits(
        folder,
        data,
        split_examples(data.examples, validation_fraction=VALIDATION_FRACTION, test_fraction=TEST_FRACTION),
    )
    for name in ("train", "test"):
        if not getattr(splits, name):
            raise DatasetError(
                f"{data_dir}: the speaker-disjoint {name} split is empty ({len(data.examples)} clips, "
                f"{len(data.speakers)} speakers). The demo needs clips from several speakers: name files "
                "<speaker>_nohash_<n>.wav or give more data."
            )
    missing = sorted(set(splits.labels) - {example.label for example in splits.train})
    if missing:
        raise DatasetError(
            f"{data_dir}: no training clips of {', '.join(missing)} once test and validation speakers are "
            "set aside; give more speakers of those classes."
        )
    folder.mkdir(parents=True, exist_ok=True)
    noise_rows = [(path, NOISE_LABEL, "") for path in splits.noise_files]
    for name, examples in (("train", splits.train), ("validation", splits.validation), ("test", splits.test)):
        rows = [(example.path, example.label, example.speaker or "") for example in examples]
        write_manifest(splits.manifest(name), rows + (noise_rows if name == "train" else []))
    return splits


def _train_config(args: argparse.Namespace):
    """The training settings with --set applied; refuses those the demo fixes or has flags for."""
    from audio_transfer.training import TrainConfig

    refused = {"task", "data_dir", "val_data_dir", "epochs", "seed"} & {key for key, _ in args.settings}
    if refused:
        raise ConfigError(
            f"--set {', '.join(sorted(refused))}: demo trains a keyword spotter on its own splits; "
            "use --data, --epochs and --seed."
        )
    return apply_settings(TrainConfig(base="speech_embedding"), args.settings)


def _train(args: argparse.Namespace, splits: _Splits, run_dir: Path):
    from audio_transfer.training import train_run

    config = _train_config(args).replace(
        task="kws",
        data_dir=str(splits.manifest("train")),
        val_data_dir=str(splits.manifest("validation")) if splits.validation else None,
        epochs=args.epochs,
        seed=args.seed,
    )
    return train_run(config, run_dir, verbose=2 if args.verbose else 0)


def _evaluate(trained, splits: _Splits, run_dir: Path):
    """Decoded test clips, the test report, and the report files written into the run folder."""
    from audio_transfer.data import decode_examples
    from audio_transfer.evaluation import write_report
    from audio_transfer.training import classification_report

    clips = decode_examples(
        splits.test, sample_rate=trained.config.sample_rate, clip_seconds=trained.config.clip_seconds
    )
    report = classification_report(trained.task, clips.waveforms, clips.labels)
    extra = {
        "evaluated_on": "test",
        "test_manifest": str(splits.manifest("test")),
        "num_test_speakers": len(splits.test_speakers),
        "best_epochs": trained.result.best_epochs,
    }
    files = write_report(report, run_dir, extra=extra)
    return clips, report, files


def _export(trained, splits: _Splits, test_clips, out: Path, *, seed: int):
    """int8 TFLite calibrated on training clips, compared with the Keras model on the test clips."""
    from audio_transfer.data import decode_examples
    from audio_transfer.export import export_tflite

    rng = np.random.default_rng(seed)
    chosen = sorted(rng.permutation(len(splits.train))[:CALIBRATION_CLIPS])
    config = trained.config
    calibration = decode_examples(
        [splits.train[index] for index in chosen],
        sample_rate=config.sample_rate,
        clip_seconds=config.clip_seconds,
    )
    return export_tflite(
        trained.task,
        labels=trained.labels,
        sample_rate=config.sample_rate,
        out=out,
        quantize="int8",
        representative_data=calibration.waveforms,
        num_samples=calibration.waveforms.shape[1],
        held_out=(test_clips.waveforms, test_clips.label_indices(trained.labels)),
    )


def _summary(args, *, out, data_dir, synthesized, splits, trained, report, report_files, exported,
             seconds) -> dict[str, Any]:  # fmt: skip
    metrics = report.to_dict()
    parity = exported.report
    return {
        "out": str(out),
        "data": {
            "dir": str(data_dir),
            "synthesized": synthesized is not None,
            "words": list(synthesized.counts) if synthesized else None,
            "voices": len(synthesized.voices) if synthesized else None,
            "labels": trained.labels,
            "splits": splits.counts(),
            "manifests": {name: str(splits.manifest(name)) for name in ("train", "validation", "test")},
        },
        "training": {
            "base": trained.config.base,
            "run_dir": str(trained.run_dir),
            "num_train_clips": trained.result.num_train_clips,
            "num_augmented_clips": trained.result.num_augmented_clips,
            "best_epochs": trained.result.best_epochs,
            "seed": args.seed,
        },
        "test": {
            "accuracy": metrics["accuracy"],
            "balanced_accuracy": metrics["balanced_accuracy"],
            "num_examples": metrics["num_examples"],
            "num_speakers": len(splits.test_speakers),
            "files": {role: str(path) for role, path in report_files.items()},
        },
        "export": {
            "path": str(exported.path),
            "size_bytes": exported.size_bytes,
            "quantize": exported.quantize,
            "float_layers": list(exported.float_layers),
            "parity": parity.to_dict(),
            "report_path": str(exported.report_path),
        },
        "seconds": seconds,
    }


def _text(summary: dict[str, Any]) -> str:
    data, test, export = summary["data"], summary["test"], summary["export"]
    parity, seconds = export["parity"], summary["seconds"]
    counts = data["splits"]
    if data["synthesized"]:
        source = f"{len(data['words'])} words spoken by eSpeak NG ({data['voices']} voices) in {data['dir']}"
    else:
        source = f"{len(data['labels'])} classes from {data['dir']}"

    # Without speaker ids (file names not <speaker>_nohash_<n>), clips are split file by file.
    held_out = f"{test['num_speakers']} unseen speakers" if test["num_speakers"] else "held-out files"

    def split(name: str) -> str:
        return f"{counts[name]['clips']} ({counts[name]['speakers']} speakers)"

    lines = [
        "audio-transfer demo: keyword spotting, from audio to an int8 TFLite model",
        f"  data       {source}",
        f"  split      clips: train {split('train')}, validation {split('validation')}, test {split('test')}",
        f"  training   frozen {summary['training']['base']} + head, best epoch "
        f"{summary['training']['best_epochs'].get('head', '-')}, {seconds['train']:.0f} s",
        f"  test       accuracy {test['accuracy']:.1%} (balanced {test['balanced_accuracy']:.1%}) on "
        f"{test['num_examples']} clips of {held_out}",
        f"  int8       {export['size_bytes'] / 1024:.0f} KB, {parity['mean_latency_ms']:.1f} ms per clip "
        f"({parity['runtime']}); accuracy {parity['exported_accuracy']:.1%} vs Keras "
        f"{parity['keras_accuracy']:.1%}, top-1 agreement {parity['top1_agreement']:.1%}",
        f"  time       {seconds['wall']:.0f} s wall, {seconds['cpu']:.0f} s CPU",
        "Files:",
        f"  {summary['training']['run_dir']}/  model.keras, labels.txt, config.yaml, history.csv",
        f"  {test['files']['text']}  test report (and metrics.json, confusion_matrix.png)",
        f"  {export['path']}  int8 TFLite with labels and sample rate as Model Metadata",
        f"  {export['report_path']}  parity report",
        f"  {Path(summary['out']) / SUMMARY_FILE}  this summary as JSON",
        "Next:",
        f"  audio-transfer predict {summary['training']['run_dir']} CLIP.wav",
        f"  audio-transfer export {summary['training']['run_dir']} --format tflite --quantize none "
        "--out kws_float.tflite",
    ]
    return "\n".join(lines)

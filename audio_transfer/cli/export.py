"""``audio-transfer export RUN_DIR --format {saved_model,tflite} --out PATH``: ship a trained classifier
or speaker verifier.

RUN_DIR is a training run's folder (see :class:`~audio_transfer.training.RunFolder`): ``model.keras``,
``labels.txt`` (one label per line, output order), ``config.yaml`` (``sample_rate``, ``clip_seconds``, ...)
and ``splits.csv``, the clips the run trained on and held out. int8 calibrates on the run's training clips
and the parity report compares on the clips it held out. ``--data DIR`` (one folder per class) replaces
them with a split of DIR; a run folder without ``splits.csv`` (written before runs recorded their clips)
splits its ``data_dir`` again with its settings, as before, with a warning. A speaker-verification run
exports its embedding model with ``PATH.verifier.json`` (threshold, enrollments format) and an EER parity
report on the speakers training held out.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from audio_transfer.cli._flags import add_safe_mode_argument
from audio_transfer.cli.output import CommandResult
from audio_transfer.errors import ConfigError, DatasetError
from audio_transfer.export.options import FORMATS, INPUT_TYPES, QUANTIZE_MODES, VERIFIER_QUANTIZE_MODES

if TYPE_CHECKING:  # importing audio_transfer.training loads TensorFlow; parsers must stay fast
    from audio_transfer.data import AudioExample
    from audio_transfer.training import RunFolder, TrainConfig

logger = logging.getLogger(__name__)


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "export",
        help="export a trained classifier to SavedModel or TFLite, with a parity report",
        description=(
            "Export RUN_DIR's model (raw waveform in, class probabilities out) as a SavedModel (serving "
            "signature returning scores and labels) or a builtin-ops-only TFLite file with Model Metadata "
            "(labels, sample rate). With data (the run's, or --data) the export is compared with the Keras "
            "model on held-out clips; the report goes to PATH.report.json. int8 calibrates on training clips."
        ),
    )
    parser.add_argument(
        "run_dir", type=Path, metavar="RUN_DIR", help="training run folder (model.keras, ...)"
    )
    parser.add_argument(
        "--format",
        required=True,
        choices=FORMATS,
        dest="export_format",
        help="saved_model (every TF op, servers) or tflite (builtin ops, phones and microcontrollers)",
    )
    parser.add_argument("--out", required=True, type=Path, metavar="PATH", help="file or folder to write")
    parser.add_argument(
        "--quantize",
        default="none",
        choices=QUANTIZE_MODES,
        help=(
            "TFLite only: float32 (none), float16 weights, dynamic-range int8 weights, or int8 weights and "
            "activations calibrated on training clips"
        ),
    )
    parser.add_argument(
        "--input-type",
        default="float32",
        choices=INPUT_TYPES,
        help="float32 samples in [-1, 1], or int16 PCM scaled inside the model",
    )
    parser.add_argument(
        "--int8-io", action="store_true", help="with --quantize int8: int8 output (and input, for float32)"
    )
    parser.add_argument(
        "--full-integer",
        action="store_true",
        help="with --quantize int8: quantize the feature front-end too (by default it stays float32)",
    )
    parser.add_argument(
        "--float-blocks",
        type=_count,
        default=None,
        metavar="N",
        help=(
            "with --quantize int8: keep the base's bottom N blocks float32 besides the front-end (default: "
            "the base's choice, 1 for speech_embedding; 2 agrees more often with Keras, +67 KB)"
        ),
    )
    parser.add_argument(
        "--streaming",
        action="store_true",
        help=(
            "with --format tflite, for keyword spotters on the speech_embedding base: the streaming variant "
            "(80 ms hops of 1,280 samples and a state vector in, scores and the next state out; float32), "
            "described in PATH.streaming.json"
        ),
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="DIR",
        help="labelled clips (one folder per class) instead of the run's data_dir",
    )
    parser.add_argument(
        "--calibration-clips",
        type=_count,
        default=300,
        metavar="N",
        help="int8 calibration clips (default 300)",
    )
    parser.add_argument(
        "--held-out-clips",
        type=_count,
        default=500,
        metavar="N",
        help="clips compared in the parity report (default 500; 0 skips the report)",
    )
    add_safe_mode_argument(parser)
    return parser


def run(args: argparse.Namespace) -> CommandResult:
    from audio_transfer.export import export_saved_model, export_tflite
    from audio_transfer.export._serving import static_input_length

    if args.export_format == "saved_model" and (args.quantize != "none" or args.int8_io or args.full_integer):
        raise ConfigError("--quantize, --int8-io and --full-integer apply to --format tflite only.")
    if args.float_blocks is not None and (args.quantize != "int8" or args.full_integer):
        raise ConfigError(
            "--float-blocks applies to --format tflite --quantize int8 without --full-integer, received "
            f"--format {args.export_format} --quantize {args.quantize}"
            f"{' --full-integer' if args.full_integer else ''}."
        )
    if args.streaming:
        return _export_streaming(args)
    from audio_transfer.tasks import Task
    from audio_transfer.training import CONFIG_FILE, LABELS_FILE, MODEL_FILE, RunFolder

    folder = RunFolder(args.run_dir)
    folder.require(MODEL_FILE, CONFIG_FILE)
    model = folder.read_model(safe_mode=args.safe_mode)
    if isinstance(model, Task) and args.export_format not in model.export_formats:
        raise ConfigError(
            f"{args.run_dir} holds a {type(model).__name__}, which exports as "
            f"{', '.join(model.export_formats) or 'nothing yet'}; received --format {args.export_format}."
        )
    if isinstance(model, Task) and model.evaluation == "verification":
        return _export_verifier(args, folder)
    folder.require(MODEL_FILE, LABELS_FILE, CONFIG_FILE)
    labels, config = tuple(folder.read_labels()), folder.read_config()
    sample_rate, clip_seconds = config.sample_rate, config.clip_seconds
    num_samples = round(clip_seconds * sample_rate) if clip_seconds else static_input_length(model)
    if num_samples is None:
        raise ConfigError(
            f"{folder.file(CONFIG_FILE)} has no clip_seconds and the model accepts any input length; add "
            "clip_seconds (the training clip length) to the config."
        )
    calibrate = args.export_format == "tflite" and args.quantize == "int8"
    calibration, held_out = _clips(args, folder, config, labels, num_samples=num_samples, calibrate=calibrate)
    common = dict(
        labels=labels,
        sample_rate=sample_rate,
        out=args.out,
        input_type=args.input_type,
        held_out=held_out,
        num_samples=num_samples,
    )
    if args.export_format == "saved_model":
        result = export_saved_model(model, **common)
    else:
        result = export_tflite(
            model,
            quantize=args.quantize,
            representative_data=calibration,
            int8_io=args.int8_io,
            float_layers=_int8_float_layers(model, args),
            **common,
        )
    lines = [
        f"Wrote {result.path} ({result.format}, quantize {result.quantize}, {result.size_bytes} bytes): "
        f"input ({result.num_samples},) {result.input_dtype} at {result.sample_rate} Hz, "
        f"output {len(result.labels)} {result.output_dtype} scores."
    ]
    if result.float_layers:
        lines.append(f"Kept in float32 (front-end, bottom blocks): {', '.join(result.float_layers)}.")
    if result.report is not None:
        lines.append(f"Parity: {result.report.summary()}; report in {result.report_path}.")
    else:
        lines.append(
            "No parity report: no held-out clips (the run's data_dir, or --data DIR, supplies them)."
        )
    data = result.to_dict()
    settings = _copy_detection_settings(args.run_dir, result.path)
    if settings is not None:
        data["streaming_settings_path"] = str(settings)
        lines.append(f"Detection settings (evaluate-stream) copied to {settings}.")
    return CommandResult(data=data, text="\n".join(lines))


def _copy_detection_settings(run_dir: Path, exported: Path) -> Path | None:
    """The run's ``streaming.json`` (threshold and smoothing chosen by evaluate-stream) written beside the
    export as ``<PATH>.streaming.json``; ``None`` when the run has none."""
    from audio_transfer.streaming import STREAMING_FILE, DetectionSettings
    from audio_transfer.streaming.streaming_export import description_path

    if not (run_dir / STREAMING_FILE).is_file():
        return None
    return DetectionSettings.read(run_dir / STREAMING_FILE).write(description_path(exported))


def _export_streaming(args: argparse.Namespace) -> CommandResult:
    """``--streaming``: the run's keyword spotter as a streaming TFLite file with its description."""
    from audio_transfer.streaming import DetectionSettings, export_streaming_tflite
    from audio_transfer.training import load_run

    if args.export_format != "tflite" or args.quantize != "none" or args.int8_io or args.full_integer:
        raise ConfigError(
            "--streaming writes a float32 TFLite file: use it with --format tflite, without --quantize, "
            "--int8-io or --full-integer."
        )
    if args.input_type != "float32":
        raise ConfigError("--streaming takes float32 samples; drop --input-type int16.")
    run = load_run(args.run_dir)
    result = export_streaming_tflite(
        run.task,
        clip_seconds=run.config.clip_seconds,
        out=args.out,
        settings=DetectionSettings.for_model(args.run_dir),
    )
    text = (
        f"Wrote {result.path} (streaming, {result.size_bytes} bytes): {result.description['hop_samples']} "
        f"samples per hop and a state of {result.description['state_size']} floats in, "
        f"{len(result.description['labels'])} scores and the next state out; the first "
        f"{result.description['warmup_hops']} hops warm up. Described in {result.description_path}."
    )
    return CommandResult(data=result.to_dict(), text=text)


def _export_verifier(args: argparse.Namespace, folder: RunFolder) -> CommandResult:
    """A speaker-verification run: its embedding model, ``PATH.verifier.json`` (input, embedding size,
    threshold, enrollments format) and an EER parity report on held-out speakers."""
    from audio_transfer.cli._tasks import run_threshold
    from audio_transfer.export import export_verifier
    from audio_transfer.training import load_run

    if args.quantize not in VERIFIER_QUANTIZE_MODES or args.int8_io or args.full_integer:
        raise ConfigError(
            f"{args.run_dir} is a speaker-verification run, which exports with --quantize "
            f"{', '.join(VERIFIER_QUANTIZE_MODES)}, without --int8-io or --full-integer."
        )
    run = load_run(folder.path, safe_mode=args.safe_mode)
    num_samples = round(run.config.clip_seconds * run.task.sample_rate)
    threshold = run_threshold(run)
    held_out = _held_out_speakers(
        args, folder, run.config, num_samples=num_samples, sample_rate=run.task.sample_rate
    )
    if threshold is None and held_out is None:
        raise ConfigError(
            f"{args.run_dir} records no EER threshold (metrics.json) and there are no held-out speakers to "
            "measure one: pass --data DIR with clips of speakers the run did not train on (one folder each)."
        )
    result = export_verifier(
        run.task,
        out=args.out,
        format=args.export_format,
        num_samples=num_samples,
        threshold=threshold,
        threshold_source=None if threshold is None else f"EER threshold measured by training ({run.run_dir})",
        held_out=held_out,
        quantize=args.quantize,
        input_type=args.input_type,
    )
    described = result.description
    lines = [
        f"Wrote {result.path} ({described['model_format']} speaker verifier, quantize "
        f"{described['quantize']}, {result.size_bytes} bytes): input ({described['num_samples']},) "
        f"{described['input_dtype']} at {described['sample_rate']} Hz, output a "
        f"{described['embedding_dim']}-d unit embedding; accept at cosine >= {described['threshold']:.3f}. "
        f"Described in {result.description_path}."
    ]
    if result.report is not None:
        lines.append(f"Parity: {result.report.summary()}; report in {result.report_path}.")
    else:
        lines.append("No parity report: no held-out speakers (the run's data_dir, or --data DIR).")
    return CommandResult(data=result.to_dict(), text="\n".join(lines))


def _held_out_speakers(
    args: argparse.Namespace, folder: RunFolder, config: TrainConfig, *, num_samples: int, sample_rate: int
) -> tuple[np.ndarray, list[str]] | None:
    """Clips of speakers the verifier did not train on, with their speakers: every clip of ``--data``, else
    the validation clips the run recorded (its ``val_data_dir``, or the speakers it held out of
    ``data_dir``); a run that recorded none holds them out again with its settings. ``None`` without data
    or with ``--held-out-clips 0``."""
    from audio_transfer.data import decode_examples, load_labelled_audio
    from audio_transfer.training import SPLITS_FILE, hold_out_validation

    splits = None if args.data else folder.read_splits()
    source = args.data or config.val_data_dir or config.data_dir
    if args.held_out_clips == 0 or (splits is None and source is None):
        return None
    if splits is not None:
        examples = splits["validation"]
    elif not Path(source).exists():
        raise DatasetError(
            f"The data folder {source} does not exist; pass --data DIR with held-out speakers."
        )
    else:
        examples = load_labelled_audio(source, seed=config.seed).examples
        if not args.data:
            logger.warning(
                "%s has no %s (it was trained before runs recorded their clips): holding out speakers of %s "
                "again with the run's settings.",
                folder.path,
                SPLITS_FILE,
                source,
            )
        if not (args.data or config.val_data_dir):
            # How training holds out verification speakers: whole classes (speakers), by a stable hash.
            examples = hold_out_validation(
                examples,
                fraction=config.validation_fraction,
                hold_out="classes",
                min_examples=config.min_examples_for_validation,
                seed=config.seed,
            )[1]
    rng = np.random.default_rng(config.seed)
    chosen = [examples[index] for index in sorted(rng.permutation(len(examples))[: args.held_out_clips])]
    clips = decode_examples(chosen, sample_rate=sample_rate, clip_seconds=num_samples / sample_rate)
    if len(set(clips.labels)) < 2:
        logger.warning("Fewer than two held-out speakers in %s: no parity report.", source or folder.path)
        return None
    return clips.waveforms, clips.labels


def _count(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, received {text!r}")
    return value


def _int8_float_layers(model, args: argparse.Namespace) -> tuple[str, ...] | None:
    """``float_layers`` of ``export_tflite``: none with --full-integer, the default without --float-blocks."""
    from audio_transfer.export import int8_float_layers

    if args.full_integer:
        return ()
    return None if args.float_blocks is None else int8_float_layers(model, float_blocks=args.float_blocks)


def _clips(
    args: argparse.Namespace,
    folder: RunFolder,
    config: TrainConfig,
    labels: tuple[str, ...],
    *,
    num_samples: int,
    calibrate: bool,
) -> tuple[np.ndarray | None, tuple[np.ndarray, np.ndarray] | None]:
    """Calibration clips (training split, int8 only) and held-out clips with label indices (validation
    split): the run's recorded splits, or a split of ``--data``; ``(None, None)`` without data."""
    from audio_transfer.data import decode_examples

    if not calibrate and args.held_out_clips == 0:
        return None, None
    splits = None if args.data else folder.read_splits()
    if splits is None:
        splits = _split_again(args, folder, config)
    if splits is None:
        return None, None
    sample_rate = config.sample_rate
    rng = np.random.default_rng(config.seed)

    def decoded(split: str, limit: int) -> tuple[np.ndarray, np.ndarray]:
        known = [example for example in splits[split] if example.label in labels]
        if len(known) < len(splits[split]):
            logger.warning(
                "%d %s clips have labels the model does not know; they are left out.",
                len(splits[split]) - len(known),
                split,
            )
        chosen = [known[index] for index in sorted(rng.permutation(len(known))[:limit])]
        clips = decode_examples(chosen, sample_rate=sample_rate, clip_seconds=num_samples / sample_rate)
        return clips.waveforms, clips.label_indices(labels)

    calibration = decoded("train", args.calibration_clips)[0] if calibrate else None
    held_out = decoded("validation", args.held_out_clips) if args.held_out_clips else None
    if held_out is not None and len(held_out[0]) == 0:
        logger.warning("The validation split of %s is empty: no parity report.", args.data or folder.path)
        held_out = None
    if calibration is not None and len(calibration) == 0:
        calibration = None
    return calibration, held_out


def _split_again(
    args: argparse.Namespace, folder: RunFolder, config: TrainConfig
) -> dict[str, list[AudioExample]] | None:
    """Training and validation examples split from ``--data``, or from the run's ``data_dir`` with its
    settings for a run folder that did not record its splits; ``None`` when there is no data."""
    from audio_transfer.data import load_splits
    from audio_transfer.training import SPLITS_FILE

    source = args.data or config.data_dir
    if source is None:
        return None
    if not Path(source).exists():
        raise DatasetError(
            f"The data folder {source} does not exist; pass --data DIR with the run's classes."
        )
    if args.data is None:
        logger.warning(
            "%s has no %s (it was trained before runs recorded their clips): splitting %s again with the "
            "run's settings, so the held-out clips may differ from those training held out. Train again to "
            "record them, or pass --data DIR.",
            folder.path,
            SPLITS_FILE,
            source,
        )
    _, splits = load_splits(
        source,
        validation_source=None if args.data else config.val_data_dir,
        validation_fraction=config.validation_fraction,
        test_fraction=0.0,
        keywords=config.keywords,
        unknown_fraction=config.unknown_fraction,
        silence_fraction=config.silence_fraction,
        seed=config.seed,
    )
    return splits

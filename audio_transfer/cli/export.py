"""``audio-transfer export RUN_DIR --format {saved_model,tflite,c} --out PATH``: ship a trained classifier
or speaker verifier.

RUN_DIR is a training run's folder (see :class:`~audio_transfer.training.RunFolder`): ``model.keras``,
``labels.txt`` (one label per line, output order), ``config.yaml`` (``sample_rate``, ``clip_seconds``, ...)
and ``splits.csv``, the clips the run trained on and held out. int8 calibrates on the run's training clips
and the parity report compares on the clips it held out. ``--data DIR`` (one folder per class) replaces
them with a split of DIR; a run folder without ``splits.csv`` (written before runs recorded their clips)
splits its ``data_dir`` again with its settings, as before, with a warning. A speaker-verification run
exports its embedding model with ``PATH.verifier.json`` (threshold, enrollments format) and an EER parity
report on the speakers training held out. ``--streaming`` exports a keyword spotter on a base that streams
as one step per hop: a TFLite file, or with ``--format c`` that file as C source and header for TensorFlow
Lite Micro.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from audio_transfer.cli._flags import add_failure_fraction_argument, add_safe_mode_argument
from audio_transfer.cli.output import CommandResult
from audio_transfer.errors import ConfigError
from audio_transfer.export.options import (
    FORMATS,
    INPUT_TYPES,
    QUANTIZE_MODES,
    STREAMING_FORMATS,
    STREAMING_QUANTIZE_MODES,
)


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
        choices=tuple(dict.fromkeys(FORMATS + STREAMING_FORMATS)),
        dest="export_format",
        help=(
            "saved_model (every TF op, servers), tflite (builtin ops, phones and microcontrollers) or, with "
            "--streaming, c (the streaming TFLite file as C source and header: --out NAME writes NAME.cc, "
            "NAME.h, NAME.tflite and NAME.tflite.streaming.json)"
        ),
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
            "the base's choice, 1 for speech_embedding; more blocks agree more often with Keras, in a larger "
            "file)"
        ),
    )
    parser.add_argument(
        "--streaming",
        action="store_true",
        help=(
            "with --format tflite or c, for keyword spotters on a base that streams (of the presets, "
            "speech_embedding: 80 ms hops of 1,280 samples): one hop and a state vector in, scores and the "
            "next state out (float32), described in PATH.streaming.json; --quantize int8: int8 inside "
            "(calibrated on a stream of training clips), float-vs-int8 detections in PATH.parity.json"
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
    add_failure_fraction_argument(parser, default_help="default: the run's setting")
    add_safe_mode_argument(parser)
    return parser


def run(args: argparse.Namespace) -> CommandResult:
    if args.streaming:
        return _export_streaming(args)
    if args.export_format not in FORMATS:
        raise ConfigError(
            f"--format {args.export_format} writes the streaming model: add --streaming (keyword spotters on "
            "a base that streams), or use --format tflite or saved_model."
        )
    from audio_transfer.export import ExportResult, export_run

    result = export_run(
        args.run_dir,
        args.out,
        format=args.export_format,
        quantize=args.quantize,
        input_type=args.input_type,
        int8_io=args.int8_io,
        full_integer=args.full_integer,
        float_blocks=args.float_blocks,
        data=args.data,
        calibration_clips=args.calibration_clips,
        held_out_clips=args.held_out_clips,
        safe_mode=args.safe_mode,
        max_failure_fraction=args.max_failure_fraction,
    )
    if not isinstance(result, ExportResult):
        return _verifier_result(result)
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
    from audio_transfer.export.c_source_export import c_source_paths
    from audio_transfer.streaming import export_streaming_c_source, export_streaming_run

    if (
        args.export_format not in STREAMING_FORMATS
        or args.quantize not in STREAMING_QUANTIZE_MODES
        or args.int8_io
        or args.full_integer
    ):
        raise ConfigError(
            "--streaming writes a TFLite file with float32 audio, state and scores: use it with --format "
            "tflite (or c, for C source) and --quantize none or int8, without --int8-io or --full-integer."
        )
    if args.input_type != "float32":
        raise ConfigError("--streaming takes float32 samples; drop --input-type int16.")
    if args.float_blocks is not None and args.quantize != "int8":
        raise ConfigError("--float-blocks applies to --quantize int8.")
    as_c = args.export_format == "c"
    if as_c:  # the TFLite file the C arrays hold goes beside them, for LiteRT and WakeWordDetector
        source, _ = c_source_paths(args.out)
        tflite_path = source.with_suffix(".tflite")
    else:
        tflite_path = args.out
    result = export_streaming_run(
        args.run_dir,
        tflite_path,
        quantize=args.quantize,
        float_blocks=args.float_blocks,
        data=args.data,
        calibration_clips=args.calibration_clips,
        held_out_clips=args.held_out_clips,
        safe_mode=args.safe_mode,
    )
    data = result.to_dict()
    described = result.description
    text = (
        f"Wrote {result.path} (streaming, {described['quantize']}, {result.size_bytes} bytes): "
        f"{described['hop_samples']} samples per hop and a state of {described['state_size']} floats in, "
        f"{len(described['labels'])} scores and the next state out; the first "
        f"{described['warmup_hops']} hops warm up. Described in {result.description_path}."
    )
    if described["tensor_arena"] is not None:
        text += (
            f"\nTFLite Micro tensor arena: {described['tensor_arena']['bytes']} bytes "
            f"({described['tensor_arena']['min_bytes']} measured, + 10%)."
        )
    if result.parity is not None:
        text += (
            f"\nParity (float32 vs int8 streams): {result.parity.summary()}; report in {result.parity_path}."
        )
    if as_c:
        written = export_streaming_c_source(result, out=args.out)
        data["c_source"] = written.to_dict()
        text += (
            f"\nWrote {written.source_path} and {written.header_path} (C source and header for TensorFlow "
            f"Lite Micro): the model as {written.prefix}_data ({written.size_bytes} bytes, 16-byte aligned), "
            f"its labels, hop, state size, warm-up, detection settings and tensor arena as "
            f"{written.prefix}_* constants."
        )
    return CommandResult(data=data, text=text)


def _verifier_result(result) -> CommandResult:
    """What a speaker-verifier export wrote, as text and data."""
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


def _count(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, received {text!r}")
    return value

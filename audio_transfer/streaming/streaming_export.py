"""Export of the streaming keyword spotter to a builtin-ops-only TFLite file with a JSON description, and of
that file as C source and header for TensorFlow Lite Micro."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from audio_transfer._tflite import tflite_operator_names
from audio_transfer.atomic_files import check_writable, temporary_directory_beside, write_bytes, write_json
from audio_transfer.audio import AUDIO_EXTENSIONS, load_audio
from audio_transfer.data import NOISE_LABEL
from audio_transfer.errors import ConfigError, DatasetError, ExportError, ExportOutputError
from audio_transfer.export import STREAMING_QUANTIZE_MODES, check_builtin_ops
from audio_transfer.export.c_source_export import CSourceExport, export_c_source
from audio_transfer.export.run_export import run_clips
from audio_transfer.export.tensor_arena import TensorArena
from audio_transfer.export.tflite_export import convert_int8_keeping_float, int8_float_layers
from audio_transfer.features import compact_dft
from audio_transfer.progress import track
from audio_transfer.streaming.detection_settings import DetectionSettings
from audio_transfer.streaming.keyword_detector import keyword_labels
from audio_transfer.streaming.stream_parity_report import StreamParityReport, keyword_streams, parity_path
from audio_transfer.streaming.streaming_spotter import (
    AUDIO_NAME,
    NEXT_STATE_NAME,
    SCORES_NAME,
    STATE_NAME,
    StreamingSpotter,
)
from audio_transfer.streaming.tflite_streaming_spotter import TFLiteStreamingSpotter
from audio_transfer.tasks import Classifier
from audio_transfer.training import TrainingRun, load_run

logger = logging.getLogger(__name__)

DESCRIPTION_SUFFIX = ".streaming.json"


def description_path(model_path: str | os.PathLike) -> Path:
    """Where the streaming description of an exported model goes: ``<file name>.streaming.json`` beside it."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + DESCRIPTION_SUFFIX)


@dataclasses.dataclass(frozen=True)
class StreamingExport:
    """What :func:`export_streaming_tflite` wrote.

    Args:
        path: the ``.tflite`` file.
        description_path: the JSON beside it (tensors, hop, state size, labels, detection settings).
        description: that JSON's content.
        size_bytes: size of the ``.tflite`` file.
        ops: the TFLite operators it uses.
        parity: int8 only, with held-out streams: the int8 model's detections against the float32 one's.
        parity_path: where that report was written (``<path>.parity.json``).
    """

    path: Path
    description_path: Path
    description: dict[str, Any]
    size_bytes: int
    ops: tuple[str, ...]
    parity: StreamParityReport | None = None
    parity_path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        parity = None
        if self.parity is not None:
            parity = {
                "path": str(self.parity_path),
                "passed": self.parity.passed,
                "summary": self.parity.summary(),
            }
        return {
            "path": str(self.path),
            "description_path": str(self.description_path),
            "size_bytes": self.size_bytes,
            "ops": list(self.ops),
            **self.description,
            "parity": parity,
        }


def export_streaming_tflite(
    spotter: Classifier,
    *,
    clip_seconds: float,
    out: str | os.PathLike,
    settings: DetectionSettings | None = None,
    quantize: str = "none",
    calibration: np.ndarray | Sequence[np.ndarray] | None = None,
    float_blocks: int | None = None,
    held_out: tuple[Sequence[np.ndarray], Sequence[str], Sequence[np.ndarray]] | None = None,
    held_out_audio: str = "streams given to export_streaming_tflite",
) -> StreamingExport:
    """Write the :class:`StreamingSpotter` of ``spotter`` as a TFLite file, builtin ops only.

    The file has two inputs, ``audio`` ``(1, hop_samples)`` float32 samples in [-1, 1] at the base's sample
    rate (``(1, 1280)`` at 16 kHz for speech_embedding) and ``state`` ``(1, state_size)`` float32, and two
    outputs, ``scores`` ``(1, classes)`` float32 and ``next_state`` ``(1, state_size)`` float32 to feed back
    as ``state`` on the next hop (zeros at the start). Beside it,
    ``<out>.streaming.json`` describes the tensors (with their positions, for TensorFlow Lite for
    Microcontrollers), hop, state size, warm-up hops, the window one set of scores covers (``window_samples``,
    the clip with its context), labels, keywords, the detection settings a device
    should apply to the scores (``settings``, e.g. those ``evaluate-stream`` chose) and the tensor arena
    TFLite Micro needs (``tensor_arena``, see :class:`~audio_transfer.export.TensorArena`; ``null`` without
    the ``tflite-micro`` package). Both files are written atomically.

    ``quantize="int8"`` stores int8 weights and computes int8 activations, calibrated on ``calibration``
    clips joined into one stream and fed hop by hop with the state carried (so the state's ranges are those
    of a stream). Kept in float32, as in :func:`~audio_transfer.export.export_tflite`: the base's feature
    front-end and bottom ``float_blocks`` blocks (speech_embedding: the log-mel front-end, whose LOG has no
    int8 kernel in TFLite Micro, and ``stage_1``), the ops the audio passes on its way there, and the state:
    its inputs and outputs stay float32 and each piece (earlier audio, each convolution's rows, earlier
    embeddings) is quantized and dequantized at the boundary with its own scale; one int8 scale for the
    whole vector would cut the raw audio it carries to 8 bits. With ``held_out`` streams a
    :class:`~audio_transfer.streaming.stream_parity_report.StreamParityReport` compares its detections with
    the float32 model's, written to ``<out>.parity.json``; a warning is logged when int8 misses more than 1
    point more keywords.

    Args:
        spotter: a trained classifier on a base that streams
            (:class:`~audio_transfer.bases.StreamableBase`, e.g. ``speech_embedding``).
        clip_seconds: its training clip length.
        out: the ``.tflite`` path.
        settings: detection settings recorded in the description (defaults when ``None``).
        quantize: ``"none"`` (float32) or ``"int8"``.
        calibration: with int8: training clips, ``(clips, samples)`` or a sequence of ``(samples,)``
            float32 waveforms at the base's sample rate.
        float_blocks: with int8: the base's bottom blocks kept float32 (``None``: the base's choice).
        held_out: with int8: ``(keyword_streams, their keywords, negative_streams)``, float32
            ``(samples,)`` streams (see :func:`~audio_transfer.streaming.keyword_streams`).
        held_out_audio: what ``held_out`` is made of, for the report.

    Raises:
        ConfigError: the spotter is no classifier, its base does not stream (the message names the
            bases that do), an unknown ``quantize``, int8 without ``calibration``.
        ExportError: non-builtin operators (named), conversion failure, unwritable ``out``.

    Example:
        >>> export_streaming_tflite(spotter, clip_seconds=1.0, out="kws_stream.tflite")
        >>> export_streaming_tflite(spotter, clip_seconds=1.0, out="kws_int8.tflite", quantize="int8",
        ...                         calibration=train_clips, held_out=(streams, keywords, [noise]))
    """
    out = Path(out)
    if quantize not in STREAMING_QUANTIZE_MODES:
        raise ConfigError(
            f"A streaming model exports with quantize {' or '.join(STREAMING_QUANTIZE_MODES)}, received "
            f"{quantize!r}."
        )
    if quantize == "int8" and (calibration is None or not len(calibration)):
        raise ConfigError(
            "quantize='int8' needs calibration clips (the training clips: the run's data, or --data DIR)."
        )
    streaming = StreamingSpotter(spotter, clip_seconds=clip_seconds)
    check_writable(out, directory=False, error=ExportOutputError)
    settings = settings or DetectionSettings()
    float_layers = _float_layers(spotter, float_blocks=float_blocks) if quantize == "int8" else ()
    float_content, content = _convert(
        streaming, out=out, calibration=calibration if quantize == "int8" else None, float_layers=float_layers
    )
    check_builtin_ops(content)
    runner = TFLiteStreamingSpotter(content)
    if runner.state_size != streaming.state_size or runner.hop_samples != streaming.hop_samples:
        raise ExportError(
            f"The converted streaming model has a state of {runner.state_size} and hops of "
            f"{runner.hop_samples}; expected {streaming.state_size} and {streaming.hop_samples}."
        )
    description = {
        "format": "tflite_streaming",
        "quantize": quantize,
        "sample_rate": streaming.sample_rate,
        "hop_samples": streaming.hop_samples,
        "hop_seconds": streaming.hop_samples / streaming.sample_rate,
        "state_size": streaming.state_size,
        "state_dtype": "float32",
        "warmup_hops": streaming.warmup_hops,
        "clip_seconds": clip_seconds,
        "window_samples": streaming.window_samples,
        "labels": list(streaming.labels),
        "keywords": keyword_labels(streaming.labels),
        "inputs": _tensor_positions(content, inputs=True),
        "outputs": _tensor_positions(content, inputs=False),
        "float_layers": list(float_layers),
        "tensor_arena": _arena(content),
        "detection": settings.to_dict(),
    }
    parity = None
    if quantize == "int8" and held_out is not None:
        keyword_streams, stream_keywords, negative_streams = held_out
        parity = StreamParityReport.measure(
            float_content,
            content,
            keyword_streams=keyword_streams,
            stream_keywords=stream_keywords,
            negative_streams=negative_streams,
            labels=streaming.labels,
            settings=settings,
            warmup_hops=streaming.warmup_hops,
            window_samples=streaming.window_samples,
            sample_rate=streaming.sample_rate,
            audio=held_out_audio,
        )
    write_bytes(out, content, error=ExportOutputError)
    written = write_json(description_path(out), description, error=ExportOutputError)
    written_parity = _write_parity(parity, out)
    logger.info("Wrote %s (%d bytes, state of %d floats).", out, len(content), streaming.state_size)
    return StreamingExport(
        path=out,
        description_path=written,
        description=description,
        size_bytes=len(content),
        ops=tuple(sorted(set(tflite_operator_names(content)))),
        parity=parity,
        parity_path=written_parity,
    )


def export_streaming_run(
    run: TrainingRun | str | os.PathLike,
    out: str | os.PathLike,
    *,
    quantize: str = "none",
    float_blocks: int | None = None,
    data: str | os.PathLike | None = None,
    calibration_clips: int = 300,
    held_out_clips: int = 500,
    safe_mode: bool = True,
) -> StreamingExport:
    """A run's keyword spotter as a streaming TFLite file: ``audio-transfer export RUN --streaming``.

    The detection settings are the run's ``streaming.json`` (``evaluate-stream``'s choice) or the defaults.
    int8 calibrates on a stream of the run's training clips and compares its detections with the float32
    model's (:class:`~audio_transfer.streaming.stream_parity_report.StreamParityReport`) on held-out
    streams: each keyword clip of the run's validation split placed 1 s into background (20 dB below it)
    cut from the negatives, and the negatives themselves: the ``_background_noise_`` files of the run's data
    folder (or of ``data``) and the validation clips without a keyword, joined.

    Args:
        run: a run folder, or a :class:`~audio_transfer.training.TrainingRun` saved in one.
        out: the ``.tflite`` path.
        quantize: ``"none"`` or ``"int8"``.
        float_blocks: with int8: the base's bottom blocks kept float32 (``None``: the base's choice).
        data: a labelled folder to split for calibration and held-out clips instead of the run's.
        calibration_clips: at most this many training clips calibrate int8.
        held_out_clips: at most this many validation clips make the held-out streams (0: no report).
        safe_mode: Keras safe mode when loading a run folder.

    Raises:
        ConfigError, ExportError: as :func:`export_streaming_tflite`; DatasetError: int8 without clips.

    Example:
        >>> export_streaming_run("runs/yes", "yes_int8.tflite", quantize="int8").parity.summary()
    """
    if not isinstance(run, TrainingRun):
        run = load_run(run, safe_mode=safe_mode)
    calibration, held_out, audio = None, None, ""
    if quantize == "int8":
        clips = run_clips(run, split="train", limit=calibration_clips, data=data)
        if clips is None:
            raise DatasetError(
                f"No training clips to calibrate int8 on in {run.run_dir}: pass --data DIR (one folder per "
                "class), or export with --quantize none."
            )
        calibration = clips[0]
        if held_out_clips:
            held_out, audio = _held_out_streams(run, data=data, limit=held_out_clips)
    return export_streaming_tflite(
        run.task,
        clip_seconds=run.config.clip_seconds,
        out=out,
        settings=DetectionSettings.for_model(run.run_dir) if run.run_dir else None,
        quantize=quantize,
        calibration=calibration,
        float_blocks=float_blocks,
        held_out=held_out,
        held_out_audio=audio,
    )


def _held_out_streams(
    run: TrainingRun, *, data: str | os.PathLike | None, limit: int
) -> tuple[tuple[list[np.ndarray], list[str], list[np.ndarray]] | None, str]:
    """Keyword streams and negatives from the run's validation clips and background-noise files (see
    :func:`export_streaming_run`), and what they are made of; ``None`` when there are none."""
    sample_rate = run.config.sample_rate
    clips = run_clips(run, split="validation", limit=limit, data=data)
    waveforms, labels = clips if clips is not None else (np.zeros((0, 0), np.float32), [])
    keywords = set(keyword_labels(run.labels))
    folder = Path(data or run.config.data_dir or "") / NOISE_LABEL
    noise_files = sorted(path for path in folder.glob("*") if path.name.lower().endswith(AUDIO_EXTENSIONS))
    negatives = [load_audio(path, sample_rate=sample_rate) for path in noise_files]
    others = [clip for clip, label in zip(waveforms, labels, strict=True) if label not in keywords]
    if others:
        negatives.append(np.concatenate(others))
    positives = [(clip, label) for clip, label in zip(waveforms, labels, strict=True) if label in keywords]
    if not positives or not negatives:
        logger.warning(
            "No stream parity report: it needs validation clips of the keywords and audio without them "
            "(%d keyword clips, %d background files, %d other clips).",
            len(positives),
            len(noise_files),
            len(others),
        )
        return None, ""
    streams = keyword_streams([clip for clip, _ in positives], negatives, sample_rate=sample_rate)
    audio = (
        f"{len(positives)} validation keyword clips of {run.run_dir}, each 1 s into background 20 dB "
        f"below it; negatives: {len(noise_files)} files of {folder} and {len(others)} validation clips "
        "without a keyword"
    )
    return (streams, [label for _, label in positives], negatives), audio


def export_streaming_c_source(exported: StreamingExport, *, out: str | os.PathLike) -> CSourceExport:
    """The streaming TFLite file ``exported`` as ``NAME.cc`` and ``NAME.h`` for TensorFlow Lite Micro.

    Besides ``<NAME>_data`` (the file's bytes, 16-byte aligned) and ``<NAME>_data_len`` (see
    :func:`~audio_transfer.export.c_source_export.export_c_source`), the header declares what driving
    it takes: ``sample_rate``, ``hop_samples``, ``state_size``, ``warmup_hops``, ``window_samples``, the
    tensor positions (``audio_input``, ``state_input``, ``scores_output``, ``next_state_output``),
    ``labels`` (with ``labels_count``; keywords are those not starting with ``_``) and the detection
    settings: ``threshold``, ``smoothing_seconds`` and ``refractory_seconds``, and the same two in hops
    (``smoothing_hops``: the scores of that many hops are averaged; ``refractory_hops``: after a detection
    that many hops, itself included, fire nothing), ``quantize`` (``"none"`` or ``"int8"``) and, when
    it was measured, the tensor arena: ``tensor_arena_bytes`` (with the margin) and
    ``tensor_arena_min_bytes``, each prefixed ``<NAME>_``, and the macro ``<NAME>_TENSOR_ARENA_BYTES``
    (upper case) to size the arena array with.

    Args:
        exported: what :func:`export_streaming_tflite` wrote.
        out: ``NAME`` or ``NAME.cc``.

    Example:
        >>> exported = export_streaming_tflite(spotter, clip_seconds=1.0, out="kws.tflite")
        >>> export_streaming_c_source(exported, out="firmware/kws_model")  # kws_model.cc, kws_model.h
    """
    described = exported.description
    settings = DetectionSettings(**described["detection"])
    hop_seconds = described["hop_samples"] / described["sample_rate"]
    window_seconds = described["window_samples"] / described["sample_rate"]
    refractory_hops = settings.refractory_windows(stride_seconds=hop_seconds, window_seconds=window_seconds)
    constants = {
        **{
            name: described[name]
            for name in ("sample_rate", "hop_samples", "state_size", "warmup_hops", "window_samples")
        },
        "audio_input": described["inputs"][AUDIO_NAME],
        "state_input": described["inputs"][STATE_NAME],
        "scores_output": described["outputs"][SCORES_NAME],
        "next_state_output": described["outputs"][NEXT_STATE_NAME],
        "labels": described["labels"],
        "threshold": float(settings.threshold),
        "smoothing_seconds": float(settings.smoothing_seconds),
        "smoothing_hops": settings.smoothing_windows(stride_seconds=hop_seconds),
        "refractory_seconds": float(settings.refractory_seconds_for(window_seconds=window_seconds)),
        "refractory_hops": refractory_hops,
        "quantize": described.get("quantize", "none"),
    }
    arena = described.get("tensor_arena")
    defines = {}
    if arena is not None:
        constants["tensor_arena_bytes"] = arena["bytes"]
        constants["tensor_arena_min_bytes"] = arena["min_bytes"]
        defines["tensor_arena_bytes"] = arena["bytes"]
    comment = (
        f"Streaming keyword spotter for TensorFlow Lite Micro, from {exported.path.name}.\n"
        "Each hop: copy hop_samples float32 samples in [-1, 1] into input audio_input and the previous\n"
        "next_state (zeros at the start) into input state_input, invoke, read the scores of every label\n"
        "from output scores_output and keep output next_state_output. Ignore the first warmup_hops hops;\n"
        "average the scores of the last smoothing_hops hops; a keyword (a label not starting with '_')\n"
        "fires where its average reaches threshold, then nothing fires for refractory_hops hops.\n"
        "Tensor arena: TENSOR_ARENA_BYTES (a macro, to size a static 16-byte aligned array) is\n"
        "tensor_arena_min_bytes, the least TFLite Micro's reference kernels ran it with, + 10%."
    )
    return export_c_source(
        exported.path.read_bytes(), out=out, constants=constants, comment=comment, defines=defines
    )


def _convert(
    streaming: StreamingSpotter,
    *,
    out: Path,
    calibration: np.ndarray | Sequence[np.ndarray] | None,
    float_layers: Sequence[str],
) -> tuple[bytes, bytes]:
    """The float32 flatbuffer and the one to write (the same, or int8 with ``calibration``), through a
    temporary SavedModel (which freezes the Keras variables into constants) staged beside ``out``."""
    with temporary_directory_beside(out) as folder:
        saved_model_dir = str(folder)
        with compact_dft(streaming.spotter):  # the file holds the small two-stage DFT constants
            tf.saved_model.save(streaming, saved_model_dir, signatures={"serving_default": streaming.step})
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            float_content = converter.convert()
        except Exception as error:  # the converter raises ConverterError and assorted TF errors
            raise ExportError(f"Converting the streaming spotter to TFLite failed: {error}") from error
        if calibration is None:
            return float_content, float_content
        stream = np.concatenate([np.asarray(clip, np.float32).reshape(-1) for clip in calibration])
        content = convert_int8_keeping_float(
            saved_model_dir,
            representative_dataset=lambda: _calibration_hops(float_content, stream),
            float_layers=float_layers,
        )
    return float_content, content


def _calibration_hops(float_content: bytes, stream: np.ndarray) -> Iterator[dict[str, np.ndarray]]:
    """Each hop of ``stream`` with the state the float32 model carries into it, as the converter's
    calibration inputs."""
    runner = TFLiteStreamingSpotter(float_content)
    num_hops = len(stream) // runner.hop_samples
    hops = stream[: num_hops * runner.hop_samples].reshape(num_hops, runner.hop_samples)
    for hop in track(hops, "Calibrating int8 on a stream of training clips"):
        yield {AUDIO_NAME: hop[np.newaxis], STATE_NAME: runner.state}
        runner.step(hop)


def _float_layers(spotter: Classifier, *, float_blocks: int | None) -> tuple[str, ...]:
    """The layers int8 keeps float32, the base's blocks named by the layers they call one by one in a
    streaming step (speech_embedding's ``stage_1`` is ``conv_0``, ``activation_0``, ...)."""
    names = []
    blocks = {block.name: block for block in getattr(spotter.base, "blocks", [])}
    for name in int8_float_layers(spotter, float_blocks=float_blocks):
        names.append(name)
        names += [layer.name for layer in getattr(blocks.get(name), "layers", [])]
    return tuple(names)


def _arena(content: bytes) -> dict[str, Any] | None:
    """The TFLite Micro tensor arena the model needs; ``None`` (with a warning) without tflite-micro."""
    try:
        return TensorArena.measure(content).to_dict()
    except ExportError as error:
        logger.warning("No tensor arena size in the description: %s", error)
        return None


def _write_parity(parity: StreamParityReport | None, out: Path) -> Path | None:
    """Write the parity report beside ``out`` (warning when it failed its gate); without one, remove a
    stale report of an earlier export."""
    path = parity_path(out)
    if parity is None:
        if path.exists():
            path.unlink()
        return None
    parity.write(path)
    logger.info("%s: %s", out, parity.summary())
    if not parity.passed:
        logger.warning(
            "The int8 streaming model misses more keywords than the float32 one beyond the gate (%s); "
            "export with --quantize none, or keep more blocks float (--float-blocks).",
            parity.summary(),
        )
    return path


def _tensor_positions(content: bytes, *, inputs: bool) -> dict[str, int]:
    """Signature name -> position among the subgraph's inputs (or outputs), as TFLite Micro indexes them."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    signature = interpreter.get_signature_list()["serving_default"]
    details = interpreter.get_input_details() if inputs else interpreter.get_output_details()
    order = [detail["index"] for detail in details]
    runner = interpreter.get_signature_runner()
    by_name = runner.get_input_details() if inputs else runner.get_output_details()
    names = signature["inputs" if inputs else "outputs"]
    expected = {AUDIO_NAME, STATE_NAME} if inputs else {SCORES_NAME, NEXT_STATE_NAME}
    if set(names) != expected:
        raise ExportError(
            f"The streaming model's signature has {sorted(names)}; expected {sorted(expected)}."
        )
    return {name: order.index(by_name[name]["index"]) for name in sorted(names)}

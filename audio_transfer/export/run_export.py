"""Export a training run: the Python form of ``audio-transfer export RUN``."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import keras
import numpy as np

from audio_transfer.checks import is_number
from audio_transfer.data import AudioExample, decode_examples, load_labelled_audio, load_splits
from audio_transfer.errors import ConfigError, DatasetError
from audio_transfer.export._serving import static_input_length
from audio_transfer.export.export_result import ExportResult
from audio_transfer.export.options import FORMATS, INPUT_TYPES, QUANTIZE_MODES, VERIFIER_QUANTIZE_MODES
from audio_transfer.export.saved_model_export import export_saved_model
from audio_transfer.export.tflite_export import export_tflite, int8_float_layers
from audio_transfer.export.verifier_export import export_verifier
from audio_transfer.export.verifier_export_result import VerifierExportResult
from audio_transfer.tasks import Task
from audio_transfer.training import (
    CONFIG_FILE,
    LABELS_FILE,
    MODEL_FILE,
    SPLITS_FILE,
    RunFolder,
    TrainConfig,
    TrainingRun,
    split_examples,
)

logger = logging.getLogger(__name__)


def export_run(
    run: TrainingRun | str | os.PathLike,
    out: str | os.PathLike,
    *,
    format: str = "tflite",
    quantize: str = "none",
    input_type: str = "float32",
    int8_io: bool = False,
    full_integer: bool = False,
    float_blocks: int | None = None,
    data: str | os.PathLike | None = None,
    calibration_clips: int = 300,
    held_out_clips: int = 500,
    safe_mode: bool = True,
    max_failure_fraction: float | None = None,
) -> ExportResult | VerifierExportResult:
    """Export a trained run as ``audio-transfer export RUN`` does, with its parity report.

    A classifier is exported with :func:`export_tflite` or :func:`export_saved_model`: labels, sample rate
    and clip length come from the run; int8 calibrates on the clips the run trained on and the parity
    report compares the export with the Keras model on the clips training held out (both recorded in the
    run folder's ``splits.csv``). A speaker verifier is exported with :func:`export_verifier`, its threshold
    the EER threshold training measured (``metrics.json``) or, without one, the export's EER threshold on
    the held-out speakers.

    Args:
        run: a run folder (or its ``model.keras``), or a :class:`~audio_transfer.training.TrainingRun` as
            :func:`~audio_transfer.training.train_run` returns it.
        out: the ``.tflite`` file or SavedModel folder to write (atomically).
        format: ``"tflite"`` or ``"saved_model"``.
        quantize: TFLite only: ``"none"``, ``"float16"``, ``"dynamic"`` or ``"int8"`` (verifiers: no int8).
        input_type: ``"float32"`` samples in [-1, 1] or ``"int16"`` PCM scaled inside the model.
        int8_io: with ``"int8"``: int8 output (and input, for float32 input).
        full_integer: with ``"int8"``: quantize the feature front-end too (by default it stays float32).
        float_blocks: with ``"int8"`` without ``full_integer``: how many bottom blocks of the base stay
            float32 (``None``: the base's choice).
        data: a labelled folder (one sub-folder per class, or speaker for a verifier) to split for
            calibration and held-out clips instead of the run's recorded clips.
        calibration_clips: at most this many training clips calibrate int8.
        held_out_clips: at most this many held-out clips go into the parity report (0: no report).
        max_failure_fraction: raise when more than this share of the clips chosen fail to decode
            (``None``: the run's setting).
        safe_mode: Keras safe mode when loading a run folder (``False`` for a run on a hub base).

    Returns:
        an :class:`ExportResult` (classifiers) or a :class:`VerifierExportResult` (speaker verifiers).

    Raises:
        ConfigError: options that do not go together, or a format the task does not export as.
        DatasetError: int8 without any clips to calibrate on, or a data folder that does not exist.

    Example:
        >>> run = train_run(TrainConfig(task="kws", data_dir="words", keywords=["yes"]), "runs/yes")
        >>> export_run(run, "yes_int8.tflite", quantize="int8").report.summary()  # doctest: +SKIP
    """
    _check_options(
        format=format, quantize=quantize, input_type=input_type, full_integer=full_integer, int8_io=int8_io
    )
    if float_blocks is not None and (quantize != "int8" or full_integer):
        raise ConfigError(
            "--float-blocks applies to --format tflite --quantize int8 without --full-integer, received "
            f"--format {format} --quantize {quantize}{' --full-integer' if full_integer else ''}."
        )
    source = _RunSource.of(run, safe_mode=safe_mode)
    model = source.model
    if isinstance(model, Task) and format not in model.export_formats:
        raise ConfigError(
            f"{source.name} holds a {type(model).__name__}, which exports as "
            f"{', '.join(model.export_formats) or 'nothing yet'}; received format {format!r}."
        )
    clips = _Clips.of(source, data=data, max_failure_fraction=max_failure_fraction)
    if isinstance(model, Task) and model.evaluation == "verification":
        return _export_verifier(
            source,
            clips,
            out=out,
            format=format,
            quantize=quantize,
            input_type=input_type,
            int8_io=int8_io,
            full_integer=full_integer,
            held_out_clips=held_out_clips,
        )
    num_samples = source.num_samples()
    calibrate = format == "tflite" and quantize == "int8"
    calibration = clips.waveforms("train", calibration_clips, num_samples=num_samples) if calibrate else None
    held_out = clips.labelled("validation", held_out_clips, num_samples=num_samples)
    common = dict(
        labels=source.labels,
        sample_rate=source.config.sample_rate,
        out=out,
        input_type=input_type,
        held_out=held_out,
        num_samples=num_samples,
    )
    if format == "saved_model":
        return export_saved_model(model, **common)
    return export_tflite(
        model,
        quantize=quantize,
        representative_data=calibration,
        int8_io=int8_io,
        float_layers=() if full_integer else _float_layers(model, float_blocks),
        **common,
    )


def run_clips(
    run: TrainingRun | str | os.PathLike,
    *,
    split: str,
    limit: int,
    data: str | os.PathLike | None = None,
    safe_mode: bool = True,
    max_failure_fraction: float | None = None,
) -> tuple[np.ndarray, list[str]] | None:
    """Up to ``limit`` clips of a run's ``split`` (``"train"`` or ``"validation"``), decoded as
    :func:`export_run` decodes them for calibration and parity: the run's recorded splits, a split of
    ``data``, or the run's data split again; clips of labels the model lacks are left out.

    Args:
        run: a run folder, or a :class:`~audio_transfer.training.TrainingRun`.
        split: ``"train"`` or ``"validation"``.
        limit: at most this many clips, chosen at random with the run's seed.
        data, safe_mode, max_failure_fraction: as for :func:`export_run`.

    Returns:
        ``(waveforms (clips, num_samples) float32, labels)``, or ``None`` without clips.

    Example:
        >>> waveforms, labels = run_clips("runs/yes", split="validation", limit=500)  # doctest: +SKIP
    """
    source = _RunSource.of(run, safe_mode=safe_mode)
    clips = _Clips.of(source, data=data, max_failure_fraction=max_failure_fraction)
    decoded = clips._decoded(split, limit, num_samples=source.num_samples(), known_labels=True)
    return None if decoded is None else (decoded.waveforms, list(decoded.labels))


def _check_options(*, format: str, quantize: str, input_type: str, full_integer: bool, int8_io: bool) -> None:
    for name, value, allowed in (
        ("format", format, FORMATS),
        ("quantize", quantize, QUANTIZE_MODES),
        ("input_type", input_type, INPUT_TYPES),
    ):
        if value not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}, received {value!r}.")
    if format == "saved_model" and (quantize != "none" or int8_io or full_integer):
        raise ConfigError(
            "--quantize, --int8-io and --full-integer (quantize, int8_io, full_integer) apply to --format "
            "tflite only."
        )


def _float_layers(model: keras.Model, float_blocks: int | None) -> tuple[str, ...] | None:
    return None if float_blocks is None else int8_float_layers(model, float_blocks=float_blocks)


@dataclasses.dataclass
class _RunSource:
    """What an export needs of a run: its model, labels, settings and recorded splits."""

    name: str
    model: keras.Model
    labels: tuple[str, ...]
    config: TrainConfig
    splits: dict[str, list[AudioExample]] | None
    metrics: dict

    @classmethod
    def of(cls, run: TrainingRun | str | os.PathLike, *, safe_mode: bool) -> _RunSource:
        if isinstance(run, TrainingRun):
            folder = None if run.run_dir is None else RunFolder(run.run_dir)
            return cls(
                name=str(run.run_dir or "the run"),
                model=run.task,
                labels=tuple(run.labels),
                config=run.config,
                splits=run.splits if run.splits is not None or folder is None else folder.read_splits(),
                metrics={} if folder is None else folder.read_metrics(),
            )
        folder = RunFolder.at(run)
        folder.require(MODEL_FILE, CONFIG_FILE)
        model = folder.read_model(safe_mode=safe_mode)
        if not (isinstance(model, Task) and model.evaluation == "verification"):
            folder.require(LABELS_FILE)
        return cls(
            name=str(folder.path),
            model=model,
            labels=tuple(getattr(model, "labels", None) or folder.read_labels() or ()),
            config=folder.read_config(),
            splits=folder.read_splits(),
            metrics=folder.read_metrics(),
        )

    def num_samples(self) -> int:
        """The training clip length in samples."""
        clip_seconds = self.config.clip_seconds
        num_samples = (
            round(clip_seconds * self.config.sample_rate) if clip_seconds else static_input_length(self.model)
        )
        if num_samples is None:
            raise ConfigError(
                f"{self.name}'s {CONFIG_FILE} has no clip_seconds and the model accepts any input length; "
                "add clip_seconds (the training clip length) to the config."
            )
        return num_samples


class _Clips:
    """Calibration and held-out clips of a run: its recorded splits, a split of ``data``, or (a run that
    recorded none) its own data split again with its settings."""

    def __init__(self, source: _RunSource, *, data: Path | None, max_failure_fraction: float) -> None:
        self.source = source
        self.data = data
        self.max_failure_fraction = max_failure_fraction
        self._splits: dict[str, list[AudioExample]] | None = None
        self._rng = np.random.default_rng(source.config.seed)

    @classmethod
    def of(
        cls, source: _RunSource, *, data: str | os.PathLike | None, max_failure_fraction: float | None
    ) -> _Clips:
        """The clips of ``source`` (or ``data``), ``max_failure_fraction`` defaulting to the run's."""
        if max_failure_fraction is None:
            max_failure_fraction = source.config.max_failure_fraction
        return cls(
            source, data=None if data is None else Path(data), max_failure_fraction=max_failure_fraction
        )

    def examples(self, split: str) -> list[AudioExample]:
        if self._splits is None:
            self._splits = (self.source.splits if self.data is None else None) or self._split_again()
        return self._splits[split]

    def waveforms(self, split: str, limit: int, *, num_samples: int) -> np.ndarray | None:
        """Up to ``limit`` clips of ``split`` the model has labels for; ``None`` when there are none."""
        clips = self._decoded(split, limit, num_samples=num_samples, known_labels=True)
        return None if clips is None else clips.waveforms

    def labelled(self, split: str, limit: int, *, num_samples: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Up to ``limit`` clips of ``split`` with their label indices; ``None`` without clips."""
        clips = self._decoded(split, limit, num_samples=num_samples, known_labels=True)
        if clips is None:
            return None
        return clips.waveforms, clips.label_indices(list(self.source.labels))

    def speakers(self, limit: int, *, num_samples: int) -> tuple[np.ndarray, list[str]] | None:
        """Up to ``limit`` clips of speakers the verifier did not train on, with their speakers."""
        clips = self._decoded("validation", limit, num_samples=num_samples, known_labels=False)
        if clips is not None and len(set(clips.labels)) < 2:
            logger.warning("Fewer than two held-out speakers in %s: no parity report.", self._where)
            return None
        return None if clips is None else (clips.waveforms, list(clips.labels))

    @property
    def _where(self) -> str:
        return str(self.data or self.source.name)

    def _decoded(self, split: str, limit: int, *, num_samples: int, known_labels: bool):
        has_clips = self.data is not None or self.source.splits is not None or self.source.config.data_dir
        if limit == 0 or not has_clips:
            return None
        examples = self.examples(split)
        if known_labels:
            known = [example for example in examples if example.label in self.source.labels]
            if len(known) < len(examples):
                logger.warning(
                    "%d %s clips have labels the model does not know; they are left out.",
                    len(examples) - len(known),
                    split,
                )
            examples = known
        if not examples:
            logger.warning("No %s clips in %s.", split, self._where)
            return None
        chosen = [examples[index] for index in sorted(self._rng.permutation(len(examples))[:limit])]
        sample_rate = self.source.config.sample_rate
        return decode_examples(
            chosen,
            sample_rate=sample_rate,
            clip_seconds=num_samples / sample_rate,
            max_failure_fraction=self.max_failure_fraction,
        )

    def _split_again(self) -> dict[str, list[AudioExample]]:
        config = self.source.config
        source = self.data or Path(config.data_dir)
        if not source.exists():
            raise DatasetError(
                f"The data folder {source} does not exist; pass --data DIR with the run's classes."
            )
        if self.data is None:
            logger.warning(
                "%s has no %s (it was trained before runs recorded their clips): splitting %s again with the "
                "run's settings, so the held-out clips may differ from those training held out. Train again "
                "to record them, or pass --data DIR.",
                self.source.name,
                SPLITS_FILE,
                source,
            )
        model = self.source.model
        hold_out = model.validation_hold_out if isinstance(model, Task) else None
        if self.data is None and hold_out is not None:  # training's own split of its data
            _, train, validation = split_examples(config, hold_out=hold_out)
            return {"train": train, "validation": validation}
        if self.data is not None and hold_out == "classes":  # a verifier has heard none of these speakers
            examples = load_labelled_audio(source, seed=config.seed).examples
            return {"train": examples, "validation": examples}
        _, splits = load_splits(
            source,
            validation_source=None if self.data is not None else config.val_data_dir,
            validation_fraction=config.validation_fraction,
            test_fraction=0.0,
            keywords=config.keywords,
            unknown_fraction=config.unknown_fraction,
            silence_fraction=config.silence_fraction,
            seed=config.seed,
        )
        return splits


def _export_verifier(
    source: _RunSource,
    clips: _Clips,
    *,
    out: str | os.PathLike,
    format: str,
    quantize: str,
    input_type: str,
    int8_io: bool,
    full_integer: bool,
    held_out_clips: int,
) -> VerifierExportResult:
    if quantize not in VERIFIER_QUANTIZE_MODES or int8_io or full_integer:
        raise ConfigError(
            f"{source.name} is a speaker-verification run, which exports with --quantize "
            f"{', '.join(VERIFIER_QUANTIZE_MODES)}, without --int8-io or --full-integer."
        )
    num_samples = source.num_samples()
    value = source.metrics.get("eer_threshold")
    threshold = float(value) if is_number(value) else None
    held_out = clips.speakers(held_out_clips, num_samples=num_samples)
    if threshold is None and held_out is None:
        raise ConfigError(
            f"{source.name} records no EER threshold (metrics.json) and there are no held-out speakers to "
            "measure one: pass --data DIR with clips of speakers the run did not train on (one "
            "folder each)."
        )
    return export_verifier(
        source.model,
        out=out,
        format=format,
        num_samples=num_samples,
        threshold=threshold,
        threshold_source=None if threshold is None else f"EER threshold measured by training ({source.name})",
        held_out=held_out,
        quantize=quantize,
        input_type=input_type,
    )

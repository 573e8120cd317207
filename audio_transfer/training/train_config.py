"""Every training setting in one plain dataclass, read from and written to YAML."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import yaml

from audio_transfer.atomic_files import write_text
from audio_transfer.data.memory_bound import format_bytes
from audio_transfer.errors import ConfigError
from audio_transfer.tasks.head_families import HEAD_CHOICES, LINEAR_DEFAULT_POOLING
from audio_transfer.tasks.task_registry import task_class, task_names

# Longest clip_seconds and context_seconds a run accepts. A clip is the unit a model classifies (the tasks'
# own lengths are a few seconds; sound-event clips are about 10 s); every clip of a dataset is held in memory
# at this length, batches of them run through the base, and a 10-minute clip at 48 kHz is already 110 MiB of
# float32. Longer recordings are for `detect`, which reads them in blocks. The bound turns a typo such as
# 1e7 into an error naming the memory it would need, before any file is decoded.
MAX_CLIP_SECONDS = 600.0

# The values of ``strategy`` (see audio_transfer.training.distribution).
STRATEGY_NAMES = ("auto", "one-device", "mirrored", "multi-worker")
# What TrainConfig.head_selection records: how an "auto" head was chosen (None: set by hand).
HEAD_SELECTIONS = (None, "cross-validation", "fallback")


@dataclasses.dataclass
class TrainConfig:
    """Settings of one training run; ``None`` means "the task's default" (see :meth:`resolved`).

    Data:
        task: a registered task's name (:func:`audio_transfer.tasks.task_names`: ``kws``, ``classify``,
            ``speaker-id``, ``speaker-verification`` and any added with ``register_task``).
        base: base name, hub handle or path for :func:`audio_transfer.bases.load_base`.
        base_weights: weights file for a preset that reads user-supplied weights (``yamnet``: Google's
            ``yamnet.h5``, a YAMNet ``.tflite`` or a TF Hub SavedModel folder); ``None``: the preset's own.
        data_dir: training folder (folder per class) or manifest, or a feature store (a local folder or a
            URL such as ``gs://bucket/store``).
        val_data_dir: validation folder; ``None`` holds out ``validation_fraction`` of the training data.
        sample_rate: rate in Hz clips are decoded at (the base's).
        clip_seconds: every clip is padded or cut to this length (centred); ``None`` takes the task's
            ``default_clip_seconds`` or, when that is ``None`` too, measures the training files: the 95th
            percentile of their durations (so words anywhere in longer clips are kept whole and short clips
            are not drowned in padding), from 0.5 to 6 s.
        keywords: for ``kws``: the words to spot; other words become ``_unknown_``.
        unknown_fraction: ``kws`` with ``keywords``: ``None`` keeps every other clip as ``_unknown_``
            (classes are balanced by weight, see ``class_weighting``); a number caps the ``_unknown_`` clips
            at that fraction of the keyword clips (0.1 is Speech Commands' recipe).
        silence_fraction: share of ``_silence_`` examples made from background noise.
        validation_fraction: share held out for validation when ``val_data_dir`` is not given.
        min_examples_for_validation: below this many examples in a class, nothing is held out and every
            example trains.
        max_failure_fraction: the run stops when more than this share of the files fail to decode (one bad
            file among others never stops it); 1 skips every undecodable file.

    Negative audio (wake words: ``task="wakeword"``, or any classifier with ``keywords``):
        negatives: long recordings without the keywords (files, or folders searched recursively for
            audio files): hours of speech, music, noise. They are cut into windows of the model's length
            (the clip and its context, as the streaming detector hears them) every
            ``negative_stride_seconds``, embedded a block of the file at a time into the feature store as
            ``_unknown_`` examples of source ``"negatives"``; files shorter than one window are skipped and
            counted. When the run has negative audio (``negatives`` or ``synth_negatives``), the data's
            background-noise files (``_background_noise_``) are windowed with it.
        negative_stride_seconds: time between the windows cut from ``negatives``; a multiple of a streaming
            base's hop (speech_embedding: 80 ms) lets the base run once per hop over the recording instead
            of once per window.
        synth_negatives: also train on negatives spoken by eSpeak NG (``None``: the task's default, on for
            wake words): ``synth_speech_minutes`` of everyday sentences read by many voices, windowed like
            ``negatives``, and, with ``synth_near_miss_clips``, near-miss phrases built from the keywords'
            phonemes (:func:`~audio_transfer.synth.near_miss_phrases`) as ``_unknown_`` clips.
        synth_speech_minutes: minutes of synthesized everyday speech.
        synth_near_miss_clips: clips spoken per near-miss phrase; 0 (the default) speaks none: on held-out
            real speakers they cost more false rejects than they saved (benchmarks/RESULTS.md, "Wake
            words").
        mining_rounds: hard-negative mining (``None``: the task's default, 1 for wake words): after
            training, the model scans the negative audio as the detector would (every
            ``mining_stride_seconds``); the windows where a keyword's probability reaches
            ``mining_threshold`` are added as ``_unknown_`` examples of source ``"mined"`` and the head is
            trained again. Each round's false accepts per hour are logged and saved in ``metrics.json``
            (``mining``), with a last scan of the final model.
        mining_stride_seconds: time between the windows mining scores.
        mining_threshold: a window whose keyword probability reaches this is a false accept.
        source_weights: weight of the examples of each store source (``"clean"``, ``"augmented"``,
            ``"negatives"``, ``"mined"``), times the class weights; ``None``: the task's default
            (wake words: mined windows weigh 2).
        balance_sources: within each class, every source weighs the same in all (the data's clips, their
            augmented copies, windows of negative audio, mined windows), before ``source_weights``
            (``None``: the task's default, on for wake words, whose hours of negative windows would
            otherwise drown the data's few hundred negative clips).
        max_negative_weight: the negative-weight schedule (openWakeWord's): the examples of ``_unknown_``
            and ``_silence_`` (what must never fire) weigh a factor more that grows linearly over stage 1's
            ``epochs``, from 1 at the first to this at the last, on top of the class and source weights:
            the first epochs learn the keywords, the last ones punish false accepts hardest. A head fitted
            full-batch (``head: linear``) fits once, at this factor. 1 (the default): no schedule.

    Head:
        head: classifiers' head: ``"auto"`` (the default: training chooses the family, its pooling and
            ``augment`` by speaker-grouped cross-validation on the training clips, see
            :func:`~audio_transfer.training.select_head`, and records the choice here, in ``pooling`` and
            ``augment``), ``"mlp"`` (:class:`~audio_transfer.heads.ClassificationHead`, trained in epochs
            of mini-batches) or ``"linear"`` (:class:`~audio_transfer.heads.LinearHead`: the linear probe,
            standardized pooled embeddings and one softmax layer fitted to convergence on the whole
            training set, augmented copies included; see :mod:`audio_transfer.tasks.head_families`).
        head_selection: how ``head`` was chosen, written by training: ``"cross-validation"`` or
            ``"fallback"`` (too few clips per class to cross-validate) when it was ``"auto"``; ``None`` when
            it was set by hand.
        pooling: temporal pooling of the head (see :data:`audio_transfer.heads.POOLING_NAMES`; ``None``: the
            task's ``default_pooling``, or ``"mean_max"`` for a linear head, which takes ``"mean"`` or
            ``"mean_max"`` only; with ``head="auto"``, a pooling set here is the only one tried).
        context_seconds: classifiers: silence added around each clip inside the model (``None``: the
            task's default, 0.35 s for keywords and sounds).
        hidden_units: hidden ReLU layer size of classification heads (0 = linear).
        normalize: layer-normalise the pooled embedding in classification heads (``None``: the task's
            default: on for keywords and sounds, off for speakers).
        dropout: dropout before the head's dense layers.
        projection_dim: speaker verification: size of the trained embedding; ``None`` keeps the base's.
        aam_margin, aam_scale: additive angular margin softmax of speaker verification.
        linear_c: the linear head's inverse L2 strength ``C`` (> 0), as scikit-learn's
            ``LogisticRegression(C=...)``: the fit minimises the mean cross-entropy plus
            ``||kernel||² / (2·C·n)`` over ``n`` training clips (1.0 is scikit-learn's default).
        linear_max_steps, linear_tolerance: the linear head's solver (L-BFGS) stops after this many steps,
            or once the loss improves by less than ``linear_tolerance`` (relative) for five steps in a
            row. ``epochs``, ``patience``, ``learning_rate``, ``weight_decay``, ``label_smoothing``,
            ``dropout``, ``normalize`` and ``hidden_units`` (which must stay 0) are for the mlp head; a
            linear head's fit is rerun from the start when an interrupted run resumes.

    Optimisation:
        epochs, batch_size, learning_rate, weight_decay (AdamW), label_smoothing: stage 1 (head on the
            cached embeddings of the frozen base).
        min_steps_per_epoch: stage 1 repeats small datasets within an epoch to make at least this many
            steps (embeddings are cached, so this is cheap and lets the head converge on a few clips).
        patience: epochs without improvement of ``monitor`` before early stopping (best weights restored).
        class_weighting: weight classes by inverse frequency.
        augment: train on ``augment_copies`` augmented copies of every clip besides the clean one (computed
            and embedded once).
        reverb_probability: share of the augmented copies reverberated by a room impulse response first
            (``None``: the task's default, 0.5 for wake words, 0 otherwise): the RIRs of ``rir_files``
            (measured ones) when given, else 24 simulated shoebox rooms
            (:class:`~audio_transfer.data.RoomReverb`; ``pip install 'audio_transfer[wakeword]'``, without it
            training warns and adds none).
        fine_tune_blocks: stage 2 unfreezes the top ``n`` blocks of the base and trains end to end on
            waveforms for ``fine_tune_epochs`` at ``fine_tune_learning_rate``; 0 skips stage 2.
        cache_dir: keep clean-clip embeddings on disk here across runs; ``None`` keeps them in memory only.
        seed: seeds Python, NumPy and TensorFlow, the split and the augmentation.

    Distribution:
        strategy: the ``tf.distribute`` strategy (see
            :func:`audio_transfer.training.distribution.distribution_strategy`): ``"one-device"``,
            ``"mirrored"`` (``MirroredStrategy`` over this machine's GPUs), ``"multi-worker"``
            (``MultiWorkerMirroredStrategy`` over the processes the ``TF_CONFIG`` environment variable lists,
            one per machine, each started with the same command and data) or ``"auto"``: multi-worker when
            ``TF_CONFIG`` lists more than one process, else mirrored with several GPUs, else one-device.
            ``batch_size`` is the global batch, split across all replicas (each of ``r`` replicas takes
            ``batch_size / r`` of every batch), and the input is sharded by data. Only the chief (TF_CONFIG's
            ``chief``, else worker 0) writes the run folder; the other workers checkpoint into a temporary
            folder they remove, write nothing at their ``--out``, and resume (``--resume``) from the chief's
            checkpoints when their ``--out`` is the chief's on a shared file system.

    Units: seconds for ``*_seconds``, Hz for ``sample_rate``; fractions in [0, 1).

    Example:
        >>> config = TrainConfig(task="kws", data_dir="speech_commands", keywords=["yes", "no"], epochs=40)
        >>> config.resolved().base
        'speech_embedding'
    """

    task: str = "kws"
    base: str | None = None
    base_weights: str | None = None
    data_dir: str | None = None
    val_data_dir: str | None = None
    sample_rate: int = 16000
    clip_seconds: float | None = None
    keywords: list[str] | None = None
    unknown_fraction: float | None = None
    silence_fraction: float = 0.0
    validation_fraction: float = 0.2
    min_examples_for_validation: int = 10
    max_failure_fraction: float = 0.1
    negatives: list[str] | None = None
    negative_stride_seconds: float = 0.48
    synth_negatives: bool | None = None
    synth_speech_minutes: float = 10.0
    synth_near_miss_clips: int = 0
    mining_rounds: int | None = None
    mining_stride_seconds: float = 0.16
    mining_threshold: float = 0.5
    source_weights: dict[str, float] | None = None
    balance_sources: bool | None = None
    max_negative_weight: float = 1.0

    head: str = "auto"
    head_selection: str | None = None
    pooling: str | None = None
    context_seconds: float | None = None
    hidden_units: int = 0
    normalize: bool | None = None
    dropout: float = 0.3
    projection_dim: int | None = None
    aam_margin: float = 0.2
    aam_scale: float = 30.0
    linear_c: float = 1.0
    linear_max_steps: int = 1000
    linear_tolerance: float = 1e-9

    epochs: int = 30
    min_steps_per_epoch: int = 20
    batch_size: int = 32
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    monitor: str = "val_loss"
    patience: int = 8
    class_weighting: bool = True
    augment: bool = True
    augment_copies: int = 2
    reverb_probability: float | None = None
    rir_files: list[str] | None = None
    fine_tune_blocks: int = 0
    fine_tune_epochs: int = 10
    fine_tune_learning_rate: float = 1e-4
    cache_dir: str | None = None
    seed: int = 0
    strategy: str = "auto"

    def __post_init__(self) -> None:
        if self.task not in task_names():
            raise ConfigError(f"task must be one of {', '.join(task_names())}; received {self.task!r}.")
        if self.head not in HEAD_CHOICES:
            raise ConfigError(f"head must be one of {', '.join(HEAD_CHOICES)}; received {self.head!r}.")
        if self.head_selection not in HEAD_SELECTIONS:
            raise ConfigError(
                f"head_selection must be one of {', '.join(map(str, HEAD_SELECTIONS))}; received "
                f"{self.head_selection!r}. Training writes it; leave it out of a configuration by hand."
            )
        for name in (
            "sample_rate",
            "epochs",
            "batch_size",
            "min_steps_per_epoch",
            "min_examples_for_validation",
            "linear_max_steps",
        ):
            _check(name, getattr(self, name), lambda v: isinstance(v, int) and v > 0, "a positive integer")
        for name in (
            "hidden_units",
            "augment_copies",
            "fine_tune_blocks",
            "fine_tune_epochs",
            "patience",
            "synth_near_miss_clips",
        ):
            _check(name, getattr(self, name), lambda v: isinstance(v, int) and v >= 0, "an integer >= 0")
        for name in ("learning_rate", "fine_tune_learning_rate", "aam_scale", "linear_c"):
            _check(name, getattr(self, name), lambda v: _is_number(v) and v > 0, "a positive number")
        if self.unknown_fraction is not None:
            _check(
                "unknown_fraction", self.unknown_fraction, lambda v: _is_number(v) and v >= 0, "a number >= 0"
            )
        for name in (
            "silence_fraction",
            "weight_decay",
            "aam_margin",
            "linear_tolerance",
        ):
            _check(name, getattr(self, name), lambda v: _is_number(v) and v >= 0, "a number >= 0")
        shares = {"max_failure_fraction": self.max_failure_fraction}
        if self.reverb_probability is not None:
            shares["reverb_probability"] = self.reverb_probability
        for name, value in shares.items():
            _check(name, value, lambda v: _is_number(v) and 0 <= v <= 1, "a number in [0, 1]")
        for name in ("validation_fraction", "dropout", "label_smoothing"):
            _check(name, getattr(self, name), lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)")
        if self.clip_seconds is not None:
            _check("clip_seconds", self.clip_seconds, lambda v: _is_number(v) and v > 0, "a positive number")
            self._check_memory_bound("clip_seconds", self.clip_seconds)
        if self.context_seconds is not None:
            _check(
                "context_seconds", self.context_seconds, lambda v: _is_number(v) and v >= 0, "a number >= 0"
            )
            self._check_memory_bound("context_seconds", self.context_seconds)
        if self.projection_dim is not None:
            _check(
                "projection_dim",
                self.projection_dim,
                lambda v: isinstance(v, int) and v > 0,
                "a positive integer",
            )
        if self.keywords is not None:
            if not isinstance(self.keywords, (list, tuple)) or not all(
                isinstance(k, str) and k for k in self.keywords
            ):
                raise ConfigError(f"keywords must be a list of words, received {self.keywords!r}.")
            self.keywords = list(self.keywords)
        self.negatives = _paths("negatives", self.negatives)
        self.rir_files = _paths("rir_files", self.rir_files)
        for name in (
            "negative_stride_seconds",
            "mining_stride_seconds",
            "synth_speech_minutes",
            "max_negative_weight",
        ):
            _check(name, getattr(self, name), lambda v: _is_number(v) and v > 0, "a positive number")
        if self.mining_rounds is not None:
            _check(
                "mining_rounds",
                self.mining_rounds,
                lambda v: isinstance(v, int) and v >= 0,
                "an integer >= 0",
            )
        _check(
            "mining_threshold",
            self.mining_threshold,
            lambda v: _is_number(v) and 0 < v < 1,
            "a number in (0, 1)",
        )
        for name in ("balance_sources", "synth_negatives", "normalize"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                raise ConfigError(f"{name} must be true, false or null, received {value!r}.")
        if self.source_weights is not None and not (
            isinstance(self.source_weights, dict)
            and all(isinstance(k, str) and _is_number(v) and v >= 0 for k, v in self.source_weights.items())
        ):
            raise ConfigError(
                f"source_weights must map store sources to numbers >= 0 (e.g. {{mined: 2.0}}), received "
                f"{self.source_weights!r}."
            )
        if self.strategy not in STRATEGY_NAMES:
            raise ConfigError(
                f"strategy must be one of {', '.join(STRATEGY_NAMES)}; received {self.strategy!r}."
            )
        if self.monitor not in ("val_loss", "val_accuracy"):
            raise ConfigError(f"monitor must be 'val_loss' or 'val_accuracy', received {self.monitor!r}.")

    def _check_memory_bound(self, name: str, seconds: float) -> None:
        if seconds > MAX_CLIP_SECONDS:
            per_clip = format_bytes(4 * seconds * self.sample_rate)
            raise ConfigError(
                f"{name} must be at most {MAX_CLIP_SECONDS:g} s, received {seconds:g}: every clip would hold "
                f"{per_clip} of float32 samples at {self.sample_rate} Hz. Give a clip length in seconds "
                "(--clip-seconds); score long recordings with `audio-transfer detect`."
            )

    def resolved(self) -> TrainConfig:
        """A copy with the task's defaults filled in for ``base``, ``pooling``, ``synth_negatives``,
        ``mining_rounds``, ``reverb_probability``, ``balance_sources`` and ``source_weights`` (imports the
        task class);
        with ``head="auto"`` the pooling stays for head selection to choose."""
        cls = task_class(self.task)
        pooling = {"mlp": cls.default_pooling, "linear": LINEAR_DEFAULT_POOLING}.get(self.head)
        defaults = {
            "base": cls.default_base,
            "pooling": pooling,
            "synth_negatives": cls.default_synth_negatives,
            "mining_rounds": cls.default_mining_rounds,
            "reverb_probability": cls.default_reverb_probability,
            "balance_sources": cls.default_balance_sources,
            "source_weights": dict(cls.default_source_weights) or None,
        }
        return dataclasses.replace(
            self, **{key: value for key, value in defaults.items() if getattr(self, key) is None}
        )

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied (validated like the constructor's arguments)."""
        _check_keys(changes, "replace()")
        return dataclasses.replace(self, **changes)

    # -- plain data and YAML -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str = "the configuration") -> TrainConfig:
        if not isinstance(values, dict):
            raise ConfigError(f"{source} must be a mapping of settings, received {type(values).__name__}.")
        _check_keys(values, source)
        return cls(**{key: _parse_float(key, value) for key, value in values.items()})

    def to_yaml(self, path: str | os.PathLike | None = None) -> str:
        """The settings as YAML text; also written (atomically) to ``path`` when given."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            write_text(path, text)
        return text

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> TrainConfig:
        """Read settings from a YAML file; absent settings keep their defaults, unknown ones are refused."""
        path = Path(path)
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            raise ConfigError(
                f"Cannot read the configuration file {path}: {error}. Give a UTF-8 YAML file of settings "
                "such as the config.yaml a run folder holds."
            ) from error
        return cls.from_dict(values, source=str(path))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check(name: str, value: Any, valid, what: str) -> None:
    if isinstance(value, bool) or not valid(value):
        raise ConfigError(f"{name} must be {what}, received {value!r}.")


def _paths(name: str, value: Any) -> list[str] | None:
    """A list of paths as strings (``None`` stays ``None``)."""
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ConfigError(f"{name} must be a list of paths, received {value!r}.")
    return [str(path) for path in value]


def _parse_float(name: str, value: Any) -> Any:
    """YAML 1.1 reads ``1e-3`` (no dot) as a string: accept it where a float is expected."""
    field_types = {field.name: str(field.type) for field in dataclasses.fields(TrainConfig)}
    if isinstance(value, str) and "float" in field_types[name]:
        try:
            return float(value)
        except ValueError:
            pass
    return value


def _check_keys(values: dict[str, Any], source: str) -> None:
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"{source} has unknown settings {', '.join(unknown)}; known settings: {', '.join(sorted(known))}."
        )

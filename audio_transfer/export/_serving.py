"""The graph every export serves: raw waveform in, class probabilities (and labels) or an embedding out.

Both writers build the same ``tf.Module`` here: SavedModel with a free batch dimension and a ``labels``
output, TFLite with a fixed ``(1, num_samples)`` input and ``scores`` alone. With ``input_type="int16"``
the graph takes 16-bit PCM and scales it by 1/32768 inside, so a device can feed microphone samples as is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from audio_transfer.checks import is_positive_int
from audio_transfer.errors import ConfigError, ExportError
from audio_transfer.export.options import INPUT_TYPES

INPUT_NAME = "waveform"
SCORES_NAME = "scores"
EMBEDDING_NAME = "embedding"
LABELS_NAME = "labels"
PCM16_FULL_SCALE = 32768.0


@dataclasses.dataclass(frozen=True)
class ClassifierSpec:
    """What an export promises: input length, sample rate, the output's name and size, and the labels in
    output order (none for an embedding model)."""

    labels: tuple[str, ...]
    sample_rate: int
    num_samples: int
    output_name: str = SCORES_NAME
    output_size: int = 0

    @property
    def clip_seconds(self) -> float:
        return self.num_samples / self.sample_rate


def static_input_length(model: keras.Model) -> int | None:
    """The fixed input length of a functional or built Sequential model; None for any length or when a
    subclassed model declares no inputs."""
    try:
        inputs = model.inputs
    except AttributeError:  # subclassed models, unbuilt Sequential models
        return None
    if not inputs or len(inputs[0].shape) != 2:
        return None
    return inputs[0].shape[1]


def classifier_spec(
    model: keras.Model,
    *,
    labels: Sequence[str] | None,
    sample_rate: int | None,
    num_samples: int | None,
) -> ClassifierSpec:
    """Check that ``model`` maps ``(batch, num_samples)`` to ``(batch, len(labels))`` and pin the length.

    The model is run once on a silent clip, so functional and subclassed models are checked alike.

    Args:
        model: a Keras model with one waveform input and one probability output.
        labels: class names in output index order; ``None`` takes the model's ``labels`` (a classifier
            task's).
        sample_rate: rate in Hz of the waveform the model expects; ``None`` takes the model's
            ``sample_rate`` (a task's).
        num_samples: input length; may be omitted when the model's input length is static.
    """
    if not isinstance(model, keras.Model):
        raise ExportError(f"model must be a keras.Model, received {type(model).__name__}.")
    if labels is None:
        labels = _carried(model, "labels", hint="the class names in output order")
    sample_rate = model_sample_rate(model, sample_rate)
    labels = tuple(labels)
    if not labels or any(not isinstance(label, str) or not label.strip() for label in labels):
        raise ConfigError(f"labels must be non-empty strings, received {list(labels)!r}.")
    if any("\n" in label or "\r" in label for label in labels) or len(set(labels)) != len(labels):
        raise ConfigError(f"labels must be unique and single-line, received {list(labels)!r}.")
    num_samples = input_length(model, num_samples)
    width = output_width(model, num_samples, expected="one probability output (batch, num_classes)")
    if width != len(labels):
        raise ConfigError(
            f"The model has {width} outputs but {len(labels)} labels were given; pass the labels "
            "of the run the model was trained in (labels.txt)."
        )
    return ClassifierSpec(
        labels=labels, sample_rate=sample_rate, num_samples=num_samples, output_size=len(labels)
    )


def embedding_spec(model: keras.Model, *, sample_rate: int | None, num_samples: int | None) -> ClassifierSpec:
    """The specification of an embedding model (a speaker verifier): no labels, one ``embedding`` output.

    Args:
        model: a Keras model mapping a waveform batch to ``(batch, embedding_dim)``.
        sample_rate: rate in Hz of its waveform; ``None`` takes the model's ``sample_rate``.
        num_samples: input length; may be omitted when the model's input length is static.
    """
    if not isinstance(model, keras.Model):
        raise ExportError(f"model must be a keras.Model, received {type(model).__name__}.")
    sample_rate = model_sample_rate(model, sample_rate)
    num_samples = input_length(model, num_samples)
    width = output_width(model, num_samples, expected="one embedding output (batch, embedding_dim)")
    return ClassifierSpec(
        labels=(),
        sample_rate=sample_rate,
        num_samples=num_samples,
        output_name=EMBEDDING_NAME,
        output_size=width,
    )


def output_width(model: keras.Model, num_samples: int, *, expected: str) -> int:
    """The size of the model's ``(batch, size)`` output, run once on a silent clip; ExportError when the
    model does not run on a waveform batch or returns another shape (``expected`` says what it should)."""
    try:
        probe = model(np.zeros((1, num_samples), np.float32), training=False)
    except Exception as error:  # whatever the model raises on a waveform batch
        raise ExportError(
            f"Model {model.name!r} cannot run on a waveform batch (1, {num_samples}): {error}"
        ) from error
    output_shape = tuple(getattr(probe, "shape", ()))
    if len(output_shape) != 2:
        raise ExportError(
            f"Export needs {expected}; {model.name!r} returns {output_shape or type(probe).__name__}."
        )
    return int(output_shape[1])


def model_sample_rate(model: keras.Model, sample_rate: int | None) -> int:
    """``sample_rate`` checked, or the model's own (a task's) when ``None``."""
    if sample_rate is None:
        sample_rate = _carried(model, "sample_rate", hint="the rate in Hz of its input waveform")
    if not is_positive_int(sample_rate):
        raise ConfigError(f"sample_rate must be a positive integer in Hz, received {sample_rate!r}.")
    return int(sample_rate)


def input_length(model: keras.Model, num_samples: int | None) -> int:
    """``num_samples`` checked against the model's static input length, or that length when ``None``.

    A task accepts clips of any length and does not record the length it was trained on, so for a task
    ``num_samples`` (``clip_seconds`` x ``sample_rate`` of its training clips) has to be given.
    """
    static_samples = static_input_length(model)
    if num_samples is None:
        if static_samples is None:
            raise ConfigError(
                f"Model {model.name!r} accepts any input length and does not record the clip length it was "
                "trained on; pass num_samples (the training clip_seconds x sample_rate, e.g. 16000 for 1 s "
                "at 16 kHz)."
            )
        num_samples = static_samples
    elif static_samples is not None and static_samples != num_samples:
        raise ConfigError(
            f"num_samples={num_samples} but model {model.name!r} takes {static_samples} samples."
        )
    if not is_positive_int(num_samples):
        raise ConfigError(f"num_samples must be a positive integer, received {num_samples!r}.")
    return int(num_samples)


def _carried(model: keras.Model, attribute: str, *, hint: str):
    """The model's own ``attribute`` (a task carries ``labels`` and ``sample_rate``); ConfigError asking
    for the argument when the model has none."""
    value = getattr(model, attribute, None)
    if value is None:
        raise ConfigError(
            f"Model {model.name!r} does not carry {attribute} (a {type(model).__name__}, not an "
            f"audio_transfer task); pass {attribute}= ({hint})."
        )
    return value


def check_input_type(input_type: str) -> tf.DType:
    """The TensorFlow dtype of an ``input_type`` name; ``ConfigError`` for any other name."""
    if input_type not in INPUT_TYPES:
        raise ConfigError(f"input_type must be one of {INPUT_TYPES}, received {input_type!r}.")
    return tf.as_dtype(input_type)


def serving_module(
    model: keras.Model,
    spec: ClassifierSpec,
    *,
    input_type: str,
    batch_size: int | None,
    with_labels: bool,
) -> tf.Module:
    """A ``tf.Module`` whose ``serve`` function maps a waveform batch to ``{spec.output_name[, "labels"]}``
    (``"scores"`` for a classifier, ``"embedding"`` for an embedding model).

    Args:
        model: the Keras classifier (its variables are tracked so that saving stores them).
        spec: from :func:`classifier_spec`.
        input_type: ``"float32"`` (samples in [-1, 1]) or ``"int16"`` (PCM, scaled by 1/32768 inside).
        batch_size: fixed batch dimension, or None for any.
        with_labels: also return the labels as a string tensor ``(num_classes,)``.
    """
    dtype = check_input_type(input_type)
    module = tf.Module()
    # tf.Module does not see Keras 3 variables; track their TensorFlow values so they are saved (and the
    # TFLite converter can freeze them instead of emitting VAR_HANDLE/READ_VARIABLE ops).
    module.keras_variables = [variable.value for variable in model.variables]
    labels = tf.constant(spec.labels) if with_labels else None

    @tf.function(input_signature=[tf.TensorSpec((batch_size, spec.num_samples), dtype, name=INPUT_NAME)])
    def serve(waveform: tf.Tensor) -> dict[str, tf.Tensor]:
        if dtype == tf.int16:
            waveform = tf.cast(waveform, tf.float32) * (1.0 / PCM16_FULL_SCALE)
        outputs = {spec.output_name: tf.cast(model(waveform, training=False), tf.float32)}
        if labels is not None:
            outputs[LABELS_NAME] = labels
        return outputs

    module.serve = serve
    return module


def as_heard(waveforms: np.ndarray, *, dtype: tf.DType) -> np.ndarray:
    """The float samples an export of input ``dtype`` hears: int16 rounds them to PCM first, so a Keras
    model given these measures the conversion alone."""
    return from_pcm16(to_pcm16(waveforms)) if dtype == tf.int16 else waveforms


def to_pcm16(waveforms: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] to int16 PCM (rounded, clipped), the inverse of the in-graph scaling."""
    return np.clip(np.round(np.asarray(waveforms) * PCM16_FULL_SCALE), -32768, 32767).astype(np.int16)


def from_pcm16(pcm: np.ndarray) -> np.ndarray:
    """int16 PCM to float32 samples, exactly as the int16-input graph scales them."""
    return np.asarray(pcm).astype(np.float32) * np.float32(1.0 / PCM16_FULL_SCALE)

"""Load Google's YAMNet weights into a :class:`~audio_transfer.bases.yamnet_base.YAMNetBase`.

Three kinds of source, all Google's (Apache-2.0; see ``models/yamnet/MODEL_CARD.md``), none downloaded:

``yamnet.h5``
    The Keras weights file of ``models/research/audioset/yamnet`` (Keras 2 HDF5 layout: one group per
    layer, named as in ``yamnet.py``: ``layer1/conv``, ``layer1/conv/bn``, ``layer2/depthwise_conv``,
    ``layer2/depthwise_conv/bn``, ``layer2/pointwise_conv``, ... and ``logits``), read with h5py.
A YAMNet ``.tflite``
    e.g. Coral's int8 ``yamnet_spectra_in.tflite`` or the float ``yamnet.tflite``: the 27 convolutions
    are taken in execution order, int8 weights and int32 biases dequantized (``scale * (q - zero_point)``,
    per channel). The converter folded each batch normalization into its convolution (kernel scaled, bias
    added); it is unfolded into an identity normalization that adds the bias: ``beta = bias``,
    ``moving_mean = 0``, ``moving_variance = 1 - epsilon``, so ``bn(conv(x)) = conv(x) + bias`` up to one
    float32 rounding, without changing the architecture.
A TF Hub YAMNet SavedModel
    (``google/yamnet/1``, unpacked): its variables, named as in the Keras model it was exported from
    (``layer1/conv/kernel:0``, ...), and its class map ``assets/yamnet_class_map.csv``. Without a path,
    the ``tensorflow_hub`` cache entry of :data:`YAMNET_HUB_HANDLE` is used (see
    :func:`~audio_transfer.bases.hub_resolver.resolve_hub_handle`).

The 521 class names come from a ``yamnet_class_map.csv`` (columns ``index,mid,display_name``): the
SavedModel's, the one beside the weights file, or the one passed as ``class_map``.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path

import h5py
import numpy as np
import tensorflow as tf

from audio_transfer.bases.hub_resolver import is_saved_model_dir, resolve_hub_handle
from audio_transfer.bases.tflite_weights import read_tflite_weighted_ops
from audio_transfer.bases.yamnet_base import BATCHNORM_EPSILON, SEPARABLE_BLOCKS, YAMNetBase
from audio_transfer.errors import BaseNotFoundError, ConfigError

logger = logging.getLogger(__name__)

CLASS_MAP_FILENAME = "yamnet_class_map.csv"
YAMNET_HUB_HANDLE = "https://tfhub.dev/google/yamnet/1"
_BATCH_NORM_VARIABLES = ("beta", "moving_mean", "moving_variance")
# The convolutions of yamnet.py in execution order: (Keras 2 layer name, kernel variable name).
_CONVOLUTIONS: tuple[tuple[str, str], ...] = (
    ("layer1/conv", "kernel"),
    *(
        pair
        for number in range(2, len(SEPARABLE_BLOCKS) + 2)
        for pair in (
            (f"layer{number}/depthwise_conv", "depthwise_kernel"),
            (f"layer{number}/pointwise_conv", "kernel"),
        )
    ),
)
# Variable names as yamnet.py's Keras model writes them, possibly under a model name scope. The classifier
# is named "logits" in older yamnet.py versions and left to Keras ("dense") in newer ones.
_LAYER_VARIABLE = re.compile(r"(layer\d+/.+?)(?::\d+)?$")
_CLASSIFIER_VARIABLE = re.compile(r"(?:^|/)(?:logits|dense(?:_\d+)?)/(kernel|bias)(?::\d+)?$")


def load_yamnet_weights(
    base: YAMNetBase,
    weights: str | os.PathLike | None = None,
    *,
    class_map: str | os.PathLike | None = None,
) -> YAMNetBase:
    """Load Google's YAMNet weights from a ``.h5``, ``.tflite`` or SavedModel directory into ``base``.

    A file whose name ends in ``.weights.h5`` is taken as a Keras 3 weights file of a ``YAMNetBase``
    (``base.save_weights``) and loaded with ``base.load_weights``.

    Args:
        base: the base to fill; its AudioSet head, when it has one, is loaded too.
        weights: ``yamnet.h5``, a YAMNet ``.tflite``, a TF Hub YAMNet SavedModel directory, or a
            ``.weights.h5`` file; None for TF Hub's ``google/yamnet/1`` from the ``tensorflow_hub`` cache
            (``$TFHUB_CACHE_DIR`` or ``<temp dir>/tfhub_modules``), downloaded there only when
            ``tensorflow_hub`` is installed and the network is reachable.
        class_map: a ``yamnet_class_map.csv`` naming the 521 classes; by default the SavedModel's or the
            one beside the weights file, when there is one.

    Returns:
        ``base``, with its weights (and ``class_names`` when a class map was found) set.

    Raises:
        BaseNotFoundError: ``weights`` does not exist (or, when None, the hub model is not cached and cannot
            be downloaded; the message says how to supply it).
        ConfigError: the source is of none of these kinds, lacks a weight, or a weight has another shape
            than YAMNet's.

    Example:
        >>> base = load_yamnet_weights(YAMNetBase(include_audioset_head=True), "yamnet.h5")  # doctest: +SKIP
    """
    path = Path(weights).expanduser() if weights is not None else resolve_hub_handle(YAMNET_HUB_HANDLE)
    if not path.exists():
        raise BaseNotFoundError(
            f"The YAMNet weights {str(path)!r} do not exist. Pass yamnet.h5 (TensorFlow models repository, "
            f"research/audioset/yamnet), a YAMNet .tflite, or an unpacked TF Hub google/yamnet/1 directory."
        )
    if path.name.endswith(".weights.h5"):
        base.load_weights(path)
        return base
    if path.is_dir() and is_saved_model_dir(path):
        arrays = read_yamnet_saved_model(path)
        default_class_map = path / "assets" / CLASS_MAP_FILENAME
    elif path.is_file() and path.suffix == ".tflite":
        arrays = read_yamnet_tflite(path)
        default_class_map = path.with_name(CLASS_MAP_FILENAME)
    elif path.is_file() and path.suffix in (".h5", ".hdf5"):
        arrays = read_yamnet_h5(path)
        default_class_map = path.with_name(CLASS_MAP_FILENAME)
    else:
        raise ConfigError(
            f"Cannot tell which YAMNet weights {str(path)!r} holds: pass a .h5 file (yamnet.h5), a .tflite "
            f"file, a SavedModel directory (with saved_model.pb), or a .weights.h5 file of YAMNetBase."
        )
    assign_yamnet_weights(base, arrays, source=str(path))
    if class_map is not None:
        base.set_class_names(read_class_map(class_map))
    elif base.include_audioset_head and default_class_map.is_file():
        base.set_class_names(read_class_map(default_class_map))
    logger.info("Loaded YAMNet weights from %s", path)
    return base


def yamnet_variable_names(*, include_audioset_head: bool) -> list[str]:
    """Names of YAMNet's weights as yamnet.py's Keras model calls them (without ``:0``), bottom to top."""
    names = []
    for layer, kernel in _CONVOLUTIONS:
        names.append(f"{layer}/{kernel}")
        names.extend(f"{layer}/bn/{variable}" for variable in _BATCH_NORM_VARIABLES)
    if include_audioset_head:
        names.extend(["logits/kernel", "logits/bias"])
    return names


def assign_yamnet_weights(base: YAMNetBase, arrays: Mapping[str, np.ndarray], *, source: str) -> None:
    """Set every weight of ``base`` from ``arrays``, keyed by :func:`yamnet_variable_names`.

    Raises:
        ConfigError: a weight is missing from ``arrays`` or has another shape; nothing is assigned then.
    """
    targets = {}
    for (layer, kernel), (convolution, batch_norm) in zip(_CONVOLUTIONS, _keras_layers(base), strict=True):
        targets[f"{layer}/{kernel}"] = convolution.kernel
        for variable in _BATCH_NORM_VARIABLES:
            targets[f"{layer}/bn/{variable}"] = getattr(batch_norm, variable)
    if base.audioset_head is not None:
        targets["logits/kernel"] = base.audioset_head.kernel
        targets["logits/bias"] = base.audioset_head.bias
    missing = [name for name in targets if name not in arrays]
    mismatched = [
        f"{name} {tuple(np.shape(arrays[name]))} (expected {tuple(variable.shape)})"
        for name, variable in targets.items()
        if name in arrays and tuple(np.shape(arrays[name])) != tuple(variable.shape)
    ]
    if missing or mismatched:
        problems = []
        if missing:
            hint = " (build the base with include_audioset_head=False)" if "logits/kernel" in missing else ""
            problems.append(f"it lacks {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}{hint}")
        if mismatched:
            problems.append(f"these weights have other shapes: {', '.join(mismatched[:6])}")
        raise ConfigError(f"{source} does not hold YAMNet's weights: {'; '.join(problems)}.")
    for name, variable in targets.items():
        variable.assign(np.asarray(arrays[name], dtype=np.float32))


def _keras_layers(base: YAMNetBase) -> list[tuple]:
    """(convolution, batch normalization) pairs of ``base``, in the order of ``_CONVOLUTIONS``."""
    pairs = [(base.stem.conv, base.stem.bn)]
    for block in base.separable_blocks:
        pairs.append((block.depthwise_conv, block.depthwise_bn))
        pairs.append((block.pointwise_conv, block.pointwise_bn))
    return pairs


def _canonical_name(name: str) -> str | None:
    """The yamnet.py name of a saved variable name, or None when it is no YAMNet weight."""
    classifier = _CLASSIFIER_VARIABLE.search(name)
    if classifier:
        return f"logits/{classifier.group(1)}"
    layer = _LAYER_VARIABLE.search(name)
    return layer.group(1) if layer else None


def read_yamnet_h5(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """YAMNet's weights from a Keras 2 HDF5 weights file such as Google's ``yamnet.h5``.

    The file lists its layers in the ``layer_names`` attribute of its root (or of ``model_weights`` in a
    whole-model file) and each layer's weights in the ``weight_names`` attribute of the layer's group.
    """
    arrays = {}
    with h5py.File(path, "r") as file:
        root = file.get("model_weights", file)
        if "layer_names" not in root.attrs:
            raise ConfigError(
                f"{os.fspath(path)!r} is not a Keras 2 weights file like yamnet.h5 (its root has no "
                f"'layer_names' attribute). Keras 3 weights files must be named *.weights.h5."
            )
        for layer_name in root.attrs["layer_names"]:
            group = root[_text(layer_name)]
            for weight_name in group.attrs.get("weight_names", []):
                name = _canonical_name(_text(weight_name))
                if name is not None:
                    arrays[name] = np.asarray(group[_text(weight_name)])
    return arrays


def _text(value: bytes | str) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def read_yamnet_saved_model(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """YAMNet's weights from the variables of a SavedModel such as TF Hub's ``google/yamnet/1``."""
    loaded = tf.saved_model.load(os.fspath(path))
    arrays = {}
    for trackable in tf.train.TrackableView(loaded).descendants():
        if isinstance(trackable, tf.Variable):
            name = _canonical_name(trackable.name)
            if name is not None:
                arrays[name] = trackable.numpy()
    return arrays


def read_yamnet_tflite(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """YAMNet's weights from a YAMNet TFLite model, dequantized, with batch normalization unfolded.

    Raises:
        ConfigError: the model's convolutions are not YAMNet's 27 (one convolution, then 13 depthwise and
            pointwise pairs) or have no bias (batch normalization not folded).
    """
    ops = read_tflite_weighted_ops(path)
    convolutions = [op for op in ops if op.op in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    expected = ["CONV_2D"] + ["DEPTHWISE_CONV_2D", "CONV_2D"] * len(SEPARABLE_BLOCKS)
    if [op.op for op in convolutions] != expected or any(op.bias is None for op in convolutions):
        raise ConfigError(
            f"{os.fspath(path)!r} is not a YAMNet TFLite model: expected {len(expected)} convolutions with "
            f"biases (CONV_2D, then DEPTHWISE_CONV_2D and CONV_2D 13 times), found "
            f"{[op.op for op in convolutions]}."
        )
    arrays = {}
    for (layer, kernel), op in zip(_CONVOLUTIONS, convolutions, strict=True):
        # TFLite filters are (out, h, w, in) and (1, h, w, channels); Keras wants (h, w, in, out) and
        # (h, w, channels, 1).
        arrays[f"{layer}/{kernel}"] = op.weights.transpose(1, 2, 3, 0)
        arrays[f"{layer}/bn/beta"] = op.bias
        arrays[f"{layer}/bn/moving_mean"] = np.zeros_like(op.bias)
        arrays[f"{layer}/bn/moving_variance"] = np.full_like(op.bias, 1.0 - BATCHNORM_EPSILON)
    embedding_dim = convolutions[-1].weights.shape[0]
    classifiers = [
        op for op in ops if op.op == "FULLY_CONNECTED" and op.weights.shape[1:] == (embedding_dim,)
    ]
    if classifiers:
        classifier = classifiers[-1]
        arrays["logits/kernel"] = classifier.weights.T
        arrays["logits/bias"] = (
            classifier.bias if classifier.bias is not None else np.zeros(len(classifier.weights), np.float32)
        )
    return arrays


def read_class_map(path: str | os.PathLike) -> tuple[str, ...]:
    """The ``display_name`` column of a ``yamnet_class_map.csv`` (header ``index,mid,display_name``)."""
    try:
        with open(path, newline="", encoding="utf8") as file:
            rows = list(csv.DictReader(file))
    except OSError as error:
        raise BaseNotFoundError(f"Cannot read the YAMNet class map {os.fspath(path)!r}: {error}.") from error
    if not rows or "display_name" not in rows[0]:
        raise ConfigError(
            f"{os.fspath(path)!r} is not a YAMNet class map: it needs a header with a display_name column "
            f"(index,mid,display_name) and one row per class."
        )
    return tuple(row["display_name"] for row in rows)

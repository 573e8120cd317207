"""Test helpers for YAMNet: weights that make every layer matter, and files in Google's layouts."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import tensorflow as tf

from audio_transfer.bases.yamnet_base import YAMNetBase


def randomize(base: YAMNetBase, seed: int) -> YAMNetBase:
    """Give every weight of ``base`` a random value of a trained network's scale.

    Keras's default initialisation shrinks the signal through 27 ReLU layers to nothing; He-scaled kernels
    and varied batch-norm statistics keep the embeddings informative, and make folding the batch norm into
    the convolutions (as TFLite does) a real transformation.
    """
    rng = np.random.default_rng(seed)
    for variable in base.weights:
        shape = tuple(variable.shape)
        name = variable.path.rsplit("/", 1)[-1]
        if name == "kernel":
            fan_in = int(np.prod(shape[:-1])) if "depthwise" not in variable.path else int(np.prod(shape[:2]))
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        elif name == "moving_variance":
            value = rng.uniform(0.5, 2.0, shape)
        else:  # beta, moving_mean, bias
            value = rng.normal(0.0, 0.1, shape)
        variable.assign(value.astype(np.float32))
    return base


def yamnet_py_arrays(base: YAMNetBase) -> dict[str, np.ndarray]:
    """The weights of ``base`` under the Keras 2 names of Google's yamnet.py (``layer1/conv/kernel`` ...)."""
    arrays = {}

    def put(layer: str, kernel_name: str, convolution, batch_norm) -> None:
        arrays[f"{layer}/{kernel_name}"] = convolution.kernel.numpy()
        for variable in ("beta", "moving_mean", "moving_variance"):
            arrays[f"{layer}/bn/{variable}"] = getattr(batch_norm, variable).numpy()

    put("layer1/conv", "kernel", base.stem.conv, base.stem.bn)
    for number, block in enumerate(base.separable_blocks, start=2):
        put(f"layer{number}/depthwise_conv", "depthwise_kernel", block.depthwise_conv, block.depthwise_bn)
        put(f"layer{number}/pointwise_conv", "kernel", block.pointwise_conv, block.pointwise_bn)
    if base.audioset_head is not None:
        arrays["logits/kernel"] = base.audioset_head.kernel.numpy()
        arrays["logits/bias"] = base.audioset_head.bias.numpy()
    return arrays


def write_keras2_h5(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` as Keras 2's ``save_weights`` writes yamnet.h5: a group per layer, named weights.

    The layer of ``layer1/conv/bn/beta`` is ``layer1/conv/bn``; its dataset is ``<layer>/<layer>/beta:0``.
    """
    layers: dict[str, list[str]] = {}
    for name in arrays:
        layer, variable = name.rsplit("/", 1)
        layers.setdefault(layer, []).append(variable)
    with h5py.File(path, "w") as file:
        file.attrs["layer_names"] = [layer.encode() for layer in layers]
        file.attrs["backend"] = b"tensorflow"
        file.attrs["keras_version"] = b"2.3.0-tf"
        for layer, variables in layers.items():
            group = file.require_group(layer)
            weight_names = [f"{layer}/{variable}:0" for variable in variables]
            group.attrs["weight_names"] = [name.encode() for name in weight_names]
            for variable, weight_name in zip(variables, weight_names, strict=True):
                group.create_dataset(weight_name, data=arrays[f"{layer}/{variable}"])
    return path


def write_hub_like_saved_model(path: Path, arrays: dict[str, np.ndarray], class_names: list[str]) -> Path:
    """A SavedModel shaped like TF Hub's google/yamnet/1: a tf.Module whose variables carry yamnet.py names
    (under a model scope, classifier named ``dense``), a serving function, and the class map as an asset.
    """
    module = tf.Module()
    module.variables_by_layer = [
        tf.Variable(value, name=f"yamnet_frames/{name}".replace("logits/", "dense/"))
        for name, value in arrays.items()
    ]
    class_map = path.parent / "yamnet_class_map.csv"
    rows = ["index,mid,display_name"] + [f'{i},/m/{i:05d},"{name}"' for i, name in enumerate(class_names)]
    class_map.write_text("\n".join(rows) + "\n", encoding="utf8")
    module.class_map = tf.saved_model.Asset(str(class_map))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def serve(waveform):
        return tf.reduce_sum(waveform) + tf.add_n([tf.reduce_sum(v) for v in module.variables_by_layer])

    module.serve = serve
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve})
    class_map.unlink()
    return path

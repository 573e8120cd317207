"""Convert Google's speech_embedding weights from the openWakeWord 0.5.1 wheel to ``SpeechEmbeddingBase``.

Reads ``openwakeword/resources/models/embedding_model.onnx`` from the wheel, checks that its graph is the
architecture ``SpeechEmbeddingBase`` builds (op order, kernel shapes, paddings, pools, activation
constants), copies the 20 convolution weights (batch norm is already folded into them), and checks the
result against the wheel's own TFLite pipeline (``melspectrogram.tflite`` -> ``/10 + 2`` ->
``embedding_model.tflite`` over 76-frame windows every 8 frames) run with ai_edge_litert. Writes
``speech_embedding.weights.h5`` (Keras ``save_weights`` of the whole base) into the package data,
``audio_transfer/pretrained/speech_embedding/``.

Usage::

    python models/speech_embedding/convert.py [--wheel openwakeword-0.5.1-py3-none-any.whl]
        [--speech-dir $AUDIO_TRANSFER_DATA/speech_commands_subset]

Without ``--wheel`` the wheel is fetched with ``pip download --no-deps openwakeword==0.5.1`` into a
temporary folder; without ``--speech-dir`` parity is checked on synthetic audio only. The reference outputs
the parity tests compare against are written by ``tests/fixtures/make_speech_embedding_base_fixture.py``,
which reuses this script's reference pipeline. Needs ``onnx`` (a conversion tool only, not a dependency of
audio_transfer).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))  # run from a source checkout without installing

from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from audio_transfer.bases.speech_embedding_base import (  # noqa: E402
    ACTIVATION_FLOOR,
    HOP_FRAMES,
    LEAKY_SLOPE,
    WINDOW_FRAMES,
    SpeechEmbeddingBase,
)

logger = logging.getLogger("convert_speech_embedding")

WHEEL_REQUIREMENT = "openwakeword==0.5.1"
MODELS_IN_WHEEL = "openwakeword/resources/models/"
# The package data audio_transfer.bases.assets reads.
OUTPUT = REPO_ROOT / "audio_transfer" / "pretrained" / "speech_embedding" / "speech_embedding.weights.h5"
# The ONNX initializers hold 328,137 numbers: these 328,128 convolution weights and biases plus 9 graph
# constants (two reshape targets of 4 and the activation floor).
EXPECTED_PARAMETERS = 328_128
# Three words by three speakers, joined into one 3 s utterance (28 windows).
SPEECH_CLIPS = ("yes/439c84f4_nohash_1.wav", "stop/1eddce1d_nohash_3.wav", "marvin/5fe4a278_nohash_0.wav")
SYNTHETIC_SEED = 20240501
SYNTHETIC_SECONDS = 1.5


# -- the wheel -------------------------------------------------------------------------------------------
def fetch_wheel(folder: Path) -> Path:
    """Download the openWakeWord wheel (no dependencies) into ``folder``."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(folder), WHEEL_REQUIREMENT],
        check=True,
    )
    return next(folder.glob("openwakeword-*.whl"))


def extract_models(wheel: Path, folder: Path) -> dict[str, Path]:
    """Extract the three model files used here from ``wheel`` into ``folder``."""
    names = ("embedding_model.onnx", "embedding_model.tflite", "melspectrogram.tflite")
    paths = {}
    with zipfile.ZipFile(wheel) as archive:
        for name in names:
            target = folder / name
            target.write_bytes(archive.read(MODELS_IN_WHEEL + name))
            paths[name] = target
    return paths


# -- ONNX graph -> weights -----------------------------------------------------------------------------
def _attributes(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def read_onnx_convolutions(onnx_path: Path) -> tuple[list[dict], list[tuple]]:
    """Convolutions of ``embedding_model.onnx`` in graph order, and its max-pool kernel sizes.

    Each convolution is ``{"weight": (out, in, kh, kw), "bias": (out,) | None, "pads": [...]}``. Fails
    when the graph holds an op or constant the Keras rebuild does not reproduce.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    initializers = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    convolutions, pools = [], []
    for node in graph.node:
        attributes = _attributes(node)
        if node.op_type == "Conv":
            assert attributes.get("strides", [1, 1]) == [1, 1] and attributes.get("group", 1) == 1
            weight = initializers[node.input[1]]
            bias = initializers[node.input[2]] if len(node.input) > 2 else None
            convolutions.append({"weight": weight, "bias": bias, "pads": attributes.get("pads", [0] * 4)})
        elif node.op_type == "LeakyRelu":
            assert np.isclose(attributes["alpha"], LEAKY_SLOPE), attributes
        elif node.op_type == "Max":
            floor = initializers[node.input[1]]
            assert floor.size == 1 and np.isclose(floor.item(), ACTIVATION_FLOOR), floor
        elif node.op_type == "MaxPool":
            assert attributes["kernel_shape"] == attributes["strides"], attributes
            assert not any(attributes.get("pads", [0])), attributes
            pools.append(tuple(attributes["kernel_shape"]))
        elif node.op_type != "Reshape":  # NHWC -> NCHW of a 1-channel input, and the output's squeeze
            raise ValueError(f"Unexpected op {node.op_type} in {onnx_path}")
    return convolutions, pools


def keras_convolutions(base: SpeechEmbeddingBase) -> list:
    """The Conv2D layers of ``base``, bottom to top."""
    import keras

    layers = [layer for block in base.blocks for layer in block.layers]
    return [layer for layer in layers if isinstance(layer, keras.layers.Conv2D)]


def assign_weights(base: SpeechEmbeddingBase, onnx_path: Path) -> None:
    """Copy the ONNX convolutions into ``base``, checking shapes, paddings and pools on the way."""
    import keras

    convolutions, pools = read_onnx_convolutions(onnx_path)
    keras_pools = [
        layer.pool_size
        for block in base.blocks
        for layer in block.layers
        if isinstance(layer, keras.layers.MaxPooling2D)
    ]
    assert [tuple(p) for p in keras_pools] == pools, (keras_pools, pools)
    layers = keras_convolutions(base)
    assert len(layers) == len(convolutions) == 20, (len(layers), len(convolutions))
    for index, (layer, conv) in enumerate(zip(layers, convolutions, strict=True)):
        kernel = conv["weight"].transpose(2, 3, 1, 0)  # (out, in, h, w) -> (h, w, in, out)
        # ONNX pads are (time begin, mel begin, time end, mel end): only the mel axis is ever padded.
        mel_pad = kernel.shape[1] // 2
        expected_pads = [0, mel_pad, 0, mel_pad]
        assert conv["pads"] == expected_pads, (index, conv["pads"])
        values = [kernel] if conv["bias"] is None else [kernel, conv["bias"]]
        assert [tuple(w.shape) for w in layer.weights] == [v.shape for v in values], (index, layer.name)
        layer.set_weights(values)
    onnx_count = sum(c["weight"].size + (0 if c["bias"] is None else c["bias"].size) for c in convolutions)
    assert base.count_params() == onnx_count == EXPECTED_PARAMETERS, (base.count_params(), onnx_count)


# -- the original TFLite pipeline ----------------------------------------------------------------------
def _run_tflite(model_path: Path, inputs: np.ndarray) -> np.ndarray:
    interpreter = Interpreter(model_path=str(model_path))
    interpreter.resize_tensor_input(0, list(inputs.shape), strict=True)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], inputs)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def reference_log_mel(melspectrogram_tflite: Path, pcm16: np.ndarray) -> np.ndarray:
    """openWakeWord's log-mel of int16 samples: ``melspectrogram.tflite(pcm) / 10 + 2``, (frames, 32)."""
    spectrogram = _run_tflite(melspectrogram_tflite, pcm16.astype(np.float32)[None, :])
    return (spectrogram[0, 0] / 10 + 2).astype(np.float32)


def reference_embeddings(embedding_tflite: Path, log_mel: np.ndarray) -> np.ndarray:
    """``embedding_model.tflite`` over every full 76-frame window every 8 frames, (windows, 96)."""
    starts = range(0, log_mel.shape[0] - WINDOW_FRAMES + 1, HOP_FRAMES)
    windows = np.stack([log_mel[s : s + WINDOW_FRAMES] for s in starts])[..., None]
    return _run_tflite(embedding_tflite, windows.astype(np.float32)).reshape(len(windows), 96)


def synthetic_pcm16() -> np.ndarray:
    """1.5 s of seeded test audio: a chirp, two harmonic tone bursts and noise, as int16."""
    rng = np.random.default_rng(SYNTHETIC_SEED)
    t = np.arange(round(SYNTHETIC_SECONDS * 16000)) / 16000
    chirp = 0.25 * np.sin(2 * np.pi * (150 * t + 1500 * t**2))
    envelope = np.exp(-(((t - 0.4) / 0.12) ** 2)) + np.exp(-(((t - 1.1) / 0.1) ** 2))
    harmonics = sum(np.sin(2 * np.pi * 180 * k * t) / k for k in range(1, 8))
    audio = chirp + 0.2 * envelope * harmonics + 0.02 * rng.standard_normal(t.size)
    return np.round(np.clip(audio, -1, 1) * 32767).astype(np.int16)


def read_pcm16(path: Path) -> np.ndarray:
    import soundfile

    pcm, rate = soundfile.read(str(path), dtype="int16")
    assert rate == 16000 and pcm.ndim == 1, (path, rate, pcm.shape)
    return pcm


def parity_clips(speech_dir: Path | None) -> dict[str, np.ndarray]:
    """The synthetic clip, and the real utterance of :data:`SPEECH_CLIPS` when ``speech_dir`` holds it."""
    clips = {"synthetic": synthetic_pcm16()}
    if speech_dir is not None and speech_dir.is_dir():
        clips["speech"] = np.concatenate([read_pcm16(speech_dir / clip) for clip in SPEECH_CLIPS])
    else:
        logger.warning("no speech folder (%s): parity is checked on synthetic audio only", speech_dir)
    return clips


# -- main ----------------------------------------------------------------------------------------------
def _max_abs_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def reference_outputs(models: dict[str, Path], pcm16: np.ndarray) -> dict[str, np.ndarray]:
    """The original pipeline's log-mel and embeddings of one clip."""
    log_mel = reference_log_mel(models["melspectrogram.tflite"], pcm16)
    return {"log_mel": log_mel, "embeddings": reference_embeddings(models["embedding_model.tflite"], log_mel)}


def parity(base: SpeechEmbeddingBase, clips: dict[str, np.ndarray], references: dict[str, dict]) -> dict:
    """Max abs differences to the original pipeline per clip: network alone, front-end, end to end."""
    figures = {}
    for name, pcm in clips.items():
        expected = references[name]
        waveform = pcm[None].astype(np.float32) / 32768
        figures[name] = {
            "windows": len(expected["embeddings"]),
            "embedding_abs_max": float(np.max(np.abs(expected["embeddings"]))),
            "network_max_abs_diff": _max_abs_diff(
                base.embed_log_mel(expected["log_mel"][None])[0], expected["embeddings"]
            ),
            "front_end_max_abs_diff": _max_abs_diff(base.frontend(waveform)[0], expected["log_mel"]),
            "end_to_end_max_abs_diff": _max_abs_diff(base(waveform)[0], expected["embeddings"]),
        }
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="openwakeword-0.5.1 wheel; downloaded when omitted")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument(
        "--speech-dir",
        type=Path,
        help="Speech Commands folder holding the real clips the parity check uses (default: synthetic only)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(Path(tmp))
        models = extract_models(wheel, Path(tmp))
        base = SpeechEmbeddingBase()
        assign_weights(base, models["embedding_model.onnx"])
        clips = parity_clips(args.speech_dir)
        references = {name: reference_outputs(models, pcm) for name, pcm in clips.items()}
        figures = parity(base, clips, references)
        logger.info("parameters: %d\nparity: %s", base.count_params(), json.dumps(figures, indent=2))
        for figure, limit in (("network_max_abs_diff", 1e-4), ("end_to_end_max_abs_diff", 1e-3)):
            worst = max(f[figure] for f in figures.values())
            assert worst <= limit, f"{figure} {worst} > {limit}"
        base.save_weights(args.output)
        logger.info("wrote %s (%d bytes)", args.output, args.output.stat().st_size)


if __name__ == "__main__":
    main()

"""Running an exported TFLite classifier with LiteRT on float waveforms."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from audio_transfer.errors import ExportError, InputShapeError
from audio_transfer.export._serving import to_pcm16


class TFLiteClassifier:
    """A ``.tflite`` audio classifier run clip by clip with ``ai_edge_litert``.

    Converts float waveforms to whatever the file takes (float32, int16 PCM, or int8 with the input
    tensor's scale and zero point) and returns float probabilities (int8 outputs are dequantized), so
    every export variant is compared on the same footing.

    Args:
        model_content: the ``.tflite`` bytes (appended metadata files are fine).
        num_threads: interpreter threads; 1 measures single-core latency.
        use_xnnpack: run through LiteRT's default XNNPACK delegate, as phones do. Without it the builtin
            kernels run, whose int8 arithmetic is the one TensorFlow Lite for Microcontrollers reproduces
            bit for bit (XNNPACK's int8 kernels round differently, by a step or two of the output).

    Shapes:
        :meth:`predict` takes ``(clips, num_samples)`` float32 in [-1, 1] and returns
        ``(clips, num_classes)`` float32.

    Example::

        classifier = TFLiteClassifier.from_file("model.tflite")
        probabilities = classifier.predict(waveforms)
    """

    def __init__(self, model_content: bytes, *, num_threads: int = 1, use_xnnpack: bool = True) -> None:
        resolver = OpResolverType.AUTO if use_xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            self._interpreter = Interpreter(
                model_content=model_content, num_threads=num_threads, experimental_op_resolver_type=resolver
            )
            self._interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as error:
            raise ExportError(f"LiteRT cannot load the TFLite model: {str(error).strip()}.") from error
        inputs, outputs = self._interpreter.get_input_details(), self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1 or len(inputs[0]["shape"]) != 2:
            raise ExportError(
                "A TFLite classifier has one (1, samples) input and one (1, classes) output; this file "
                f"has inputs {[list(d['shape']) for d in inputs]} and outputs "
                f"{[list(d['shape']) for d in outputs]}."
            )
        self._input, self._output = inputs[0], outputs[0]

    @classmethod
    def from_file(
        cls, path: str | os.PathLike, *, num_threads: int = 1, use_xnnpack: bool = True
    ) -> TFLiteClassifier:
        """Load a ``.tflite`` file."""
        return cls(Path(path).read_bytes(), num_threads=num_threads, use_xnnpack=use_xnnpack)

    @property
    def num_samples(self) -> int:
        """Samples per clip the model takes."""
        return int(self._input["shape"][1])

    @property
    def num_classes(self) -> int:
        """Length of the probability vector."""
        return int(self._output["shape"][-1])

    @property
    def input_dtype(self) -> np.dtype:
        """Element type of the input tensor (float32, int16 or int8)."""
        return np.dtype(self._input["dtype"])

    @property
    def output_dtype(self) -> np.dtype:
        """Element type of the output tensor (float32, or int8 for full-integer files with int8 output)."""
        return np.dtype(self._output["dtype"])

    def predict(self, waveforms: np.ndarray) -> np.ndarray:
        """Class probabilities of each clip; see :meth:`run`."""
        return self.run(waveforms)[0]

    def run(self, waveforms: np.ndarray) -> tuple[np.ndarray, float]:
        """Class probabilities of each clip and the mean seconds per clip (input copy, invoke, output copy).

        Args:
            waveforms: ``(clips, num_samples)`` float samples in [-1, 1].
        """
        waveforms = np.asarray(waveforms, dtype=np.float32)
        if waveforms.ndim != 2 or waveforms.shape[1] != self.num_samples:
            raise InputShapeError(
                f"The TFLite model takes clips of {self.num_samples} samples as (clips, samples); "
                f"received an array of shape {waveforms.shape}."
            )
        probabilities, seconds = [], 0.0
        for clip in self.encode_input(waveforms):
            start = time.perf_counter()
            probabilities.append(self.invoke(clip))
            seconds += time.perf_counter() - start
        if not probabilities:
            return np.zeros((0, self.num_classes), np.float32), 0.0
        return self.decode_output(np.stack(probabilities)), seconds / len(probabilities)

    def invoke(self, clip: np.ndarray) -> np.ndarray:
        """Run one clip already in the input tensor's type; returns the raw output row ``(num_classes,)``."""
        self._interpreter.set_tensor(self._input["index"], clip[np.newaxis])
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output["index"])[0]

    def encode_input(self, waveforms: np.ndarray) -> np.ndarray:
        """Float waveforms in the input tensor's type: as is, int16 PCM, or quantized int8/uint8."""
        dtype = self.input_dtype
        if dtype == np.float32:
            return waveforms.astype(np.float32)
        if dtype == np.int16:
            return to_pcm16(waveforms)
        scale, zero_point = self._input["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(waveforms / scale + zero_point), info.min, info.max).astype(dtype)

    def decode_output(self, scores: np.ndarray) -> np.ndarray:
        """Output tensor values as float probabilities (dequantized when the output is integer)."""
        if np.issubdtype(scores.dtype, np.integer):
            scale, zero_point = self._output["quantization"]
            return ((scores.astype(np.float32) - zero_point) * scale).astype(np.float32)
        return scores.astype(np.float32)

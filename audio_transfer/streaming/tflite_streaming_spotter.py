"""Running a streaming TFLite keyword spotter hop by hop with LiteRT."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from audio_transfer.errors import ExportError, InputShapeError
from audio_transfer.streaming.streaming_spotter import AUDIO_NAME, NEXT_STATE_NAME, SCORES_NAME, STATE_NAME


class TFLiteStreamingSpotter:
    """A ``.tflite`` file written by :func:`~audio_transfer.streaming.export_streaming_tflite`, run with
    ``ai_edge_litert`` the way a device runs it: one hop per call, the state fed back.

    Args:
        model_content: the ``.tflite`` bytes.
        num_threads: interpreter threads.
        use_xnnpack: run through LiteRT's default XNNPACK delegate; without it the builtin kernels run,
            which TensorFlow Lite Micro reproduces (XNNPACK rounds int8 arithmetic slightly differently).

    Example::

        spotter = TFLiteStreamingSpotter.from_file("kws_stream.tflite")
        scores = spotter.run(waveform)  # (hops, classes): row j is the clip window j - warmup_hops
    """

    def __init__(self, model_content: bytes, *, num_threads: int = 1, use_xnnpack: bool = True) -> None:
        resolver = OpResolverType.AUTO if use_xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            interpreter = Interpreter(
                model_content=model_content, num_threads=num_threads, experimental_op_resolver_type=resolver
            )
            self._runner = interpreter.get_signature_runner()
        except (RuntimeError, ValueError) as error:
            raise ExportError(
                f"LiteRT cannot load the streaming TFLite model: {str(error).strip()}."
            ) from error
        inputs, outputs = self._runner.get_input_details(), self._runner.get_output_details()
        if set(inputs) != {AUDIO_NAME, STATE_NAME} or set(outputs) != {SCORES_NAME, NEXT_STATE_NAME}:
            raise ExportError(
                f"Not a streaming spotter: a streaming model takes {AUDIO_NAME!r} and {STATE_NAME!r} and "
                f"returns {SCORES_NAME!r} and {NEXT_STATE_NAME!r}; this file takes {sorted(inputs)} and "
                f"returns {sorted(outputs)}."
            )
        self.hop_samples = int(inputs[AUDIO_NAME]["shape"][1])
        self.state_size = int(inputs[STATE_NAME]["shape"][1])
        self.num_classes = int(outputs[SCORES_NAME]["shape"][-1])
        self.reset()

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, num_threads: int = 1) -> TFLiteStreamingSpotter:
        return cls(Path(path).read_bytes(), num_threads=num_threads)

    @property
    def state(self) -> np.ndarray:
        """The state the next :meth:`step` starts from, ``(1, state_size)`` float32 (a copy)."""
        return self._state.copy()

    def reset(self) -> None:
        """Forget the audio heard so far (zero state)."""
        self._state = np.zeros((1, self.state_size), np.float32)

    def step(self, hop: np.ndarray) -> np.ndarray:
        """Scores ``(num_classes,)`` after the next ``(hop_samples,)`` float32 samples."""
        hop = np.asarray(hop, dtype=np.float32)
        if hop.shape != (self.hop_samples,):
            raise InputShapeError(f"A hop has {self.hop_samples} samples, received shape {hop.shape}.")
        outputs = self._runner(**{AUDIO_NAME: hop[np.newaxis], STATE_NAME: self._state})
        self._state = outputs[NEXT_STATE_NAME]
        return outputs[SCORES_NAME][0]

    def run(self, waveform: np.ndarray) -> np.ndarray:
        """Scores after every hop of ``(samples,)`` audio from a fresh state: ``(hops, num_classes)``.

        A last partial hop is padded with zeros.
        """
        waveform = np.asarray(waveform, dtype=np.float32)
        if waveform.ndim != 1:
            raise InputShapeError(f"run takes one (samples,) stream, received shape {waveform.shape}.")
        num_hops = -(-len(waveform) // self.hop_samples)
        padded = np.zeros(num_hops * self.hop_samples, np.float32)
        padded[: len(waveform)] = waveform
        self.reset()
        return np.stack([self.step(hop) for hop in padded.reshape(num_hops, self.hop_samples)])

"""The tensor arena a TFLite model needs in TensorFlow Lite for Microcontrollers, measured by running it."""

from __future__ import annotations

import contextlib
import dataclasses
import faulthandler
import importlib.util
import logging
import math
import os
import sys
from collections.abc import Iterator
from typing import Any

from audio_transfer.errors import ExportError

logger = logging.getLogger(__name__)

# Margin over the measured minimum: the measurement uses TFLM's reference kernels on a 64-bit host; a
# device's optimized kernels (CMSIS-NN) may ask for scratch buffers the reference ones do not.
MARGIN_FRACTION = 0.1
ARENA_ALIGNMENT_BYTES = 16
_LARGEST_ARENA_BYTES = 1 << 30


@dataclasses.dataclass(frozen=True)
class TensorArena:
    """How many bytes of tensor arena a model needs in TensorFlow Lite for Microcontrollers.

    Args:
        min_bytes: the smallest arena with which the ``tflite_micro`` Python runtime (reference kernels,
            64-bit host) allocates the model's tensors and runs it: one byte less fails.
        bytes: ``min_bytes`` plus ``MARGIN_FRACTION`` (10%), rounded up to 16 bytes: what to allocate.
        margin: how ``bytes`` was derived, in words.

    Example:
        >>> arena = TensorArena.measure(Path("kws.tflite").read_bytes())  # doctest: +SKIP
        >>> arena.bytes  # alignas(16) uint8_t tensor_arena[arena.bytes] on the device
    """

    min_bytes: int
    bytes: int
    margin: str

    @classmethod
    def measure(cls, content: bytes) -> TensorArena:
        """The smallest arena that runs ``content`` in the ``tflite_micro`` runtime (a binary search over
        arena sizes, each allocated and invoked once), and that plus the margin.

        Raises:
            ExportError: the ``tflite_micro`` package is not installed, or TFLM cannot run the model with
                1 GiB of arena (an op it lacks).
        """
        if importlib.util.find_spec("tflite_micro") is None:
            raise ExportError(
                "Measuring the tensor arena needs the tflite-micro package: pip install tflite-micro "
                "(audio_transfer's dev extra pins it)."
            )
        high = 1 << 14
        while not _runs(content, high):
            if high >= _LARGEST_ARENA_BYTES:
                raise ExportError(
                    "TensorFlow Lite Micro cannot run the model with a 1 GiB arena: it lacks one of its "
                    "ops (the runtime's message is on stderr)."
                )
            high *= 4
        low = 0  # fails (or is 0)
        while high - low > 1:
            middle = (low + high) // 2
            if _runs(content, middle):
                high = middle
            else:
                low = middle
        padded = math.ceil(high * (1 + MARGIN_FRACTION) / ARENA_ALIGNMENT_BYTES) * ARENA_ALIGNMENT_BYTES
        logger.info("TFLite Micro runs the model with %d bytes of arena (%d with the margin).", high, padded)
        return cls(
            min_bytes=high,
            bytes=padded,
            margin=(
                f"measured minimum + {MARGIN_FRACTION:.0%}, rounded up to {ARENA_ALIGNMENT_BYTES} bytes: "
                "measured with TFLite Micro's reference kernels on a 64-bit host; optimized kernels "
                "(CMSIS-NN) may need scratch buffers beyond it"
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def runs(content: bytes, *, arena_size: int) -> bool:
        """Whether the ``tflite_micro`` runtime allocates and invokes ``content`` in ``arena_size`` bytes
        (in a child process: a crash counts as no)."""
        return _runs(content, arena_size)


def _runs(content: bytes, arena_size: int) -> bool:
    """Whether TFLM allocates ``content``'s tensors in ``arena_size`` bytes and invokes it (zero inputs),
    tried in a forked child: on some too-small arenas TFLM crashes instead of failing."""
    from tflite_micro import runtime  # imported before the fork, so each child starts at once

    with _quiet_stderr():  # TFLM prints every failed allocation
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the child
            faulthandler.disable()  # a crash here is an answer, not a bug to report
            status = 1
            try:
                runtime.Interpreter.from_bytes(content, arena_size=arena_size).invoke()
                status = 0
            finally:
                os._exit(status)
        _, status = os.waitpid(child, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """File descriptor 2 sent to /dev/null meanwhile (TFLM writes there from C++)."""
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        os.close(null)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)

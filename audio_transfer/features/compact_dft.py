"""Switch a model's log-mel front-ends to the two-stage DFT while it is traced for a TFLite file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import keras

from audio_transfer.features.log_mel_spectrogram import LogMelSpectrogram


def frontend_layers(model: keras.layers.Layer) -> list[LogMelSpectrogram]:
    """The :class:`LogMelSpectrogram` layers (MFCC included) anywhere in ``model``, outermost first."""
    found, pending = [], [model]
    while pending:
        layer = pending.pop(0)
        if isinstance(layer, LogMelSpectrogram):
            found.append(layer)
        else:  # models list their layers; plain layers have no public list of sublayers
            pending.extend(getattr(layer, "layers", []))
    return found


@contextmanager
def compact_dft(model: keras.layers.Layer) -> Iterator[list[LogMelSpectrogram]]:
    """Within the block, the front-ends of ``model`` compute their DFT in two stages.

    The spectra are the same within float32 rounding (after a log, up to ~1e-4 apart in near-silent
    bins); the constants a traced graph holds are a tenth the size (384 KB -> 39 KB for
    ``speech_embedding``), which is what a phone or microcontroller file wants, while TensorFlow on a CPU
    runs the one-stage convolution faster (training, embedding caches). Trace (save, convert) inside the
    block.

    Example::

        with compact_dft(model):
            tf.saved_model.save(module, path)
    """
    layers = frontend_layers(model)
    previous = [layer.compact_dft for layer in layers]
    for layer in layers:
        layer.compact_dft = True
    try:
        yield layers
    finally:
        for layer, value in zip(layers, previous, strict=True):
            layer.compact_dft = value

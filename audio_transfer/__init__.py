"""audio_transfer: speech and audio transfer learning with Keras 3 on TensorFlow.

A pretrained audio base (waveform ``(batch, samples)`` float32 at 16 kHz → frame embeddings ``(batch,
windows, dim)``) under a small Keras head, trained on a few labelled clips, exported for phones and
microcontrollers. The names most programs need are importable from here (each loads its module, and
TensorFlow, on first use)::

    from audio_transfer import KeywordSpotter, Trainer, TrainConfig, export_tflite, load_base

    spotter = KeywordSpotter(load_base("speech_embedding"), ["yes", "no"])
    Trainer(spotter, TrainConfig(epochs=30)).fit(waveforms, label_indices)  # (clips, 16000) float32, (clips,)
    export_tflite(spotter, num_samples=16000, out="kws.tflite")  # labels and sample rate: the task's

Importing the package selects Keras's TensorFlow backend (before Keras is imported) and checks that the
choice held: the front-ends, hub bases and TFLite export are TensorFlow graphs, so no other backend works.

Layers of the package, lower never importing higher::

    audio -> data -> features -> bases -> heads / tasks -> training / evaluation -> export -> streaming -> cli
"""

import importlib

from audio_transfer._backend import ensure_tensorflow_backend
from audio_transfer.version import __version__

ensure_tensorflow_backend()

# Public name -> the subpackage that defines it (and documents it).
_LAZY: dict[str, str] = {
    **dict.fromkeys(("load_audio", "save_audio"), "audio_transfer.audio"),
    **dict.fromkeys(("decode_examples", "load_labelled_audio", "split_examples"), "audio_transfer.data"),
    **dict.fromkeys(("AudioBase", "list_bases", "load_base"), "audio_transfer.bases"),
    **dict.fromkeys(
        ("AudioClassifier", "KeywordSpotter", "SpeakerClassifier", "SpeakerVerifier", "load_task"),
        "audio_transfer.tasks",
    ),
    **dict.fromkeys(("TrainConfig", "Trainer", "load_run", "train_run"), "audio_transfer.training"),
    **dict.fromkeys(("classification_metrics", "verification_metrics"), "audio_transfer.evaluation"),
    **dict.fromkeys(
        ("TFLiteClassifier", "export_run", "export_saved_model", "export_tflite", "export_verifier"),
        "audio_transfer.export",
    ),
    "KeywordDetector": "audio_transfer.streaming",
    "synthesize_keywords": "audio_transfer.synth",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["__version__", *sorted(_LAZY)]

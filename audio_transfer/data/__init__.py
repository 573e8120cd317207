"""Labelled audio datasets: discovery, speaker-disjoint splits, decoding, augmentation, tf.data pipelines.

Public API: :class:`AudioExample`, :func:`load_labelled_audio` / :class:`LabelledAudio`,
:func:`find_audio_files`, :func:`split_examples`, :func:`load_splits`, :func:`which_split`,
:func:`decode_examples` / :class:`DecodedClips`, :func:`raise_if_too_many_failures`,
:func:`summarize_dataset` / :class:`DatasetSummary`, :class:`SkippedFile`, :class:`NoiseBank`,
:func:`parse_speaker`, :func:`read_manifest` / :func:`write_manifest` (and :func:`is_manifest`,
:data:`MANIFEST_SUFFIXES`), and (importing TensorFlow on first use) :func:`make_dataset` and
:class:`Augmentation`.
"""

import importlib

from audio_transfer.data._decode import raise_if_too_many_failures
from audio_transfer.data._discovery import find_audio_files
from audio_transfer.data.audio_example import NOISE_LABEL, SILENCE_LABEL, UNKNOWN_LABEL, AudioExample
from audio_transfer.data.dataset_summary import DatasetSummary, summarize_dataset
from audio_transfer.data.decoded_clips import DecodedClips, decode_examples
from audio_transfer.data.discovered import Discovered
from audio_transfer.data.labelled_audio import LabelledAudio, load_labelled_audio
from audio_transfer.data.manifest import MANIFEST_SUFFIXES, is_manifest, read_manifest, write_manifest
from audio_transfer.data.noise_bank import NoiseBank
from audio_transfer.data.skipped_file import SkippedFile
from audio_transfer.data.speakers import SPEAKER_PATTERNS, parse_speaker
from audio_transfer.data.splits import load_splits, split_examples, which_split

# These import TensorFlow (seconds); resolved on first access so that `audio-transfer info` and plain data
# loading stay fast.
_TENSORFLOW_MODULES = {
    "Augmentation": "audio_transfer.data.augmentation",
    "make_dataset": "audio_transfer.data.dataset",
}


def __getattr__(name: str):
    if name in _TENSORFLOW_MODULES:
        return getattr(importlib.import_module(_TENSORFLOW_MODULES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MANIFEST_SUFFIXES",
    "NOISE_LABEL",
    "SILENCE_LABEL",
    "SPEAKER_PATTERNS",
    "UNKNOWN_LABEL",
    "AudioExample",
    "Augmentation",
    "DatasetSummary",
    "DecodedClips",
    "Discovered",
    "LabelledAudio",
    "NoiseBank",
    "SkippedFile",
    "decode_examples",
    "find_audio_files",
    "is_manifest",
    "load_labelled_audio",
    "load_splits",
    "make_dataset",
    "parse_speaker",
    "raise_if_too_many_failures",
    "read_manifest",
    "split_examples",
    "summarize_dataset",
    "which_split",
    "write_manifest",
]

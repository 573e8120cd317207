"""Labelled audio datasets: discovery, speaker-disjoint splits, decoding, augmentation, tf.data pipelines.

Public API: :class:`AudioExample`, :func:`load_labelled_audio` / :class:`LabelledAudio`,
:func:`find_audio_files`, :func:`split_examples`, :func:`load_splits`, :func:`which_split`,
:func:`decode_examples` / :class:`DecodedClips`, :func:`raise_if_too_many_failures`,
:func:`summarize_dataset` / :class:`DatasetSummary`, :class:`SkippedFile`, :class:`NoiseBank`,
:class:`NegativeAudio` (long recordings without the keywords), :class:`RoomReverb` (room impulse responses),
:func:`parse_speaker`, :func:`read_manifest` / :func:`write_manifest` (and :func:`is_manifest`,
:data:`MANIFEST_SUFFIXES`), the feature store's :class:`StoreIdentity`, :class:`StoreRecord`,
:class:`StoreExample` and :class:`ShardInfo`, and (importing TensorFlow on first use) :func:`make_dataset`,
:class:`Augmentation`, :class:`FeatureStore`, :class:`FeatureStoreWriter` and the store's functions
(:func:`encode_record`, :func:`decode_record`, :func:`shard_name`, :func:`shard_of`, :func:`write_shard`,
:func:`shard_is_complete`, :func:`finish_store`, :func:`is_store`).
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
from audio_transfer.data.negative_audio import NegativeAudio
from audio_transfer.data.noise_bank import NoiseBank
from audio_transfer.data.room_reverb import RoomReverb
from audio_transfer.data.shard_info import ShardInfo
from audio_transfer.data.skipped_file import SkippedFile
from audio_transfer.data.speakers import SPEAKER_PATTERNS, parse_speaker
from audio_transfer.data.splits import load_splits, split_examples, which_split
from audio_transfer.data.store_example import StoreExample
from audio_transfer.data.store_identity import StoreIdentity
from audio_transfer.data.store_record import StoreRecord

# These import TensorFlow (seconds); resolved on first access so that `audio-transfer info` and plain data
# loading stay fast.
_TENSORFLOW_MODULES = {
    "Augmentation": "audio_transfer.data.augmentation",
    "make_dataset": "audio_transfer.data.dataset",
    "FeatureStore": "audio_transfer.data.feature_store",
    "FeatureStoreWriter": "audio_transfer.data.feature_store_writer",
    **{
        name: "audio_transfer.data.feature_store"
        for name in (
            "decode_record",
            "encode_record",
            "finish_store",
            "is_store",
            "shard_is_complete",
            "shard_name",
            "shard_of",
            "write_shard",
        )
    },
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
    "FeatureStore",
    "FeatureStoreWriter",
    "LabelledAudio",
    "NegativeAudio",
    "NoiseBank",
    "RoomReverb",
    "ShardInfo",
    "SkippedFile",
    "StoreExample",
    "StoreIdentity",
    "StoreRecord",
    "decode_examples",
    "decode_record",
    "encode_record",
    "find_audio_files",
    "finish_store",
    "is_manifest",
    "is_store",
    "load_labelled_audio",
    "load_splits",
    "make_dataset",
    "parse_speaker",
    "raise_if_too_many_failures",
    "read_manifest",
    "shard_is_complete",
    "shard_name",
    "shard_of",
    "split_examples",
    "summarize_dataset",
    "which_split",
    "write_manifest",
    "write_shard",
]

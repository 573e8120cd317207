"""Pretrained audio bases: raw waveform in, frame embeddings out.

``load_base`` builds one by preset name (``list_bases`` describes them), TF Hub handle (``"hub:<handle>"``),
path to a ``.keras`` file or SavedModel directory, or a function returning a ``keras.Model``.
"""

from audio_transfer.bases.audio_base import AudioBase
from audio_transfer.bases.base_info import BaseInfo
from audio_transfer.bases.hub_base import HubBase
from audio_transfer.bases.keras_model_base import KerasModelBase
from audio_transfer.bases.registry import list_bases, load_base, load_preset, register_preset
from audio_transfer.bases.streamable_base import StreamableBase
from audio_transfer.bases.yamnet_base import YAMNetBase
from audio_transfer.bases.yamnet_weights import load_yamnet_weights

__all__ = [
    "AudioBase",
    "BaseInfo",
    "HubBase",
    "KerasModelBase",
    "StreamableBase",
    "YAMNetBase",
    "list_bases",
    "load_base",
    "load_preset",
    "load_yamnet_weights",
    "register_preset",
]

"""Pretrained bases known by name, as plain data (read by :mod:`audio_transfer.bases.registry`).

Each entry of :data:`PRESETS` maps a name to a dict:

``"class"``
    ``"package.module:ClassName"`` of an :class:`~audio_transfer.bases.AudioBase` subclass, imported only when
    the preset is loaded.
``"config"``
    keyword arguments of its constructor (JSON-like values). ``load_base(name, **kwargs)`` overrides them.
``"weights"``
    file name of the shipped ``.weights.h5``, found with ``pretrained_asset(<preset name>, file)`` in
    ``audio_transfer/pretrained/<name>/``; ``None`` when the class brings its own
    weights (hub models).
``"metadata"``
    ``description``, ``source``, ``licence``, ``parameter_count`` (int or None when not measured),
    ``file_size_bytes`` (int or None), ``tasks`` (list of str), ``citation``; and ``sample_rate``,
    ``embedding_dim``, ``window_seconds``, ``hop_seconds`` unless ``config`` already sets them (a value lives
    in exactly one of the two; the registry checks the built base against it).

To add a base: add an entry here (its weights in ``audio_transfer/pretrained/<name>/``, its conversion script
and model card in ``models/<name>/``); ``tests/test_registry.py`` validates every entry.

Hub handles are the ``https://tfhub.dev/...`` URLs that ``tensorflow_hub`` hashes to name its cache folders,
so a cache filled by ``hub.resolve(<handle>)`` elsewhere is found offline (tfhub.dev now redirects to Kaggle
Models).
"""

from __future__ import annotations

from typing import Any

_HUB_BASE = "audio_transfer.bases.hub_base:HubBase"

_TRILL_CITATION = (
    "Shor, Jansen, Maor, Lang, Tuval, de Chaumont Quitry, Tagliasacchi, Shavitt, Emanuel, Haviv. Towards "
    "Learning a Universal Non-Semantic Representation of Speech. Interspeech 2020, 140-144. arXiv:2002.12764"
)
_SPEECH_EMBEDDING_CITATION = (
    "Lin, Kilgour, Roblek, Sharifi. Training Keyword Spotters with Limited and Synthesized Speech Data. "
    "ICASSP 2020. arXiv:2002.01322"
)
_AUDIOSET_CITATION = (
    "Gemmeke et al. Audio Set: An ontology and human-labeled dataset for audio events. ICASSP 2017; "
    "Hershey et al. CNN Architectures for Large-Scale Audio Classification. ICASSP 2017. arXiv:1609.09430"
)

# TRILL, TRILL-distilled and FRILL: the front-end pads input to 1 s and frames 96 log-mel frames (0.96 s). The
# hop between output frames is not documented; it is assumed equal to the window until the network test
# (tests/test_hub_base.py::test_real_hub_handles) checks it against the real models.
_TRILL_FAMILY_GEOMETRY = {
    "sample_rate": 16000,
    "min_samples": 16000,
    "window_seconds": 0.96,
    "hop_seconds": 0.96,
}

PRESETS: dict[str, dict[str, Any]] = {
    "speech_embedding": {
        "class": "audio_transfer.bases.speech_embedding_base:SpeechEmbeddingBase",
        "config": {},
        "weights": "speech_embedding.weights.h5",
        "metadata": {
            "description": (
                "Google's speech_embedding rebuilt in Keras: 32-bin log-mel front-end and 20 convolutions; "
                "one 96-d embedding per 0.775 s window every 80 ms. Default base for keyword spotting."
            ),
            "source": (
                "Google speech_embedding (TF Hub google/speech_embedding/1); weights converted from "
                "openwakeword==0.5.1 resources/models/embedding_model.onnx (models/speech_embedding/)"
            ),
            "licence": (
                "Apache-2.0 (Google's weights, as stated by openWakeWord's README, which also puts its own "
                "included pre-trained models under CC BY-NC-SA 4.0; both quoted in models/speech_embedding/"
                "MODEL_CARD.md)"
            ),
            "sample_rate": 16000,
            "embedding_dim": 96,
            "window_seconds": 0.775,
            "hop_seconds": 0.08,
            "parameter_count": 328128,
            "file_size_bytes": 1442128,
            "tasks": ["keyword spotting", "wake word detection", "speech commands"],
            "citation": _SPEECH_EMBEDDING_CITATION,
        },
    },
    "ge2e_speaker": {
        "class": "audio_transfer.bases.ge2e_speaker_base:GE2ESpeakerBase",
        "config": {},
        "weights": "ge2e_speaker.weights.h5",
        "metadata": {
            "description": (
                "The GE2E speaker encoder of Resemblyzer rebuilt in Keras: volume normalisation to -30 dBFS, "
                "40-bin power mel, 3 LSTM layers of 256, linear 256 + ReLU, L2 normalisation; one 256-d "
                "embedding per 1.6 s partial every 0.77 s, utterance embedding = normalised mean. Default "
                "base for speaker tasks."
            ),
            "source": (
                "Resemblyzer 0.1.4 (Corentin Jemine, Resemble AI) PyPI wheel, resemblyzer/pretrained.pt, "
                "converted in models/ge2e_speaker/"
            ),
            "licence": "Apache-2.0",
            "sample_rate": 16000,
            "embedding_dim": 256,
            "window_seconds": 1.6,
            "hop_seconds": 0.77,
            "parameter_count": 1420544,
            "file_size_bytes": 5712136,
            "tasks": ["speaker verification", "speaker identification", "speaker diarization"],
            "citation": (
                "Wan, Wang, Papir, Lopez Moreno. Generalized End-to-End Loss for Speaker Verification. "
                "ICASSP 2018. arXiv:1710.10467; Resemblyzer by Corentin Jemine (Resemble AI)."
            ),
        },
    },
    "yamnet": {
        "class": "audio_transfer.bases.yamnet_base:YAMNetBase",
        "config": {},
        "weights": {"loader": "audio_transfer.bases.yamnet_weights:load_yamnet_weights"},
        "metadata": {
            "description": (
                "YAMNet (MobileNetV1 on 96x64 log-mel patches) rebuilt in Keras with its front-end "
                "inside: one 1024-d embedding per 0.96 s patch every 0.48 s; unfreezable block by block "
                "and exportable to builtin-only int8 TFLite. Weights are not shipped: "
                "load_base('yamnet', weights=PATH) reads Google's yamnet.h5, a YAMNet TFLite file (int8 "
                "dequantized) or a TF Hub SavedModel; with no path, the TF Hub cache of google/yamnet/1."
            ),
            "source": "Google, TF Hub google/yamnet/1 / tensorflow/models research/audioset/yamnet",
            "licence": "Apache-2.0",
            "sample_rate": 16000,
            "embedding_dim": 1024,
            "window_seconds": 0.975,
            "hop_seconds": 0.48,
            "parameter_count": 3217344,
            "file_size_bytes": None,
            "tasks": ["sound event classification", "audio tagging"],
            "citation": (
                "Plakal and Ellis. YAMNet. https://github.com/tensorflow/models/tree/master/research/audioset/"
                "yamnet; Gemmeke et al. Audio Set. ICASSP 2017."
            ),
        },
    },
    "yamnet-hub": {
        "class": _HUB_BASE,
        "config": {
            "handle": "https://tfhub.dev/google/yamnet/1",
            "call_convention": "unbatched",
            "output_key": 1,
            "sample_rate": 16000,
            "embedding_dim": 1024,
            "min_samples": 15600,
            "window_seconds": 0.96,
            "hop_seconds": 0.48,
        },
        "weights": None,
        "metadata": {
            "description": (
                "YAMNet (MobileNet v1, about 3.7M weights) from TF Hub: one 1024-d embedding per 0.96 s "
                "patch every 0.48 s. TF Hub marks it not fine-tunable. Needs the TF Hub model (network or "
                "cache)."
            ),
            "source": "Google, TF Hub google/yamnet/1 (TensorFlow Model Garden research/audioset/yamnet)",
            "licence": "Apache-2.0",
            "parameter_count": None,
            "file_size_bytes": None,
            "tasks": ["audio event classification", "environmental sound classification"],
            "citation": _AUDIOSET_CITATION,
        },
    },
    "vggish": {
        "class": _HUB_BASE,
        "config": {
            "handle": "https://tfhub.dev/google/vggish/1",
            "call_convention": "unbatched",
            "output_key": None,
            "sample_rate": 16000,
            "embedding_dim": 128,
            "min_samples": 15600,
            "window_seconds": 0.96,
            "hop_seconds": 0.96,
        },
        "weights": None,
        "metadata": {
            "description": (
                "VGGish from TF Hub: one 128-d embedding per non-overlapping 0.96 s frame. TF Hub marks it "
                "not fine-tunable. Needs the TF Hub model (network or cache)."
            ),
            "source": "Google, TF Hub google/vggish/1 (TensorFlow Model Garden research/audioset/vggish)",
            "licence": "Apache-2.0",
            "parameter_count": None,
            "file_size_bytes": None,
            "tasks": ["audio event classification", "audio similarity"],
            "citation": _AUDIOSET_CITATION,
        },
    },
    "trill": {
        "class": _HUB_BASE,
        "config": {
            "handle": "https://tfhub.dev/google/nonsemantic-speech-benchmark/trill/3",
            "call_convention": "samples_and_sample_rate",
            "output_key": "embedding",
            "embedding_dim": 512,
            **_TRILL_FAMILY_GEOMETRY,
        },
        "weights": None,
        "metadata": {
            "description": (
                "TRILL (ResNet) non-semantic speech embedding from TF Hub, 512-d 'embedding' output "
                "(pass output_key='layer19', embedding_dim=12288 for layer 19). Fine-tunable. Needs the TF "
                "Hub model (network or cache)."
            ),
            "source": "Google, TF Hub google/nonsemantic-speech-benchmark/trill/3",
            "licence": "Apache-2.0",
            "parameter_count": None,
            "file_size_bytes": None,
            "tasks": ["speaker identification", "emotion recognition", "language identification"],
            "citation": _TRILL_CITATION,
        },
    },
    "trill-distilled": {
        "class": _HUB_BASE,
        "config": {
            "handle": "https://tfhub.dev/google/nonsemantic-speech-benchmark/trill-distilled/3",
            "call_convention": "samples_and_sample_rate",
            "output_key": "embedding",
            "embedding_dim": 2048,
            **_TRILL_FAMILY_GEOMETRY,
        },
        "weights": None,
        "metadata": {
            "description": (
                "TRILL distilled into a MobileNet, 2048-d embeddings, from TF Hub. Fine-tunable. Needs the "
                "TF Hub model (network or cache)."
            ),
            "source": "Google, TF Hub google/nonsemantic-speech-benchmark/trill-distilled/3",
            "licence": "Apache-2.0",
            "parameter_count": None,
            "file_size_bytes": None,
            "tasks": ["speaker identification", "emotion recognition", "language identification"],
            "citation": _TRILL_CITATION,
        },
    },
    "frill": {
        "class": _HUB_BASE,
        "config": {
            "handle": "https://tfhub.dev/google/nonsemantic-speech-benchmark/frill/1",
            "call_convention": "batched",
            "output_key": "embedding",
            "embedding_dim": 2048,
            **_TRILL_FAMILY_GEOMETRY,
        },
        "weights": None,
        "metadata": {
            "description": (
                "FRILL (MobileNetV3) non-semantic speech embedding for mobile devices, 2048-d, from TF Hub. "
                "Fine-tunable. Needs the TF Hub model (network or cache)."
            ),
            "source": "Google, TF Hub google/nonsemantic-speech-benchmark/frill/1",
            "licence": "Apache-2.0",
            "parameter_count": None,
            "file_size_bytes": None,
            "tasks": ["speaker identification", "emotion recognition", "keyword spotting"],
            "citation": (
                "Peplinski, Shor, Joglekar, Garrison, Patel. FRILL: A Non-Semantic Speech Embedding for "
                "Mobile Devices. Interspeech 2021. arXiv:2011.04609"
            ),
        },
    },
    "speech_embedding-hub": {
        "class": _HUB_BASE,
        "config": {
            "handle": "https://tfhub.dev/google/speech_embedding/1",
            "call_convention": "batched",
            "output_key": None,
            "sample_rate": 16000,
            "embedding_dim": 96,
            "min_samples": 12400,
            "window_seconds": 0.775,
            "hop_seconds": 0.08,
        },
        "weights": None,
        "metadata": {
            "description": (
                "The original speech_embedding module from TF Hub (TF1 Hub format: frozen only; the Keras "
                "rebuild 'speech_embedding' can be fine-tuned). Needs the TF Hub model (network or cache)."
            ),
            "source": "Google, TF Hub google/speech_embedding/1",
            "licence": "Apache-2.0",
            "parameter_count": None,
            "file_size_bytes": None,
            "tasks": ["keyword spotting", "wake word detection"],
            "citation": _SPEECH_EMBEDDING_CITATION,
        },
    },
}

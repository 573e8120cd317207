"""Tasks: complete models (raw waveform in) made of a pretrained base and a small head.

Every task saves to and loads from a ``.keras`` file in safe mode.
"""

from audio_transfer.tasks.audio_classifier import AudioClassifier
from audio_transfer.tasks.classifier import Classifier
from audio_transfer.tasks.keyword_spotter import KeywordSpotter
from audio_transfer.tasks.load_task import is_task_file, load_task
from audio_transfer.tasks.speaker_classifier import SpeakerClassifier
from audio_transfer.tasks.speaker_verifier import SpeakerVerifier
from audio_transfer.tasks.task import Task

__all__ = [
    "AudioClassifier",
    "Classifier",
    "KeywordSpotter",
    "SpeakerClassifier",
    "SpeakerVerifier",
    "Task",
    "is_task_file",
    "load_task",
]

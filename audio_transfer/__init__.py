"""audio_transfer: speech and audio transfer learning with Keras 3 on TensorFlow.

Importing the package selects Keras's TensorFlow backend (before Keras is imported) and checks that the
choice held: the front-ends, hub bases and TFLite export are TensorFlow graphs, so no other backend works.

Layers of the package, lower never importing higher::

    audio -> data -> features -> bases -> heads / tasks -> training / evaluation -> export -> cli
"""

from audio_transfer._backend import ensure_tensorflow_backend
from audio_transfer.version import __version__

ensure_tensorflow_backend()

__all__ = ["__version__"]

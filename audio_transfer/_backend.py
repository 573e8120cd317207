"""Select and verify Keras's TensorFlow backend."""

import os
import sys

from audio_transfer.errors import BackendError


def ensure_tensorflow_backend() -> None:
    """Make Keras use TensorFlow, or raise :class:`BackendError` when the user forced another backend.

    ``KERAS_BACKEND`` defaults to ``tensorflow`` when unset. If it names another backend, or Keras was
    already imported with another backend, the package cannot work and says so.
    """
    requested = os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if requested != "tensorflow":
        raise BackendError(
            f"audio_transfer needs Keras's TensorFlow backend, but KERAS_BACKEND={requested!r}. Its "
            "front-ends, TF Hub bases and TFLite export are TensorFlow graphs. Unset KERAS_BACKEND or set "
            "it to 'tensorflow' before importing audio_transfer."
        )
    if "keras" in sys.modules:
        import keras

        active = keras.backend.backend()
        if active != "tensorflow":
            raise BackendError(
                f"Keras was imported with the {active!r} backend before audio_transfer. audio_transfer "
                "needs the TensorFlow backend: import audio_transfer first, or set KERAS_BACKEND=tensorflow."
            )

"""The Keras internals the bases rely on, in one place.

Keras 3.15 has no public way to do these four things, so each wraps one private attribute or module of
Keras. ``tests/test_keras_compat.py`` exercises each wrapper against the installed
Keras and fails, naming the wrapper, when a Keras release renames or changes what it uses; ``pyproject.toml``
bounds ``keras`` to the releases that test has passed on.
"""

from __future__ import annotations

import keras


def nested_layers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    """``layer`` and every layer inside it, at any depth (``Layer._flatten_layers``)."""
    return list(layer._flatten_layers(include_self=True, recursive=True))


def set_own_trainable_flag(layer: keras.layers.Layer, trainable: bool) -> None:
    """Set ``layer.trainable`` without touching its sublayers or variables (``Layer._trainable``).

    The public setter passes the value down to every sublayer; this sets the layer's own flag only, which
    gates whether any of its weights, even those of trainable sublayers, count as trainable.
    """
    layer._trainable = bool(trainable)


def track_variable(layer: keras.layers.Layer, variable: keras.Variable) -> None:
    """Make ``variable`` one of ``layer``'s weights, trainable or not as the variable says
    (``Layer._track_variable``)."""
    layer._track_variable(variable)


def in_safe_mode() -> bool:
    """Whether a ``keras.saving.load_model(..., safe_mode=True)`` is deserializing right now
    (``keras.src.saving.serialization_lib.in_safe_mode``)."""
    from keras.src.saving import serialization_lib

    return serialization_lib.in_safe_mode() is True

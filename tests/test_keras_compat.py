"""The Keras internals of audio_transfer.bases._keras_compat still do what the bases need.

Each test names the wrapper it checks: when one fails after a Keras upgrade, that wrapper needs a new
implementation before the ``keras`` upper bound in pyproject.toml can move.
"""

from __future__ import annotations

from typing import ClassVar

import keras
import numpy as np
import pytest

from audio_transfer.bases import _keras_compat


class _Block(keras.layers.Layer):
    """A layer holding a layer: two levels below the model."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.inner = keras.layers.Dense(2, name="inner")

    def call(self, x):
        return self.inner(x)


class _Model(keras.Model):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.bottom = keras.layers.Dense(3, name="bottom")
        self.block = _Block(name="block")

    def call(self, x):
        return self.block(self.bottom(x))


def _model() -> keras.Model:
    model = _Model(name="model")
    model(np.zeros((1, 4), "float32"))
    return model


def test_nested_layers_reaches_every_depth_and_includes_the_layer():
    model = _model()
    names = [layer.name for layer in _keras_compat.nested_layers(model)]
    assert sorted(names) == ["block", "bottom", "inner", "model"], "nested_layers: _flatten_layers changed"


def test_set_own_trainable_flag_leaves_sublayers_alone_and_gates_their_weights():
    model = _model()
    model.trainable = False
    _keras_compat.set_own_trainable_flag(model, True)
    assert model.trainable, "set_own_trainable_flag: Layer._trainable no longer backs Layer.trainable"
    assert not any(layer.trainable for layer in model.layers), "set_own_trainable_flag changed sublayers"
    assert model.trainable_weights == []
    keras.layers.Layer.trainable.fset(model.get_layer("block"), True)
    assert {w.path for w in model.trainable_weights} == {w.path for w in model.get_layer("block").weights}
    _keras_compat.set_own_trainable_flag(model, False)
    assert model.trainable_weights == [], "set_own_trainable_flag: the own flag no longer gates weights"


def test_track_variable_adds_trainable_and_frozen_weights():
    layer = keras.layers.Layer(name="holder")
    trainable = keras.Variable(np.ones((2,), "float32"), trainable=True, name="a")
    frozen = keras.Variable(np.zeros((3,), "float32"), trainable=False, name="b")
    _keras_compat.track_variable(layer, trainable)
    _keras_compat.track_variable(layer, frozen)
    assert layer.trainable_weights == [trainable], "track_variable: Layer._track_variable changed"
    assert layer.non_trainable_weights == [frozen], "track_variable: Layer._track_variable changed"


@keras.saving.register_keras_serializable(package="test_keras_compat")
class _RecordsSafeMode(keras.layers.Layer):
    seen: ClassVar[list[bool]] = []

    @classmethod
    def from_config(cls, config):
        cls.seen.append(_keras_compat.in_safe_mode())
        return cls(**config)

    def call(self, x):
        return x


@pytest.mark.parametrize("safe_mode", [True, False])
def test_in_safe_mode_is_true_only_inside_a_safe_load(tmp_path, safe_mode):
    assert _keras_compat.in_safe_mode() is False
    inputs = keras.Input((2,))
    path = tmp_path / "model.keras"
    keras.Model(inputs, _RecordsSafeMode()(inputs)).save(path)
    _RecordsSafeMode.seen.clear()
    keras.saving.load_model(path, safe_mode=safe_mode)
    assert _RecordsSafeMode.seen == [safe_mode], (
        "in_safe_mode: keras.src.saving.serialization_lib.in_safe_mode changed"
    )

"""Argument checks shared by the front-end layers; each raises ConfigError naming the argument and value."""

from __future__ import annotations

import math
from collections.abc import Sequence

from audio_transfer.errors import ConfigError


def positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, received {value!r}.")
    return value


def number(name: str, value: object, *, above: float | None = None, at_least: float | None = None) -> float:
    """A finite int or float, optionally ``> above`` or ``>= at_least``; returned as float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, received {value!r}.")
    if above is not None and not value > above:
        raise ConfigError(f"{name} must be greater than {above}, received {value!r}.")
    if at_least is not None and not value >= at_least:
        raise ConfigError(f"{name} must be at least {at_least}, received {value!r}.")
    return float(value)


def choice(name: str, value: object, options: Sequence[object]) -> object:
    if value not in options or isinstance(value, bool):
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, options))}; received {value!r}.")
    return value


def boolean(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be True or False, received {value!r}.")
    return value

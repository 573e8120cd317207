"""Argument checks used by every layer of the package, with one set of rules:

- ``True`` and ``False`` are never numbers;
- NumPy integer and floating scalars count as Python ints and floats (and are returned as them, so a
  Keras config stays JSON);
- a failed check raises :class:`~audio_transfer.errors.ConfigError` saying
  ``"<name> must be ..., received <repr>."`` (``"; received"`` after a list of options).

Example::

    self.frame_length = checks.positive_int("frame_length", frame_length)  # 400 or np.int64(400)
    self.top_db = checks.number("top_db", top_db, above=0.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from audio_transfer.errors import ConfigError


def is_int(value: object) -> bool:
    """True for a Python or NumPy integer; ``True`` and ``False`` are not integers here."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """True for a Python or NumPy integer or float (finite or not); booleans are not numbers here."""
    return is_int(value) or isinstance(value, (float, np.floating))


def is_positive_int(value: object) -> bool:
    """True for a Python or NumPy integer above zero."""
    return is_int(value) and value > 0


def positive_int(name: str, value: object) -> int:
    """``value`` as an ``int`` when it is an integer above zero, else ConfigError naming ``name``."""
    if not is_positive_int(value):
        raise ConfigError(f"{name} must be a positive integer, received {value!r}.")
    return int(value)


def integer(name: str, value: object, *, at_least: int | None = None, at_most: int | None = None) -> int:
    """``value`` as an ``int`` when it is an integer in ``[at_least, at_most]`` (either bound optional)."""
    if not is_int(value):
        raise ConfigError(f"{name} must be an integer, received {value!r}.")
    if at_least is not None and value < at_least:
        raise ConfigError(f"{name} must be at least {at_least}, received {value!r}.")
    if at_most is not None and value > at_most:
        raise ConfigError(f"{name} must be at most {at_most}, received {value!r}.")
    return int(value)


def number(
    name: str,
    value: object,
    *,
    above: float | None = None,
    at_least: float | None = None,
    at_most: float | None = None,
) -> float:
    """``value`` as a ``float`` when it is a finite number, optionally ``> above``, ``>= at_least`` and
    ``<= at_most``; else ConfigError naming ``name``."""
    if not is_number(value) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, received {value!r}.")
    if above is not None and not value > above:
        raise ConfigError(f"{name} must be greater than {above}, received {value!r}.")
    if at_least is not None and not value >= at_least:
        raise ConfigError(f"{name} must be at least {at_least}, received {value!r}.")
    if at_most is not None and not value <= at_most:
        raise ConfigError(f"{name} must be at most {at_most}, received {value!r}.")
    return float(value)


def choice(name: str, value: object, options: Sequence[object]) -> object:
    """``value`` when it is one of ``options`` (a boolean never is), else ConfigError listing them."""
    if isinstance(value, bool) or value not in options:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, options))}; received {value!r}.")
    return value


def boolean(name: str, value: object) -> bool:
    """``value`` when it is ``True`` or ``False``, else ConfigError naming ``name``."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be True or False, received {value!r}.")
    return value

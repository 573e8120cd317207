"""Argument checks shared across the package's layers."""

from __future__ import annotations

import numpy as np


def is_positive_int(value: object) -> bool:
    """True for a Python or NumPy integer above zero (``True`` is not an integer here)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0

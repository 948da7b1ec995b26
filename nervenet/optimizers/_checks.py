"""Argument checks shared by the optimizers, the schedules and the line search."""

from __future__ import annotations

import math
import numbers


def check_number(owner: str, name: str, value, low=None, high=None, *, low_open=False,
                 high_open=False, allow_none=False):
    """Return ``value`` as a float after checking it is a finite real in the given range.

    Raises ValueError naming ``owner`` (the class) and the argument, e.g.
    ``Adam: beta_1 must be finite and in [0.0, 1.0), got 1.5``.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {type(value).__name__} "
                        f"{value!r}")
    value = float(value)
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if not math.isfinite(value) or below or above:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        interval = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}"
        raise ValueError(f"{owner}: {name} must be finite and in {interval}{right}, got {value}")
    return value

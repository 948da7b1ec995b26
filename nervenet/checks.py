"""The argument checks every public entry point shares, and the one rule they follow:

* a **TypeError** when the argument has the wrong type (``batch_size=2.5``, ``epochs="10"``;
  ``True`` is not an int here), a **ValueError** when its type is right but its value is not
  (``batch_size=0``, ``rate=1.5``, ``solver="adamm"``);
* the message names the owner and the argument, what was expected and what came, e.g.
  ``Adam: beta_1 must be finite and in [0.0, 1.0), got 1.5``.

Each check returns the value in its plain Python type (``int``, ``float``, ``str``), so a
NumPy scalar that passes is stored as a number that JSON can write.

    >>> check_int("fit", "epochs", 3, low=1)
    3
    >>> check_int("fit", "epochs", 2.5, low=1)
    Traceback (most recent call last):
    ...
    TypeError: fit: epochs must be a positive int, got float 2.5
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection


def _interval(low, high, low_open: bool, high_open: bool) -> str:
    left, right = "(" if low_open else "[", ")" if high_open else "]"
    return f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"


def check_number(owner: str, name: str, value, low=None, high=None, *, low_open: bool = False,
                 high_open: bool = False, allow_none: bool = False) -> float | None:
    """``value`` as a float, after checking that it is a finite real number in the interval
    from ``low`` to ``high`` (closed unless ``low_open`` / ``high_open``; ``None``: unbounded).

    Raises:
        TypeError: not a real number (``bool`` included), or ``None`` without ``allow_none``.
        ValueError: NaN, infinite or outside the interval.
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
        raise ValueError(f"{owner}: {name} must be finite and in "
                         f"{_interval(low, high, low_open, high_open)}, got {value}")
    return value


def check_int(owner: str, name: str, value, low: int | None = None, high: int | None = None, *,
              allow_none: bool = False) -> int | None:
    """``value`` as an int, after checking that it is an integer (Python's or NumPy's, not
    ``bool``) in ``[low, high]`` (``None``: unbounded).

    Raises:
        TypeError: not an integer, or ``None`` without ``allow_none``.
        ValueError: below ``low`` or above ``high``.
    """
    if value is None and allow_none:
        return None
    if low is None and high is None:
        expected = "an int"
    elif low is not None and high is None:
        expected = "a positive int" if low == 1 else f"an int >= {low}"
    else:
        expected = f"an int in {_interval(low, high, False, False)}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be {expected}, got {type(value).__name__} "
                        f"{value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{owner}: {name} must be {expected}, got {value!r}")
    return int(value)


def check_choice(owner: str, name: str, value, choices: Collection) -> object:
    """``value`` after checking that it is one of ``choices`` (strings, maybe ``None``).

    Raises:
        TypeError: ``value`` is neither a string nor one of the choices (``3`` for a name).
        ValueError: a string that is not one of the choices; the message lists them.
    """
    if (value is None or isinstance(value, str)) and value in choices:
        return value
    listed = ", ".join(repr(choice) for choice in choices)
    if not isinstance(value, str):
        raise TypeError(f"{owner}: {name} must be one of {listed}, got "
                        f"{type(value).__name__} {value!r}")
    raise ValueError(f"{owner}: {name} must be one of {listed}, got {value!r}")


def check_string(owner: str, name: str, value) -> str:
    """``value`` after checking that it is a non-empty string.

    Raises:
        TypeError: not a string.
        ValueError: the empty string.
    """
    if not isinstance(value, str):
        raise TypeError(f"{owner}: {name} must be a non-empty string, got "
                        f"{type(value).__name__} {value!r}")
    if not value:
        raise ValueError(f"{owner}: {name} must be a non-empty string, got ''")
    return value

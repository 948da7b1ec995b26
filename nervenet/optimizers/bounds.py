"""The overflow bound of an optimizer step: upper bounds of magnitudes through rounded float
operations (``Rounding``), with which each rule's ``bound_step`` proves, before a step, that
the step cannot overflow; and the helpers of the transactional step taken when it cannot
prove it (the slots copied aside, put back on failure). See ``Optimizer.apply_gradients``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


class Rounding:
    """Upper bounds of magnitudes through the rounded operations of one float dtype: the
    arithmetic of ``bound_step``, which proves before a step that its rules cannot overflow.

    ``op = Rounding(dtype)``, ``op.fits = True`` before each use. For ``x`` an upper bound of
    the exact magnitude of one operation's result (computed from upper bounds of its operands'
    magnitudes, and a lower bound of a divisor's), ``op(x) = x (1 + 8 eps) + tiny`` bounds the
    rounded result, and ``op.fits`` turns False as soon as one such bound exceeds the largest
    finite float.

    Why it is sound (``u = eps / 2`` the unit roundoff of the dtype):

    1. Round to nearest gives ``|fl(y)| <= |y| (1 + u) + tiny u`` (relative error in the
       normal range, absolute below it). A Python scalar meeting an array is cast to the
       array's dtype (NEP 50), one more ``(1 + u)``; the bound itself is computed in float64
       (``2**-53`` per operation). ``8 eps`` covers the three together, for every dtype. A
       scalar below the smallest normal float casts to at most it (``op.scalar``).
    2. Each operation of a rule (``+``, ``-``, ``*``, ``/`` by a divisor bounded below,
       ``sqrt``, ``max``, ``abs``) is monotone in the magnitudes of its operands (``|a + b| <=
       |a| + |b|``), so bounding every operand bounds the exact result, hence the rounded one.
    3. ``fl(y)`` overflows only when ``|y| >= max + ulp(max) / 2``; a rounded result bounded
       by ``op(x) <= max`` never does. An invalid operation needs an infinite operand
       (excluded by 3), 0/0, x/0 or the square root of a negative: divisors are bounded below
       by a positive cast epsilon (``op.positive``), and the slots a root is taken of are
       non-negative (``Optimizer.nonnegative_slots``: measured so, and kept so by their
       recurrences, sums of non-negative terms). So a certified rule raises nothing.
    4. The write ``w - delta`` of a finite ``w`` cannot overflow when ``|delta| <
       ulp(max) / 2`` (``op.half_ulp``: 2**103 ~ 1e31 in float32, 16 in float16), since then
       ``|w - delta| < max + ulp(max) / 2``; a decoupled decay factor in [-1, 1] does not grow
       ``w`` (below -1 it is checked on the weights first).
    5. ``op.root_of_square(s)`` bounds max|g| from ``s = squared_norm(g)``: a sum of
       non-negative terms by rounded, monotone additions (or fused multiply-adds) is at least
       its largest rounded term, ``s >= fl(g_i**2) >= g_i**2 (1 - u) - tiny u``. Clipping
       only shrinks the gradient; coupled weight decay's gradients get their norms anew.
    6. The slot bounds a certified step returns bound its new slots (1 and 2): they are the
       next step's. Every other way a slot can change (``slots()`` and ``variables`` hand the
       arrays out, ``set_state``, a newly tracked variable, a transactional step) drops them,
       and the next step measures them by one pass over the state (``largest_magnitudes``).
    """

    def __init__(self, dtype: np.dtype):
        info = np.finfo(dtype)
        self.type = info.dtype.type
        self.largest = float(info.max)
        self.eps = float(info.eps)
        self.slack = 1.0 + 8.0 * self.eps
        self.tiny = float(info.tiny)
        #: half the distance from the largest float to the one below it
        self.half_ulp = (self.largest - float(np.nextafter(info.max, info.dtype.type(0)))) / 2
        self.fits = True

    def __call__(self, magnitude: float) -> float:
        """The bound of one rounded operation whose exact magnitude is at most ``magnitude``."""
        bound = magnitude * self.slack + self.tiny
        if not bound <= self.largest:  # NaN included
            self.fits = False
        return bound

    def scalar(self, value: float) -> float:
        """An upper bound of the Python scalar ``value`` cast to the dtype, to be multiplied
        by: ``|value|`` (the cast's relative error is in the slack of ``op``), or the smallest
        normal float, which a smaller cast cannot exceed. It must fit."""
        value = abs(value)
        if not value <= self.largest:
            self.fits = False
            return math.inf
        return value if value >= self.tiny else self.tiny

    def positive(self, value: float) -> float:
        """A positive lower bound of the Python scalar ``value`` cast to the dtype, to be
        divided by (0: it may vanish there, and nothing is certified)."""
        if self.tiny <= value <= self.largest:
            return value * (1.0 - self.eps)
        cast = float(self.type(value)) if 0.0 < value < self.tiny else 0.0
        if not cast > 0.0:
            self.fits = False
        return cast

    def root_of_square(self, square: float) -> float:
        """An upper bound of max|g| from ``square = squared_norm(g)`` (point 5; the square may
        exceed the dtype's range: squared_norm then sums in float64)."""
        return self(math.sqrt((square + self.tiny) * self.slack))


class Envelope(NamedTuple):
    """Slot bounds a step provably keeps while its largest squared gradient norm is at most
    ``square``, its rate at most ``lr``, its momentum term ``momentum`` and the optimizer's
    number attributes ``names`` still ``values`` (``Optimizer._enclose``)."""

    bounds: dict[str, float]
    square: float
    lr: float
    momentum: float | None
    names: tuple[str, ...]
    values: tuple


def largest_magnitudes(slot_dicts, nonnegative: tuple[str, ...]) -> dict[str, float]:
    """max|slot| per slot name over every variable's slots (one pass over the state): infinite
    where a slot is not finite, or has a negative element in a ``nonnegative`` slot."""
    bounds: dict[str, float] = {}
    for slots in slot_dicts:
        for key, value in slots.items():
            if value.dtype.kind != "f":
                continue
            magnitude = 0.0
            if value.size:
                low, high = float(value.min()), float(value.max())
                magnitude = max(high, -low)
                if magnitude != magnitude or (low < 0 and key in nonnegative):
                    magnitude = math.inf
            bounds[key] = max(bounds.get(key, 0.0), magnitude)
    return bounds


def copy_slots(slots: dict) -> tuple[dict, dict]:
    """The arrays of ``slots`` and a copy of each (``restore_slots`` puts them back)."""
    return dict(slots), {key: value.copy() for key, value in slots.items()}


def restore_slots(slots: dict, arrays: dict, copies: dict) -> None:
    """Give ``slots`` back its arrays (the same objects) with their saved values; a slot
    created since (a momentum buffer made lazily) is dropped."""
    slots.clear()
    for key, array in arrays.items():
        array[...] = copies[key]  # (any device)
        slots[key] = array

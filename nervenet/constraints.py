"""Constraints: projections applied to a weight after each optimizer update (as Keras).

* ``MaxNorm(max_value=2, axis=0)``: rescale each unit's incoming weight vector so that its
  L2 norm is at most ``max_value`` (the max-norm regularization used with dropout);
* ``NonNeg()``: set negative weights to zero;
* ``UnitNorm(axis=0)``: rescale each unit's weight vector to norm 1.

The function forms ``max_norm``, ``non_neg`` and ``unit_norm`` build the same objects, as Keras
code writes them (``kernel_constraint=constraints.max_norm(3.0)``).

For a Dense kernel of shape (inputs, units), ``axis=0`` is the vector of one unit's incoming
weights; for a Conv2D kernel (kh, kw, in, out) use ``axis=[0, 1, 2]``.
"""

from __future__ import annotations

import numpy as np

from nervenet.checks import check_number
from nervenet.registry import Registry

registry = Registry("constraint")

_EPSILON = 1e-7  # Keras's epsilon: no division by a zero norm


class Constraint:
    """Base class: ``constraint(array) -> projected array`` (same shape and dtype)."""

    def __call__(self, weight: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    def check_shape(self, shape: tuple, where: str) -> None:
        """Raise ValueError if this constraint cannot apply to a weight of ``shape`` (called
        when the weight is made, so that a bad axis fails before any update)."""
        axes = getattr(self, "axis", None)
        axes = [] if axes is None else axes if isinstance(axes, (list, tuple)) else [axes]
        bad = [a for a in axes if not -len(shape) <= a < len(shape)]
        if bad:
            raise ValueError(f"{where}: {type(self).__name__} axis {bad} is out of range for a "
                             f"weight of shape {shape}")

    @classmethod
    def from_config(cls, config: dict) -> Constraint:
        return cls(**config)


def _axis(axis):
    return tuple(axis) if isinstance(axis, (list, tuple)) else axis


def _check_axis(owner: str, axis):
    """``axis``: an int, ``None`` or a list/tuple of distinct ints (bools are not ints)."""
    items = axis if isinstance(axis, (list, tuple)) else [axis]
    if axis is not None and (not items or not all(
            isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in items)
            or len(set(items)) != len(items)):
        raise ValueError(f"{owner}: axis must be an int or a list of distinct ints, got "
                         f"{axis!r}")
    return list(axis) if isinstance(axis, tuple) else axis


@registry.register("max_norm", "MaxNorm")
class MaxNorm(Constraint):
    """w <- w * clip(norm, 0, max_value) / (epsilon + norm), norm over ``axis``."""

    def __init__(self, max_value: float = 2.0, axis=0):
        self.max_value = check_number("MaxNorm", "max_value", max_value, 0.0, low_open=True)
        self.axis = _check_axis("MaxNorm", axis)

    def __call__(self, weight):
        norms = np.sqrt(np.sum(weight * weight, axis=_axis(self.axis), keepdims=True))
        desired = np.clip(norms, 0, self.max_value)
        return (weight * (desired / (_EPSILON + norms))).astype(weight.dtype)

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


@registry.register("non_neg", "NonNeg")
class NonNeg(Constraint):
    """w <- max(w, 0)."""

    def __call__(self, weight):
        return np.maximum(weight, 0).astype(weight.dtype)


@registry.register("unit_norm", "UnitNorm")
class UnitNorm(Constraint):
    """w <- w / (epsilon + norm), norm over ``axis``."""

    def __init__(self, axis=0):
        self.axis = _check_axis("UnitNorm", axis)

    def __call__(self, weight):
        norms = np.sqrt(np.sum(weight * weight, axis=_axis(self.axis), keepdims=True))
        return (weight / (_EPSILON + norms)).astype(weight.dtype)

    def get_config(self):
        return {"axis": self.axis}


def max_norm(max_value: float = 2.0, axis=0) -> MaxNorm:
    """The function form Keras code writes, ``constraints.max_norm(2.0)``: a ``MaxNorm``."""
    return MaxNorm(max_value, axis)


def non_neg() -> NonNeg:
    """The function form Keras code writes, ``constraints.non_neg()``: a ``NonNeg``."""
    return NonNeg()


def unit_norm(axis=0) -> UnitNorm:
    """The function form Keras code writes, ``constraints.unit_norm()``: a ``UnitNorm``."""
    return UnitNorm(axis)


def get(identifier) -> Constraint | None:
    """Resolve ``"max_norm"``, ``"non_neg"``, ``"unit_norm"``, a config, a callable or None."""
    return registry.resolve(identifier, allow_none=True)


def serialize(constraint: Constraint) -> dict:
    """The JSON-serialisable ``{"class_name", "config"}`` form of a registered constraint."""
    return registry.serialize(constraint)

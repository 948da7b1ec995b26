"""Reductions over axes: sum, mean, max, min.

The gradient of a reduction is the upstream gradient spread back over the reduced axes:
``_spread`` first restores the reduced axes as size-1 axes, then broadcasts.
"""

from __future__ import annotations

import numpy as np

from nervenet import kernels
from nervenet.autograd.function import Function
from nervenet.backend import get_array_module


def _normalize_axis(axis, ndim: int) -> tuple[int, ...] | None:
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    size = ndim or 1  # a 0-d array accepts axis 0 and -1, as NumPy
    normalized = []
    for a in axes:
        if not -size <= a < size:
            raise ValueError(f"axis {a} is out of range for an array with {ndim} dimensions")
        normalized.append(int(a) % size)
    return tuple(normalized)


def _kept_shape(shape: tuple[int, ...], axes: tuple[int, ...] | None) -> tuple[int, ...]:
    """The shape a reduction over ``axes`` has with keepdims=True."""
    if axes is None:
        return (1,) * len(shape)
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _spread(gy, shape, axes, keepdims: bool):
    """Broadcast the gradient of a reduction back to the input's ``shape``."""
    if not keepdims:
        gy = gy.reshape(_kept_shape(shape, axes))
    return gy.broadcast_to(shape)


class Sum(Function):
    """y = sum of x over ``axis``;  dx = gy broadcast back over the summed axes."""

    def __init__(self, axis=None, keepdims: bool = False):
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        self.axes = _normalize_axis(self.axis, x.ndim)
        self.shape = x.shape
        if self.axes == (0,) and x.ndim == 2:
            y = kernels.sum_rows(x)
            return y[None] if self.keepdims else y
        return get_array_module(x).asarray(x.sum(axis=self.axes, keepdims=self.keepdims))

    def backward(self, gy):
        return _spread(gy, self.shape, self.axes, self.keepdims)


class Mean(Function):
    """y = mean of x over ``axis``;  dx = gy / n broadcast back (n = number of averaged values)."""

    def __init__(self, axis=None, keepdims: bool = False):
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        self.axes = _normalize_axis(self.axis, x.ndim)
        self.shape = x.shape
        y = get_array_module(x).asarray(x.mean(axis=self.axes, keepdims=self.keepdims))
        self.scale = y.size / x.size if x.size else 0.0  # 1 / (number of averaged values)
        return y

    def backward(self, gy):
        return _spread(gy * self.scale, self.shape, self.axes, self.keepdims)


class _Extreme(Function):
    """Shared max/min: the gradient is split evenly among the elements that attain the extreme
    (as torch.amax / amin)."""

    reduce = "max"  # the array method

    def __init__(self, axis=None, keepdims: bool = False):
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        if x.size == 0:
            raise ValueError(f"{type(self).__name__.lower()} of an empty array")
        self.axes = _normalize_axis(self.axis, x.ndim)
        self.shape = x.shape
        return get_array_module(x).asarray(self._reduce(x, keepdims=self.keepdims))

    def _reduce(self, x, keepdims: bool):
        return getattr(x, self.reduce)(axis=self.axes, keepdims=keepdims)

    def backward(self, gy):
        x = self.inputs[0].data
        extreme = self._reduce(x, keepdims=True)
        attains = (x == extreme).astype(gy.dtype)
        share = attains / attains.sum(axis=self.axes, keepdims=True)
        return _spread(gy, self.shape, self.axes, self.keepdims) * share


class Max(_Extreme):
    """y = max of x over ``axis``;  dx = gy at the maxima (split evenly on ties), 0 elsewhere."""

    reduce = "max"


class Min(_Extreme):
    """y = min of x over ``axis``;  dx = gy at the minima (split evenly on ties), 0 elsewhere."""

    reduce = "min"


# ------------------------------------------------------------------ public functions


def sum(x, axis=None, keepdims: bool = False):  # noqa: A001  (the public name is F.sum)
    """Sum over ``axis`` (an int, a tuple, or ``None`` for all axes).

    Gradient: ``dx = gy`` broadcast back over the summed axes.

    Example:
        >>> import nervenet.functional as F
        >>> F.sum([[1.0, 2.0], [3.0, 4.0]], axis=0).data
        array([4., 6.], dtype=float32)
    """
    return Sum(axis, keepdims)(x)


def mean(x, axis=None, keepdims: bool = False):
    """Arithmetic mean over ``axis``. Gradient: ``dx = gy / n`` over the n averaged values."""
    return Mean(axis, keepdims)(x)


def max(x, axis=None, keepdims: bool = False):  # noqa: A001  (the public name is F.max)
    """Maximum over ``axis``. The gradient goes to the maximal elements, split evenly on ties
    (as ``torch.amax``)."""
    return Max(axis, keepdims)(x)


def min(x, axis=None, keepdims: bool = False):  # noqa: A001  (the public name is F.min)
    """Minimum over ``axis``. The gradient goes to the minimal elements, split evenly on ties."""
    return Min(axis, keepdims)(x)

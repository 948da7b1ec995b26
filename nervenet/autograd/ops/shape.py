"""Shape ops: reshape, transpose, broadcast_to, sum_to, getitem, concatenate, stack, pad.

They move values around without changing them, so each backward moves the gradient back.
``BroadcastTo`` and ``SumTo`` are each other's backward: this pair is how the engine undoes
broadcasting in one place.
"""

from __future__ import annotations

import numpy as np

from nervenet import kernels
from nervenet.autograd.function import Function
from nervenet.autograd.tensor import Tensor
from nervenet.backend import get_array_module


class Reshape(Function):
    """y = x reshaped to ``shape``;  dx = gy reshaped back."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape

    def forward(self, x):
        self.input_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy):
        return gy.reshape(self.input_shape)


class Transpose(Function):
    """y = x with axes permuted (reversed when ``axes`` is None);  dx = gy with the inverse
    permutation."""

    def __init__(self, axes: tuple[int, ...] | None = None):
        self.axes = axes

    def forward(self, x):
        if self.axes is not None and sorted(a % max(x.ndim, 1) for a in self.axes) != list(
                range(x.ndim)):
            raise ValueError(f"axes {self.axes} are not a permutation of {x.ndim} axes")
        return x.transpose(self.axes)

    def backward(self, gy):
        if self.axes is None:
            return gy.transpose()
        inverse = tuple(np.argsort([a % gy.ndim for a in self.axes]))
        return gy.transpose(inverse)


class BroadcastTo(Function):
    """y = x broadcast to ``shape`` (a read-only view);  dx = sum_to(gy, x.shape)."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape

    def forward(self, x):
        self.input_shape = x.shape
        return get_array_module(x).broadcast_to(x, self.shape)

    def backward(self, gy):
        return gy.sum_to(self.input_shape)


class SumTo(Function):
    """y = x summed down to ``shape`` (the adjoint of broadcasting);  dx = broadcast_to(gy)."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape

    def forward(self, x):
        self.input_shape = x.shape
        return kernels.sum_to(x, self.shape)

    def backward(self, gy):
        return gy.broadcast_to(self.input_shape)


def _has_array_index(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, list) or getattr(p, "ndim", 0) > 0 for p in parts)


def _unwrap_index(index):
    """Replace Tensors inside an index by their arrays (indices are never differentiated)."""
    if isinstance(index, tuple):
        return tuple(_unwrap_index(p) for p in index)
    return index.data if isinstance(index, Tensor) else index


class GetItem(Function):
    """y = x[index];  dx = zeros with gy scattered (added) back at ``index``."""

    def __init__(self, index):
        self.index = _unwrap_index(index)

    def forward(self, x):
        self.input_shape = x.shape
        return get_array_module(x).asarray(x[self.index])

    def backward(self, gy):
        return GetItemGrad(self.index, self.input_shape)(gy)


class GetItemGrad(Function):
    """y = zeros(shape) with x added at ``index`` (the backward of GetItem);  dx = gy[index]."""

    def __init__(self, index, shape: tuple[int, ...]):
        self.index = index
        self.shape = shape

    def forward(self, gy):
        xp = get_array_module(gy)
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        if _has_array_index(self.index):
            xp.add.at(gx, self.index, gy)  # repeated indices must add up
        else:
            gx[self.index] = gy
        return gx

    def backward(self, ggx):
        return ggx[self.index]


class Concatenate(Function):
    """y = the inputs joined along ``axis``;  each dx = its slice of gy."""

    def __init__(self, axis: int = 0):
        self.axis = axis

    def forward(self, *xs):
        self.sizes = [x.shape[self.axis] for x in xs]
        return get_array_module(*xs).concatenate(xs, axis=self.axis)

    def backward(self, gy):
        grads = []
        start = 0
        axis = self.axis % gy.ndim
        for size, needed in zip(self.sizes, self.needs_input_grad):
            if needed:
                index = (slice(None),) * axis + (slice(start, start + size),)
                grads.append(gy[index])
            else:
                grads.append(None)
            start += size
        return tuple(grads)


class Stack(Function):
    """y = the inputs stacked along a new ``axis``;  each dx = gy indexed at its position."""

    def __init__(self, axis: int = 0):
        self.axis = axis

    def forward(self, *xs):
        return get_array_module(*xs).stack(xs, axis=self.axis)

    def backward(self, gy):
        axis = self.axis % gy.ndim
        return tuple(
            gy[(slice(None),) * axis + (i,)] if needed else None
            for i, needed in enumerate(self.needs_input_grad)
        )


class Pad(Function):
    """y = x padded with a constant;  dx = the centre of gy (the padding gets no gradient)."""

    def __init__(self, pad_width, value: float = 0.0):
        self.pad_width = pad_width
        self.value = value

    def forward(self, x):
        self.widths = np.broadcast_to(np.asarray(self.pad_width, dtype=int), (x.ndim, 2))
        if (self.widths < 0).any():
            raise ValueError(f"pad widths must be non-negative, got {self.pad_width}")
        widths = tuple(map(tuple, self.widths.tolist()))  # host numbers, not an array
        return get_array_module(x).pad(x, widths, mode="constant", constant_values=self.value)

    def backward(self, gy):
        index = tuple(slice(before, n - after) for (before, after), n in zip(self.widths, gy.shape))
        return gy[index]


# ------------------------------------------------------------------ public functions


def reshape(x, shape):
    """Give ``x`` a new shape with the same number of elements (one entry may be -1).
    Gradient: ``gy`` reshaped back."""
    return Reshape(tuple(shape) if not isinstance(shape, int) else (shape,))(x)


def transpose(x, axes=None):
    """Permute the axes (reverse them when ``axes`` is None). Gradient: the inverse
    permutation of ``gy``."""
    return Transpose(None if axes is None else tuple(axes))(x)


def broadcast_to(x, shape):
    """Broadcast ``x`` to ``shape``. Gradient: ``gy`` summed back to ``x``'s shape."""
    return BroadcastTo(tuple(shape))(x)


def sum_to(x, shape):
    """Sum ``x`` down to ``shape`` (the adjoint of ``broadcast_to``). Gradient: ``gy``
    broadcast back."""
    return SumTo(tuple(shape))(x)


def getitem(x, index):
    """``x[index]`` with NumPy's basic and advanced indexing.

    Gradient: zeros of ``x``'s shape with ``gy`` added at ``index`` (repeated indices add up).
    """
    return GetItem(index)(x)


def concatenate(tensors, axis: int = 0):
    """Join tensors along an existing axis. Gradient: each input gets its slice of ``gy``."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concatenate: expected at least one tensor, got an empty sequence")
    return Concatenate(axis)(*tensors)


def stack(tensors, axis: int = 0):
    """Stack same-shaped tensors along a new axis. Gradient: each input gets its slice of
    ``gy``."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected at least one tensor, got an empty sequence")
    return Stack(axis)(*tensors)


def pad(x, pad_width, value: float = 0.0):
    """Pad with a constant, ``pad_width`` as in ``numpy.pad`` (an int, a (before, after) pair,
    or one pair per axis). Gradient: the centre of ``gy``."""
    return Pad(pad_width, value)(x)

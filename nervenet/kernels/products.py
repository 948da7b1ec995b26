"""Products and sums: the matrix product with transpose flags, and the sums that gradients
need (over the rows of a batch, over all axes but the channels, back to a broadcast shape)."""

from __future__ import annotations

import functools
import math

import numpy as np

from nervenet.backend import get_array_module


def matmul(a: np.ndarray, b: np.ndarray, transpose_a: bool = False,
           transpose_b: bool = False) -> np.ndarray:
    """op(a) @ op(b), where op swaps the last two axes when its flag is set (a view: BLAS reads
    the transposed operand in place, no copy)."""
    return (a.swapaxes(-1, -2) if transpose_a else a) @ (b.swapaxes(-1, -2) if transpose_b else b)


@functools.lru_cache(maxsize=64)
def _ones(n: int, dtype: np.dtype, xp) -> np.ndarray:
    ones = xp.ones(n, dtype)
    if xp is np:
        ones.flags.writeable = False  # shared between calls
    return ones


def sum_rows(x: np.ndarray) -> np.ndarray:
    """``x.sum(axis=0)`` for a 2-D array, as the product ``ones @ x`` when x is float32/64.

    NOTE: NumPy adds the rows of a matrix one row at a time, while one BLAS vector-matrix
    product runs over the batch at full speed (and is not less accurate): this is the bias
    gradient of every dense layer.
    """
    if x.dtype.char not in "fd":
        return x.sum(axis=0)
    n, xp = x.shape[0], get_array_module(x)
    ones = _ones(n, x.dtype, xp) if n <= 4096 else xp.ones(n, x.dtype)  # cache batch sizes only
    return ones @ x


def channel_sum(x: np.ndarray) -> np.ndarray:
    """Sum over every axis but the last: (..., W, C) -> (C,).

    NOTE: NumPy sums the rows of a matrix one row at a time, so the rows are made long: the
    array is summed as (..., W*C) rows first, then the W pieces of C. No BLAS here: the
    product ``ones @ x2d`` is as fast on one thread but stalls now and then with two OpenBLAS
    threads on a busy machine.
    """
    if x.ndim < 3:
        return sum_rows(x.reshape(-1, x.shape[-1]))
    width, channels = x.shape[-2:]
    return x.reshape(-1, width * channels).sum(axis=0).reshape(width, channels).sum(axis=0)


def sum_to(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``x`` over the axes that broadcasting ``shape`` to ``x.shape`` added or stretched."""
    lead = x.ndim - len(shape)
    if lead < 0:
        raise ValueError(f"cannot sum an array of shape {x.shape} to the larger shape {shape}")
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and x.shape[lead + i] != 1)
    y = x.sum(axis=axes, keepdims=True) if axes else x
    if lead:
        y = y.reshape(shape)
    if y.shape != tuple(shape):
        raise ValueError(f"cannot sum an array of shape {x.shape} to shape {shape}")
    return y


def squared_norm(array: np.ndarray) -> float:
    """``sum(array ** 2)``, or NaN when an element is NaN or infinite.

    One dot product (about twice as fast as ``np.isfinite(a).all()``, and no temporary) both
    checks the array and gives its norm (for gradient clipping). When it overflows we fall
    back to the exact elementwise test and to float64.
    """
    flat = array.reshape(-1)
    value = float(flat.dot(flat))
    if math.isfinite(value):
        return value
    if not get_array_module(array).isfinite(array).all():
        return math.nan
    flat = flat.astype(np.float64)
    return float(flat.dot(flat))


def all_finite(array: np.ndarray) -> bool:
    """Whether no element of a float array is NaN or infinite (``squared_norm``'s one pass; a
    float16 array, which has no BLAS product, is tested elementwise)."""
    if array.dtype.char not in "fd":
        return bool(get_array_module(array).isfinite(array).all())
    with np.errstate(over="ignore"):  # large finite values: the exact test decides
        return not math.isnan(squared_norm(array))

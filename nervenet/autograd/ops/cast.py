"""Dtype conversion as an op, so that a cast keeps the graph (layers cast inputs to floatx)."""

from __future__ import annotations

import numpy as np

from nervenet.autograd.function import Function
from nervenet.autograd.tensor import Tensor


class Cast(Function):
    """y = x converted to ``dtype``;  dx = gy converted back to x's dtype."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)

    def forward(self, x):
        self.input_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy):
        if self.input_dtype.kind != "f":
            return None  # integer and boolean inputs have no gradient
        return Cast(self.input_dtype)(gy)


def cast(x, dtype):
    """Convert ``x`` to ``dtype`` (a no-op when it already has it).

    Gradient: ``gy`` converted back to the input's dtype (none for integer inputs).

    Example:
        >>> import numpy as np
        >>> import nervenet.functional as F
        >>> F.cast(np.array([1, 2]), "float32").dtype
        dtype('float32')
    """
    dtype = np.dtype(dtype)
    if isinstance(x, Tensor) and x.dtype == dtype:
        return x
    return Cast(dtype)(x)

"""Matrix products: matmul (with BLAS-style transpose flags) and the fused dense layer.

``MatMul(transpose_a, transpose_b)`` computes op(A) @ op(B) where op transposes the last two
axes when its flag is set. Having the flags lets every gradient of a product be one product
again, with no separate transpose node:

    C = A B      ->  dA = G B^T,   dB = A^T G
    C = A B^T    ->  dA = G B,     dB = G^T A
    C = A^T B    ->  dA = B G^T,   dB = A G
    C = A^T B^T  ->  dA = B^T G^T, dB = G^T A^T
"""

from __future__ import annotations

import numpy as np

from nervenet.autograd.function import Function
from nervenet.autograd.tensor import Tensor, as_tensor


def _t(array: np.ndarray) -> np.ndarray:
    return array.swapaxes(-1, -2)


class MatMul(Function):
    """C = op(A) @ op(B) over the last two axes (leading axes broadcast);  see the module
    docstring for the four gradient rules."""

    def __init__(self, transpose_a: bool = False, transpose_b: bool = False):
        self.transpose_a = transpose_a
        self.transpose_b = transpose_b

    def forward(self, a, b):
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError("MatMul needs operands with at least 2 dimensions; "
                             "use nervenet.functional.matmul for vectors")
        a_op = _t(a) if self.transpose_a else a
        b_op = _t(b) if self.transpose_b else b
        if a_op.shape[-1] != b_op.shape[-2]:
            raise ValueError(
                f"matmul: inner dimensions differ: {a_op.shape[-1]} (columns of the first "
                f"operand, shape {a_op.shape}) vs {b_op.shape[-2]} (rows of the second, "
                f"shape {b_op.shape})"
            )
        return a_op @ b_op

    def backward(self, g):
        a, b = self.inputs
        need_a, need_b = self.needs_input_grad
        ta, tb = self.transpose_a, self.transpose_b
        ga = gb = None
        if not ta and not tb:
            ga = MatMul(False, True)(g, b) if need_a else None
            gb = MatMul(True, False)(a, g) if need_b else None
        elif not ta and tb:
            ga = MatMul(False, False)(g, b) if need_a else None
            gb = MatMul(True, False)(g, a) if need_b else None
        elif ta and not tb:
            ga = MatMul(False, True)(b, g) if need_a else None
            gb = MatMul(False, False)(a, g) if need_b else None
        else:
            ga = MatMul(True, True)(b, g) if need_a else None
            gb = MatMul(True, True)(g, a) if need_b else None
        return ga, gb


def matmul(a, b):
    """Matrix product ``a @ b`` with NumPy's rules: leading axes broadcast, and a 1-D operand
    is promoted to a matrix whose added axis is removed from the result.

    Gradients: ``da = gy @ b^T``, ``db = a^T @ gy`` (each computed as one product).

    Example:
        >>> import nervenet.functional as F
        >>> F.matmul([[1.0, 2.0]], [[3.0], [4.0]]).data
        array([[11.]], dtype=float32)
    """
    a = as_tensor(a, b if isinstance(b, Tensor) else None)
    b = as_tensor(b, a)
    from_vector_a = a.ndim == 1
    from_vector_b = b.ndim == 1
    if from_vector_a:
        a = a.reshape(1, -1)
    if from_vector_b:
        b = b.reshape(-1, 1)
    y = MatMul()(a, b)
    if from_vector_a and from_vector_b:
        return y.reshape(())
    if from_vector_a:
        return y.reshape(y.shape[:-2] + y.shape[-1:])
    if from_vector_b:
        return y.reshape(y.shape[:-1])
    return y


class Linear(Function):
    """y = x @ W + b over the last axis of x (the dense layer, fused);
    dx = gy @ W^T, dW = x^T @ gy, db = sum of gy over all but the last axis."""

    def forward(self, x, w, b=None):
        if x.shape[-1] != w.shape[0]:
            raise ValueError(
                f"linear: x has {x.shape[-1]} features (last axis of shape {x.shape}) but the "
                f"weight expects {w.shape[0]} (weight shape {w.shape})"
            )
        if b is not None and b.shape != (w.shape[1],):
            raise ValueError(f"linear: bias must have shape ({w.shape[1]},), got {b.shape}")
        y = x @ w
        if b is not None:
            y += b
        return y

    def backward(self, gy):
        x, w = self.inputs[0], self.inputs[1]
        need_x, need_w = self.needs_input_grad[0], self.needs_input_grad[1]
        gx = MatMul(False, True)(gy, w) if need_x else None
        gy_2d = gy if gy.ndim == 2 else gy.reshape(-1, gy.shape[-1])
        gw = gb = None
        if need_w:
            x_2d = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
            gw = MatMul(True, False)(x_2d, gy_2d)
        if len(self.inputs) == 3 and self.needs_input_grad[2]:
            gb = gy_2d.sum(axis=0)
        return gx, gw, gb


def linear(x, w, b=None):
    """The dense layer ``y = x @ w + b`` as one fused op.

    Args:
        x: input of shape (..., in_features).
        w: weight of shape (in_features, out_features) (Keras's kernel layout).
        b: optional bias of shape (out_features,).

    Shape:
        (..., in_features) -> (..., out_features).

    Gradients: ``dx = gy @ w.T``, ``dw = x.T @ gy``, ``db = sum(gy)`` over the batch.

    Example:
        >>> import numpy as np
        >>> import nervenet.functional as F
        >>> F.linear(np.ones((2, 3)), np.ones((3, 4)), np.zeros(4)).shape
        (2, 4)
    """
    if b is None:
        return Linear()(x, w)
    return Linear()(x, w, b)

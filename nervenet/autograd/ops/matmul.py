"""Matrix products: matmul (with BLAS-style transpose flags) and the fused dense layer.

``MatMul(transpose_a, transpose_b)`` computes op(A) @ op(B) where op transposes the last two
axes when its flag is set. Having the flags lets every gradient of a product be one product
again, with no separate transpose node:

    C = A B      ->  dA = G B^T,   dB = A^T G
    C = A B^T    ->  dA = G B,     dB = G^T A
    C = A^T B    ->  dA = B G^T,   dB = A G
    C = A^T B^T  ->  dA = B^T G^T, dB = G^T A^T

A first-order backward (nothing recorded) computes these products on the bare arrays: the
dense layer is on the hot path of every network, and wrapping each product in a Function would
only cost time. With ``create_graph=True`` they are recorded MatMul ops, so second derivatives
stay exact.
"""

from __future__ import annotations

import numpy as np

from nervenet.autograd.function import Function, is_grad_enabled
from nervenet.autograd.ops.reduce import sum_rows
from nervenet.autograd.tensor import Tensor, as_tensor


def _t(array: np.ndarray) -> np.ndarray:
    return array.swapaxes(-1, -2)


def _product(a: Tensor, b: Tensor, transpose_a: bool, transpose_b: bool) -> Tensor:
    """op(a) @ op(b) inside a backward: a recorded MatMul when the graph is being built
    (create_graph=True), else one product on the bare arrays."""
    if is_grad_enabled():
        return MatMul(transpose_a, transpose_b)(a, b)
    a_op = _t(a.data) if transpose_a else a.data
    b_op = _t(b.data) if transpose_b else b.data
    return Tensor.from_array(a_op @ b_op)


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
            ga = _product(g, b, False, True) if need_a else None
            gb = _product(a, g, True, False) if need_b else None
        elif not ta and tb:
            ga = _product(g, b, False, False) if need_a else None
            gb = _product(g, a, True, False) if need_b else None
        elif ta and not tb:
            ga = _product(b, g, False, True) if need_a else None
            gb = _product(a, g, False, False) if need_b else None
        else:
            ga = _product(b, g, True, True) if need_a else None
            gb = _product(g, a, True, True) if need_b else None
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
        gx = _product(gy, w, False, True) if need_x else None
        gy_2d = gy if gy.ndim == 2 else gy.reshape(-1, gy.shape[-1])
        gw = gb = None
        if need_w:
            x_2d = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
            gw = _product(x_2d, gy_2d, True, False)
        if len(self.inputs) == 3 and self.needs_input_grad[2]:
            gb = gy_2d.sum(axis=0) if is_grad_enabled() else Tensor.from_array(
                sum_rows(gy_2d.data))
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

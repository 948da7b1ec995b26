"""Matrix products: matmul (with BLAS-style transpose flags) and the fused dense layer.

``MatMul(transpose_a, transpose_b)`` computes op(A) @ op(B) where op transposes the last two
axes when its flag is set. Having the flags lets every gradient of a product be one product
again, with no separate transpose node:

    C = A B      ->  dA = G B^T,   dB = A^T G
    C = A B^T    ->  dA = G B,     dB = G^T A
    C = A^T B    ->  dA = B G^T,   dB = A G
    C = A^T B^T  ->  dA = B^T G^T, dB = G^T A^T

``backward`` computes them as MatMul ops (recorded with ``create_graph=True``, so second
derivatives are exact); ``backward_array`` computes the same products on bare arrays, for the
first-order passes of training, where the dense layer is on the hot path.
"""

from __future__ import annotations

from nervenet import kernels
from nervenet.autograd.function import Function
from nervenet.autograd.tensor import Tensor, as_tensor

#: (transpose_a, transpose_b) -> the products giving dA and dB: (left, right, transpose flags),
#: the operands named a, b and g (the upstream gradient), as in the module docstring
_GRADIENT_RULES = {
    (False, False): (("g", "b", False, True), ("a", "g", True, False)),
    (False, True): (("g", "b", False, False), ("g", "a", True, False)),
    (True, False): (("b", "g", False, True), ("a", "g", False, False)),
    (True, True): (("b", "g", True, True), ("g", "a", True, True)),
}


def _recorded_product(a: Tensor, b: Tensor, transpose_a: bool, transpose_b: bool) -> Tensor:
    return MatMul(transpose_a, transpose_b)(a, b)


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
        a_op = a.swapaxes(-1, -2) if self.transpose_a else a
        b_op = b.swapaxes(-1, -2) if self.transpose_b else b
        if a_op.shape[-1] != b_op.shape[-2]:
            raise ValueError(
                f"matmul: inner dimensions differ: {a_op.shape[-1]} (columns of the first "
                f"operand, shape {a_op.shape}) vs {b_op.shape[-2]} (rows of the second, "
                f"shape {b_op.shape})"
            )
        return a_op @ b_op

    def backward(self, g):
        return self._gradients(g, *self.inputs, _recorded_product)

    def backward_array(self, g):
        return self._gradients(g, self.inputs[0].data, self.inputs[1].data, kernels.matmul)

    def _gradients(self, g, a, b, product):
        """dA and dB by the rule of this op's transpose flags, each one ``product``."""
        operands = {"a": a, "b": b, "g": g}
        return tuple(
            product(operands[left], operands[right], ta, tb) if needed else None
            for needed, (left, right, ta, tb) in zip(
                self.needs_input_grad, _GRADIENT_RULES[self.transpose_a, self.transpose_b]))


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
        gy_2d = gy.reshape(-1, gy.shape[-1])
        return (MatMul(False, True)(gy, w) if self.needs_input_grad[0] else None,
                MatMul(True, False)(x.reshape(-1, x.shape[-1]), gy_2d)
                if self.needs_input_grad[1] else None,
                gy_2d.sum(axis=0) if self._needs_bias_grad() else None)

    def backward_array(self, gy):
        x, w = self.inputs[0].data, self.inputs[1].data
        gy_2d = gy.reshape(-1, gy.shape[-1])
        return (gy @ w.T if self.needs_input_grad[0] else None,
                x.reshape(-1, x.shape[-1]).T @ gy_2d if self.needs_input_grad[1] else None,
                kernels.sum_rows(gy_2d) if self._needs_bias_grad() else None)

    def _needs_bias_grad(self) -> bool:
        return len(self.inputs) == 3 and self.needs_input_grad[2]


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

"""The public op namespace: ``import nervenet.functional as F``.

Every function takes Tensors (arrays and numbers are accepted and wrapped) and returns Tensors
that record the op for backpropagation. Each is documented where it is defined, next to the
``Function`` that implements it in ``nervenet.autograd.ops``; this module only gathers them.
"""

from nervenet.autograd.ops.arith import (
    abs,
    add,
    clip,
    div,
    exp,
    log,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    sqrt,
    sub,
    where,
)
from nervenet.autograd.ops.matmul import linear, matmul
from nervenet.autograd.ops.reduce import max, mean, min, sum
from nervenet.autograd.ops.shape import (
    broadcast_to,
    concatenate,
    getitem,
    pad,
    reshape,
    stack,
    sum_to,
    transpose,
)

__all__ = [
    # arithmetic
    "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "abs", "maximum", "minimum",
    "clip", "where",
    # reductions
    "sum", "mean", "max", "min",
    # shapes
    "reshape", "transpose", "broadcast_to", "sum_to", "concatenate", "stack", "pad", "getitem",
    # products
    "matmul", "linear",
]

"""The public op namespace: ``import nervenet.functional as F``.

Every function takes Tensors (arrays and numbers are accepted and wrapped) and returns Tensors
that record the op for backpropagation. Each is documented where it is defined, next to the
``Function`` that implements it in ``nervenet.autograd.ops``; this module only gathers them.
"""

from nervenet.autograd.ops.activation import (
    elu,
    gelu,
    leaky_relu,
    log_softmax,
    maxout,
    mish,
    prelu,
    relu,
    selu,
    sigmoid,
    softmax,
    softplus,
    step,
    swish,
    tanh,
)
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
from nervenet.autograd.ops.cast import cast
from nervenet.autograd.ops.conv import conv2d
from nervenet.autograd.ops.dropout import alpha_dropout, dropout
from nervenet.autograd.ops.loss import (
    binary_cross_entropy,
    categorical_cross_entropy,
    hinge,
    huber,
    mae,
    mse,
    sparse_categorical_cross_entropy,
)
from nervenet.autograd.ops.matmul import linear, matmul
from nervenet.autograd.ops.norm import batch_norm, batch_norm_affine, batch_norm_training
from nervenet.autograd.ops.pool import avg_pool2d, max_pool2d, stochastic_pool2d
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
    "clip", "where", "cast",
    # reductions
    "sum", "mean", "max", "min",
    # shapes
    "reshape", "transpose", "broadcast_to", "sum_to", "concatenate", "stack", "pad", "getitem",
    # products and layers as functions
    "matmul", "linear", "conv2d", "max_pool2d", "avg_pool2d", "stochastic_pool2d", "dropout",
    "alpha_dropout", "batch_norm", "batch_norm_training", "batch_norm_affine",
    # activations
    "step", "sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "selu", "gelu", "swish",
    "mish", "softplus", "softmax", "log_softmax", "maxout",
    # losses (batch means)
    "mse", "mae", "huber", "hinge", "binary_cross_entropy", "categorical_cross_entropy",
    "sparse_categorical_cross_entropy",
]

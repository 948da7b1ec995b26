"""Activation functions by name, as Keras's ``activations`` module.

The functions themselves live in ``nervenet.functional`` (with their formulas); this module
maps Keras's string ids to them, serializes them back to names, and computes their derivatives
with autograd (the course's table of activations and derivatives).

==========  =====================================  ===========================================
id          f(x)                                   f'(x)
==========  =====================================  ===========================================
step        1 if x > 0 else 0                      0 (so backprop cannot train a step network)
sigmoid     1 / (1 + e^-x)                         f(x) (1 - f(x))
tanh        (e^x - e^-x) / (e^x + e^-x)            1 - f(x)^2
relu        max(0, x)                              1 if x > 0 else 0
leaky_relu  x if x > 0 else 0.01 x                 1 if x > 0 else 0.01
elu         x if x > 0 else e^x - 1                1 if x > 0 else e^x
selu        lambda * elu_alpha(x)                  lambda * elu_alpha'(x)
gelu        x Phi(x)                               Phi(x) + x phi(x)
swish       x sigmoid(x)                           f(x) + sigmoid(x) (1 - f(x))
mish        x tanh(softplus(x))                    via autograd
softmax     e^x_i / sum_j e^x_j                    y_i (delta_ij - y_j)
linear      x                                      1
==========  =====================================  ===========================================
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nervenet.autograd import Tensor, grad
from nervenet.autograd.ops import activation as ops
from nervenet.registry import Registry

registry = Registry("activation")


def linear(x):
    """The identity, f(x) = x (Keras's "linear": no activation)."""
    return x


for _name, _fn in [("step", ops.step), ("sigmoid", ops.sigmoid), ("tanh", ops.tanh),
                   ("relu", ops.relu), ("leaky_relu", ops.leaky_relu), ("elu", ops.elu),
                   ("selu", ops.selu), ("gelu", ops.gelu), ("swish", ops.swish),
                   ("silu", ops.swish), ("mish", ops.mish), ("softmax", ops.softmax),
                   ("log_softmax", ops.log_softmax), ("softplus", ops.softplus),
                   ("linear", linear)]:
    registry.add(_name, _fn)


def get(identifier) -> Callable:
    """Resolve an activation: a name (see the table), ``None`` (linear) or a callable.

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    if identifier is None:
        return linear
    activation = registry.get(identifier)
    if not callable(activation):
        raise ValueError(f"activation must be a name or a callable, got {identifier!r}")
    return activation


def serialize(activation: Callable) -> str:
    """The name of a built-in activation (what ``get`` accepts)."""
    for name in registry.names():
        if registry.lookup(name) is activation:
            return "swish" if name == "silu" else name
    raise ValueError(f"cannot serialize activation {activation!r}: it is not registered; "
                     "register it with nervenet.activations.registry.add(name, fn)")


def derivative(activation, x) -> np.ndarray:
    """The elementwise derivative f'(x) of an elementwise activation, computed by autograd.

    Example:
        >>> derivative("tanh", [0.0]).round(6)
        array([1.], dtype=float32)
    """
    fn = get(activation)
    x = Tensor(x, requires_grad=True)
    (gx,) = grad(fn(x).sum(), x, allow_unused=True)
    return np.zeros_like(x.data) if gx is None else gx.data

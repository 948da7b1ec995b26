"""Registry entries of the activation ops.

The ops are taken from their module (``nervenet.functional`` re-exports the same functions).
Samples stay away from the kinks listed in each entry; the values at the kinks are tested by
value in ``tests/autograd/test_activation.py``.
"""

from __future__ import annotations

import numpy as np

from nervenet.autograd.ops import activation as A
from tests.autograd.opinfo.base import OpInfo, Sample

try:  # the oracle is optional: the torch_op lambdas only run where it is installed
    import torch
    import torch.nn.functional as TF
except ImportError:
    torch = TF = None


def _unit(rng, *shape, scale=1.0):
    return rng.uniform(-scale, scale, shape)


def _off_zero(rng, *shape, scale=2.0, gap=0.05):
    """Uniform values in [-scale, scale] with |x| >= gap (kinks at 0 are avoided)."""
    x = rng.uniform(gap, scale, shape)
    return np.asarray(x * rng.choice([-1.0, 1.0], shape))


def _unary(make=_unit, kwargs_list=({},), **make_kwargs):
    """Samples of a unary op: a matrix, an odd 3-D shape, a vector and a scalar, for every set
    of keyword arguments."""

    def samples(rng):
        out = []
        for kwargs in kwargs_list:
            tag = ",".join(f"{k}={v}" for k, v in kwargs.items())
            out += [
                Sample((make(rng, 3, 4, **make_kwargs),), dict(kwargs), label=f"2d{tag}"),
                Sample((make(rng, 2, 3, 5, **make_kwargs),), dict(kwargs), label=f"3d{tag}"),
                Sample((make(rng, 7, **make_kwargs),), dict(kwargs), label=f"1d{tag}"),
                Sample((make(rng, **make_kwargs),), dict(kwargs), label=f"0d{tag}"),
            ]
        return out

    return samples


def _distinct(rng, *shape):
    """Values at least 0.1 apart: no ties inside a maxout group."""
    size = int(np.prod(shape))
    return (rng.permutation(size) * 0.1 + rng.uniform(0, 0.01, size)).reshape(shape) - 0.1 * (
        size / 2)


# ------------------------------------------------------------------ NumPy references


def _step_ref(x, low=0.0, high=1.0, at_zero=None):
    at_zero = low if at_zero is None else at_zero
    return np.where(x > 0, high, np.where(x < 0, low, at_zero))


def _sigmoid_ref(x, a=1.0):
    return 1.0 / (1.0 + np.exp(-a * x))


def _elu_ref(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def _gelu_ref(x, approximate=False):
    if approximate:
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    from math import erf  # independent of the erf under test

    return x * 0.5 * (1 + np.vectorize(erf)(x / np.sqrt(2)))


def _softplus_ref(x):
    return np.logaddexp(0.0, x)


def _softmax_ref(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax_ref(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _maxout_ref(x, num_units):
    return x.reshape(x.shape[:-1] + (num_units, -1)).max(axis=-1)


# ------------------------------------------------------------------ torch equivalents


def _step_torch(x, low=0.0, high=1.0, at_zero=None):
    # torch.heaviside has no derivative; the step's derivative is 0, hence "+ 0 * x".
    at_zero = low if at_zero is None else at_zero
    value = torch.tensor((at_zero - low) / (high - low), dtype=x.dtype)
    return low + (high - low) * torch.heaviside(x.detach(), value) + 0 * x


def _prelu_torch(x, alpha):
    if x.ndim == 2 and alpha.ndim == 1:  # channels on axis 1: torch's own layout
        return TF.prelu(x, alpha)
    return torch.where(x > 0, x, alpha * x)


def _softmax_samples(rng):
    return [
        Sample((_unit(rng, 3, 5, scale=3.0),), label="rows"),
        Sample((_unit(rng, 2, 3, 4, scale=3.0),), dict(axis=1), label="axis1"),
        Sample((_unit(rng, 2, 3, 4, scale=3.0),), dict(axis=0), label="axis0"),
        Sample((_unit(rng, 7, scale=3.0),), label="1d"),
        Sample((_unit(rng, 4, 1),), label="one-class"),
    ]


def _prelu_samples(rng):
    return [
        Sample((_off_zero(rng, 4, 3), rng.uniform(0.05, 0.5, 3)), label="per-channel"),
        Sample((_off_zero(rng, 2, 3, 4), rng.uniform(0.05, 0.5, 4)), label="channels-last"),
        Sample((_off_zero(rng, 2, 3, 4), rng.uniform(0.05, 0.5, (3, 4))), label="per-element"),
        Sample((_off_zero(rng, 5, 2), rng.uniform(0.05, 0.5, 1)), label="shared"),
    ]


def _maxout_samples(rng):
    return [
        Sample((_distinct(rng, 4, 6),), dict(num_units=3), label="groups-of-2"),
        Sample((_distinct(rng, 2, 3, 6),), dict(num_units=2), label="3d"),
        Sample((_distinct(rng, 5, 4),), dict(num_units=4), label="identity"),
        Sample((_distinct(rng, 3, 5),), dict(num_units=1), label="max-of-all"),
    ]


OPS = [
    OpInfo(
        "step", A.step,
        _unary(_off_zero, ({}, dict(low=-1.0), dict(low=-0.5, high=2.0, at_zero=0.25))),
        _step_ref, _step_torch,
        kinks="jump at 0 (derivative 0 elsewhere): samples keep |x| >= 0.05; the value at 0 "
              "is tested by value"),
    OpInfo("sigmoid", A.sigmoid,
           _unary(kwargs_list=({}, dict(a=2.5), dict(a=-0.5)), scale=4.0),
           _sigmoid_ref, lambda x, a=1.0: torch.sigmoid(a * x)),
    OpInfo("tanh", A.tanh, _unary(scale=3.0), np.tanh, torch.tanh if torch else None),
    OpInfo("relu", A.relu, _unary(_off_zero), lambda x: np.maximum(x, 0),
           lambda x: TF.relu(x), kinks="0: samples keep |x| >= 0.05"),
    OpInfo("leaky_relu", A.leaky_relu, _unary(_off_zero, ({}, dict(alpha=0.2))),
           lambda x, alpha=0.01: np.where(x > 0, x, alpha * x),
           lambda x, alpha=0.01: TF.leaky_relu(x, alpha), kinks="0: samples keep |x| >= 0.05"),
    OpInfo("prelu", A.prelu, _prelu_samples,
           lambda x, alpha: np.where(x > 0, x, alpha * x), _prelu_torch,
           kinks="x = 0: samples keep |x| >= 0.05"),
    OpInfo("elu", A.elu, _unary(_off_zero, ({}, dict(alpha=0.5))), _elu_ref,
           lambda x, alpha=1.0: TF.elu(x, alpha),
           kinks="0 (second derivative jumps; the first too unless alpha = 1): |x| >= 0.05"),
    OpInfo("selu", A.selu, _unary(_off_zero), lambda x: A.SELU_SCALE * _elu_ref(x, A.SELU_ALPHA),
           lambda x: TF.selu(x), kinks="0: samples keep |x| >= 0.05"),
    OpInfo("gelu", A.gelu,
           _unary(kwargs_list=({}, dict(approximate=True)), scale=6.0), _gelu_ref,
           lambda x, approximate=False: TF.gelu(x, approximate="tanh" if approximate else "none")),
    OpInfo("swish", A.swish, _unary(scale=4.0), lambda x: x * _sigmoid_ref(x),
           lambda x: TF.silu(x)),
    OpInfo("mish", A.mish, _unary(scale=4.0), lambda x: x * np.tanh(_softplus_ref(x)),
           lambda x: TF.mish(x)),
    OpInfo("softplus", A.softplus, _unary(scale=5.0), _softplus_ref, lambda x: TF.softplus(x)),
    OpInfo("softmax", A.softmax, _softmax_samples, _softmax_ref,
           lambda x, axis=-1: torch.softmax(x, dim=axis)),
    OpInfo("log_softmax", A.log_softmax, _softmax_samples, _log_softmax_ref,
           lambda x, axis=-1: torch.log_softmax(x, dim=axis)),
    OpInfo("maxout", A.maxout, _maxout_samples, _maxout_ref,
           lambda x, num_units: x.unflatten(-1, (num_units, -1)).amax(-1),
           kinks="ties inside a group: samples have distinct values 0.1 apart"),
]

"""Registry entries of the image ops: conv2d, max/avg/stochastic pooling, dropout, batch_norm
(with its training form and its inference affine map).

The NumPy references are written with explicit loops over output positions and their own
padding arithmetic, independent of the im2col / strided-slice code they check. The torch
equivalents convert layouts: images (N, H, W, C) -> (N, C, H, W), kernels (kh, kw, C, O) ->
(O, C, kh, kw); asymmetric "same" padding goes through ``torch.nn.functional.pad`` before a
valid conv/pool.
"""

from __future__ import annotations

import math

import numpy as np

# The public names live in nervenet.functional, which re-exports these same functions.
from nervenet.autograd.ops.conv import conv2d
from nervenet.autograd.ops.dropout import alpha_dropout, dropout
from nervenet.autograd.ops.norm import batch_norm, batch_norm_affine, batch_norm_training
from nervenet.autograd.ops.pool import avg_pool2d, max_pool2d, stochastic_pool2d
from nervenet.autograd.ops.shape import concatenate
from tests.autograd.opinfo.base import OpInfo, Sample

try:  # the oracle is optional: the torch_op lambdas only run where it is installed
    import torch
except ImportError:
    torch = None


# ------------------------------------------------------------------- padding, references


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _pads(h, w, window, stride, padding):
    """(top, bottom, left, right) as Keras/TF: "same" gives ceil(size / stride) outputs."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if isinstance(padding, int):
        return (padding,) * 4
    pads = []
    for size, k, s in zip((h, w), window, stride):
        total = max((math.ceil(size / s) - 1) * s + k - size, 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


def _pad_nhwc(x, pads, value=0.0):
    top, bottom, left, right = pads
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def _span(window, dilation):
    """The cells a dilated window covers per axis: (k - 1) * d + 1."""
    return tuple((k - 1) * d + 1 for k, d in zip(window, dilation))


def _windows(x, window, stride, padding, value=0.0, dilation=(1, 1)):
    """Yield (i, j, window array (N, kh, kw, C), mask of real cells (kh, kw)); a dilated
    window takes every d-th cell of its span."""
    kh, kw = _span(window, dilation)
    (sh, sw), (dh, dw) = stride, dilation
    pads = _pads(x.shape[1], x.shape[2], (kh, kw), stride, padding)
    xp = _pad_nhwc(x, pads, value)
    real = _pad_nhwc(np.ones((1,) + x.shape[1:3] + (1,)), pads)[0, :, :, 0] > 0
    ho = (xp.shape[1] - kh) // sh + 1
    wo = (xp.shape[2] - kw) // sw + 1
    for i in range(ho):
        for j in range(wo):
            rows, cols = slice(i * sh, i * sh + kh, dh), slice(j * sw, j * sw + kw, dw)
            yield i, j, ho, wo, xp[:, rows, cols, :], real[rows, cols]


def conv2d_reference(x, w, b=None, stride=1, padding="valid", dilation=1):
    stride = _pair(stride)
    out = None
    for i, j, ho, wo, patch, _ in _windows(x, w.shape[:2], stride, padding,
                                           dilation=_pair(dilation)):
        if out is None:
            out = np.zeros((x.shape[0], ho, wo, w.shape[3]))
        out[:, i, j, :] = np.einsum("nhwc,hwco->no", patch, w)
    return out if b is None else out + b


def max_pool2d_reference(x, pool_size=2, strides=None, padding="valid"):
    window = _pair(pool_size)
    stride = window if strides is None else _pair(strides)
    out = None
    for i, j, ho, wo, patch, _ in _windows(x, window, stride, padding, value=-np.inf):
        if out is None:
            out = np.zeros((x.shape[0], ho, wo, x.shape[3]))
        out[:, i, j, :] = patch.max(axis=(1, 2))
    return out


def avg_pool2d_reference(x, pool_size=2, strides=None, padding="valid"):
    window = _pair(pool_size)
    stride = window if strides is None else _pair(strides)
    out = None
    for i, j, ho, wo, patch, real in _windows(x, window, stride, padding):
        if out is None:
            out = np.zeros((x.shape[0], ho, wo, x.shape[3]))
        out[:, i, j, :] = patch.sum(axis=(1, 2)) / real.sum()
    return out


def batch_norm_reference(x, gamma, beta, mean=None, var=None, epsilon=1e-3, axis=-1):
    axes = tuple(i for i in range(x.ndim) if i != axis % x.ndim)
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    if mean is None:
        mean, var = x.mean(axis=axes), x.var(axis=axes)  # NumPy's var is biased (ddof=0)
    mean, var = np.reshape(mean, shape), np.reshape(var, shape)
    return np.reshape(gamma, shape) * (x - mean) / np.sqrt(var + epsilon) + np.reshape(beta,
                                                                                         shape)


def batch_norm_affine_reference(gamma, beta, mean, var, epsilon=1e-3):
    a = gamma / np.sqrt(var + epsilon)
    return np.concatenate([a, beta - a * mean])


# ----------------------------------------------------------------------- torch oracles


def _nchw(x):
    return x.permute(0, 3, 1, 2)


def _nhwc(x):
    return x.permute(0, 2, 3, 1)


def _torch_pad(x_nchw, pads, value=0.0):
    top, bottom, left, right = pads
    return torch.nn.functional.pad(x_nchw, (left, right, top, bottom), value=value)


def conv2d_torch(x, w, b=None, stride=1, padding="valid", dilation=1):
    stride, dilation = _pair(stride), _pair(dilation)
    pads = _pads(x.shape[1], x.shape[2], _span(w.shape[:2], dilation), stride, padding)
    y = torch.nn.functional.conv2d(_torch_pad(_nchw(x), pads), w.permute(3, 2, 0, 1), b,
                                   stride=stride, dilation=dilation)
    return _nhwc(y)


def max_pool2d_torch(x, pool_size=2, strides=None, padding="valid"):
    window = _pair(pool_size)
    stride = window if strides is None else _pair(strides)
    pads = _pads(x.shape[1], x.shape[2], window, stride, padding)
    xp = _torch_pad(_nchw(x), pads, value=-math.inf)
    return _nhwc(torch.nn.functional.max_pool2d(xp, window, stride))


def avg_pool2d_torch(x, pool_size=2, strides=None, padding="valid"):
    window = _pair(pool_size)
    stride = window if strides is None else _pair(strides)
    top, bottom, left, right = _pads(x.shape[1], x.shape[2], window, stride, padding)
    if top == bottom and left == right:  # torch pads symmetrically itself
        y = torch.nn.functional.avg_pool2d(_nchw(x), window, stride, padding=(top, left),
                                           count_include_pad=False)
        return _nhwc(y)
    # Asymmetric "same": sum over the zero-padded windows, divided by the real cells counted
    # the same way.
    pads = (top, bottom, left, right)
    total = torch.nn.functional.avg_pool2d(_torch_pad(_nchw(x), pads), window, stride,
                                           divisor_override=1)
    ones = torch.ones((1, 1) + tuple(x.shape[1:3]), dtype=x.dtype)
    count = torch.nn.functional.avg_pool2d(_torch_pad(ones, pads), window, stride,
                                           divisor_override=1)
    return _nhwc(total / count)


def batch_norm_torch(x, gamma, beta, mean=None, var=None, epsilon=1e-3, axis=-1):
    y = torch.nn.functional.batch_norm(x.movedim(axis, 1), mean, var, gamma, beta,
                                       training=mean is None, eps=epsilon)
    return y.movedim(1, axis)


def batch_norm_affine_torch(gamma, beta, mean, var, epsilon=1e-3):
    a = gamma / torch.sqrt(var + epsilon)
    return torch.cat([a, beta - a * mean])


# ---------------------------------------------------------------------------- samples


def _unit(rng, *shape):
    return rng.uniform(-1.0, 1.0, shape)


def _distinct(rng, *shape):
    """Values 0.1 apart (plus a little noise): no ties, no kink within reach of the
    finite-difference step. Ties are tested by value in test_pool.py."""
    size = int(np.prod(shape))
    return (rng.permutation(size) * 0.1 + rng.uniform(0, 0.01, size)).reshape(shape) - size * 0.05


def _conv_samples(rng):
    x = lambda *shape: _unit(rng, *shape)
    return [
        Sample((x(2, 7, 5, 3), x(3, 3, 3, 4), x(4)), label="valid-s1"),
        Sample((x(2, 7, 5, 3), x(3, 3, 3, 4), x(4)), dict(stride=2, padding="same"),
               label="same-s2"),
        Sample((x(2, 7, 5, 2), x(2, 2, 2, 3), x(3)), dict(padding="same"),
               label="same-even-kernel"),  # total padding 1: (0, 1), the extra cell after
        Sample((x(1, 6, 7, 1), x(3, 3, 1, 2), x(2)), dict(stride=2), label="valid-s2-1ch"),
        Sample((x(2, 5, 6, 4), x(3, 2, 4, 5)), dict(stride=(2, 1), padding=1),
               label="int-pad-no-bias"),
        Sample((x(1, 8, 7, 3), x(3, 3, 3, 2), x(2)), dict(stride=2, padding="valid"),
               label="valid-s2-leftover"),  # (8 - 3) % 2 = 1: the last row is never read
        Sample((x(1, 4, 4, 5), x(5, 5, 5, 3), x(3)), dict(padding="same"),
               label="same-kernel-beyond-input"),
        Sample((x(2, 9, 8, 3), x(3, 3, 3, 4), x(4)), dict(dilation=2), label="dilated-valid"),
        Sample((x(1, 7, 8, 2), x(3, 2, 2, 3), x(3)), dict(dilation=(2, 3), padding="same"),
               label="dilated-rect-same"),  # spans (5, 4): pads (2, 2) and (1, 2)
        Sample((x(1, 9, 7, 1), x(2, 3, 1, 2)), dict(dilation=(3, 2), stride=2),
               label="dilated-s2-1ch-no-bias"),  # the one-channel im2col path
        Sample((x(1, 8, 9, 2), x(3, 3, 2, 2), x(2)), dict(dilation=2, stride=(2, 3),
                                                          padding="same"),
               label="dilated-s2-same"),
    ]


def _pool_samples(rng):
    x = lambda *shape: _distinct(rng, *shape)
    return [
        Sample((x(2, 6, 4, 3),), label="2x2"),
        Sample((x(2, 7, 5, 3),), dict(pool_size=2, padding="same"), label="same-odd"),
        Sample((x(1, 7, 5, 2),), dict(pool_size=3, strides=2, padding="same"),
               label="overlap-same-s2"),
        Sample((x(1, 6, 5, 2),), dict(pool_size=3, strides=1), label="overlap-valid-s1"),
        Sample((x(1, 7, 5, 2),), dict(pool_size=(3, 2), strides=(2, 1), padding="same"),
               label="rect-same"),
        Sample((x(2, 7, 5, 1),), dict(pool_size=2, strides=2), label="valid-leftover"),
    ]


def _stochastic_samples(rng):
    positive = lambda *shape: rng.uniform(0.1, 1.0, shape)
    return [
        Sample((positive(2, 4, 6, 3),), dict(pool_size=2, rng=0, training=True),
               label="train"),
        Sample((positive(1, 7, 5, 2),), dict(pool_size=(3, 2), rng=1, training=True),
               label="train-rect-leftover"),
        Sample((positive(2, 4, 6, 3),), dict(pool_size=2, rng=None, training=False),
               label="inference"),
    ]


def _dropout_samples(rng):
    return [
        Sample((_unit(rng, 4, 5),), dict(rate=0.5, training=True, rng=1), label="train"),
        Sample((_unit(rng, 2, 3, 4),), dict(rate=0.2, training=True, rng=2), label="train-3d"),
        Sample((_unit(rng, 4, 5),), dict(rate=0.5, training=False), label="inference"),
        Sample((_unit(rng, 3, 2, 2, 4),), dict(rate=0.5, training=True, rng=3,
                                               noise_shape=(None, 1, 1, None)),
               label="train-spatial"),
    ]


def _batch_norm_samples(rng):
    params = lambda c: (rng.uniform(0.5, 1.5, c), _unit(rng, c))
    return [
        Sample((_unit(rng, 6, 3) * 2 + 1, *params(3)), label="dense"),
        Sample((_unit(rng, 2, 4, 3, 3), *params(3)), dict(epsilon=1e-5),
               label="feature-maps"),
        Sample((_unit(rng, 3, 4, 2, 2), *params(4)), dict(axis=1), label="channels-first"),
        Sample((_unit(rng, 5, 3), *params(3), _unit(rng, 3), rng.uniform(0.5, 2.0, 3)),
               label="inference"),
        Sample((_unit(rng, 2, 3, 2, 4), *params(4), _unit(rng, 4), rng.uniform(0.5, 2.0, 4)),
               dict(epsilon=0.01), label="inference-maps"),
    ]


def _batch_norm_training_samples(rng):
    return [sample for sample in _batch_norm_samples(rng) if len(sample.args) == 3]


def _batch_norm_affine_samples(rng):
    channels = lambda c: (rng.uniform(0.5, 1.5, c), _unit(rng, c), _unit(rng, c),
                          rng.uniform(0.5, 2.0, c))
    return [Sample(channels(3), label="per-channel"),
            Sample(channels(1), dict(epsilon=0.0), label="one-channel-no-epsilon")]


OPS = [
    OpInfo("conv2d", conv2d, _conv_samples, conv2d_reference, conv2d_torch),
    OpInfo("max_pool2d", max_pool2d, _pool_samples, max_pool2d_reference, max_pool2d_torch,
           kinks="ties inside a window: samples have distinct values (ties are tested by "
                 "value in test_pool.py: the gradient goes to the first maximum)"),
    OpInfo("avg_pool2d", avg_pool2d, _pool_samples, avg_pool2d_reference, avg_pool2d_torch),
    OpInfo("stochastic_pool2d", stochastic_pool2d, _stochastic_samples,
           kinks="the drawn position jumps where u crosses a running sum: samples are seeded "
                 "by an int, the draw is far from a boundary at the finite-difference step",
           deterministic=False),
    OpInfo("dropout", dropout, _dropout_samples,
           kinks="none: the mask is fixed by the int seed in kwargs (a fresh generator each "
                 "call, so every call draws the same mask)",
           deterministic=False),
    OpInfo("alpha_dropout", alpha_dropout, _dropout_samples,
           kinks="none: the mask is fixed by the int seed in kwargs, as dropout's",
           deterministic=False),
    OpInfo("batch_norm", batch_norm, _batch_norm_samples, batch_norm_reference,
           batch_norm_torch, differentiable=(0, 1, 2)),
    OpInfo("batch_norm_training", lambda *args, **kw: batch_norm_training(*args, **kw)[0],
           _batch_norm_training_samples, batch_norm_reference, batch_norm_torch),
    OpInfo("batch_norm_affine", lambda *args, **kw: concatenate(batch_norm_affine(*args, **kw)),
           _batch_norm_affine_samples, batch_norm_affine_reference, batch_norm_affine_torch),
]

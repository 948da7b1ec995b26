"""Registry entries of the core ops: arithmetic, reductions, shapes, products."""

from __future__ import annotations

import numpy as np

import nervenet.functional as F
from tests.autograd.opinfo.base import OpInfo, Sample

try:  # the oracle is optional: the torch_op lambdas only run where it is installed
    import torch
except ImportError:
    torch = None


def _unit(rng, *shape):
    return rng.uniform(-1.0, 1.0, shape)


def _positive(rng, *shape):
    return rng.uniform(0.5, 2.0, shape)


def _binary_samples(rng, make=_unit):
    return [
        Sample((make(rng, 3, 4), make(rng, 3, 4)), label="same"),
        Sample((make(rng, 2, 3, 4), make(rng, 4)), label="broadcast-row"),
        Sample((make(rng, 3, 1), make(rng, 1, 5)), label="outer"),
        Sample((make(rng), make(rng, 2, 3)), label="scalar-left"),
        Sample((make(rng, 7), make(rng, 7)), label="odd-1d"),
    ]


def _unary_samples(make=_unit):
    return lambda rng: [Sample((make(rng, 3, 4),)), Sample((make(rng, 2, 3, 5),), label="3d"),
                        Sample((make(rng),), label="0d")]


def _distinct(rng, *shape):
    """Values far enough apart that max/min have no ties and no finite-difference kinks."""
    size = int(np.prod(shape)) if shape else 1
    return (rng.permutation(size) * 0.1 + rng.uniform(0, 0.01, size)).reshape(shape)


def _separated_pairs(rng):
    """Pairs with |a - b| >= 0.1 so maximum/minimum are differentiable at every sample."""
    pairs = []
    for label, shape_a, shape_b in [("same", (3, 4), (3, 4)), ("broadcast", (2, 3, 4), (4,))]:
        b = _unit(rng, *shape_b)
        offset = rng.choice([-1.0, 1.0], shape_a) * rng.uniform(0.1, 0.5, shape_a)
        pairs.append(Sample((np.broadcast_to(b, shape_a) + offset, b), label=label))
    return pairs


def _away_from(values, points, gap=0.05):
    """Move values that are within ``gap`` of any kink in ``points``."""
    values = values.copy()
    for p in points:
        close = np.abs(values - p) < gap
        values[close] = p + np.where(values[close] >= p, gap, -gap) * 2
    return values


REDUCE_KWARGS = [dict(), dict(axis=0), dict(axis=1, keepdims=True), dict(axis=(0, 2)),
                 dict(axis=-1)]


def _reduce_samples(rng):
    return [Sample((_distinct(rng, 2, 3, 4),), kw, label=str(kw)) for kw in REDUCE_KWARGS]


OPS = [
    OpInfo("add", F.add, _binary_samples, np.add, lambda a, b: a + b),
    OpInfo("sub", F.sub, _binary_samples, np.subtract, lambda a, b: a - b),
    OpInfo("mul", F.mul, _binary_samples, np.multiply, lambda a, b: a * b),
    OpInfo("div", F.div, lambda rng: _binary_samples(rng, _positive), np.divide,
           lambda a, b: a / b),
    OpInfo("neg", F.neg, _unary_samples(), np.negative, lambda x: -x),
    OpInfo("pow", F.pow, lambda rng: _binary_samples(rng, _positive), np.power,
           lambda a, b: a ** b, kinks="a <= 0: samples keep the base positive"),
    OpInfo("exp", F.exp, _unary_samples(), np.exp, lambda x: x.exp()),
    OpInfo("log", F.log, _unary_samples(_positive), np.log, lambda x: x.log()),
    OpInfo("sqrt", F.sqrt, _unary_samples(_positive), np.sqrt, lambda x: x.sqrt()),
    OpInfo("abs", F.abs, lambda rng: [Sample((_away_from(_unit(rng, 3, 4), [0.0]),))],
           np.abs, lambda x: x.abs(), kinks="0: samples stay 0.05 away"),
    OpInfo("maximum", F.maximum, _separated_pairs, np.maximum, lambda a, b: a.maximum(b),
           kinks="a == b: samples keep |a - b| >= 0.1 (ties are tested by value)"),
    OpInfo("minimum", F.minimum, _separated_pairs, np.minimum, lambda a, b: a.minimum(b),
           kinks="a == b: samples keep |a - b| >= 0.1"),
    OpInfo(
        "clip", F.clip,
        lambda rng: [Sample((_away_from(_unit(rng, 4, 5), [-0.5, 0.3]),),
                            dict(low=-0.5, high=0.3)),
                     Sample((_away_from(_unit(rng, 6), [0.0]),), dict(low=0.0), label="low"),
                     Sample((_away_from(_unit(rng, 6), [0.2]),), dict(high=0.2), label="high")],
        lambda x, low=None, high=None: np.clip(x, low, high),
        lambda x, low=None, high=None: x.clamp(low, high),
        kinks="at the bounds: samples stay 0.05 away"),
    OpInfo(
        "where", lambda c, a, b: F.where(c, a, b),
        lambda rng: [Sample((rng.uniform(size=(3, 4)) > 0.5, _unit(rng, 3, 4), _unit(rng, 4))),
                     Sample((rng.uniform(size=(2, 1)) > 0.5, _unit(rng, 2, 3), _unit(rng)),
                            label="broadcast")],
        np.where, lambda c, a, b: torch.where(c, a, b)),
    OpInfo("cast", lambda x: F.cast(F.cast(x, np.float64) * 2.0, x.dtype),
           _unary_samples(), lambda x: x * 2.0, lambda x: x.double() * 2.0),
    OpInfo("sum", F.sum, _reduce_samples, np.sum,
           lambda x, axis=None, keepdims=False: x.sum(dim=axis, keepdim=keepdims)
           if axis is not None else x.sum()),
    OpInfo("mean", F.mean, _reduce_samples, np.mean,
           lambda x, axis=None, keepdims=False: x.mean(dim=axis, keepdim=keepdims)
           if axis is not None else x.mean()),
    OpInfo("max", F.max, _reduce_samples, np.max,
           lambda x, axis=None, keepdims=False: x.amax(dim=axis if axis is not None else (),
                                                       keepdim=keepdims),
           kinks="ties: samples have distinct values (ties are tested by value)"),
    OpInfo("min", F.min, _reduce_samples, np.min,
           lambda x, axis=None, keepdims=False: x.amin(dim=axis if axis is not None else (),
                                                       keepdim=keepdims),
           kinks="ties: samples have distinct values"),
    OpInfo("reshape", F.reshape,
           lambda rng: [Sample((_unit(rng, 2, 3, 4),), dict(shape=(4, -1))),
                        Sample((_unit(rng, 6),), dict(shape=(2, 1, 3)), label="grow")],
           lambda x, shape: np.reshape(x, shape), lambda x, shape: x.reshape(shape)),
    OpInfo("transpose", F.transpose,
           lambda rng: [Sample((_unit(rng, 2, 3, 4),), dict(axes=(1, 2, 0))),
                        Sample((_unit(rng, 3, 5),), label="reverse")],
           lambda x, axes=None: np.transpose(x, axes),
           lambda x, axes=None: x.permute(*(axes if axes is not None else
                                            range(x.ndim - 1, -1, -1)))),
    OpInfo("broadcast_to", F.broadcast_to,
           lambda rng: [Sample((_unit(rng, 3, 1),), dict(shape=(2, 3, 4)))],
           lambda x, shape: np.broadcast_to(x, shape),
           lambda x, shape: x.broadcast_to(shape)),
    OpInfo("sum_to", F.sum_to,
           lambda rng: [Sample((_unit(rng, 2, 3, 4),), dict(shape=(3, 1))),
                        Sample((_unit(rng, 2, 3),), dict(shape=(3,)), label="lead")],
           lambda x, shape: x.reshape((-1,) + x.shape[-len(shape):]).sum(0).sum(
               axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True
           ).reshape(shape),
           lambda x, shape: x.sum_to_size(shape) if len(shape) == x.ndim else
           x.sum(dim=tuple(range(x.ndim - len(shape)))).sum_to_size(shape)),
    OpInfo("concatenate", lambda a, b, axis=0: F.concatenate([a, b], axis),
           lambda rng: [Sample((_unit(rng, 2, 3), _unit(rng, 4, 3))),
                        Sample((_unit(rng, 2, 3), _unit(rng, 2, 1)), dict(axis=-1), label="last")],
           lambda a, b, axis=0: np.concatenate([a, b], axis),
           lambda a, b, axis=0: torch.cat([a, b], axis)),
    OpInfo("stack", lambda a, b, axis=0: F.stack([a, b], axis),
           lambda rng: [Sample((_unit(rng, 2, 3), _unit(rng, 2, 3))),
                        Sample((_unit(rng, 2, 3), _unit(rng, 2, 3)), dict(axis=-1), label="last")],
           lambda a, b, axis=0: np.stack([a, b], axis),
           lambda a, b, axis=0: torch.stack([a, b], axis)),
    OpInfo("pad", F.pad,
           lambda rng: [Sample((_unit(rng, 2, 3),), dict(pad_width=((1, 2), (0, 3)))),
                        Sample((_unit(rng, 2, 3),), dict(pad_width=1, value=0.5), label="int")],
           lambda x, pad_width, value=0.0: np.pad(x, pad_width, constant_values=value),
           lambda x, pad_width, value=0.0: torch.nn.functional.pad(
               x, [w for pair in reversed(np.broadcast_to(pad_width, (x.ndim, 2)).tolist())
                   for w in pair], value=value)),
    OpInfo("getitem", F.getitem,
           lambda rng: [Sample((_unit(rng, 4, 5),),
                               dict(index=(slice(1, None), slice(None, None, 2)))),
                        Sample((_unit(rng, 4, 5),), dict(index=([0, 2, 0],)), label="repeated"),
                        Sample((_unit(rng, 4, 5),), dict(index=(1, -1)), label="element")],
           lambda x, index: x[index],
           lambda x, index: x[tuple(torch.tensor(i) if isinstance(i, list) else i
                                    for i in index)]),
    OpInfo("matmul", F.matmul,
           lambda rng: [Sample((_unit(rng, 3, 4), _unit(rng, 4, 5))),
                        Sample((_unit(rng, 2, 3, 4), _unit(rng, 4, 2)), label="batched"),
                        Sample((_unit(rng, 4), _unit(rng, 4, 3)), label="vector-left"),
                        Sample((_unit(rng, 3, 4), _unit(rng, 4)), label="vector-right"),
                        Sample((_unit(rng, 5), _unit(rng, 5)), label="dot")],
           np.matmul, lambda a, b: a @ b),
    OpInfo("linear", F.linear,
           lambda rng: [Sample((_unit(rng, 5, 3), _unit(rng, 3, 4), _unit(rng, 4))),
                        Sample((_unit(rng, 2, 5, 3), _unit(rng, 3, 4), _unit(rng, 4)),
                               label="3d"),
                        Sample((_unit(rng, 5, 3), _unit(rng, 3, 2)), label="no-bias")],
           lambda x, w, b=None: x @ w + (0 if b is None else b),
           lambda x, w, b=None: torch.nn.functional.linear(x, w.T, b)),
]

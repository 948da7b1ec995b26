"""Registry entries of the loss ops.

The ops are taken from their module (``nervenet.functional`` re-exports the same functions).
Every loss takes the target first and the prediction second, and returns Keras's batch mean;
torch's ``reduction="mean"`` losses give the same numbers on inputs where Keras's probability
clipping (to [1e-7, 1 - 1e-7]) is inactive, which the samples ensure. Clipping itself is tested
by value in ``tests/autograd/test_loss.py``.
"""

from __future__ import annotations

import numpy as np

from nervenet.autograd.ops import loss as L
from tests.autograd.opinfo.base import OpInfo, Sample

try:  # the oracle is optional: the torch_op lambdas only run where it is installed
    import torch
    import torch.nn.functional as TF
except ImportError:
    torch = TF = None

SHAPES = [(4, 3), (2, 3, 5), (7,)]


def _unit(rng, *shape):
    return rng.uniform(-1.0, 1.0, shape)


def _regression_samples(rng, gap=0.0, avoid=None):
    """(y, p) pairs; the errors p - y stay ``gap`` away from 0 and from +-``avoid``."""
    samples = []
    for shape in [*SHAPES, ()]:
        y = _unit(rng, *shape)
        e = rng.uniform(gap, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
        if avoid is not None:
            close = np.abs(np.abs(e) - avoid) < 0.05
            e = np.where(close, e * 1.2, e)
        samples.append(Sample((y, np.asarray(y + e)), label=str(shape)))
    return samples


def _onehot(rng, shape):
    labels = rng.integers(0, shape[-1], shape[:-1])
    return np.eye(shape[-1])[labels]


def _soft(rng, shape):
    w = rng.uniform(0.1, 1.0, shape)
    return w / w.sum(axis=-1, keepdims=True)


# ------------------------------------------------------------------ samples


def _bce_samples(rng):
    out = []
    for shape in SHAPES:
        out.append(Sample((rng.uniform(0, 1, shape), rng.uniform(0.05, 0.95, shape)),
                          label=f"soft{shape}"))
    out.append(Sample((rng.integers(0, 2, (5, 2)), rng.uniform(0.05, 0.95, (5, 2))),
                      label="int-labels"))
    for shape in SHAPES:
        out.append(Sample((rng.uniform(0, 1, shape), rng.uniform(-6, 6, shape)),
                          dict(from_logits=True), label=f"logits{shape}"))
    out.append(Sample((rng.integers(0, 2, (5, 2)), np.array([[-30.0, 30.0]] * 5)),
                      dict(from_logits=True), label="logits-saturated"))
    return out


def _cce_samples(rng):
    out = []
    for from_logits in (False, True):
        make = (lambda r, s: r.uniform(-4, 4, s)) if from_logits else (
            lambda r, s: r.uniform(0.1, 1.0, s))  # unnormalized: the loss normalizes
        tag = "logits" if from_logits else "probs"
        kwargs = dict(from_logits=True) if from_logits else {}
        out += [
            Sample((_onehot(rng, (4, 5)), make(rng, (4, 5))), dict(kwargs), label=f"{tag}"),
            Sample((_soft(rng, (4, 5)), make(rng, (4, 5))), dict(kwargs), label=f"{tag}-soft"),
            Sample((rng.uniform(0, 1, (3, 4)), make(rng, (3, 4))), dict(kwargs),
                   label=f"{tag}-unnormalized-targets"),
            Sample((_onehot(rng, (2, 3, 4)), make(rng, (2, 3, 4))), dict(kwargs),
                   label=f"{tag}-3d"),
            Sample((_onehot(rng, (6,)), make(rng, (6,))), dict(kwargs), label=f"{tag}-1d"),
        ]
    return out


def _scce_samples(rng):
    out = []
    for from_logits in (False, True):
        make = (lambda r, s: r.uniform(-4, 4, s)) if from_logits else (
            lambda r, s: r.uniform(0.1, 1.0, s))
        tag = "logits" if from_logits else "probs"
        kwargs = dict(from_logits=True) if from_logits else {}
        out += [
            Sample((rng.integers(0, 5, 4), make(rng, (4, 5))), dict(kwargs), label=tag),
            Sample((rng.integers(0, 3, (6, 1)), make(rng, (6, 3))), dict(kwargs),
                   label=f"{tag}-n1"),
            Sample((rng.integers(0, 4, (2, 3)), make(rng, (2, 3, 4))), dict(kwargs),
                   label=f"{tag}-3d"),
        ]
    return out


def _hinge_samples(rng):
    def scores(shape):  # |p| stays 0.05 away from 1, the kink of max(1 - y p, 0)
        p = rng.uniform(-2.5, 2.5, shape)
        return np.where(np.abs(np.abs(p) - 1) < 0.05, p * 1.2, p)

    return [
        Sample((rng.choice([-1.0, 1.0], (4, 3)), scores((4, 3))), label="pm1"),
        Sample((rng.choice([0.0, 1.0], (2, 3, 5)), scores((2, 3, 5))), label="01"),
        Sample((rng.choice([-1.0, 1.0], 7), scores(7)), label="1d"),
    ]


# ------------------------------------------------------------------ references


def _hinge_labels(y):
    return 2 * y - 1 if np.all((y == 0) | (y == 1)) else y


def _bce_ref(y, p, from_logits=False):
    if from_logits:
        return np.mean(np.logaddexp(0, p) - p * y)
    q = np.clip(p, 1e-7, 1 - 1e-7)
    return -np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))


def _cce_ref(y, p, from_logits=False):
    if from_logits:
        m = p.max(axis=-1, keepdims=True)
        log_q = p - m - np.log(np.exp(p - m).sum(axis=-1, keepdims=True))
    else:
        log_q = np.log(np.clip(p / p.sum(axis=-1, keepdims=True), 1e-7, 1 - 1e-7))
    return np.mean(-(y * log_q).sum(axis=-1))


def _scce_ref(labels, p, from_logits=False):
    labels = labels.reshape(p.shape[:-1])
    return _cce_ref(np.eye(p.shape[-1])[labels], p, from_logits)


# ------------------------------------------------------------------ torch equivalents


def _classes_first(t):
    """(N, ..., C) -> (N, C, ...), torch's layout for cross_entropy."""
    return t.movedim(-1, 1) if t.ndim > 2 else t


def _bce_torch(y, p, from_logits=False):
    y = y.to(p.dtype)
    if from_logits:
        return TF.binary_cross_entropy_with_logits(p, y)
    return TF.binary_cross_entropy(p, y)


def _cce_torch(y, p, from_logits=False):
    logits = p if from_logits else torch.log(p)  # log_softmax(log p) = log(p / sum p)
    return TF.cross_entropy(_classes_first(logits), _classes_first(y))


def _scce_torch(labels, p, from_logits=False):
    logits = p if from_logits else torch.log(p)
    return TF.cross_entropy(_classes_first(logits), labels.reshape(p.shape[:-1]))


def _hinge_torch(y, p):
    y = 2 * y - 1 if bool(((y == 0) | (y == 1)).all()) else y
    return torch.clamp(1 - y * p, min=0).mean()


OPS = [
    OpInfo("mse", L.mse, _regression_samples, lambda y, p: np.mean((p - y) ** 2),
           lambda y, p: TF.mse_loss(p, y)),
    OpInfo("mae", L.mae, lambda rng: _regression_samples(rng, gap=0.05),
           lambda y, p: np.mean(np.abs(p - y)), lambda y, p: TF.l1_loss(p, y),
           kinks="p = y: errors stay >= 0.05 away"),
    OpInfo("huber", L.huber,
           lambda rng: [*_regression_samples(rng, avoid=1.0),
                        *[Sample(s.args, dict(delta=0.5), label=f"delta{s.label}")
                          for s in _regression_samples(rng, avoid=0.5)]],
           lambda y, p, delta=1.0: np.mean(np.where(np.abs(p - y) <= delta, 0.5 * (p - y) ** 2,
                                                    delta * (np.abs(p - y) - 0.5 * delta))),
           lambda y, p, delta=1.0: TF.huber_loss(p, y, delta=delta),
           kinks="|p - y| = delta (second derivative jumps): errors stay 0.05 away"),
    OpInfo("hinge", L.hinge, _hinge_samples,
           lambda y, p: np.mean(np.maximum(1 - _hinge_labels(y) * p, 0)), _hinge_torch,
           differentiable=(1,),
           kinks="y p = 1: scores keep | |p| - 1 | >= 0.05; labels are not differentiated"),
    OpInfo("binary_cross_entropy", L.binary_cross_entropy, _bce_samples, _bce_ref, _bce_torch,
           kinks="probabilities at the clipping bounds 1e-7 and 1 - 1e-7: samples stay in "
                 "[0.05, 0.95]"),
    OpInfo("categorical_cross_entropy", L.categorical_cross_entropy, _cce_samples, _cce_ref,
           _cce_torch,
           kinks="normalized probabilities at the clipping bounds: samples stay inside"),
    OpInfo("sparse_categorical_cross_entropy", L.sparse_categorical_cross_entropy,
           _scce_samples, _scce_ref, _scce_torch,
           kinks="normalized probabilities at the clipping bounds: samples stay inside; "
                 "integer labels are not differentiated"),
]

"""Specific tests of the loss ops (the generic registry suites live in test_ops.py)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import nervenet
from nervenet.autograd.ops import loss as L
from tests.scripts import ROOT, load_script

EPS = 1e-7


def _value_and_grads(fn, *args, **kwargs):
    tensors = [nervenet.Tensor(np.array(a), requires_grad=np.asarray(a).dtype.kind == "f")
               for a in args]
    loss = fn(*tensors, **kwargs)
    loss.backward()
    return loss.data, [t.grad for t in tensors]


# ------------------------------------------------------------------ logits: exact, no clipping


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_from_logits_is_exact_at_minus_100(dtype):
    y = np.array([1.0], dtype=dtype)
    x = nervenet.Tensor(np.array([-100.0], dtype=dtype), requires_grad=True)
    loss = L.binary_cross_entropy(y, x, from_logits=True)
    loss.backward()
    assert loss.dtype == dtype and x.grad.dtype == dtype
    assert loss.item() == 100.0
    assert x.grad.tolist() == [-1.0]
    # and the mirror case; clipping after a sigmoid would give -ln(1e-7) = 16.1 and gradient 0
    x = nervenet.Tensor(np.array([100.0, -100.0], dtype=dtype), requires_grad=True)
    loss = L.binary_cross_entropy(np.array([0.0, 1.0]), x, from_logits=True)
    loss.backward()
    assert loss.item() == 100.0
    assert x.grad.tolist() == [0.5, -0.5]


def test_bce_from_logits_hessian_is_exact():
    # d^2 L / dx^2 = sigmoid(x) (1 - sigmoid(x)) / n on the diagonal: Newton's method needs it.
    x = nervenet.Tensor(np.array([-2.0, 0.5, 3.0]), requires_grad=True)
    y = np.array([0.0, 1.0, 0.3])
    (g,) = nervenet.grad(L.binary_cross_entropy(y, x, from_logits=True), x, create_graph=True)
    s = 1 / (1 + np.exp(-x.data))
    np.testing.assert_allclose(g.data, (s - y) / 3, rtol=1e-14)
    hessian = np.stack([nervenet.grad(g[i], x, retain_graph=True)[0].data for i in range(3)])
    np.testing.assert_allclose(hessian, np.diag(s * (1 - s) / 3), rtol=1e-13, atol=1e-17)


@pytest.mark.parametrize("sparse", [False, True])
def test_softmax_cross_entropy_hessian_is_exact(sparse):
    # For logits x of one sample and a one-hot y: dL/dx = s - y, d^2L/dx^2 = diag(s) - s s^T.
    rng = np.random.default_rng(0)
    x = nervenet.Tensor(rng.normal(size=(2, 4)), requires_grad=True)
    labels = np.array([2, 0])
    y = np.eye(4)[labels]
    if sparse:
        loss = L.sparse_categorical_cross_entropy(labels, x, from_logits=True)
    else:
        loss = L.categorical_cross_entropy(y, x, from_logits=True)
    (g,) = nervenet.grad(loss, x, create_graph=True)
    e = np.exp(x.data - x.data.max(axis=1, keepdims=True))
    s = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(g.data, (s - y) / 2, rtol=1e-13)
    for row in range(2):
        hessian = np.stack([nervenet.grad(g[row, j], x, retain_graph=True)[0].data[row]
                            for j in range(4)])
        expected = (np.diag(s[row]) - np.outer(s[row], s[row])) / 2
        np.testing.assert_allclose(hessian, expected, rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("sparse", [False, True])
def test_softmax_cross_entropy_huge_logits(sparse):
    for dtype, big in [(np.float32, 1e4), (np.float64, 1e300)]:
        x = np.array([[big, -big, 0.0], [0.0, big, -big]], dtype=dtype)
        labels = np.array([1, 1])
        with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise"):
            warnings.simplefilter("error")
            if sparse:
                value, (_, gx) = _value_and_grads(
                    lambda t, u: L.sparse_categorical_cross_entropy(labels, u, from_logits=True),
                    np.zeros(2), x)
            else:
                value, (_, gx) = _value_and_grads(
                    lambda t, u: L.categorical_cross_entropy(t, u, from_logits=True),
                    np.eye(3, dtype=dtype)[labels], x)
        assert value.dtype == dtype and gx.dtype == dtype
        assert np.isfinite(value) and np.all(np.isfinite(gx))
        # row 0 puts logit -big on the true class: loss 2 big; row 1 is right: loss 0
        np.testing.assert_allclose(value, big, rtol=1e-6)
        np.testing.assert_allclose(gx, [[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]], atol=1e-7)


# ------------------------------------------------------------------ probabilities: clipped


def test_probability_losses_are_finite_at_0_and_1():
    p = np.array([[0.0, 1.0], [1.0, 0.0]])
    y = np.array([[0.0, 1.0], [0.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bce, (_, gp) = _value_and_grads(L.binary_cross_entropy, y, p)
        cce, (_, gq) = _value_and_grads(L.categorical_cross_entropy, y, p)
        scce, (gs,) = _value_and_grads(
            lambda q: L.sparse_categorical_cross_entropy(np.array([1, 1]), q), p)
    # Keras: clip to [eps, 1 - eps]; the right answers cost -ln(1 - eps), the wrong -ln(eps)
    # (1 - eps is rounded, and 1 - (1 - eps) is not quite eps: computed as Keras computes it)
    high = 1 - EPS
    right, wrong = -math.log(high), -math.log(EPS)
    bce_expected = (-math.log(1 - EPS) - math.log(high) - math.log(1 - high) - math.log(EPS)) / 4
    np.testing.assert_allclose(bce, bce_expected, rtol=1e-14)
    np.testing.assert_allclose(cce, (right + wrong) / 2, rtol=1e-12)
    np.testing.assert_allclose(scce, (right + wrong) / 2, rtol=1e-12)
    for g in (gp, gq, gs):
        # clipped entries get no gradient (as Keras's clip)
        np.testing.assert_array_equal(g, np.zeros_like(p))


def test_probability_losses_float32_at_0_and_1():
    p = np.array([[0.0, 1.0, 0.0]], dtype=np.float32)
    y = np.array([[1.0, 0.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for loss in (L.binary_cross_entropy(y, p), L.categorical_cross_entropy(y, p),
                     L.sparse_categorical_cross_entropy([0], p)):
            assert loss.dtype == np.float32 and np.isfinite(loss.item())
    np.testing.assert_allclose(L.categorical_cross_entropy(y, p).item(), -math.log(EPS),
                               rtol=1e-6)


def test_categorical_normalizes_probabilities_first():
    # Keras 3 divides by the row sum before clipping: unnormalized scores are fine
    p = np.array([[1.0, 3.0], [2.0, 2.0]])
    y = np.array([[0.0, 1.0], [1.0, 0.0]])
    expected = -(math.log(0.75) + math.log(0.5)) / 2
    assert L.categorical_cross_entropy(y, p).item() == pytest.approx(expected, rel=1e-15)
    assert L.sparse_categorical_cross_entropy([1, 0], p).item() == pytest.approx(expected,
                                                                                 rel=1e-15)


def test_sparse_equals_categorical_with_one_hot():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 5, (3, 4))
    p = rng.uniform(0.05, 1, (3, 4, 5))
    y = np.eye(5)[labels]
    for from_logits in (False, True):
        a, (_, ga) = _value_and_grads(
            lambda t, u: L.categorical_cross_entropy(t, u, from_logits=from_logits), y, p)
        b, (gb,) = _value_and_grads(
            lambda u: L.sparse_categorical_cross_entropy(labels, u, from_logits=from_logits), p)
        np.testing.assert_allclose(b, a, rtol=1e-14)
        np.testing.assert_allclose(gb, ga, rtol=1e-12, atol=1e-17)
    # (N, 1) labels and integral float labels are accepted as Keras does
    c = L.sparse_categorical_cross_entropy(labels.reshape(3, 4, 1), p).item()
    d = L.sparse_categorical_cross_entropy(labels.astype(np.float32), p).item()
    assert c == d == L.sparse_categorical_cross_entropy(labels, p).item()


# ------------------------------------------------------------------ Keras semantics


def test_regression_losses_values():
    y = np.array([[0.0, 1.0], [2.0, -1.0]])
    p = np.array([[0.5, 3.0], [2.0, -1.25]])
    assert L.mse(y, p).item() == pytest.approx((0.25 + 4 + 0 + 0.0625) / 4, rel=1e-15)
    assert L.mae(y, p).item() == pytest.approx((0.5 + 2 + 0 + 0.25) / 4, rel=1e-15)
    # huber: 0.5 e^2 inside delta, delta (|e| - delta / 2) outside
    assert L.huber(y, p).item() == pytest.approx((0.125 + 1.5 + 0 + 0.03125) / 4, rel=1e-15)
    assert L.huber(y, p, delta=0.4).item() == pytest.approx(
        (0.4 * 0.3 + 0.4 * 1.8 + 0 + 0.03125) / 4, rel=1e-15)


def test_hinge_converts_0_1_labels_like_keras():
    p = np.array([[0.3, -2.0, 1.5]])
    a = L.hinge(np.array([[1.0, 0.0, 0.0]]), p).item()
    b = L.hinge(np.array([[1.0, -1.0, -1.0]]), p).item()
    assert a == b == pytest.approx((0.7 + 0 + 2.5) / 3)
    with pytest.raises(ValueError, match=r"hinge: y must hold labels in \{-1, 1\}.*got 0"):
        L.hinge(np.array([[1.0, -1.0, 0.0]]), p)
    with pytest.raises(ValueError, match="got 2"):
        L.hinge(np.array([[1.0, 2.0, 1.0]]), p)


def test_losses_average_over_last_axis_then_batch():
    # Keras: mean over the last axis, then over every other axis (sum_over_batch_size)
    rng = np.random.default_rng(5)
    y = rng.uniform(0, 1, (2, 3, 4))
    p = rng.uniform(0.1, 0.9, (2, 3, 4))
    per_sample = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(axis=-1)
    assert L.binary_cross_entropy(y, p).item() == pytest.approx(per_sample.mean(), rel=1e-14)
    q = p / p.sum(axis=-1, keepdims=True)
    per_sample = -(y * np.log(q)).sum(axis=-1)
    assert L.categorical_cross_entropy(y, p).item() == pytest.approx(per_sample.mean(),
                                                                     rel=1e-14)


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize("bad, message", [
    (np.array([0, 3, 1]), r"labels must be class indices in \[0, 3\) .*3 classes, got 3"),
    (np.array([0, -1, 1]), r"in \[0, 3\) .*got -1"),
    (np.array([0, 7, -2]), r"got -2"),
    (np.array([0.0, 1.5, 1.0]), r"labels must be integer class indices in \[0, 3\), got 1.5"),
    (np.array([0.0, np.nan, 1.0]), r"integer class indices .*got nan"),
    (np.array([0.0, np.inf, 1.0]), r"in \[0, 3\) .*got inf"),
])
@pytest.mark.parametrize("from_logits", [False, True])
def test_sparse_labels_are_validated(bad, message, from_logits):
    p = np.full((3, 3), 1 / 3)
    with pytest.raises(ValueError, match="sparse_categorical_cross_entropy: .*" + message):
        L.sparse_categorical_cross_entropy(bad, p, from_logits=from_logits)


def test_sparse_label_shape_and_dtype_errors():
    p = np.full((3, 4), 0.25)
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\) or \(3, 1\) for p of "
                                         r"shape \(3, 4\), got \(4,\)"):
        L.sparse_categorical_cross_entropy(np.zeros(4, int), p)
    with pytest.raises(TypeError, match="labels must be integer class indices, got dtype bool"):
        L.sparse_categorical_cross_entropy(np.zeros(3, bool), p)


@pytest.mark.parametrize("fn", [L.mse, L.mae, L.huber, L.hinge, L.binary_cross_entropy,
                                L.categorical_cross_entropy])
def test_shape_mismatch_names_both_shapes(fn):
    with pytest.raises(ValueError, match=r"must have the same shape, got y\w* \(4, 3\) and "
                                         r"p \(4, 2\)"):
        fn(np.ones((4, 3)), np.full((4, 2), 0.5))


def test_other_argument_errors():
    with pytest.raises(TypeError, match="binary_cross_entropy: from_logits must be True or"):
        L.binary_cross_entropy([1.0], [0.5], from_logits="yes")
    with pytest.raises(ValueError, match="huber: delta must be a positive number"):
        L.huber([1.0], [0.5], delta=0.0)
    with pytest.raises(ValueError, match="mse: p is empty"):
        L.mse(np.zeros((0, 3)), np.zeros((0, 3)))
    y = nervenet.Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(TypeError, match=r"mse: y requires a gradient.*float32.*float64"):
        L.mse(y, np.ones(3, np.float32))


# ------------------------------------------------------------------ dtypes


@pytest.mark.parametrize("fn, y, kwargs", [
    (L.mse, np.ones((4, 3)), {}),
    (L.mae, np.ones((4, 3)), {}),
    (L.huber, np.ones((4, 3)), {}),
    (L.hinge, np.ones((4, 3)), {}),
    (L.binary_cross_entropy, np.ones((4, 3)), {}),
    (L.binary_cross_entropy, np.ones((4, 3), int), dict(from_logits=True)),
    (L.categorical_cross_entropy, np.eye(3)[[0, 1, 2, 0]], {}),
    (L.categorical_cross_entropy, np.eye(3)[[0, 1, 2, 0]], dict(from_logits=True)),
    (L.sparse_categorical_cross_entropy, np.array([0, 1, 2, 0]), {}),
    (L.sparse_categorical_cross_entropy, np.array([0, 1, 2, 0]), dict(from_logits=True)),
])
def test_float32_predictions_give_float32_loss_and_gradient(fn, y, kwargs):
    # the float64 (or integer) targets are cast to the prediction's dtype, as Keras does
    p = nervenet.Tensor(np.random.default_rng(0).uniform(0.1, 0.9, (4, 3)).astype(np.float32),
                        requires_grad=True)
    loss = fn(y, p, **kwargs)
    assert loss.dtype == np.float32 and loss.shape == ()
    loss.backward()
    assert p.grad.dtype == np.float32


@pytest.mark.parametrize("name", ["mse", "mae", "huber", "hinge"])
def test_fused_regression_losses_equal_their_compositions(name):
    """mse, mae, huber and hinge stay fused ops for speed (bench/losses.py); the compositions
    of ops written out there give the same values and gradients."""
    fused, composed = load_script(ROOT / "bench" / "losses.py", "bench_losses").LOSSES[name]
    rng = np.random.default_rng(4)
    y = np.sign(rng.standard_normal((6, 3))) if name == "hinge" else rng.standard_normal((6, 3))
    p = rng.standard_normal((6, 3)) * 2
    results = []
    for fn in (fused, composed):
        pt = nervenet.Tensor(p, requires_grad=True)
        loss = fn(nervenet.Tensor(y), pt)
        loss.backward()
        results.append((loss.data, pt.grad))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-12, atol=1e-15)

"""Stable numerics, as properties (Hypothesis): losses from logits finite and exact at extreme
logits, probability-space losses finite at p in {0, 1} (clipped with epsilon 1e-7, as Keras),
softmax a distribution unchanged by a constant shift, batch-norm variance two-pass, batch size 1
and empty batches refused with a clear ValueError."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nervenet
import nervenet.functional as F
from nervenet import layers

FAST = settings(max_examples=60, deadline=None)
LIMIT = {np.float32: 1e4, np.float64: 1e300}


def logits(dtype):
    bound = LIMIT[dtype]
    return st.lists(st.floats(-bound, bound, allow_nan=False, width=64), min_size=2,
                    max_size=6).map(lambda v: np.array([v], dtype=dtype))


def exact_softmax_ce(z: np.ndarray, label: int) -> float:
    """log-sum-exp in float64 (big logits: shift by the maximum first)."""
    z = z.astype(np.float64)
    top = z.max()
    return float(top + np.log(np.exp(z - top).sum()) - z[label])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@FAST
@given(data=st.data())
def test_softmax_cross_entropy_from_logits_is_finite_and_exact(dtype, data):
    z = data.draw(logits(dtype))
    label = data.draw(st.integers(0, z.shape[1] - 1))
    onehot = np.eye(z.shape[1], dtype=dtype)[[label]]
    loss = float(F.categorical_cross_entropy(onehot, z, from_logits=True).data)
    sparse = float(F.sparse_categorical_cross_entropy(np.array([label]), z,
                                                      from_logits=True).data)
    expected = exact_softmax_ce(z[0], label)
    assert np.isfinite(loss) and np.isfinite(sparse)
    # exact up to the rounding the logits themselves carry: a few ulps of the largest one
    tolerance = max(1e-6 if dtype == np.float64 else 1e-5,
                    8 * float(np.finfo(dtype).eps) * float(np.abs(z).max()))
    assert loss == pytest.approx(expected, rel=tolerance, abs=tolerance)
    assert sparse == pytest.approx(expected, rel=tolerance, abs=tolerance)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@FAST
@given(data=st.data())
def test_sigmoid_bce_from_logits_is_finite_and_exact(dtype, data):
    x = data.draw(st.floats(-LIMIT[dtype], LIMIT[dtype], allow_nan=False))
    y = data.draw(st.sampled_from([0.0, 1.0, 0.25]))
    loss = float(F.binary_cross_entropy(np.array([[y]], dtype), np.array([[x]], dtype),
                                        from_logits=True).data)
    x64 = float(np.asarray(x, dtype))
    expected = max(x64, 0.0) - x64 * y + np.log1p(np.exp(-abs(x64)))  # the stable form
    assert np.isfinite(loss)
    tolerance = max(1e-6, 8 * float(np.finfo(dtype).eps) * abs(x64))
    assert loss == pytest.approx(expected, rel=1e-6, abs=tolerance)


def test_bce_at_logit_minus_100_with_label_1_is_100_with_gradient_minus_1():
    for dtype in (np.float32, np.float64):
        x = nervenet.Tensor(np.array([[-100.0]], dtype), requires_grad=True)
        loss = F.binary_cross_entropy(np.array([[1.0]], dtype), x, from_logits=True)
        loss.backward()
        assert float(loss.data) == pytest.approx(100.0, rel=1e-7)
        assert float(x.grad[0, 0]) == pytest.approx(-1.0, rel=1e-7)


@FAST
@given(st.lists(st.sampled_from([0.0, 1.0, 0.5, 1e-30, 1 - 1e-12]), min_size=1, max_size=8),
       st.lists(st.sampled_from([0.0, 1.0]), min_size=1, max_size=8))
def test_probability_space_losses_never_return_inf_or_nan(ps, ys):
    n = min(len(ps), len(ys))
    p = np.array(ps[:n], np.float32).reshape(n, 1)
    y = np.array(ys[:n], np.float32).reshape(n, 1)
    bce = float(F.binary_cross_entropy(y, p).data)
    # clipped at epsilon 1e-7 (as Keras): the worst case is -log(1e-7) = 16.118
    assert np.isfinite(bce) and bce <= -np.log(1e-7) + 1e-3
    two = np.concatenate([p, 1 - p], axis=1)
    onehot = np.concatenate([y, 1 - y], axis=1)
    cce = float(F.categorical_cross_entropy(onehot, two).data)
    assert np.isfinite(cce) and cce <= -np.log(1e-7) + 1e-3
    p_var = nervenet.Tensor(p, requires_grad=True)
    F.binary_cross_entropy(y, p_var).backward()
    assert np.all(np.isfinite(p_var.grad))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@FAST
@given(data=st.data())
def test_softmax_sums_to_one_and_ignores_a_constant_shift(dtype, data):
    z = data.draw(logits(dtype))
    shift = data.draw(st.floats(-100, 100))
    p = F.softmax(z).data
    assert np.all(np.isfinite(p)) and np.all(p >= 0)
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-6 if dtype == np.float64 else 1e-5)
    if np.abs(z).max() < 1e3:  # shifting huge logits loses their low bits in the input itself
        np.testing.assert_allclose(F.softmax(z + dtype(shift)).data, p,
                                   atol=1e-6 if dtype == np.float64 else 1e-5)


def test_batch_norm_variance_is_two_pass_at_mean_1e4():
    x = (np.random.default_rng(0).standard_normal((256, 4)) + 1e4).astype(np.float32)
    layer = layers.BatchNormalization()
    out = layer(x, training=True).data
    variance = x.astype(np.float64).var(axis=0)
    # normalized output variance = var / (var + epsilon); one-pass E[x^2] - E[x]^2 in float32
    # would be off by about 1e8 * 6e-8 = 6, relative error far above 1e-3
    np.testing.assert_allclose(out.astype(np.float64).var(axis=0),
                               variance / (variance + layer.epsilon), rtol=1e-3)


def test_batch_norm_training_with_batch_size_1_raises_a_clear_error():
    layer = layers.BatchNormalization()
    with pytest.raises(ValueError, match="batch of size 1.*at least 2"):
        layer(np.ones((1, 3), np.float32), training=True)
    assert layer(np.ones((1, 3), np.float32), training=False).shape == (1, 3)


@pytest.mark.parametrize("loss", [F.mse, F.mae, F.binary_cross_entropy,
                                  F.categorical_cross_entropy])
def test_mean_reduced_losses_refuse_an_empty_batch(loss):
    """The documented result for an empty batch: ValueError (the mean of nothing is not 0)."""
    with pytest.raises(ValueError, match="empty.*undefined"):
        loss(np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32))

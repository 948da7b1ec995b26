"""dropout and batch_norm beyond the generic registry suites: dropout's expectation and its
inference identity, batch statistics (per unit, per feature map, float32 with a large mean),
the statistics exposed for moving averages, inference with given statistics, bad input and
second derivatives against torch."""

from __future__ import annotations

import numpy as np
import pytest

import nervenet
from nervenet import layers
from nervenet.autograd.ops.activation import SELU_ALPHA, SELU_SCALE
from nervenet.autograd.ops.dropout import alpha_dropout, dropout, keep_mask
from nervenet.autograd.ops.norm import (
    BatchNorm,
    batch_norm,
    batch_norm_affine,
    batch_norm_training,
)
from tests.autograd.opinfo.conv import batch_norm_torch


@pytest.fixture
def rng():
    return np.random.default_rng(5)


# ------------------------------------------------------------------------------ dropout


def test_dropout_keeps_the_expectation():
    """Inverted dropout: E[y] = x. The mean over 200000 values of y (x = 1, rate 0.3) has
    standard deviation sqrt(rate / (1 - rate) / n) = 0.0015; the bound is 4 of them."""
    rate, n = 0.3, 200_000
    y = dropout(np.ones(n), rate, training=True, rng=0).data
    assert abs(y.mean() - 1.0) < 4 * np.sqrt(rate / (1 - rate) / n)
    dropped = (y == 0).mean()
    assert abs(dropped - rate) < 4 * np.sqrt(rate * (1 - rate) / n)
    np.testing.assert_allclose(y[y != 0], 1 / (1 - rate))


def test_dropout_in_training_equals_scaled_weights_at_test(rng):
    """The docstring's argument, numerically: averaged over masks, a dense layer fed by
    inverted dropout gives the plain layer's output; a non-inverted dropout would give the
    output of weights scaled by (1 - rate)."""
    rate = 0.4
    x, w = rng.random((1, 50)), rng.normal(size=(50, 3))
    draws = np.stack([dropout(x, rate, True, rng=seed).data[0] for seed in range(4000)])
    mean_output = (draws @ w).mean(axis=0)
    spread = (draws @ w).std(axis=0) / np.sqrt(len(draws))
    np.testing.assert_array_less(np.abs(mean_output - (x @ w)[0]), 5 * spread)
    not_inverted = draws * (1 - rate)  # keep / no scaling
    np.testing.assert_allclose(x @ (w * (1 - rate)), (not_inverted @ w).mean(axis=0,
                                                                            keepdims=True),
                               atol=5 * spread.max())


def test_dropout_is_the_identity_at_inference_and_for_rate_zero(rng):
    x = nervenet.Tensor(rng.normal(size=(3, 4)), requires_grad=True)
    assert dropout(x, 0.5, training=False) is x
    assert dropout(x, 0.0, training=True) is x


def test_dropout_gradient_uses_the_same_mask(rng):
    x = nervenet.Tensor(rng.uniform(1, 2, size=(20, 30)).astype(np.float32), requires_grad=True)
    y = dropout(x, 0.25, training=True, rng=7)
    y.backward(np.ones(y.shape, np.float32))
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, y.data / x.data, rtol=1e-6)
    assert set(np.unique(x.grad).tolist()) == {0.0, np.float32(1 / 0.75)}


def test_dropout_seeds(rng):
    x = rng.normal(size=(10, 10))
    a = dropout(x, 0.5, True, rng=1).data
    np.testing.assert_array_equal(a, dropout(x, 0.5, True, rng=1).data)
    np.testing.assert_array_equal(a, dropout(x, 0.5, True, rng=np.random.default_rng(1)).data)
    assert not np.array_equal(a, dropout(x, 0.5, True, rng=2).data)
    # float32 and float64 draw the same mask from the same seed
    np.testing.assert_array_equal(a == 0, dropout(x.astype(np.float32), 0.5, True, rng=1).data
                                  == 0)
    nervenet.backend.seed(9)
    b = dropout(x, 0.5, True).data
    nervenet.backend.seed(9)
    np.testing.assert_array_equal(b, dropout(x, 0.5, True).data)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, "0.5", None, True])
def test_dropout_rate_must_be_in_zero_one(rate):
    with pytest.raises(ValueError, match=r"dropout: rate must be a number in \[0, 1\)"):
        dropout(np.ones(3), rate, training=True)


def test_one_keep_mask_serves_dropout_spatial_dropout_alpha_dropout_and_the_layers():
    x = np.ones((6, 3, 3, 4), dtype=np.float32)
    keep = keep_mask(x.shape, 0.4, np.random.default_rng(11))
    np.testing.assert_array_equal(dropout(x, 0.4, True, rng=11).data != 0, keep)
    np.testing.assert_array_equal(layers.Dropout(0.4, seed=11)(x, training=True).data != 0, keep)
    spatial = keep_mask((6, 1, 1, 4), 0.4, np.random.default_rng(11))
    y = dropout(x, 0.4, True, rng=11, noise_shape=(None, 1, 1, None)).data
    np.testing.assert_array_equal(y != 0, np.broadcast_to(spatial, x.shape))
    alpha_p = -SELU_SCALE * SELU_ALPHA
    a = (0.6 * (1 + 0.4 * alpha_p ** 2)) ** -0.5
    for z in (alpha_dropout(x, 0.4, True, rng=11),
              layers.AlphaDropout(0.4, seed=11)(x, training=True)):
        kept = np.isclose(z.data, a - a * alpha_p * 0.4)      # a * x + b at x = 1
        np.testing.assert_array_equal(kept, keep)   # the same draw decides what is kept
    with pytest.raises(ValueError, match=r"alpha_dropout: noise_shape \(None, 2\) does not"):
        alpha_dropout(np.ones((3, 4)), 0.5, True, noise_shape=(None, 2))


# --------------------------------------------------------------------- batch statistics


def test_feature_map_statistics_are_per_channel_over_n_h_w(rng):
    x = rng.normal(size=(4, 5, 6, 3)) * [1.0, 2.0, 0.5] + [0.0, -3.0, 10.0]
    gamma, beta = np.array([1.0, 2.0, 0.5]), np.array([0.0, 1.0, -1.0])
    y, mean, var = batch_norm_training(x, gamma, beta, epsilon=1e-3)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 1, 2)), rtol=1e-12)
    np.testing.assert_allclose(var, x.var(axis=(0, 1, 2)), rtol=1e-12)  # biased: / (N*H*W)
    z = (y.data - beta) / gamma
    np.testing.assert_allclose(z.mean(axis=(0, 1, 2)), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.var(axis=(0, 1, 2)), var / (var + 1e-3), rtol=1e-12)


def test_dense_statistics_are_per_unit(rng):
    x = rng.normal(size=(8, 5))
    _, mean, var = batch_norm_training(x, np.ones(5), np.zeros(5))
    np.testing.assert_allclose(mean, x.mean(axis=0))
    np.testing.assert_allclose(var, x.var(axis=0))


def test_the_function_exposes_its_statistics(rng):
    x = nervenet.Tensor(rng.normal(size=(6, 2)), requires_grad=True)
    op = BatchNorm(axis=-1, epsilon=1e-3)
    op(x, nervenet.Tensor(np.ones(2)), nervenet.Tensor(np.zeros(2)))
    np.testing.assert_allclose(op.mean, x.data.mean(axis=0))
    np.testing.assert_allclose(op.var, x.data.var(axis=0))


def test_float32_statistics_with_a_large_mean_are_accurate():
    """Data with mean 1e4 and standard deviation 1 in float32: the two-pass (shifted)
    statistics keep the variance to a relative error below 1e-3."""
    rng = np.random.default_rng(0)
    x = (1e4 + rng.normal(size=(512, 8, 8, 4))).astype(np.float32)
    exact = x.astype(np.float64)
    y, mean, var = batch_norm_training(x, np.ones(4, np.float32), np.zeros(4, np.float32))
    assert y.dtype == mean.dtype == var.dtype == np.float32
    np.testing.assert_allclose(var, exact.var(axis=(0, 1, 2)), rtol=1e-3)
    np.testing.assert_allclose(mean, exact.mean(axis=(0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(y.data.std(axis=(0, 1, 2), dtype=np.float64),
                               np.sqrt(var / (var + 1e-3)), rtol=1e-3)


@pytest.mark.parametrize("shape", [(1, 3), (1, 1, 1, 3)])
def test_one_value_per_channel_is_rejected(shape):
    with pytest.raises(ValueError, match=r"more than one value per channel.*" +
                       str(shape).replace("(", r"\(").replace(")", r"\)")):
        batch_norm(np.ones(shape), np.ones(3), np.zeros(3))
    # inference needs no batch statistics: one sample is fine
    y = batch_norm(np.ones(shape), np.ones(3), np.zeros(3), mean=np.zeros(3), var=np.ones(3))
    assert y.shape == shape


def test_batch_norm_bad_input(rng):
    x = rng.normal(size=(4, 3))
    with pytest.raises(ValueError, match=r"gamma must have shape \(3,\).*got \(4,\)"):
        batch_norm(x, np.ones(4), np.zeros(3))
    with pytest.raises(ValueError, match=r"beta must have shape \(3,\)"):
        batch_norm(x, np.ones(3), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="give both mean and var"):
        batch_norm(x, np.ones(3), np.zeros(3), mean=np.zeros(3))
    with pytest.raises(ValueError, match=r"var must have shape \(3,\).*got \(2,\)"):
        batch_norm(x, np.ones(3), np.zeros(3), mean=np.zeros(3), var=np.ones(2))
    with pytest.raises(ValueError, match="axis must be an int"):
        batch_norm(x, np.ones(3), np.zeros(3), axis=2)
    with pytest.raises(ValueError, match="at least 2-D"):
        batch_norm(np.ones(3), np.ones(3), np.zeros(3))


# ------------------------------------------------------------------------------ inference


def test_inference_uses_the_given_statistics_and_folds_to_an_affine_map(rng):
    x = rng.normal(size=(5, 4, 4, 3)).astype(np.float32)
    gamma, beta = rng.uniform(0.5, 2, 3), rng.normal(size=3)
    mean, var = rng.normal(size=3), rng.uniform(0.5, 2, 3)
    tensors = [nervenet.Tensor(a.astype(np.float32), requires_grad=True)
               for a in (x, gamma, beta)]
    y = batch_norm(*tensors, mean=mean, var=var, epsilon=1e-3)
    assert y.dtype == np.float32  # the float64 statistics do not upcast
    scale = gamma / np.sqrt(var + 1e-3)
    np.testing.assert_allclose(y.data, scale * x + (beta - scale * mean), rtol=1e-5, atol=1e-5)
    y.backward(np.ones(y.shape, np.float32))
    np.testing.assert_allclose(tensors[0].grad, np.broadcast_to(scale, x.shape), rtol=1e-6)
    np.testing.assert_allclose(tensors[2].grad, np.full(3, 5 * 4 * 4.0))


def test_inference_fold_and_the_layer_share_one_affine_formula(rng):
    gamma, beta = rng.uniform(0.5, 2, 3), rng.normal(size=3)
    mean, var = rng.normal(size=3), rng.uniform(0.5, 2, 3)
    a, b = batch_norm_affine(gamma, beta, mean, var, epsilon=0.01)
    np.testing.assert_allclose(a.data, gamma / np.sqrt(var + 0.01), rtol=1e-14)
    np.testing.assert_allclose(b.data, beta - gamma * mean / np.sqrt(var + 0.01), rtol=1e-12)
    bn = layers.BatchNormalization(epsilon=0.01, dtype="float64")
    bn.build((None, 3))
    bn.set_weights([gamma, beta, mean, var])
    folded_a, folded_b = bn.folded_affine()
    np.testing.assert_array_equal(folded_a, a.data)
    np.testing.assert_array_equal(folded_b, b.data)
    x = rng.normal(size=(4, 3))
    np.testing.assert_allclose(bn(x).data, a.data * x + b.data, rtol=1e-14, atol=1e-15)


def test_training_over_one_replica_equals_plain_training(rng):
    x = rng.normal(size=(6, 2, 2, 3))
    gamma, beta = rng.uniform(0.5, 2, 3), rng.normal(size=3)
    y, mean, var = batch_norm_training(x, gamma, beta)
    y_sync, mean_sync, var_sync = batch_norm_training(x, gamma, beta,
                                                      sum_over_replicas=lambda a: a)
    np.testing.assert_allclose(y_sync.data, y.data, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mean_sync, mean, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(var_sync, var, rtol=1e-12)


# ------------------------------------------------------------------ second derivatives


@pytest.mark.parametrize("inference", [False, True])
def test_batch_norm_double_backward_matches_torch(rng, inference):
    torch = pytest.importorskip("torch")
    x, gamma, beta = rng.normal(size=(6, 2, 3, 3)), rng.uniform(0.5, 1.5, 3), rng.normal(size=3)
    stats = dict(mean=rng.normal(size=3), var=rng.uniform(0.5, 2, 3)) if inference else {}
    ours = [nervenet.Tensor(a, requires_grad=True) for a in (x, gamma, beta)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, gamma, beta)]
    y = batch_norm(*ours, **stats)
    ty = batch_norm_torch(*theirs, **{k: torch.tensor(v) for k, v in stats.items()})
    upstream = rng.normal(size=y.shape)
    gx, gg = nervenet.grad(y, ours[:2], upstream, create_graph=True)
    tgx, tgg = torch.autograd.grad(ty, theirs[:2], torch.tensor(upstream), create_graph=True)
    np.testing.assert_allclose(gx.data, tgx.detach().numpy(), rtol=1e-9, atol=1e-12)
    vx, vg = rng.normal(size=x.shape), rng.normal(size=3)
    second = nervenet.grad((gx * vx).sum() + (gg * vg).sum(), ours, allow_unused=True)
    tsecond = torch.autograd.grad((tgx * torch.tensor(vx)).sum() + (tgg * torch.tensor(vg)).sum(),
                                  theirs, allow_unused=True)
    for got, expected in zip(second, tsecond):
        if expected is None:
            assert got is None or not np.any(got.data)
        else:
            np.testing.assert_allclose(got.data, expected.numpy(), rtol=1e-8, atol=1e-10)

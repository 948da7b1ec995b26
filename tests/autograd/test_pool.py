"""Pooling beyond the generic registry suites: ties in max pooling (the first maximum gets
the gradient, as torch), "same" padding, stochastic pooling's sampling frequencies and its
inference average, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import nervenet
from nervenet.autograd.ops.pool import avg_pool2d, max_pool2d, stochastic_pool2d
from tests.autograd.opinfo.conv import avg_pool2d_reference, max_pool2d_torch


@pytest.fixture
def rng():
    return np.random.default_rng(11)


def _grad(op, x, upstream=None, **kwargs):
    x = nervenet.Tensor(x, requires_grad=True)
    y = op(x, **kwargs)
    y.backward(np.ones(y.shape, x.dtype) if upstream is None else upstream)
    return y, x.grad


# ------------------------------------------------------------------------- max pooling


def test_ties_send_the_gradient_to_the_first_maximum_only():
    x = np.array([[0.0, 3.0, 3.0, 1.0],
                  [3.0, 3.0, 2.0, 2.0],
                  [5.0, 5.0, 5.0, 5.0],
                  [5.0, 5.0, 5.0, 7.0]]).reshape(1, 4, 4, 1)
    y, g = _grad(max_pool2d, x)
    np.testing.assert_array_equal(y.data[0, :, :, 0], [[3.0, 3.0], [5.0, 7.0]])
    np.testing.assert_array_equal(g[0, :, :, 0], [[0, 1, 1, 0],
                                                  [0, 0, 0, 0],
                                                  [1, 0, 0, 0],
                                                  [0, 0, 0, 1]])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kwargs", [dict(), dict(pool_size=3, strides=1),
                                    dict(pool_size=3, strides=2, padding="same")])
def test_ties_on_a_blank_background_match_torch(rng, dtype, kwargs):
    """MNIST-like feature maps: most windows are constant (every output equals its bias after
    ReLU), so nearly every window is a tie."""
    torch = pytest.importorskip("torch")
    x = np.zeros((2, 12, 10, 3))
    x[:, 3:8, 2:7, :] = rng.random((2, 5, 5, 3))
    x += np.array([0.1, 0.0, 0.25])  # a bias per channel
    x = x.astype(dtype)
    upstream = rng.normal(size=max_pool2d(x, **kwargs).shape).astype(dtype)
    y, g = _grad(max_pool2d, x, upstream, **kwargs)
    tx = torch.tensor(x, requires_grad=True)
    ty = max_pool2d_torch(tx, **kwargs)
    ty.backward(torch.tensor(upstream))
    np.testing.assert_array_equal(y.data, ty.detach().numpy())
    # the same cells receive gradient (overlapping windows add in another order: rounding)
    np.testing.assert_array_equal(g != 0, tx.grad.numpy() != 0)
    single = dtype == np.float32
    np.testing.assert_allclose(g, tx.grad.numpy(), rtol=1e-5 if single else 1e-13,
                               atol=1e-6 if single else 1e-15)
    # every window sends its whole gradient to one cell: nothing is split or duplicated
    assert np.isclose(g.sum(), upstream.sum(), rtol=1e-5)


def test_same_padding_is_minus_infinity():
    x = -np.arange(1.0, 10.0).reshape(1, 3, 3, 1)  # all negative: a zero pad would win
    y = max_pool2d(x, padding="same")
    np.testing.assert_array_equal(y.data[0, :, :, 0], [[-1.0, -3.0], [-7.0, -9.0]])


def test_max_pool_second_derivative_is_a_gather(rng):
    """The backward is a scatter of gy to the argmax cells: linear in gy (its derivative with
    respect to gy gathers at those cells) and locally constant in x (zero curvature)."""
    x = nervenet.Tensor(rng.permutation(36).reshape(1, 6, 6, 1) * 1.0, requires_grad=True)
    y = max_pool2d(x, pool_size=3, strides=2, padding="same")
    upstream = nervenet.Tensor(rng.normal(size=y.shape), requires_grad=True)
    (g,) = nervenet.grad(y, x, upstream, create_graph=True)
    v = rng.normal(size=x.shape)
    gx, gu = nervenet.grad((g * v).sum(), [x, upstream], allow_unused=True)
    assert gx is None or not np.any(gx.data)
    padded = np.pad(x.data[0, :, :, 0], ((0, 1), (0, 1)), constant_values=-np.inf)
    for i in range(3):
        for j in range(3):
            window = padded[2 * i:2 * i + 3, 2 * j:2 * j + 3]
            p, q = np.unravel_index(np.argmax(window), window.shape)
            assert gu.data[0, i, j, 0] == v[0, 2 * i + p, 2 * j + q, 0]


# ------------------------------------------------------------------------- avg pooling


def test_same_average_excludes_the_padding():
    x = np.arange(1.0, 26.0).reshape(1, 5, 5, 1)
    y = avg_pool2d(x, pool_size=2, padding="same")
    # last column of windows holds one real column; the corner holds one real cell
    np.testing.assert_allclose(y.data[0, :, :, 0], [[4.0, 6.0, 7.5],
                                                    [14.0, 16.0, 17.5],
                                                    [21.5, 23.5, 25.0]])
    _, g = _grad(avg_pool2d, x, pool_size=2, padding="same")
    np.testing.assert_allclose(g[0, :, :, 0], [[0.25] * 4 + [0.5]] * 4 + [[0.5] * 4 + [1.0]])


def test_overlapping_average_gradient_adds_up(rng):
    x = rng.normal(size=(1, 5, 5, 2))
    _, g = _grad(avg_pool2d, x, pool_size=3, strides=1)
    # the centre cell is in all 9 windows, a corner in one
    np.testing.assert_allclose(g[0, 2, 2], [1.0, 1.0])
    np.testing.assert_allclose(g[0, 0, 0], [1 / 9, 1 / 9])
    np.testing.assert_allclose(avg_pool2d(x, 3, 1).data, avg_pool2d_reference(x, 3, 1))


# --------------------------------------------------------------------- bad input, dtypes


@pytest.mark.parametrize("op", [max_pool2d, avg_pool2d])
def test_pooling_bad_input(op, rng):
    with pytest.raises(ValueError, match=r"x must be 4-D images.*\(4, 4, 1\)"):
        op(rng.normal(size=(4, 4, 1)))
    with pytest.raises(ValueError, match="padding must be 'valid' or 'same'"):
        op(rng.normal(size=(1, 4, 4, 1)), padding=1)
    with pytest.raises(ValueError, match="pool_size must be a positive int"):
        op(rng.normal(size=(1, 4, 4, 1)), pool_size=0)
    with pytest.raises(ValueError, match=r"window \(5, 5\) is larger than the padded input"):
        op(rng.normal(size=(1, 4, 4, 1)), pool_size=5)


@pytest.mark.parametrize("op", [max_pool2d, avg_pool2d])
def test_pooling_keeps_float32(op, rng):
    y, g = _grad(op, rng.normal(size=(2, 5, 5, 3)).astype(np.float32), padding="same")
    assert y.dtype == np.float32 and g.dtype == np.float32


# --------------------------------------------------------------------- stochastic pooling


def test_stochastic_sampling_frequencies_match_the_probabilities():
    """Every 2x2 window holds (1, 2, 3, 4) somewhere: p = (0.1, 0.2, 0.3, 0.4). Pearson's
    chi-square over 30000 windows stays below 16.27, the 0.999 quantile for 3 degrees of
    freedom (fixed seed: the test is deterministic)."""
    rng = np.random.default_rng(0)
    n = 30000
    values = np.array([1.0, 2.0, 3.0, 4.0])
    order = rng.permuted(np.tile(np.arange(4), (n, 1)), axis=1)  # shuffle positions too
    x = values[order].reshape(n, 1, 1, 2, 2).transpose(0, 1, 3, 2, 4).reshape(n, 2, 2, 1)
    y = stochastic_pool2d(x, 2, rng=123, training=True)
    counts = np.array([(y.data == v).sum() for v in values])
    assert counts.sum() == n
    expected = n * values / values.sum()
    chi_square = ((counts - expected) ** 2 / expected).sum()
    assert chi_square < 16.27, (counts, expected)


def test_stochastic_never_draws_a_zero_and_all_zero_windows_give_zero():
    x = np.zeros((500, 2, 2, 2))
    x[:, 0, 1, 0] = 2.0
    x[:, 1, 0, 0] = 0.5  # channel 0: two non-zero cells; channel 1: all zero
    y, g = _grad(stochastic_pool2d, x, pool_size=2, rng=5, training=True)
    assert set(np.unique(y.data[..., 0])) == {0.5, 2.0}
    np.testing.assert_array_equal(y.data[..., 1], 0.0)
    # the gradient goes to the drawn cell only
    drawn_first = y.data[:, 0, 0, 0] == 2.0
    np.testing.assert_array_equal(g[:, 0, 1, 0], drawn_first)
    np.testing.assert_array_equal(g[:, 1, 0, 0], ~drawn_first)
    assert g.sum() == 1000  # one cell per window, the all-zero ones included
    assert 0.7 < drawn_first.mean() < 0.9  # p = 0.8


def test_stochastic_inference_is_the_probability_weighted_average(rng):
    x = rng.random((2, 6, 4, 3))
    x[0, :2, :2, 0] = 0.0  # one all-zero window
    y, g = _grad(stochastic_pool2d, x, pool_size=2, rng=None, training=False)
    windows = x.reshape(2, 3, 2, 2, 2, 3).transpose(0, 1, 3, 5, 2, 4).reshape(2, 3, 2, 3, 4)
    total = windows.sum(-1)
    expected = np.where(total > 0, (windows ** 2).sum(-1) / np.where(total > 0, total, 1), 0)
    np.testing.assert_allclose(y.data, expected, rtol=1e-12)
    assert y.data[0, 0, 0, 0] == 0.0 and np.all(np.isfinite(g))
    np.testing.assert_array_equal(g[0, :2, :2, 0], 0.0)
    # d/da_i (sum a^2 / sum a) = (2 a_i S1 - S2) / S1^2
    a = x[1, 2:4, 0:2, 1].ravel()
    s1, s2 = a.sum(), (a * a).sum()
    np.testing.assert_allclose(g[1, 2:4, 0:2, 1].ravel(), (2 * a * s1 - s2) / s1 ** 2)


def test_stochastic_seeds_and_generators(rng):
    x = rng.random((4, 6, 6, 2))
    first = stochastic_pool2d(x, 2, rng=42, training=True).data
    np.testing.assert_array_equal(first, stochastic_pool2d(x, 2, rng=42, training=True).data)
    generator_draw = stochastic_pool2d(x, 2, rng=np.random.default_rng(42), training=True)
    np.testing.assert_array_equal(first, generator_draw.data)
    assert not np.array_equal(first, stochastic_pool2d(x, 2, rng=43, training=True).data)
    nervenet.backend.seed(3)
    again = stochastic_pool2d(x, 2, rng=None, training=True).data
    nervenet.backend.seed(3)
    np.testing.assert_array_equal(again, stochastic_pool2d(x, 2, rng=None, training=True).data)


def test_stochastic_rejects_negative_input(rng):
    x = rng.random((1, 4, 4, 1))
    x[0, 1, 2, 0] = -0.25
    for training in (True, False):
        with pytest.raises(ValueError, match="non-negative.*-0.25"):
            stochastic_pool2d(x, 2, rng=0, training=training)


def test_stochastic_keeps_float32(rng):
    for training in (True, False):
        y, g = _grad(stochastic_pool2d, rng.random((2, 4, 4, 3)).astype(np.float32),
                     pool_size=2, rng=0, training=training)
        assert y.dtype == np.float32 and g.dtype == np.float32

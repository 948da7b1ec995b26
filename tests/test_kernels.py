"""The array kernels (nervenet.kernels) against the plain NumPy expressions they replace."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nervenet.functional as F
from nervenet import kernels
from nervenet.kernels import ConvGeometry
from nervenet.kernels.elementwise import ROW
from nervenet.kernels.window import SMALL_KERNEL


@pytest.fixture
def rng():
    return np.random.default_rng(7)


# ------------------------------------------------------------------ erf and erfc


def _reference_points():
    return np.concatenate([
        np.linspace(-6, 6, 24001), np.linspace(-27, 27, 5401), np.geomspace(1e-300, 1e-3, 200),
        -np.geomspace(1e-300, 1e-3, 200),
        [0.0, 0.46875, np.nextafter(0.46875, 1), 4.0, np.nextafter(4.0, 5), -4.0, 26.0],
    ])


def test_erf_matches_math_erf():
    x = _reference_points()
    got = kernels.erf(x)
    expected = np.array([math.erf(v) for v in x])
    nonzero = expected != 0
    relative = np.abs(got - expected)[nonzero] / np.abs(expected[nonzero])
    assert relative.max() < 2e-15, relative.max()
    assert np.all(got[~nonzero] == 0)


def test_erfc_matches_math_erfc_deep_in_the_tail():
    x = _reference_points()
    got = kernels.erfc(x)
    expected = np.array([math.erfc(v) for v in x])
    normal = expected > 1e-300  # below that math.erfc itself is subnormal
    relative = np.abs(got - expected)[normal] / expected[normal]
    assert relative.max() < 4e-15, relative.max()
    assert kernels.erfc(27.5) == 0


def test_erf_special_values_and_float32():
    assert kernels.erf(np.array([np.inf, -np.inf])).tolist() == [1.0, -1.0]
    assert kernels.erfc(np.array([np.inf, -np.inf])).tolist() == [0.0, 2.0]
    assert np.isnan(kernels.erf(np.nan)) and np.isnan(kernels.erfc(np.nan))
    x = np.linspace(-5, 5, 1001).astype(np.float32)
    got = kernels.erf(x)
    assert got.dtype == np.float32
    expected = np.array([math.erf(v) for v in x.astype(np.float64)])
    np.testing.assert_allclose(got, expected, rtol=5e-7, atol=1e-7)
    assert kernels.erf(np.array([0, 1])).dtype == np.float64


# ------------------------------------------------------------------ relu and the masked gradient

SPECIAL = [-0.0, 0.0, np.nan, -np.nan, np.inf, -np.inf, 1e-40, -1e-40, 2.5, -2.5]


def bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [0, 10, ROW, 3 * ROW + 10])
def test_relu_array_is_bitwise_numpy_maximum(dtype, size):
    """The row-of-zeros path (contiguous, at least one row) and the scalar path give exactly
    np.maximum(x, 0): signed zeros, NaN and subnormals included."""
    x = np.random.default_rng(1).standard_normal(size).astype(dtype)
    if size:
        x[:10], x[-10:] = SPECIAL, SPECIAL
    for array in (x, x[::2], x.reshape(1, -1, 1) if size else x):
        got = kernels.relu(array)
        assert got.dtype == dtype and got.shape == array.shape
        np.testing.assert_array_equal(bits(got), bits(np.maximum(array, 0)))
        expected, again = np.maximum(array, 0), array.copy()
        assert kernels.relu(again, out=again) is again  # in place (a captured step's rewrite)
        np.testing.assert_array_equal(bits(again), bits(expected))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_all_finite_is_the_elementwise_test(dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 30)).astype(dtype)
    largest = float(np.finfo(dtype).max)
    assert kernels.all_finite(x) and kernels.all_finite(x[:, ::3]) and kernels.all_finite(x[:0])
    x[5, 7] = largest  # finite, but its square overflows: the exact test decides
    assert kernels.all_finite(x)
    with np.errstate(over="ignore"):
        assert kernels.squared_norm(x) > largest
        x[5, 7] = 0
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[39, 29] = bad
        assert not kernels.all_finite(y) and not kernels.all_finite(y.T)
        assert math.isnan(kernels.squared_norm(y))


# ------------------------------------------------------------------ window geometry and convolution


@pytest.mark.parametrize("size, window, stride, expected", [
    (28, 3, 1, (1, 1)), (28, 3, 2, (0, 1)), (7, 2, 2, (0, 1)), (7, 3, 2, (1, 1)),
    (5, 1, 2, (0, 0)), (4, 5, 1, (2, 2)), (6, 2, 1, (0, 1)), (5, 4, 3, (1, 1)),
])
def test_same_padding_follows_tensorflow(size, window, stride, expected):
    assert kernels.same_padding(size, window, stride) == expected
    before, after = expected
    assert (size + before + after - window) // stride + 1 == math.ceil(size / stride)


def test_im2col_rows_are_receptive_fields(rng):
    x = rng.normal(size=(2, 5, 6, 3))
    geometry = ConvGeometry.build(x.shape, (2, 3), (2, 1), "valid", "test")
    cols = kernels.im2col(x, geometry)
    assert cols.shape == (2 * 2 * 4, 2 * 3 * 3)
    # row of (n=1, i=1, j=2): rows 2..3, columns 2..4 of image 1, flattened as (p, q, c)
    np.testing.assert_array_equal(cols[1 * 8 + 1 * 4 + 2], x[1, 2:4, 2:5, :].reshape(-1))
    one_channel = x[..., :1]
    geometry = ConvGeometry.build(one_channel.shape, (2, 3), (2, 1), "valid", "test")
    np.testing.assert_array_equal(kernels.im2col(one_channel, geometry)[1 * 8 + 1 * 4 + 2],
                                  one_channel[1, 2:4, 2:5, :].reshape(-1))


@pytest.mark.parametrize("kernel", [(3, 3, 1, 32), (2, 1, 3, 2), (3, 3, 32, 64)])
@pytest.mark.parametrize("with_forward_cols", [False, True])
def test_weight_gradient_of_small_and_large_kernels_equals_the_sum(rng, kernel,
                                                                   with_forward_cols):
    """dW[p, q, c, o] = sum_{n, i, j} x[n, i + p, j + q, c] gy[n, i, j, o], whether computed
    as per-sample products (kernels of at most SMALL_KERNEL weights) or as one product."""
    kh, kw, c, o = kernel
    x = rng.normal(size=(3, 9, 8, c))
    geometry = ConvGeometry.build(x.shape, (kh, kw), (1, 1), "valid", "test")
    ho, wo = geometry.output_hw
    gy = rng.normal(size=(3, ho, wo, o))
    cols = kernels.im2col(x, geometry, bias_column=True) if with_forward_cols else None
    got = kernels.conv_weight_grad(x, gy, geometry, cols)
    expected = np.zeros(kernel)
    for p in range(kh):
        for q in range(kw):
            expected[p, q] = np.einsum("nijc,nijo->co", x[:, p:p + ho, q:q + wo], gy)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert (kh * kw * c * o <= SMALL_KERNEL) == (kernel != (3, 3, 32, 64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(4, 6, 5, 3), (2, 7, 3), (9, 4), (0, 3, 2, 5), (2, 1, 1, 1)])
def test_channel_sum_is_the_sum_over_every_axis_but_the_last(dtype, shape):
    g = np.random.default_rng(3).standard_normal(shape).astype(dtype)
    got = kernels.channel_sum(g)
    assert got.dtype == dtype and got.shape == shape[-1:]
    expected = g.astype(np.float64).reshape(-1, shape[-1]).sum(axis=0)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)


# ------------------------------------------------------------------ sums


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(32, 300), (256, 10), (1, 5), (0, 4), (7, 1), (5000, 3)])
def test_column_sums_by_product_equal_numpy(dtype, shape):
    x = np.random.default_rng(5).standard_normal(shape).astype(dtype)
    got = kernels.sum_rows(x)
    assert got.dtype == dtype and got.shape == shape[1:]
    np.testing.assert_allclose(got, x.sum(axis=0), rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-5 if dtype == np.float32 else 1e-12)
    for keepdims in (False, True):
        y = F.sum(x, axis=0, keepdims=keepdims)
        assert y.dtype == dtype and y.shape == x.sum(axis=0, keepdims=keepdims).shape


def test_column_sums_of_integers_and_booleans_keep_numpy_semantics():
    ints = np.arange(12, dtype=np.int32).reshape(4, 3)
    np.testing.assert_array_equal(kernels.sum_rows(ints), ints.sum(axis=0))
    assert kernels.sum_rows(ints).dtype == ints.sum(axis=0).dtype
    flags = np.array([[True, False], [True, True]])
    np.testing.assert_array_equal(kernels.sum_rows(flags), [2, 1])




def test_sum_to_undoes_broadcasting_and_rejects_what_it_cannot(rng):
    x = rng.normal(size=(4, 3, 5))
    np.testing.assert_allclose(kernels.sum_to(x, (3, 1)), x.sum(axis=(0, 2))[:, None])
    np.testing.assert_allclose(kernels.sum_to(x, ()), x.sum())
    assert kernels.sum_to(x, x.shape) is x
    with pytest.raises(ValueError, match="cannot sum"):
        kernels.sum_to(x, (1, 4, 3, 5))


# ------------------------------------------------------------------ the other elementwise kernels


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masked_gradient_is_the_product_with_the_mask(rng, dtype):
    gy = rng.normal(size=(6, 7)).astype(dtype)
    mask = rng.random((6, 7)) > 0.5
    got = kernels.masked(gy, mask)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, gy * mask.astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_stable_at_both_ends(dtype):
    z = np.array([-1000.0, -30.0, 0.0, 2.0, 1000.0], dtype=dtype)
    with np.errstate(over="raise"):
        got = kernels.sigmoid(z)
    assert got.dtype == dtype
    expected = [0.0, 1 / (1 + math.exp(30.0)), 0.5, 1 / (1 + math.exp(-2.0)), 1.0]
    np.testing.assert_allclose(got, expected, rtol=1e-6 if dtype == np.float32 else 1e-15)
    assert kernels.sigmoid(np.array(0.0, dtype)).shape == ()


def test_log_softmax_and_softmax_do_not_overflow(rng):
    x = rng.normal(size=(3, 5)) * 1e3
    log_probs, probs = kernels.log_softmax_and_softmax(x)
    shifted = x - x.max(axis=-1, keepdims=True)
    expected = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    np.testing.assert_allclose(log_probs, expected, rtol=1e-12)
    np.testing.assert_allclose(probs, np.exp(expected), rtol=1e-12)


@pytest.mark.parametrize("transpose_a", [False, True])
@pytest.mark.parametrize("transpose_b", [False, True])
def test_matmul_flags_transpose_the_last_two_axes(rng, transpose_a, transpose_b):
    a, b = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 4, 5))
    a_in = a.swapaxes(-1, -2).copy() if transpose_a else a
    b_in = b.swapaxes(-1, -2).copy() if transpose_b else b
    np.testing.assert_allclose(kernels.matmul(a_in, b_in, transpose_a, transpose_b), a @ b,
                               rtol=1e-12)


# ------------------------------------------------------------------ pooling kernels


def test_max_and_argmax_pick_the_first_maximum_of_each_window(rng):
    x = rng.integers(0, 3, size=(2, 6, 6, 3)).astype(np.float64)  # many ties
    geometry = ConvGeometry.build(x.shape, (2, 3), (2, 3), "valid", "test")
    y, argmax = kernels.max_and_argmax(x, geometry, with_argmax=True)
    windows = x.reshape(2, 3, 2, 2, 3, 3).transpose(0, 1, 3, 2, 4, 5).reshape(2, 3, 2, 6, 3)
    np.testing.assert_array_equal(y, windows.max(axis=3))
    np.testing.assert_array_equal(argmax, windows.argmax(axis=3))  # NumPy: the first maximum


@pytest.mark.parametrize("stride", [1, 2])
def test_scatter_and_gather_are_adjoint_and_so_are_window_mean_and_spread(rng, stride):
    """<scatter(g), x> = <g, gather(x)> for the same picked cells, and likewise for the window
    mean and its spread: each backward is the transpose of its forward."""
    x = rng.normal(size=(2, 5, 5, 3))
    geometry = ConvGeometry.build(x.shape, (2, 2), (stride, stride), "same", "test")
    ho, wo = geometry.output_hw
    g = rng.normal(size=(2, ho, wo, 3))
    picked = rng.integers(0, 4, size=g.shape).astype(np.uint8)
    np.testing.assert_allclose(np.vdot(kernels.scatter(g, picked, geometry), x),
                               np.vdot(g, kernels.gather(x, picked, geometry)), rtol=1e-12)
    np.testing.assert_allclose(np.vdot(kernels.spread(g, geometry), x),
                               np.vdot(g, kernels.window_mean(x, geometry)), rtol=1e-12)

"""Specific tests of the activation ops (the generic registry suites live in test_ops.py)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import nervenet
from nervenet.autograd.ops import activation as A
from tests.test_kernels import SPECIAL, bits

# ------------------------------------------------------------------ step


def test_step_values_and_zero_convention():
    x = np.array([-2.0, -0.0, 0.0, 1e-30, 3.0])
    np.testing.assert_array_equal(A.step(x).data, [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(A.step(x, low=-1.0).data, [-1, -1, -1, 1, 1])
    np.testing.assert_array_equal(A.step(x, low=-1.0, at_zero=0.0).data, [-1, 0, 0, 1, 1])
    np.testing.assert_array_equal(A.step(x, low=0.0, high=1.0, at_zero=0.5).data,
                                  [0, 0.5, 0.5, 1, 1])
    np.testing.assert_array_equal(A.step(x, low=2.0, high=5.0).data, [2, 2, 2, 5, 5])


def test_step_agrees_with_the_perceptron_decision_rule():
    # scikit-learn's Perceptron predicts class 1 iff the decision function is > 0 (a net input
    # of exactly 0 gives class 0): step with the default at_zero = low.
    decision = np.array([-1.5, 0.0, 0.25, 0.0, 2.0, -0.0])
    np.testing.assert_array_equal(A.step(decision).data, (decision > 0).astype(float))
    np.testing.assert_array_equal(A.step(decision, low=-1.0).data,
                                  np.where(decision > 0, 1.0, -1.0))


def test_step_matches_sklearn_perceptron():
    linear_model = pytest.importorskip("sklearn.linear_model")
    clf = linear_model.Perceptron()
    clf.fit(np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([0, 1]))
    clf.coef_ = np.array([[1.0, -1.0]])
    clf.intercept_ = np.array([0.0])
    x = np.array([[1.0, 1.0], [2.0, 1.0], [1.0, 2.0], [3.0, 3.0]])  # decisions 0, 1, -1, 0
    decision = x @ clf.coef_[0] + clf.intercept_[0]
    np.testing.assert_array_equal(A.step(decision).data, clf.predict(x))


def test_step_gradient_is_zero_and_dtype_kept():
    x = nervenet.Tensor(np.array([-1.0, 2.0, 0.5], dtype=np.float32), requires_grad=True)
    y = A.step(x)
    assert y.dtype == np.float32
    (y * np.array([3.0, 4.0, 5.0], np.float32)).sum().backward()
    np.testing.assert_array_equal(x.grad, np.zeros(3, np.float32))
    assert x.grad.dtype == np.float32
    assert A.step(np.array([-1, 0, 2])).dtype == nervenet.backend.floatx()


# ------------------------------------------------------------------ stability


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_stable_for_large_inputs(dtype):
    x = np.array([-1e4, -800.0, -100.0, -30.0, 0.0, 30.0, 100.0, 800.0, 1e4], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        t = nervenet.Tensor(x, requires_grad=True)
        y = A.sigmoid(t, a=2.0)
        y.sum().backward()
    assert y.dtype == dtype and t.grad.dtype == dtype
    assert np.all(np.isfinite(y.data)) and np.all(np.isfinite(t.grad))
    assert y.data[0] == 0 and y.data[-1] == 1 and y.data[4] == 0.5
    assert np.all(np.diff(y.data) >= 0)
    # deep in the left tail the value keeps its relative accuracy (no 1 - (1 - tiny))
    expected = 1 / (1 + math.exp(60.0))
    assert abs(float(y.data[3]) - expected) <= 1e-6 * expected


def test_sigmoid_slope():
    x = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(A.sigmoid(x, a=3.0).data, 1 / (1 + np.exp(-3.0 * x)),
                               rtol=1e-15)
    assert A.sigmoid(x, a=0.0).data.tolist() == [0.5] * 13


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_sums_to_one_and_is_shift_invariant(dtype):
    rng = np.random.default_rng(0)
    # multiples of 1/64, so that x + 1000 is exact in float32 too
    x = (np.round(rng.normal(0, 3, (5, 7)) * 64) / 64).astype(dtype)
    y = A.softmax(x).data
    assert y.dtype == dtype
    np.testing.assert_allclose(y.sum(axis=-1), 1, rtol=1e-6 if dtype == np.float32 else 1e-14)
    # the max is subtracted first, so a shift changes nothing, to the last bit
    np.testing.assert_array_equal(A.softmax(x + dtype(1000)).data, y)
    np.testing.assert_array_equal(A.softmax(x - dtype(1000)).data, y)
    y0 = A.softmax(x, axis=0).data
    np.testing.assert_allclose(y0.sum(axis=0), 1, rtol=1e-6)


@pytest.mark.parametrize("fn", [A.softmax, A.log_softmax])
def test_softmax_no_nan_for_huge_float32_logits(fn):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4]], dtype=np.float32)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        t = nervenet.Tensor(x, requires_grad=True)
        y = fn(t)
        (y * np.arange(9, dtype=np.float32).reshape(3, 3)).sum().backward()
    assert y.dtype == np.float32 and t.grad.dtype == np.float32
    assert np.all(np.isfinite(y.data)) and np.all(np.isfinite(t.grad))
    if fn is A.softmax:
        np.testing.assert_allclose(y.data, [[1, 0, 0], [1 / 3] * 3, [0.5, 0.5, 0]], rtol=1e-6)
    else:
        np.testing.assert_allclose(y.data[0], [0.0, -2e4, -1e4], rtol=1e-6)
        np.testing.assert_allclose(y.data[1], [-math.log(3)] * 3, rtol=1e-6)


def test_log_softmax_is_finite_where_log_of_softmax_is_not():
    x = np.array([0.0, 800.0])
    np.testing.assert_array_equal(A.log_softmax(x).data, [-800.0, 0.0])
    p = A.softmax(x).data
    assert p[0] == 0.0  # log(softmax) would be -inf here
    x = np.random.default_rng(1).normal(size=(4, 6))
    np.testing.assert_allclose(A.log_softmax(x).data, np.log(A.softmax(x).data), rtol=1e-14)


def test_softmax_hessian_is_exact():
    # d^2 (v . softmax(x)) / dx^2 against the closed form, for one row.
    rng = np.random.default_rng(2)
    x = nervenet.Tensor(rng.normal(size=5), requires_grad=True)
    v = rng.normal(size=5)
    s = A.softmax(x.data).data
    (g,) = nervenet.grad((A.softmax(x) * v).sum(), x, create_graph=True)
    # g_i = s_i (v_i - s.v); dg_i/dx_j = d_ij s_i (v_i - s.v) - s_i s_j (v_i - s.v) - s_i s_j (v_j
    # - s.v)
    w = v - s @ v
    expected = np.diag(s * w) - np.outer(s * w, s) - np.outer(s, s * w)
    hessian = np.stack([nervenet.grad(g[i], x, retain_graph=True)[0].data for i in range(5)])
    np.testing.assert_allclose(hessian, expected, rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------ erf and GELU


def test_gelu_tails_and_exact_derivative():
    x = np.array([-30.0, -10.0, -3.0, 0.0, 2.0, 10.0])
    expected = [v * 0.5 * math.erfc(-v / math.sqrt(2)) for v in x]
    # erfc(z) has condition number 2 z^2: at x = -30 (z = 21) the last-bit rounding of x/sqrt(2)
    # alone moves the value by 1e-13 relative, in any implementation.
    np.testing.assert_allclose(A.gelu(x).data, expected, rtol=5e-13, atol=0)
    np.testing.assert_allclose(A.gelu(x[2:]).data, expected[2:], rtol=4e-15, atol=0)
    t = nervenet.Tensor(x, requires_grad=True)
    A.gelu(t).sum().backward()
    pdf = np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    cdf = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in x])
    np.testing.assert_allclose(t.grad, cdf + x * pdf, rtol=1e-13, atol=1e-300)


def test_gelu_approximate_spellings():
    x = np.linspace(-3, 3, 7)
    np.testing.assert_array_equal(A.gelu(x, approximate=True).data,
                                  A.gelu(x, approximate="tanh").data)
    np.testing.assert_array_equal(A.gelu(x).data, A.gelu(x, approximate="none").data)
    assert np.abs(A.gelu(x, approximate=True).data - A.gelu(x).data).max() < 1e-3
    with pytest.raises(TypeError, match="gelu: approximate"):
        A.gelu(x, approximate="fast")


@pytest.mark.parametrize("create_graph", [False, True])
def test_relu_gradient_is_exactly_gy_where_x_is_positive(create_graph):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 16, 16, 41)).astype(np.float32)  # 3 rows of zeros and a rest
    x.reshape(-1)[:10] = SPECIAL
    gy = rng.standard_normal(x.shape).astype(np.float32)
    xt = nervenet.Tensor(x, requires_grad=True)
    (gx,) = nervenet.grad(A.relu(xt), [xt], gy, create_graph=create_graph)
    assert gx.dtype == np.float32
    np.testing.assert_array_equal(bits(gx.data), bits(gy * (x > 0)))


def test_relu_keeps_no_mask_when_no_gradient_is_needed():
    x = nervenet.Tensor(np.ones(4, dtype=np.float32))
    y = A.relu(x)
    assert y.creator is None and not y.requires_grad


# ------------------------------------------------------------------ kinks and details


def test_derivatives_at_the_kinks_follow_torch():
    x = nervenet.Tensor(np.zeros(3), requires_grad=True)
    A.relu(x).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0]
    x = nervenet.Tensor(np.zeros(2), requires_grad=True)
    A.leaky_relu(x, alpha=0.2).sum().backward()
    assert x.grad.tolist() == [0.2, 0.2]
    x = nervenet.Tensor(np.zeros(2), requires_grad=True)
    A.elu(x, alpha=0.5).sum().backward()
    assert x.grad.tolist() == [0.5, 0.5]


def test_elu_selu_values():
    x = np.array([-50.0, -1.0, 0.0, 2.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = A.elu(x, alpha=0.5).data
        z = A.selu(x).data
    np.testing.assert_allclose(y, [0.5 * np.expm1(-50.0), 0.5 * np.expm1(-1.0), 0, 2, 1000])
    np.testing.assert_allclose(z, A.SELU_SCALE * np.where(x > 0, x, A.SELU_ALPHA * np.expm1(
        np.minimum(x, 0))), rtol=1e-15)


def test_softplus_and_mish_do_not_overflow():
    x = np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0], dtype=np.float32)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise"):
        warnings.simplefilter("error")
        sp = A.softplus(x).data
        mi = A.mish(x).data
    np.testing.assert_allclose(sp, [0.0, math.exp(-40.0), math.log(2), 40.0, 1000.0],
                               rtol=1e-6, atol=0)
    np.testing.assert_allclose(mi, x * np.tanh(sp), rtol=1e-6)
    assert mi[-1] == 1000.0 and mi[0] == 0.0


def test_prelu_alpha_gradient_is_summed_over_broadcast_axes():
    x = nervenet.Tensor(np.array([[-1.0, 2.0], [-3.0, -4.0], [5.0, -6.0]]), requires_grad=True)
    alpha = nervenet.Tensor(np.array([0.1, 0.2]), requires_grad=True)
    y = A.prelu(x, alpha)
    np.testing.assert_allclose(y.data, [[-0.1, 2.0], [-0.3, -0.8], [5.0, -1.2]])
    y.sum().backward()
    np.testing.assert_allclose(alpha.grad, [-4.0, -10.0])
    np.testing.assert_allclose(x.grad, [[0.1, 1.0], [0.1, 0.2], [1.0, 0.2]])
    with pytest.raises(ValueError, match=r"prelu: alpha must broadcast .*\(3, 2\).*\(3,\)"):
        A.prelu(x, np.ones(3))


def test_maxout_groups_consecutive_features():
    x = np.arange(12.0).reshape(2, 6) * np.array([1, -1, 1, -1, 1, -1])
    # groups of 3: (0, -1, 2) (-3, 4, -5) / (6, -7, 8) (-9, 10, -11)
    np.testing.assert_array_equal(A.maxout(x, 2).data, [[2, 4], [8, 10]])
    # groups of 2
    np.testing.assert_array_equal(A.maxout(x, 3).data, [[0, 2, 4], [6, 8, 10]])
    t = nervenet.Tensor(x, requires_grad=True)
    A.maxout(t, 2).sum().backward()
    np.testing.assert_array_equal(t.grad, [[0, 0, 1, 0, 1, 0], [0, 0, 1, 0, 1, 0]])


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"maxout: the last axis of x \(size 5.*num_units=2"):
        A.maxout(np.ones((3, 5)), 2)
    with pytest.raises(ValueError, match="maxout: num_units must be a positive int"):
        A.maxout(np.ones((3, 4)), 0)
    with pytest.raises(ValueError, match="softmax: axis 2 is out of range"):
        A.softmax(np.ones((3, 4)), axis=2)
    with pytest.raises(TypeError, match="log_softmax: axis must be an int"):
        A.log_softmax(np.ones((3, 4)), axis=1.0)
    with pytest.raises(TypeError, match="leaky_relu: alpha must be a real number"):
        A.leaky_relu(np.ones(3), alpha="0.1")
    with pytest.raises(TypeError, match="sigmoid: a must be a real number"):
        A.sigmoid(np.ones(3), a=None)
    with pytest.raises(ValueError, match="step: high must be finite"):
        A.step(np.ones(3), high=math.inf)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "softmax", "log_softmax", "gelu",
                                  "elu", "selu", "swish", "mish", "softplus", "leaky_relu"])
def test_integer_input_becomes_floatx_and_float64_is_kept(name):
    fn = getattr(A, name)
    assert fn(np.array([[1, -2, 3]])).dtype == nervenet.backend.floatx()
    assert fn(np.array([[1.0, -2.0, 3.0]])).dtype == np.float64

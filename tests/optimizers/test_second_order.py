"""Newton, conjugate gradients, BFGS and L-BFGS reach scipy.optimize's optimum."""

from __future__ import annotations

import numpy as np
import pytest

import nervenet
import nervenet.functional as F
from nervenet import optimizers

scipy_optimize = pytest.importorskip("scipy.optimize")

METHODS = {
    "newton": lambda: optimizers.Newton(tol=1e-9),
    "cg-polak-ribiere": lambda: optimizers.ConjugateGradient("polak_ribiere", tol=1e-9),
    "cg-fletcher-reeves": lambda: optimizers.ConjugateGradient("fletcher_reeves", tol=1e-9),
    "bfgs": lambda: optimizers.BFGS(tol=1e-9),
    "lbfgs": lambda: optimizers.LBFGS(tol=1e-9),
    "lbfgs-short-history": lambda: optimizers.LBFGS(history_size=3, tol=1e-9),
}


def _logistic_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 5))
    logits = x @ rng.standard_normal(5) + 0.5
    y = (rng.random(200) < 1 / (1 + np.exp(-logits))).astype(np.float64)
    return x, y, 0.1


def _logistic_numpy(theta, x, y, lam):
    w, b = theta[:-1], theta[-1]
    z = x @ w + b
    return np.mean(np.logaddexp(0.0, z) - y * z) + lam / 2 * w @ w


def _logistic_numpy_grad(theta, x, y, lam):
    w, b = theta[:-1], theta[-1]
    r = (1 / (1 + np.exp(-(x @ w + b))) - y) / len(y)
    return np.concatenate([x.T @ r + lam * w, [r.sum()]])


def _logistic_nervenet(x, y, lam, dtype=np.float64):
    w = nervenet.Tensor(np.zeros(x.shape[1], dtype=dtype), requires_grad=True)
    b = nervenet.Tensor(np.zeros(1, dtype=dtype), requires_grad=True)
    x, y = x.astype(dtype), y.astype(dtype)

    def loss():
        z = F.matmul(x, w) + b
        softplus = F.maximum(z, 0.0) + F.log(1.0 + F.exp(-F.abs(z)))   # log(1 + e^z), stable
        return (softplus - y * z).mean() + (lam / 2) * (w * w).sum()

    return w, b, loss


def _rosenbrock(x):
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


@pytest.fixture(scope="module")
def logistic_reference():
    x, y, lam = _logistic_data()
    result = scipy_optimize.minimize(_logistic_numpy, np.zeros(6), args=(x, y, lam),
                                     jac=_logistic_numpy_grad, method="BFGS",
                                     options={"gtol": 1e-12})
    assert np.abs(_logistic_numpy_grad(result.x, x, y, lam)).max() < 1e-8
    return result.x


@pytest.mark.parametrize("name", sorted(METHODS))
def test_logistic_regression_reaches_scipy_optimum(name, logistic_reference):
    x, y, lam = _logistic_data()
    w, b, loss = _logistic_nervenet(x, y, lam)
    result = METHODS[name]().minimize(loss, [w, b])
    assert result.converged, result.message
    np.testing.assert_allclose(np.concatenate([w.data, b.data]), logistic_reference, atol=1e-5)
    assert result.fun == pytest.approx(_logistic_numpy(logistic_reference, x, y, lam), rel=1e-10)
    assert result.fun == pytest.approx(float(loss().data))   # params hold the final point
    assert result.history[0] == pytest.approx(np.log(2)) and len(result.history) == result.nit + 1
    # monotone, up to the rounding noise the line search tolerates near the minimum
    assert all(a >= b - 1e-13 for a, b in zip(result.history, result.history[1:]))


def test_newton_needs_fewer_than_ten_iterations_on_the_convex_problem(logistic_reference):
    x, y, lam = _logistic_data()
    w, b, loss = _logistic_nervenet(x, y, lam)
    result = optimizers.Newton(tol=1e-10).minimize(loss, [w, b])
    assert result.converged and result.nit < 10
    np.testing.assert_allclose(np.concatenate([w.data, b.data]), logistic_reference, atol=1e-8)


@pytest.mark.parametrize("start", [[-1.2, 1.0], [2.0, -1.5], [-1.2, 1.0, -1.2, 1.0],
                                   [1.5, -0.5, 0.8, 2.0]])
@pytest.mark.parametrize("name", sorted(METHODS))
def test_rosenbrock_reaches_scipy_optimum(name, start):
    start = np.array(start)
    reference = scipy_optimize.minimize(scipy_optimize.rosen, start, jac=scipy_optimize.rosen_der,
                                        method="BFGS", options={"gtol": 1e-12}).x
    point = nervenet.Tensor(start.copy(), requires_grad=True)
    result = METHODS[name]().minimize(lambda: _rosenbrock(point), [point])
    assert result.converged, result.message
    np.testing.assert_allclose(point.data, reference, atol=1e-5)
    assert result.nit > 0 and result.nfev >= result.nit


def test_newton_uses_the_exact_hessian():
    """On a quadratic 1/2 x^T A x - c^T x one full Newton step lands on A^-1 c."""
    rng = np.random.default_rng(3)
    m = rng.standard_normal((4, 4))
    a = m @ m.T + 4 * np.eye(4)
    c = rng.standard_normal(4)
    x = nervenet.Tensor(np.zeros(4), requires_grad=True)
    result = optimizers.Newton(tol=1e-12).minimize(
        lambda: 0.5 * (x * F.matmul(a, x)).sum() - (x * c).sum(), [x])
    assert result.nit == 1
    np.testing.assert_allclose(x.data, np.linalg.solve(a, c), rtol=1e-12)


def test_newton_escapes_a_saddle():
    """At a point where the Hessian is indefinite the modified Hessian still gives descent."""
    p = nervenet.Tensor(np.array([0.5, 0.1]), requires_grad=True)
    # x^2 - y^2 + y^4 / 2: saddle at 0, minima at (0, +-1)
    result = optimizers.Newton().minimize(
        lambda: p[0] ** 2 - p[1] ** 2 + 0.5 * p[1] ** 4, [p])
    assert result.converged
    np.testing.assert_allclose(p.data, [0.0, 1.0], atol=1e-7)


def test_float32_parameters_stay_float32(logistic_reference):
    x, y, lam = _logistic_data()
    w, b, loss = _logistic_nervenet(x, y, lam, dtype=np.float32)
    result = optimizers.LBFGS(tol=1e-5).minimize(loss, [w, b])
    assert w.dtype == np.float32 and b.dtype == np.float32
    assert result.converged
    np.testing.assert_allclose(np.concatenate([w.data, b.data]), logistic_reference, atol=1e-3)


def test_nan_loss_at_the_start_is_a_clear_error():
    x = nervenet.Tensor(np.array([-1.0, 2.0]), requires_grad=True)
    for method in METHODS.values():
        with pytest.raises(FloatingPointError, match="returned nan at the starting point"), \
                np.errstate(invalid="ignore"):
            method().minimize(lambda: F.log(x).sum(), [x])
    np.testing.assert_array_equal(x.data, [-1.0, 2.0])


def test_nan_everywhere_along_the_direction_is_a_clear_error():
    x = nervenet.Tensor(np.array([1.0]), requires_grad=True)
    calls = []

    def loss():
        calls.append(1)
        value = (x * x).sum()
        return value if len(calls) == 1 else value * float("nan")

    with pytest.raises(FloatingPointError, match="NaN or inf at every trial point"):
        optimizers.BFGS().minimize(loss, [x])
    assert np.isfinite(x.data).all()


def test_a_nan_region_is_backtracked_out_of():
    """-log(2 - x) + x^2 is NaN beyond x = 2; a long first step there is simply shortened."""
    x = nervenet.Tensor(np.array([-3.0]), requires_grad=True)
    with np.errstate(invalid="ignore"):
        result = optimizers.Newton(line_search="armijo").minimize(
            lambda: (x * x).sum() - F.log(2.0 - x).sum() + 10.0 * x.sum(), [x])
    assert result.converged
    # stationary point: 2x + 1/(2 - x) + 10 = 0, the root below 2
    root = ((-6.0) - np.sqrt(36.0 + 4 * (20.0 + 1.0) / 2 * 2)) / 2
    assert np.isfinite(x.data).all()
    assert 2 * x.data[0] + 1 / (2 - x.data[0]) + 10 == pytest.approx(0.0, abs=1e-6)
    assert x.data[0] < 2.0 and np.isfinite(root)


def test_callback_sees_each_iteration_and_can_stop():
    point = nervenet.Tensor(np.array([-1.2, 1.0]), requires_grad=True)
    seen = []

    def callback(nit, loss):
        seen.append((nit, loss, point.data.copy()))
        return nit == 5

    result = optimizers.LBFGS().minimize(lambda: _rosenbrock(point), [point], callback)
    assert [s[0] for s in seen] == [1, 2, 3, 4, 5]
    assert result.nit == 5 and not result.converged and "callback" in result.message
    np.testing.assert_array_equal(point.data, seen[-1][2])
    assert result.fun == seen[-1][1] == result.history[-1]


def test_max_iter_is_respected():
    point = nervenet.Tensor(np.array([-1.2, 1.0]), requires_grad=True)
    result = optimizers.ConjugateGradient(max_iter=3).minimize(lambda: _rosenbrock(point), [point])
    assert result.nit == 3 and not result.converged and "max_iter" in result.message


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_iter"):
        optimizers.LBFGS(max_iter=0)
    with pytest.raises(ValueError, match="tol"):
        optimizers.BFGS(tol=-1.0)
    with pytest.raises(ValueError, match="history_size"):
        optimizers.LBFGS(history_size=0)
    with pytest.raises(ValueError, match="method"):
        optimizers.ConjugateGradient("hestenes")
    with pytest.raises(ValueError, match="damping"):
        optimizers.Newton(damping=-1.0)
    x = nervenet.Tensor(np.zeros(2), requires_grad=True)
    with pytest.raises(ValueError, match=r"params\[0\] must be a leaf Tensor"):
        optimizers.BFGS().minimize(lambda: (x * x).sum(), [np.zeros(2)])
    with pytest.raises(TypeError, match="one-element Tensor"):
        optimizers.BFGS().minimize(lambda: x * x, [x])
    with pytest.raises(TypeError, match="minimize"):
        optimizers.LBFGS().apply_gradients([(np.zeros(2), x)])


def test_config_round_trip():
    for name in METHODS:
        opt = METHODS[name]()
        again = optimizers.get(optimizers.serialize(opt))
        assert type(again) is type(opt) and again.get_config() == opt.get_config()

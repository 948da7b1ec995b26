"""The shared line search: the steps it returns satisfy the conditions it promises."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nervenet.optimizers import LineSearch


def _phi(f, df, calls=None):
    def phi(a):
        if calls is not None:
            calls.append(a)
        return f(a), df(a), np.array([df(a)])
    return phi


FUNCTIONS = {
    # name: (phi, phi') with phi'(0) < 0
    "quadratic": (lambda a: (a - 3.0) ** 2, lambda a: 2 * (a - 3.0)),
    "far-minimum": (lambda a: (a - 200.0) ** 2 / 100, lambda a: (a - 200.0) / 50),
    "near-minimum": (lambda a: (a - 0.01) ** 2, lambda a: 2 * (a - 0.01)),
    "quartic": (lambda a: (a - 1.5) ** 4 - 2 * a, lambda a: 4 * (a - 1.5) ** 3 - 2),
    "rosenbrock-ray": (  # Rosenbrock along -grad from (-1.2, 1)
        lambda a: _rosen(np.array([-1.2, 1.0]) + a * np.array([215.6, 88.0])),
        lambda a: _rosen_grad(np.array([-1.2, 1.0]) + a * np.array([215.6, 88.0]))
        @ np.array([215.6, 88.0])),
    "softplus": (lambda a: math.log1p(math.exp(-a)) + 0.01 * a * a,
                 lambda a: -1 / (1 + math.exp(a)) + 0.02 * a),
}


def _rosen(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def _rosen_grad(x):
    return np.array([-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2),
                     200 * (x[1] - x[0] ** 2)])


@pytest.mark.parametrize("c2", [0.9, 0.1])
@pytest.mark.parametrize("first_step", [1.0, 1e-3, 50.0])
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_strong_wolfe_conditions_hold(name, first_step, c2):
    f, df = FUNCTIONS[name]
    search = LineSearch("strong_wolfe", c1=1e-4, c2=c2, max_iter=50)
    result = search(_phi(f, df), f(0.0), df(0.0), step=first_step)
    assert result.success
    a = result.step
    assert f(a) <= f(0.0) + 1e-4 * a * df(0.0)
    assert abs(df(a)) <= c2 * abs(df(0.0))
    assert result.value == f(a) and result.slope == df(a) and result.grad[0] == df(a)


@pytest.mark.parametrize("first_step", [1.0, 100.0])
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_armijo_backtracking(name, first_step):
    f, df = FUNCTIONS[name]
    calls = []
    result = LineSearch("armijo", shrink=0.5)(_phi(f, df, calls), f(0.0), df(0.0), first_step)
    assert result.success
    a = result.step
    assert f(a) <= f(0.0) + 1e-4 * a * df(0.0)
    # every rejected step failed the test, and the accepted one is the first that passed
    assert calls == [first_step * 0.5 ** k for k in range(len(calls))]
    for rejected in calls[:-1]:
        assert f(rejected) > f(0.0) + 1e-4 * rejected * df(0.0)
    assert result.nfev == len(calls)


def test_non_finite_trial_values_shorten_the_step():
    f = lambda a: math.nan if a > 2.0 else (a - 1.5) ** 2
    df = lambda a: math.nan if a > 2.0 else 2 * (a - 1.5)
    for method in ("strong_wolfe", "armijo"):
        result = LineSearch(method)(_phi(f, df), f(0.0), df(0.0), step=10.0)
        assert result.success and 0 < result.step <= 2.0 and math.isfinite(result.value)


def test_noise_lets_slopes_decide_when_values_are_flat():
    """phi is flat to rounding (all values equal) but its slope is exact: without the noise
    allowance no step passes Armijo; with it the slope finds the minimum."""
    f = lambda a: 1.0
    df = lambda a: 1e-12 * (a - 2.0)
    exact = LineSearch()(_phi(f, df), 1.0, df(0.0), 1.0)
    assert not exact.success
    tolerant = LineSearch()(_phi(f, df), 1.0, df(0.0), 1.0, noise=1e-14)
    assert tolerant.success and abs(df(tolerant.step)) <= 0.9 * abs(df(0.0))


def test_failure_is_reported():
    """A function that keeps decreasing: no step satisfies the curvature condition."""
    f, df = (lambda a: -a), (lambda a: -1.0)
    result = LineSearch(max_iter=10)(_phi(f, df), 0.0, -1.0, 1.0)
    assert not result.success and result.nfev == 10


def test_bad_arguments():
    with pytest.raises(ValueError, match="not a descent direction"):
        LineSearch()(_phi(lambda a: a, lambda a: 1.0), 0.0, 1.0)
    with pytest.raises(ValueError, match="initial step"):
        LineSearch()(_phi(lambda a: -a, lambda a: -1.0), 0.0, -1.0, step=0.0)
    with pytest.raises(ValueError, match="method"):
        LineSearch("exact")
    with pytest.raises(ValueError, match="c2"):
        LineSearch(c1=0.5, c2=0.1)
    with pytest.raises(ValueError, match="max_iter"):
        LineSearch(max_iter=0)

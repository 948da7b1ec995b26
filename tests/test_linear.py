"""Ridge and lasso: the course's closed form and coordinate descent, against scikit-learn with
the penalty scale converted (Ridge alpha = 2 lam, Lasso alpha = lam / n), and the contrast the
docs draw: L2 shrinks every weight, L1 zeroes some."""

from __future__ import annotations

import numpy as np
import pytest

from nervenet.linear import lasso, ridge, soft_threshold


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 10))
    X[:, 3] = X[:, 2] + 0.1 * rng.normal(size=80)  # correlated features
    true_w = np.array([3.0, -2.0, 1.5, 0.0, 0.0, 0.5, 0.0, 0.0, -0.2, 0.0])
    y = X @ true_w + 0.3 * rng.normal(size=80)
    return X, y


@pytest.mark.parametrize("lam", [0.01, 1.0, 25.0])
def test_ridge_equals_scikit_learn(problem, lam):
    linear_model = pytest.importorskip("sklearn.linear_model")
    X, y = problem
    expected = linear_model.Ridge(alpha=2 * lam, fit_intercept=False).fit(X, y).coef_
    np.testing.assert_allclose(ridge(X, y, lam), expected, rtol=1e-9, atol=1e-12)


def test_ridge_is_the_stated_closed_form_and_a_stationary_point(problem):
    X, y = problem
    lam = 3.0
    w = ridge(X, y, lam)
    np.testing.assert_allclose(w, np.linalg.inv(X.T @ X + 2 * lam * np.eye(10)) @ X.T @ y,
                               rtol=1e-10)
    gradient = -X.T @ (y - X @ w) + 2 * lam * w  # of 1/2 ||y - Xw||^2 + lam ||w||^2
    np.testing.assert_allclose(gradient, 0.0, atol=1e-9)
    multi = ridge(X, np.stack([y, 2 * y], axis=1), lam)  # several targets at once
    np.testing.assert_allclose(multi, np.stack([w, 2 * w], axis=1), rtol=1e-10)
    np.testing.assert_allclose(ridge(X, y, 0.0), np.linalg.lstsq(X, y, rcond=None)[0])


@pytest.mark.parametrize("lam", [0.5, 5.0, 40.0])
def test_lasso_equals_scikit_learn(problem, lam):
    linear_model = pytest.importorskip("sklearn.linear_model")
    X, y = problem
    n = len(y)
    expected = linear_model.Lasso(alpha=lam / n, fit_intercept=False, tol=1e-14,
                                  max_iter=100_000).fit(X, y).coef_
    w = lasso(X, y, lam, tol=1e-14, max_iter=100_000)
    np.testing.assert_allclose(w, expected, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(w == 0.0, expected == 0.0)  # the same features dropped


def test_lasso_satisfies_the_optimality_conditions(problem):
    """The subgradient conditions of 1/2 ||y - Xw||^2 + lam ||w||_1: X_j^T r = lam sign(w_j)
    where w_j != 0, |X_j^T r| <= lam where w_j = 0."""
    X, y = problem
    lam = 8.0
    w = lasso(X, y, lam, tol=1e-14, max_iter=100_000)
    correlation = X.T @ (y - X @ w)
    active = w != 0
    np.testing.assert_allclose(correlation[active], lam * np.sign(w[active]), atol=1e-7)
    assert np.all(np.abs(correlation[~active]) <= lam + 1e-7)
    assert 0 < active.sum() < 10


def test_l2_shrinks_while_l1_selects(problem):
    X, y = problem
    lams = [0.0, 10.0, 100.0, 1000.0]
    ridge_paths = np.array([ridge(X, y, lam) for lam in lams])
    lasso_paths = np.array([lasso(X, y, lam) for lam in lams])
    norms = np.linalg.norm(ridge_paths, axis=1)
    assert np.all(np.diff(norms) < 0)  # ridge: the norm falls as lam grows ...
    assert np.all(ridge_paths[1:] != 0.0)  # ... but no weight is exactly 0
    zeros = (lasso_paths == 0.0).sum(axis=1)
    assert zeros[0] == 0 and np.all(np.diff(zeros) >= 0) and zeros[-2] >= 5
    large = np.abs(X.T @ y).max()  # above this lam, the lasso solution is w = 0
    np.testing.assert_array_equal(lasso(X, y, large * 1.0001), 0.0)


def test_soft_threshold():
    np.testing.assert_array_equal(soft_threshold(np.array([-3.0, -0.5, 0.0, 0.5, 3.0]), 1.0),
                                  [-2.0, 0.0, 0.0, 0.0, 2.0])


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="lam must be a finite number >= 0"):
        ridge(np.ones((3, 2)), np.ones(3), -1.0)
    with pytest.raises(ValueError, match=r"y must have shape \(3,\) or \(3, k\)"):
        lasso(np.ones((3, 2)), np.ones(4), 1.0)
    with pytest.raises(ValueError, match="X must be a 2-D array"):
        ridge(np.ones(3), np.ones(3), 1.0)
    with pytest.raises(ValueError, match="must be finite"):
        lasso(np.array([[np.nan], [1.0]]), np.ones(2), 1.0)
    with pytest.raises(ValueError, match="lasso: y must be 1-D"):
        lasso(np.ones((3, 2)), np.ones((3, 2)), 1.0)
    lasso(np.zeros((3, 2)), np.ones(3), 1.0)  # all-zero features: weights stay 0, no division

"""Penalized least squares in closed form and by coordinate descent: ridge (L2) and lasso (L1).

The two penalties of ``nervenet.regularizers`` on the simplest model there is, y ~ X w, where
their effect can be computed exactly:

* **ridge** minimizes ``1/2 ||y - X w||^2 + lam ||w||_2^2``. Setting the gradient
  ``-X^T (y - X w) + 2 lam w`` to zero gives the closed form

      w = (X^T X + 2 lam I)^-1 X^T y,

  which *shrinks* every coefficient towards zero (in the eigenbasis of X^T X, the component
  along an eigenvalue d is multiplied by d / (d + 2 lam)) but makes none exactly zero.
* **lasso** minimizes ``1/2 ||y - X w||^2 + lam ||w||_1``. There is no closed form; coordinate
  descent minimizes over one w_j at a time, holding the others, which is a soft-threshold:

      rho_j = X_j^T (y - X w + X_j w_j),   w_j = S(rho_j, lam) / (X_j^T X_j),
      S(rho, lam) = sign(rho) * max(|rho| - lam, 0),

  so every coefficient whose correlation with the residual is below lam is *exactly* zero:
  L1 selects features.

scikit-learn scales the same problems differently: ``Ridge(alpha)`` minimizes
``||y - X w||^2 + alpha ||w||^2`` (alpha = 2 lam), ``Lasso(alpha)`` minimizes
``1/(2n) ||y - X w||^2 + alpha ||w||_1`` (alpha = lam / n). Neither function fits an
intercept: center X and y first, or add a column of ones (whose weight is then penalized too).
"""

from __future__ import annotations

import numpy as np


def _check(X, y, lam, function: str) -> tuple[np.ndarray, np.ndarray, float]:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"{function}: X must be a 2-D array (samples, features), got shape "
                         f"{X.shape}")
    if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
        raise ValueError(f"{function}: y must have shape ({X.shape[0]},) or ({X.shape[0]}, k) "
                         f"to match X of shape {X.shape}, got {y.shape}")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise ValueError(f"{function}: X and y must be finite (no NaN or Inf)")
    if isinstance(lam, bool) or not isinstance(lam, (int, float, np.number)) \
            or not (np.isfinite(lam) and lam >= 0):
        raise ValueError(f"{function}: lam must be a finite number >= 0, got {lam!r}")
    return X, y, float(lam)


def ridge(X, y, lam: float) -> np.ndarray:
    """Ridge regression in closed form: ``w = (X^T X + 2 lam I)^-1 X^T y``.

    The minimizer of ``1/2 ||y - X w||^2 + lam ||w||^2`` (scikit-learn's ``Ridge`` with
    ``alpha = 2 * lam``, ``fit_intercept=False``). Solved as a linear system (no explicit
    inverse); with lam = 0 and X^T X singular, the least-squares solution of minimum norm.

    Args:
        X: inputs, shape (n, d).
        y: targets, shape (n,) or (n, k).
        lam: the penalty factor (>= 0), as in ``regularizers.L2(lam)``.

    Returns:
        The weights, shape (d,) or (d, k), float64.

    Example:
        >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        >>> y = np.array([1.0, 2.0, 3.0])
        >>> ridge(X, y, 0.0)
        array([1., 2.])
        >>> ridge(X, y, 0.5)   # shrunk towards zero
        array([0.875, 1.375])
    """
    X, y, lam = _check(X, y, lam, "ridge")
    gram = X.T @ X
    if lam == 0.0:
        return np.linalg.lstsq(X, y, rcond=None)[0]
    gram[np.diag_indices_from(gram)] += 2.0 * lam
    return np.linalg.solve(gram, X.T @ y)


def soft_threshold(rho, lam: float):
    """``S(rho, lam) = sign(rho) * max(|rho| - lam, 0)``: the proximal map of ``lam |w|``."""
    return np.sign(rho) * np.maximum(np.abs(rho) - lam, 0.0)


def lasso(X, y, lam: float, max_iter: int = 1000, tol: float = 1e-10) -> np.ndarray:
    """Lasso by cyclic coordinate descent: the minimizer of ``1/2 ||y - X w||^2 + lam ||w||_1``.

    Each sweep updates w_1, ..., w_d in turn by the exact one-dimensional minimizer
    ``w_j = S(X_j^T r_j, lam) / (X_j^T X_j)`` (r_j the residual without feature j), keeping
    the residual up to date, until no coefficient moved by more than ``tol`` times the largest
    coefficient (scikit-learn's ``Lasso`` with ``alpha = lam / n``, ``fit_intercept=False``).
    The objective decreases at every step and the problem is convex, so this converges.

    Args:
        X: inputs, shape (n, d).
        y: targets, shape (n,).
        lam: the penalty factor (>= 0), as in ``regularizers.L1(lam)``.
        max_iter: the most sweeps (default 1000).
        tol: the convergence threshold on the largest relative update (default 1e-10).

    Returns:
        The weights, shape (d,), float64; the features with too little correlation with the
        residual have weights of exactly 0.

    Raises:
        ValueError: for bad shapes or values. (After ``max_iter`` sweeps without convergence
            the current weights are returned.)

    Example:
        >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        >>> y = np.array([1.0, 2.0, 3.0])
        >>> lasso(X, y, 0.0).round(6)
        array([1., 2.])
        >>> lasso(X, y, 3.5)  # the weaker feature is dropped
        array([0.  , 0.75])
    """
    X, y, lam = _check(X, y, lam, "lasso")
    if y.ndim != 1:
        raise ValueError(f"lasso: y must be 1-D (one target), got shape {y.shape}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"lasso: max_iter must be a positive int, got {max_iter!r}")
    d = X.shape[1]
    w = np.zeros(d)
    residual = y.copy()                   # r = y - X w, kept up to date
    norms = np.einsum("ij,ij->j", X, X)   # X_j^T X_j
    columns = np.asfortranarray(X)        # contiguous columns for the inner loop
    for _ in range(max_iter):
        largest_step = 0.0
        for j in range(d):
            if norms[j] == 0.0:           # an all-zero feature: its weight stays 0
                continue
            column = columns[:, j]
            old = w[j]
            rho = column @ residual + norms[j] * old
            new = soft_threshold(rho, lam) / norms[j]
            if new != old:
                residual -= (new - old) * column
                w[j] = new
                largest_step = max(largest_step, abs(new - old))
        if largest_step <= tol * max(np.max(np.abs(w)), 1e-300):
            break
    return w

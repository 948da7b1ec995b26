"""Rosenblatt's perceptron with scikit-learn's ``Perceptron`` interface.

For labels ``y`` in {-1, +1} and the score ``s = w . x + b``, each sample in turn (a fresh
random order every epoch when ``shuffle``) is classified by the sign of ``s``; a mistake
(``y * s <= 0``: a score of exactly 0 counts as a mistake, as in scikit-learn) moves the weights
towards the sample:

    w <- w + eta0 * c * y * x          b <- b + eta0 * c * y

where ``c`` is the sample's class weight times its sample weight. This is Rosenblatt's rule
``w <- w + eta (t - step(s)) x`` with a bipolar step, written the way scikit-learn's SGD writes
the perceptron loss ``max(0, -y s)``. With a penalty the weights also shrink before every
sample: ``w <- w * (1 - eta0 * alpha)`` for L2, and Tsuruoka et al.'s cumulative truncation
for L1 (both weighted by ``l1_ratio`` for ``"elasticnet"``), as scikit-learn does.

Training stops after ``max_iter`` epochs, or when ``n_iter_no_change`` epochs in a row did
not lower the epoch's summed loss by ``tol * n_samples`` (with ``early_stopping``: did not
raise the validation accuracy by ``tol``). Several classes are learned one-vs-rest: one
binary perceptron per class, ``predict`` takes the class of the largest score.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from nervenet.checks import check_choice, check_int, check_number
from nervenet.models.perceptron import perceptron_update
from nervenet.sklearn._common import (
    NoImprovement,
    check_sample_weight,
    make_generator,
)

PENALTIES = (None, "l2", "l1", "elasticnet")


class Perceptron(ClassifierMixin, BaseEstimator):
    """Rosenblatt's perceptron (see the module docstring for the rule), as scikit-learn's.

    Args:
        penalty: ``None`` (default), ``"l2"``, ``"l1"`` or ``"elasticnet"``.
        alpha: the penalty's strength (default 0.0001).
        l1_ratio: the L1 share of ``"elasticnet"``, in [0, 1] (default 0.15).
        fit_intercept: learn a bias ``b`` (default ``True``).
        max_iter: the most epochs (default 1000).
        tol: the stopping tolerance, ``None`` to always run ``max_iter`` epochs (default 1e-3).
        shuffle: visit the samples in a new random order every epoch (default ``True``).
        verbose: print each epoch's summary (default 0).
        eta0: the learning rate (default 1.0).
        n_jobs: accepted for compatibility; the one-vs-rest problems run one after the other
            (default ``None``).
        random_state: the seed of the order (default 0, as scikit-learn).
        early_stopping: stop on a held-out validation accuracy (default ``False``).
        validation_fraction: the held-out share (default 0.1).
        n_iter_no_change: flat epochs tolerated (default 5).
        class_weight: ``None``, ``"balanced"`` or ``{label: weight}`` (default ``None``).
        warm_start: start from the previous fit's weights (default ``False``).

    Attributes:
        classes_: the labels. coef_: (1, n_features) for two classes, else (n_classes,
        n_features). intercept_: (1,) or (n_classes,). n_iter_: the epochs run (the most over
        the one-vs-rest problems). t_: the number of weight updates considered, plus 1.

    Example (the course's iris example: setosa or not from the petals):
        >>> from sklearn.datasets import load_iris
        >>> iris = load_iris()
        >>> x, y = iris.data[:, 2:4], iris.target == 0
        >>> model = Perceptron(random_state=42).fit(x, y)
        >>> model.predict([[2, 0.5], [3, 1]]).tolist()
        [True, False]
    """

    def __init__(self, *, penalty=None, alpha=0.0001, l1_ratio=0.15, fit_intercept=True,
                 max_iter=1000, tol=1e-3, shuffle=True, verbose=0, eta0=1.0, n_jobs=None,
                 random_state=0, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=5, class_weight=None, warm_start=False):
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.shuffle = shuffle
        self.verbose = verbose
        self.eta0 = eta0
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.class_weight = class_weight
        self.warm_start = warm_start

    def _check_params(self) -> None:
        owner = "Perceptron"
        if self.penalty not in PENALTIES:
            raise ValueError(f"{owner}: penalty must be one of {list(PENALTIES)}, got "
                             f"{self.penalty!r}")
        check_number(owner, "alpha", self.alpha, 0.0)
        check_number(owner, "l1_ratio", self.l1_ratio, 0.0, 1.0)
        check_int(owner, "max_iter", self.max_iter, 1)
        if self.tol is not None:
            check_number(owner, "tol", self.tol, None)
        check_number(owner, "eta0", self.eta0, 0.0, low_open=True)
        check_number(owner, "validation_fraction", self.validation_fraction, 0.0, 1.0,
                   low_open=True, high_open=True)
        check_int(owner, "n_iter_no_change", self.n_iter_no_change, 1)
        if isinstance(self.class_weight, str):
            check_choice(owner, "class_weight", self.class_weight, ("balanced",))
        elif self.class_weight is not None and not isinstance(self.class_weight, dict):
            raise ValueError(f"{owner}: class_weight must be None, 'balanced' or a dict, got "
                             f"{self.class_weight!r}")

    def fit(self, X, y, coef_init=None, intercept_init=None, sample_weight=None):
        """Learn the weights from ``X`` (n_samples, n_features) and labels ``y``.

        Args:
            X: the inputs.
            y: the class labels (any hashable values; at least two classes).
            coef_init: starting weights of ``coef_``'s shape (default: zeros).
            intercept_init: starting intercepts (default: zeros).
            sample_weight: per-sample weights (default ``None``: all 1).

        Returns:
            self.
        """
        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(f"Perceptron: y must have at least 2 classes, got one class: "
                             f"{classes[0]!r}")
        n, d = X.shape
        weights = check_sample_weight("Perceptron", sample_weight, n, np.float64)
        weights = np.ones(n) if weights is None else weights
        class_weights = compute_class_weight(self.class_weight, classes=classes, y=y)
        rows = 1 if len(classes) == 2 else len(classes)
        coef, intercept = np.zeros((rows, d)), np.zeros(rows)
        if self.warm_start and getattr(self, "coef_", np.zeros(0)).shape == coef.shape:
            coef, intercept = self.coef_.copy(), self.intercept_.copy()
        if coef_init is not None:
            coef[...] = np.asarray(coef_init, float).reshape(rows, d)
        if intercept_init is not None:
            intercept[...] = np.asarray(intercept_init, float).reshape(rows)
        self.classes_ = classes
        rng = make_generator(self.random_state)
        iterations = []
        for k in range(rows):
            positive = classes[1] if rows == 1 else classes[k]
            signs = np.where(y == positive, 1.0, -1.0)
            if rows == 1:
                per_sample = np.where(signs > 0, class_weights[1], class_weights[0])
            else:
                per_sample = np.where(signs > 0, class_weights[k], 1.0)
            iterations.append(self._fit_binary(X, signs, per_sample * weights, coef[k],
                                               intercept[k:k + 1], rng))
        self.coef_, self.intercept_ = coef, intercept
        self.n_iter_ = max(iterations)
        self.t_ = float(self.n_iter_ * n + 1)
        return self

    def _fit_binary(self, X, signs, weights, w, b, rng) -> int:
        """Train one binary perceptron in place (``w``: its weights, ``b``: a 1-element view
        of its bias); returns the number of epochs."""
        if self.early_stopping:
            train, val = train_test_split(np.arange(len(X)), test_size=self.validation_fraction,
                                          stratify=signs, random_state=int(rng.integers(2**31)))
            X_val, s_val = X[val], signs[val]
            X, signs, weights = X[train], signs[train], weights[train]
        n = len(X)
        eta = float(self.eta0)
        l2 = self.alpha * (1.0 - self.l1_ratio) if self.penalty == "elasticnet" else (
            self.alpha if self.penalty == "l2" else 0.0)
        l1 = self.alpha * self.l1_ratio if self.penalty == "elasticnet" else (
            self.alpha if self.penalty == "l1" else 0.0)
        shrink = max(0.0, 1.0 - eta * l2)
        u, q = 0.0, np.zeros_like(w)                 # cumulative L1 penalty (Tsuruoka et al.)
        stopping = None
        if self.tol is not None:                     # scikit-learn stops at count >= n, we at >
            tolerance = self.tol if self.early_stopping else self.tol * n
            stopping = NoImprovement(tolerance, self.n_iter_no_change - 1,
                                     "max" if self.early_stopping else "min")
        epoch = 0
        for epoch in range(1, self.max_iter + 1):    # noqa: B007 (the count is returned)
            order = rng.permutation(n) if self.shuffle else range(n)
            summed_loss = 0.0
            for i in order:
                x = X[i]
                score = float(x @ w) + b[0]
                margin = signs[i] * score
                summed_loss += max(0.0, -margin)
                if l2:
                    w *= shrink
                if margin <= 0:                       # a mistake: Rosenblatt's update
                    perceptron_update(w, b if self.fit_intercept else None, x,
                                      signs[i] * weights[i], eta)
                if l1:
                    u += eta * l1
                    before = w.copy()
                    w[:] = np.where(w > 0, np.maximum(0.0, w - (u + q)),
                                    np.where(w < 0, np.minimum(0.0, w + (u - q)), w))
                    q += w - before
            if self.verbose:
                print(f"-- Epoch {epoch}: norm {np.linalg.norm(w):.2f}, bias {b[0]:.6f}, "
                      f"average loss {summed_loss / n:.6f}")
            if stopping is not None:
                if self.early_stopping:
                    value = float(np.mean(np.where(X_val @ w + b[0] > 0, 1.0, -1.0) == s_val))
                else:
                    value = summed_loss
                if stopping.update(value):
                    return epoch
        if self.tol is not None:
            warnings.warn(f"Perceptron: max_iter={self.max_iter} reached before convergence; "
                          "increase max_iter", ConvergenceWarning, stacklevel=3)
        return epoch

    def decision_function(self, X) -> np.ndarray:
        """The scores ``X @ coef_.T + intercept_``: shape (n,) for two classes."""
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        scores = X @ self.coef_.T + self.intercept_
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict(self, X) -> np.ndarray:
        """The class of the largest score (two classes: the second when the score is > 0)."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[scores.argmax(axis=1)]

"""Ensembles of models: model averaging and voting, bagging, boosting (SAMME).

An ensemble member is anything with ``predict(x)`` returning one row per sample (a compiled
nervenet Model, a scikit-learn-style wrapper); ``Bagging`` and ``Boosting`` build their
members with ``build_fn()`` and train them with ``fit(x, y, **fit_kwargs)``.

* ``VotingEnsemble(models, voting="soft")`` averages the members' outputs (probabilities, or
  values for regression): model averaging. ``voting="hard"`` counts each member's predicted
  class instead. Optional ``weights`` weigh the members.
* ``Bagging(build_fn, n_estimators, max_samples)`` (Breiman, 1996): each member is trained on
  a bootstrap sample (``max_samples`` draws *with replacement* from the training set), so the
  members differ and their errors partly cancel in the average: the variance falls, the bias
  stays.
* ``Boosting(build_fn, n_estimators)``: AdaBoost for K classes, SAMME (Zhu et al., 2009).
  Members are trained in sequence, each with sample weights that emphasize the samples its
  predecessors got wrong::

      err_m   = sum_i w_i [y_i != h_m(x_i)] / sum_i w_i
      alpha_m = learning_rate * (log((1 - err_m) / err_m) + log(K - 1))
      w_i    <- w_i * exp(alpha_m [y_i != h_m(x_i)]),   then normalized to sum 1
      H(x)    = argmax_k sum_m alpha_m [h_m(x) = k]

  A member must do better than chance (err_m < 1 - 1/K) to get a positive weight. The sample
  weights reach each member's ``fit`` as ``sample_weight`` (scaled to mean 1, so a Model's
  loss keeps its usual size and learning rates need no change).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from nervenet import backend
from nervenet.checks import check_int, check_number

_VOTING = ("soft", "hard")


def predicted_classes(outputs) -> np.ndarray:
    """Class labels from a model's outputs: the argmax of (N, K) scores, or a 0.5 threshold on
    (N,) or (N, 1) probabilities of the positive class."""
    outputs = np.asarray(outputs)
    if outputs.ndim == 2 and outputs.shape[1] > 1:
        return outputs.argmax(axis=1)
    return (outputs.reshape(len(outputs)) > 0.5).astype(np.int64)


def _n_classes(outputs) -> int:
    outputs = np.asarray(outputs)
    return outputs.shape[1] if outputs.ndim == 2 and outputs.shape[1] > 1 else 2


def _check_build_fn(build_fn, owner: str) -> Callable:
    if not callable(build_fn):
        raise TypeError(f"{owner}: build_fn must be a callable returning a new compiled model, "
                        f"got {type(build_fn).__name__}")
    return build_fn


def _check_xy(x, y, owner: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"{owner}.fit: x and y must hold the same positive number of samples, "
                         f"got {len(x)} and {len(y)}")
    return x, y


class _Ensemble:
    """Prediction shared by every ensemble: a weighted soft or hard vote of the members."""

    estimators_: list
    estimator_weights_: np.ndarray

    def __init__(self, voting: str = "soft"):
        if voting not in _VOTING:
            raise ValueError(f"{type(self).__name__}: voting must be one of {list(_VOTING)}, got "
                             f"{voting!r}")
        self.voting = voting

    def _require_fitted(self) -> None:
        if not getattr(self, "estimators_", None):
            raise ValueError(f"{type(self).__name__}: call fit(x, y) before predicting")

    def predict(self, x, batch_size: int | None = 32) -> np.ndarray:
        """The combined prediction for ``x``.

        Soft voting: the weighted mean of the members' outputs (class probabilities, or
        values for regression). Hard voting: for each sample and class, the weighted share of
        members predicting that class, shape (N, K).
        """
        self._require_fitted()
        weights = np.asarray(self.estimator_weights_, dtype=np.float64)
        weights = weights / weights.sum()
        total = None
        for estimator, weight in zip(self.estimators_, weights):
            outputs = np.asarray(_predict(estimator, x, batch_size), dtype=np.float64)
            if self.voting == "hard":
                classes = predicted_classes(outputs)
                outputs = np.eye(_n_classes(outputs))[classes]
            total = weight * outputs if total is None else total + weight * outputs
        return total

    def predict_classes(self, x, batch_size: int | None = 32) -> np.ndarray:
        """The predicted class of each sample (ties go to the lowest class)."""
        return predicted_classes(self.predict(x, batch_size))

    def score(self, x, y, batch_size: int | None = 32) -> float:
        """Classification accuracy of ``predict_classes(x)`` against labels ``y``."""
        y = np.asarray(y).reshape(-1)
        return float(np.mean(self.predict_classes(x, batch_size) == y))


def _predict(estimator, x, batch_size):
    try:  # a nervenet model: quietly
        return estimator.predict(x, batch_size=batch_size, verbose=0)
    except TypeError:  # an estimator whose predict takes no batch_size (scikit-learn style)
        return estimator.predict(x)


class VotingEnsemble(_Ensemble):
    """Model averaging (soft voting) or majority voting (hard) over trained models.

    Args:
        models: the trained members (each with ``predict(x)``).
        voting: ``"soft"`` averages the outputs, ``"hard"`` counts predicted classes
            (default ``"soft"``).
        weights: one non-negative weight per model (default ``None``: equal weights).

    Example:
        >>> class Constant:
        ...     def __init__(self, p): self.p = np.array(p)
        ...     def predict(self, x): return np.tile(self.p, (len(x), 1))
        >>> members = [Constant([0.9, 0.1]), Constant([0.4, 0.6]), Constant([0.3, 0.7])]
        >>> VotingEnsemble(members).predict(np.zeros((1, 2)))   # mean probabilities
        array([[0.53333333, 0.46666667]])
        >>> VotingEnsemble(members, voting="hard").predict_classes(np.zeros((1, 2)))
        array([1])
    """

    def __init__(self, models: Sequence, voting: str = "soft", weights=None):
        super().__init__(voting)
        models = list(models)
        if not models or not all(hasattr(m, "predict") for m in models):
            raise ValueError("VotingEnsemble: models must be a non-empty list of models with a "
                             "predict method")
        if weights is None:
            weights = np.ones(len(models))
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (len(models),) or np.any(weights < 0) or not weights.sum() > 0 \
                or not np.all(np.isfinite(weights)):
            raise ValueError(f"VotingEnsemble: weights must be {len(models)} finite non-negative "
                             f"numbers, not all 0, got {weights.tolist()}")
        self.estimators_ = models
        self.estimator_weights_ = weights


class Bagging(_Ensemble):
    """Bootstrap aggregating: members trained on bootstrap samples, predictions averaged.

    Args:
        build_fn: a callable returning a new compiled model (called once per member).
        n_estimators: the number of members (default 10).
        max_samples: the size of each bootstrap sample: a fraction of the training set in
            (0, 1] or a number of samples (default 1.0: as many draws as samples).
        voting: how the members are combined, ``"soft"`` or ``"hard"`` (default ``"soft"``).
        seed: seed of the resampling generator (default ``None``: from
            ``nervenet.backend.make_rng()``).

    Attributes:
        estimators_: the trained members.
        bootstrap_indices_: the training-set indices each member was trained on.

    Example:
        >>> from nervenet import layers, models
        >>> def build():
        ...     model = models.Sequential([layers.Input(shape=(1,)), layers.Dense(1)])
        ...     model.compile(optimizer="sgd", loss="mse")
        ...     return model
        >>> x = np.linspace(-1, 1, 20).reshape(-1, 1).astype(np.float32)
        >>> bagging = Bagging(build, n_estimators=3, seed=0).fit(x, 2 * x, epochs=1, verbose=0)
        >>> len(bagging.estimators_), bagging.predict(x).shape
        (3, (20, 1))
    """

    def __init__(self, build_fn: Callable, n_estimators: int = 10, max_samples=1.0,
                 voting: str = "soft", seed: int | None = None):
        super().__init__(voting)
        self.build_fn = _check_build_fn(build_fn, "Bagging")
        self.n_estimators = check_int("Bagging", "n_estimators", n_estimators, low=1)
        if isinstance(max_samples, bool) or not isinstance(max_samples, (int, float, np.number)) \
                or max_samples <= 0 or (isinstance(max_samples, float) and max_samples > 1):
            raise ValueError(f"Bagging: max_samples must be a fraction in (0, 1] or a positive "
                             f"number of samples, got {max_samples!r}")
        self.max_samples = max_samples
        self.seed = seed

    def fit(self, x, y, **fit_kwargs) -> Bagging:
        """Train ``n_estimators`` members, each on its own bootstrap sample of ``(x, y)``.

        Args:
            x, y: the training set (arrays with one row per sample).
            **fit_kwargs: passed to each member's ``fit`` (epochs, batch_size, verbose, ...);
                a ``sample_weight`` array is resampled with the data.

        Returns:
            ``self``.
        """
        x, y = _check_xy(x, y, "Bagging")
        n = len(x)
        size = (max(1, round(self.max_samples * n)) if isinstance(self.max_samples, float)
                else int(self.max_samples))
        rng = backend.make_rng(self.seed)
        sample_weight = fit_kwargs.pop("sample_weight", None)
        self.estimators_, self.bootstrap_indices_ = [], []
        for _ in range(self.n_estimators):
            indices = rng.integers(0, n, size=size)  # with replacement
            kwargs = dict(fit_kwargs)
            if sample_weight is not None:
                kwargs["sample_weight"] = np.asarray(sample_weight)[indices]
            estimator = self.build_fn()
            estimator.fit(x[indices], y[indices], **kwargs)
            self.estimators_.append(estimator)
            self.bootstrap_indices_.append(indices)
        self.estimator_weights_ = np.ones(self.n_estimators)
        return self


class Boosting(_Ensemble):
    """AdaBoost for K classes (SAMME): members trained in sequence on reweighted samples,
    combined by a vote weighted with ``alpha_m`` (formulas in the module docstring).

    Args:
        build_fn: a callable returning a new compiled classifier (called once per member);
            its ``fit`` must accept ``sample_weight``.
        n_estimators: the most members (default 10); boosting stops early when a member is
            perfect on the weighted training set or no better than chance.
        learning_rate: shrinks each alpha_m (default 1.0).
        n_classes: K (default ``None``: ``max(y) + 1``).

    Attributes:
        estimators_: the trained members.
        estimator_weights_: alpha_m of each member (a list of floats).
        estimator_errors_: err_m of each member (a list of floats).
        sample_weights_: the weights (summing to 1) each member was trained with.

    Example:
        >>> class Stump:  # predicts class 1 where x > threshold, fitted by weighted error
        ...     def fit(self, x, y, sample_weight):
        ...         errors = [np.sum(sample_weight * ((x[:, 0] > t) != y)) for t in x[:, 0]]
        ...         self.t = x[int(np.argmin(errors)), 0]
        ...     def predict(self, x):
        ...         return (x[:, :1] > self.t).astype(float)
        >>> x = np.arange(6.0).reshape(-1, 1)
        >>> y = np.array([0, 0, 1, 1, 0, 1])
        >>> boosting = Boosting(Stump, n_estimators=2).fit(x, y)
        >>> boosting.estimator_errors_[0], boosting.estimator_weights_[0]  # 1/6, log(5)
        (0.1667, 1.6094)
        >>> boosting.sample_weights_[1]  # the one mistake (x = 4) now weighs half the total
        array([0.1, 0.1, 0.1, 0.1, 0.5, 0.1])
    """

    def __init__(self, build_fn: Callable, n_estimators: int = 10, learning_rate: float = 1.0,
                 n_classes: int | None = None):
        super().__init__("hard")
        self.build_fn = _check_build_fn(build_fn, "Boosting")
        self.n_estimators = check_int("Boosting", "n_estimators", n_estimators, low=1)
        self.learning_rate = check_number("Boosting", "learning_rate", learning_rate, 0.0,
                                          low_open=True)
        self.n_classes = check_int("Boosting", "n_classes", n_classes, low=1, allow_none=True)

    def fit(self, x, y, **fit_kwargs) -> Boosting:
        """Train up to ``n_estimators`` members with SAMME's sample weights.

        Args:
            x: training inputs.
            y: integer class labels, shape (n,).
            **fit_kwargs: passed to each member's ``fit`` (not ``sample_weight``: boosting
                owns it).

        Returns:
            ``self``.

        Raises:
            ValueError: for labels that are not integers in [0, K), or when the first member
                is no better than chance (nothing to boost).
        """
        x, y = _check_xy(x, y, "Boosting")
        if "sample_weight" in fit_kwargs:
            raise ValueError("Boosting.fit: sample_weight is computed by boosting; do not pass "
                             "it")
        y = y.reshape(-1)
        if y.dtype.kind not in "iu" and not np.all(y == np.round(y)):
            raise ValueError(f"Boosting.fit: y must hold integer class labels, got dtype "
                             f"{y.dtype}")
        y = y.astype(np.int64)
        k = self.n_classes if self.n_classes is not None else int(y.max()) + 1
        if y.min() < 0 or y.max() >= k or k < 2:
            raise ValueError(f"Boosting.fit: labels must lie in [0, {k}) with at least 2 "
                             f"classes, got labels from {y.min()} to {y.max()}")
        n = len(y)
        weights = np.full(n, 1.0 / n)
        self.estimators_, self.sample_weights_ = [], []
        alphas, errors = [], []
        for _ in range(self.n_estimators):
            estimator = self.build_fn()
            estimator.fit(x, y, sample_weight=weights * n, **fit_kwargs)
            incorrect = predicted_classes(_predict(estimator, x, None)) != y
            error = float(weights @ incorrect / weights.sum())
            if error >= 1.0 - 1.0 / k:  # no better than chance: it would get alpha <= 0
                if not self.estimators_:
                    raise ValueError(f"Boosting.fit: the first member's weighted error {error:.4f} "
                                     f"is no better than chance (1 - 1/K = {1 - 1 / k:.4f}); "
                                     "the members are too weak to boost")
                break
            self.estimators_.append(estimator)
            self.sample_weights_.append(weights.copy())
            errors.append(error)
            if error <= 0.0:  # perfect: it alone decides (further members would learn nothing)
                alphas.append(1.0)
                break
            alpha = self.learning_rate * (math.log((1.0 - error) / error) + math.log(k - 1))
            alphas.append(alpha)
            weights = weights * np.exp(alpha * incorrect)
            weights /= weights.sum()
        self.estimator_weights_ = alphas
        self.estimator_errors_ = errors
        self.n_classes_ = k
        return self

    def predict(self, x, batch_size: int | None = 32) -> np.ndarray:
        """For each sample and class, ``sum_m alpha_m [h_m(x) = k] / sum_m alpha_m``, shape
        (N, K); ``predict_classes`` takes its argmax."""
        self._require_fitted()
        votes = np.zeros((len(x), self.n_classes_))
        for estimator, alpha in zip(self.estimators_, self.estimator_weights_):
            classes = predicted_classes(_predict(estimator, x, batch_size))
            votes[np.arange(len(x)), classes] += alpha
        return votes / sum(self.estimator_weights_)

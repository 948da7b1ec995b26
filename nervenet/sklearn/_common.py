"""What the scikit-learn estimators share: the sample weights, random states, the stopping rule
(their arguments are checked by ``nervenet.checks``)."""

from __future__ import annotations

import numbers

import numpy as np

from nervenet import backend


def check_sample_weight(owner: str, sample_weight, n: int, dtype) -> np.ndarray | None:
    """``sample_weight`` as an array of n finite non-negative weights, not all zero (a
    scalar is repeated); ``None`` stays ``None``."""
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight, dtype=dtype)
    if weights.ndim == 0:
        weights = np.full(n, weights, dtype=dtype)
    if weights.shape != (n,):
        raise ValueError(f"{owner}: sample_weight must have shape ({n},), one weight per "
                         f"sample, got {weights.shape}")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError(f"{owner}: sample_weight must be finite and non-negative")
    if not np.any(weights > 0):
        raise ValueError(f"{owner}: sample_weight must contain at least one non-zero weight, "
                         "got all zero")
    return weights


def make_generator(random_state) -> np.random.Generator:
    """A ``numpy.random.Generator`` from scikit-learn's ``random_state`` convention.

    ``None`` gives a child of nervenet's process-wide generator (so
    ``nervenet.utils.set_random_seed`` makes the run reproducible), an int seeds a new
    generator, a Generator is used as is, and a legacy ``RandomState`` (what scikit-learn's
    tools pass around) seeds a new generator from one draw.
    """
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(2**31 - 1))
    if random_state is None or isinstance(random_state, np.random.Generator):
        return backend.make_rng(random_state)
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return np.random.default_rng(int(random_state))
    raise ValueError(f"random_state must be None, an int, a numpy Generator or RandomState, got "
                     f"{random_state!r}")


class NoImprovement:
    """scikit-learn's stopping rule for ``tol`` and ``n_iter_no_change``.

    After every epoch ``update(value)`` is given the monitored value (the training loss, to be
    minimized, or a validation score, to be maximized) and counts the epochs that failed to
    improve on the best value so far by at least ``tol``; ``update`` returns True when more
    than ``n_iter_no_change`` epochs in a row did. Two details differ from Keras's
    EarlyStopping (``patience``, ``min_delta``), which is why this is its own small class:

    * the best value is updated by *any* improvement, even one smaller than ``tol`` (Keras
      moves its reference only when the improvement exceeds ``min_delta``);
    * training stops when the count *exceeds* ``n_iter_no_change`` (Keras stops when ``wait``
      reaches ``patience``), so ``n_iter_no_change + 1`` flat epochs are needed.

    Args:
        tol: the least improvement that counts.
        n_iter_no_change: how many flat epochs are tolerated.
        mode: ``"min"`` (a loss) or ``"max"`` (a score).
    """

    def __init__(self, tol: float, n_iter_no_change: int, mode: str = "min"):
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.sign = 1.0 if mode == "min" else -1.0
        self.best = np.inf
        self.count = 0
        self.is_best = False

    def update(self, value: float) -> bool:
        """Record this epoch's value; True when training should stop (or the rate drop)."""
        value = self.sign * value
        if not value < self.best - self.tol:        # NaN counts as no improvement
            self.count += 1
        else:
            self.count = 0
        #: whether this value is the best so far, by any margin (the weights to keep)
        self.is_best = value < self.best
        if self.is_best:
            self.best = value
        return self.count > self.n_iter_no_change

    def best_value(self) -> float:
        return self.sign * self.best

"""Second-order and quasi-Newton methods for full-batch training of small models.

All four share one loop (``SecondOrderOptimizer.minimize``): from the current point ``x`` (all
parameters flattened into one float64 vector) take a search direction ``d``, let the shared
``LineSearch`` choose the step length ``a``, move to ``x + a d``, and update what the method
remembers. Only the direction differs:

=================  ============================================  =========================
method             direction                                     line search
=================  ============================================  =========================
Newton             solve (H + tau I) d = -g, H the exact Hessian  backtracking Armijo
ConjugateGradient  d = -g + beta d_prev (Fletcher-Reeves or       strong Wolfe, c2 = 0.1
                   Polak-Ribiere+)
BFGS               d = -H^-1 g, the inverse Hessian estimated     strong Wolfe, c2 = 0.9
                   from gradient differences
LBFGS              the same from the last ``history_size`` pairs  strong Wolfe, c2 = 0.9
=================  ============================================  =========================

The exact Hessian comes from double backward (``objective.FlatObjective.hessian``).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from nervenet.checks import check_number
from nervenet.optimizers.line_search import LineSearch
from nervenet.optimizers.objective import FlatObjective


@dataclass
class OptimizeResult:
    """What ``minimize`` returns (the parameters themselves are updated in place).

    Attributes:
        fun: the loss at the final parameters.
        nit: the number of iterations (accepted steps).
        nfev: the number of calls of ``loss_fn``.
        converged: whether the largest gradient entry is at most ``tol``.
        message: why the iterations stopped.
        grad_norm: the largest absolute gradient entry at the end.
        history: the loss at the start and after every iteration.
    """

    fun: float
    nit: int
    nfev: int
    converged: bool
    message: str
    grad_norm: float
    history: list[float] = field(default_factory=list)


class SecondOrderOptimizer:
    """Base class: the shared minimize loop. Subclasses give the search direction.

    Args:
        max_iter: the most iterations (accepted steps) per ``minimize`` call.
        tol: stop when the largest absolute gradient entry is at most this (as
            torch.optim.LBFGS's ``tolerance_grad``).
        line_search: a ``LineSearch``, its method name (``"armijo"``, ``"strong_wolfe"``) or its
            config dict; ``None`` for the method's default.
        name: a label (default: the class name in lower case).
    """

    default_line_search: dict = {"method": "strong_wolfe"}

    def __init__(self, max_iter: int, tol: float, line_search=None, name=None):
        owner = type(self).__name__
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            raise ValueError(f"{owner}: max_iter must be a positive int, got {max_iter!r}")
        self.max_iter = max_iter
        self.tol = check_number(owner, "tol", tol, 0.0)
        if line_search is None:
            line_search = LineSearch(**self.default_line_search)
        elif isinstance(line_search, str):
            line_search = LineSearch(line_search)
        elif isinstance(line_search, dict):
            line_search = LineSearch(**line_search)
        elif not isinstance(line_search, LineSearch):
            raise TypeError(f"{owner}: line_search must be a LineSearch, a method name or a "
                            f"config dict, got {type(line_search).__name__}")
        self.line_search = line_search
        self.name = type(self).__name__.lower() if name is None else str(name)

    # Subclass hooks -------------------------------------------------------------------
    def _start(self, n: int) -> None:
        """Forget what earlier iterations taught (called at the start and on restarts)."""

    def _direction(self, objective: FlatObjective, x, g) -> np.ndarray:
        raise NotImplementedError

    def _remember(self, s, y, g_old, d) -> None:
        """Learn from the accepted step ``s = x_new - x``, ``y = g_new - g_old`` along ``d``."""

    def _initial_step(self, nit: int, f, f_old, g, slope) -> float:
        # The first step of a method without curvature information is a unit-length move.
        return min(1.0, 1.0 / np.linalg.norm(g)) if nit == 0 else 1.0

    # The loop -------------------------------------------------------------------------
    def minimize(self, loss_fn, params, callback=None) -> OptimizeResult:
        """Minimize ``loss_fn()`` over ``params``, updating them in place.

        Full batch: ``loss_fn`` must compute the whole loss (all training samples) from the
        current values of ``params`` every time it is called; ``Model.fit`` calls this method
        with the model's full-batch loss and its trainable weights, one iteration per epoch.

        Args:
            loss_fn: ``loss_fn() -> Tensor``, a one-element loss built from ``params``.
            params: a Tensor or a list of leaf Tensors with ``requires_grad=True``.
            callback: ``callback(nit, loss)`` after every iteration (the parameters hold the
                new point); returning True stops (default ``None``).

        Returns:
            An ``OptimizeResult`` with ``fun``, ``nit``, ``nfev``, ``converged``, ``message``.

        Raises:
            FloatingPointError: the loss is NaN or inf at the starting point, no finite trial
                point is found along a direction, or a gradient is NaN/inf at a finite loss.
        """
        owner = type(self).__name__
        objective = FlatObjective(loss_fn, params, owner)
        x = objective.get()
        f, g = objective.value_and_grad(x)
        if g is None:
            raise FloatingPointError(f"{owner}.minimize: loss_fn returned {f} at the starting "
                                     "point")
        self._start(x.size)
        history, nit, f_old = [f], 0, None
        message = f"reached max_iter={self.max_iter}"
        while np.abs(g).max() > self.tol:
            if nit >= self.max_iter:
                break
            result, d = self._search(objective, x, f, f_old, g, nit)
            if not result.success or result.grad is None:
                message = (f"the line search found no acceptable step at iteration {nit + 1} "
                           "(at the limit of floating-point precision, or a bad direction)")
                break
            objective.set(x + result.step * d)
            x_new = objective.get()                 # as stored in the parameters' dtype
            self._remember(x_new - x, result.grad - g, g, d)
            x, f_old, f, g = x_new, f, result.value, result.grad
            nit += 1
            history.append(f)
            if callback is not None and callback(nit, f):
                message = "stopped by the callback"
                break
        objective.set(x)
        grad_norm = float(np.abs(g).max())
        converged = grad_norm <= self.tol
        if converged:
            message = f"converged: max |gradient| = {grad_norm:.3g} <= tol = {self.tol:g}"
        return OptimizeResult(f, nit, objective.nfev, converged, message, grad_norm, history)

    def _search(self, objective: FlatObjective, x, f, f_old, g, nit: int):
        """Iteration ``nit + 1``'s direction and the line search along it: ``(result, d)``.

        Raises:
            FloatingPointError: the loss is NaN or inf at every trial point.
        """
        d = self._direction(objective, x, g)
        slope = float(g @ d)
        if not slope < 0:                       # lost conjugacy / curvature: restart
            self._start(x.size)
            d, slope = -g, -float(g @ g)
        step = self._initial_step(nit, f, f_old, g, slope)
        finite_trials = []

        def phi(a):
            value, gradient = objective.value_and_grad(x + a * d)
            if gradient is None:
                return value, math.nan, None
            finite_trials.append(a)
            return value, float(gradient @ d), gradient

        result = self.line_search(phi, f, slope, step, noise=objective.noise(f))
        if (not result.success or result.grad is None) and not finite_trials:
            raise FloatingPointError(f"{type(self).__name__}.minimize: loss_fn is NaN or inf at "
                                     f"every trial point along the direction of iteration "
                                     f"{nit + 1}")
        return result, d

    def apply_gradients(self, grads_and_vars) -> None:
        """Not available: a second-order method needs the loss itself, not one gradient."""
        raise TypeError(f"{type(self).__name__} needs the loss function, not gradients: call "
                        "minimize(loss_fn, params) (full batch)")

    def get_config(self) -> dict:
        ls = self.line_search
        return {"name": self.name, "max_iter": self.max_iter, "tol": self.tol,
                "line_search": {"method": ls.method, "c1": ls.c1, "c2": ls.c2,
                                "max_iter": ls.max_iter, "shrink": ls.shrink}}

    @classmethod
    def from_config(cls, config: dict) -> SecondOrderOptimizer:
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_iter={self.max_iter}, tol={self.tol})"


class Newton(SecondOrderOptimizer):
    """Damped Newton's method with the exact Hessian.

    Rule: ``d = -(H + tau I)^-1 g`` with ``tau = damping`` when ``H + damping I`` is positive
    definite, otherwise increased from ``-min(diag H) + beta`` by doubling until a Cholesky
    factorization succeeds (Nocedal & Wright, algorithm 3.3, ``beta = 1e-3 max(1, max|H_ii|)``);
    then ``x <- x + a d`` with ``a`` from backtracking Armijo starting at 1. Near a minimum
    ``tau = 0`` and ``a = 1``: convergence is quadratic.

    Each iteration costs one Hessian: ``n`` double-backward passes for ``n`` parameters.

    Args:
        max_iter: the most iterations (default 50).
        tol: the gradient tolerance (max absolute entry) (default 1e-7).
        damping: a Levenberg term added to the Hessian at every step (default 0.0).
        line_search: see ``SecondOrderOptimizer`` (default backtracking Armijo).
        name: a label (default ``"newton"``).

    Example:
        >>> import numpy as np, nervenet
        >>> w = nervenet.tensor(np.array([3.0, -2.0]), requires_grad=True)
        >>> result = Newton().minimize(lambda: ((w - 1.0) ** 2).sum(), [w])
        >>> result.nit, w.data
        (1, array([1., 1.]))
    """

    default_line_search = {"method": "armijo"}

    def __init__(self, max_iter=50, tol=1e-7, damping=0.0, line_search=None, name=None):
        super().__init__(max_iter, tol, line_search, name)
        self.damping = check_number("Newton", "damping", damping, 0.0)

    def _direction(self, objective, x, g):
        hessian = objective.hessian(x)
        diagonal = np.diag(hessian)
        beta = 1e-3 * max(1.0, float(np.abs(diagonal).max()))
        tau = self.damping
        if diagonal.min() + tau <= 0:
            tau = -diagonal.min() + beta
        identity = np.eye(x.size)
        while True:
            try:
                np.linalg.cholesky(hessian + tau * identity)
                break
            except np.linalg.LinAlgError:
                tau = max(2.0 * tau, beta)
        return np.linalg.solve(hessian + tau * identity, -g)

    def _initial_step(self, nit, f, f_old, g, slope):
        return 1.0

    def get_config(self):
        return {**super().get_config(), "damping": self.damping}


class ConjugateGradient(SecondOrderOptimizer):
    """Nonlinear conjugate gradients (Fletcher-Reeves or Polak-Ribiere+).

    Rule: ``d_0 = -g_0``, then ``d_k = -g_k + beta_k d_{k-1}`` with::

        Fletcher-Reeves:  beta = (g_k . g_k) / (g_{k-1} . g_{k-1})
        Polak-Ribiere+:   beta = max(0, g_k . (g_k - g_{k-1}) / (g_{k-1} . g_{k-1}))

    restarting (``beta = 0``) when successive gradients are far from orthogonal,
    ``|g_k . g_{k-1}| >= 0.1 g_k . g_k`` (Powell), and stepping with a strong-Wolfe line search
    with ``c2 = 0.1`` (below 1/2, so every ``d_k`` is a descent direction). Only vectors are
    stored: the method scales to many parameters.

    Args:
        method: ``"polak_ribiere"`` (default) or ``"fletcher_reeves"``.
        max_iter: the most iterations (default 200).
        tol: the gradient tolerance (max absolute entry) (default 1e-7).
        line_search: see ``SecondOrderOptimizer`` (default strong Wolfe, c2 = 0.1).
        name: a label (default ``"conjugategradient"``).
    """

    default_line_search = {"method": "strong_wolfe", "c2": 0.1}

    def __init__(self, method="polak_ribiere", max_iter=200, tol=1e-7, line_search=None,
                 name=None):
        super().__init__(max_iter, tol, line_search, name)
        if method not in ("polak_ribiere", "fletcher_reeves"):
            raise ValueError(f"ConjugateGradient: method must be 'polak_ribiere' or "
                             f"'fletcher_reeves', got {method!r}")
        self.method = method
        self._previous = None

    def _start(self, n):
        self._previous = None

    def _direction(self, objective, x, g):
        if self._previous is None:
            return -g
        g_old, d_old = self._previous
        gg_old = g_old @ g_old
        if abs(g @ g_old) >= 0.1 * (g @ g):
            beta = 0.0
        elif self.method == "fletcher_reeves":
            beta = (g @ g) / gg_old
        else:
            beta = max(0.0, g @ (g - g_old) / gg_old)
        return -g + beta * d_old

    def _remember(self, s, y, g_old, d):
        self._previous = (g_old, d)

    def _initial_step(self, nit, f, f_old, g, slope):
        if nit == 0:
            return super()._initial_step(nit, f, f_old, g, slope)
        # Interpolate the last decrease (N&W eq. 3.60), as scipy's CG.
        guess = 1.01 * 2.0 * (f - f_old) / slope
        return min(1.0, guess) if guess > 0 else 1.0

    def get_config(self):
        return {**super().get_config(), "method": self.method}


def _curvature_ok(s, y) -> bool:
    """``s . y > 0`` with a margin: only then does the update keep H positive definite."""
    return s @ y > 1e-10 * np.linalg.norm(s) * np.linalg.norm(y)


class BFGS(SecondOrderOptimizer):
    """BFGS: a quasi-Newton method keeping a dense estimate ``H`` of the inverse Hessian.

    Rule: ``d = -H g``; after a step ``s = x_new - x`` with ``y = g_new - g``
    and ``rho = 1 / (y . s)``::

        H <- (I - rho s y^T) H (I - rho y s^T) + rho s s^T

    with ``H = I`` for the first step and ``H = (s . y) / (y . y) I`` just before the first
    update (Nocedal & Wright eq. 6.20). A strong-Wolfe line search guarantees ``s . y > 0``.
    Memory is ``n^2``: use LBFGS for many parameters.

    Args:
        max_iter: the most iterations (default 200).
        tol: the gradient tolerance (max absolute entry) (default 1e-7).
        line_search: see ``SecondOrderOptimizer`` (default strong Wolfe, c2 = 0.9).
        name: a label (default ``"bfgs"``).
    """

    def __init__(self, max_iter=200, tol=1e-7, line_search=None, name=None):
        super().__init__(max_iter, tol, line_search, name)
        self._inverse_hessian = None

    def _start(self, n):
        self._inverse_hessian = None

    def _direction(self, objective, x, g):
        return -g if self._inverse_hessian is None else -(self._inverse_hessian @ g)

    def _remember(self, s, y, g_old, d):
        if not _curvature_ok(s, y):
            return
        sy = s @ y
        if self._inverse_hessian is None:
            self._inverse_hessian = (sy / (y @ y)) * np.eye(s.size)
        h_y = self._inverse_hessian @ y
        self._inverse_hessian += ((sy + y @ h_y) / sy**2) * np.outer(s, s) \
            - (np.outer(h_y, s) + np.outer(s, h_y)) / sy


class LBFGS(SecondOrderOptimizer):
    """Limited-memory BFGS: the BFGS direction from the last ``history_size`` pairs ``(s, y)``.

    Rule: ``d = -H g`` computed by the two-loop recursion (Nocedal & Wright algorithm 7.4)
    without forming ``H``, starting from ``H_0 = (s . y) / (y . y) I`` of the newest pair;
    strong-Wolfe line search. Memory is ``2 history_size n``.

    Args:
        history_size: how many pairs to keep (default 10, as torch.optim.LBFGS).
        max_iter: the most iterations (default 200).
        tol: the gradient tolerance (max absolute entry) (default 1e-7).
        line_search: see ``SecondOrderOptimizer`` (default strong Wolfe, c2 = 0.9).
        name: a label (default ``"lbfgs"``).

    Example:
        >>> import numpy as np, nervenet
        >>> w = nervenet.tensor(np.array([-1.2, 1.0]), requires_grad=True)
        >>> rosenbrock = lambda: (1 - w[0]) ** 2 + 100 * (w[1] - w[0] ** 2) ** 2
        >>> LBFGS(tol=1e-9).minimize(rosenbrock, [w]).converged, np.round(w.data, 6)
        (True, array([1., 1.]))
    """

    def __init__(self, history_size=10, max_iter=200, tol=1e-7, line_search=None, name=None):
        super().__init__(max_iter, tol, line_search, name)
        if isinstance(history_size, bool) or not isinstance(history_size, int) \
                or history_size < 1:
            raise ValueError(f"LBFGS: history_size must be a positive int, got "
                             f"{history_size!r}")
        self.history_size = history_size
        self._pairs = deque(maxlen=history_size)

    def _start(self, n):
        self._pairs = deque(maxlen=self.history_size)

    def _direction(self, objective, x, g):
        if not self._pairs:
            return -g
        q = g.copy()
        alphas = []
        for s, y, rho in reversed(self._pairs):
            alpha = rho * (s @ q)
            q -= alpha * y
            alphas.append(alpha)
        s, y, _ = self._pairs[-1]
        r = ((s @ y) / (y @ y)) * q
        for (s, y, rho), alpha in zip(self._pairs, reversed(alphas)):
            r += (alpha - rho * (y @ r)) * s
        return -r

    def _remember(self, s, y, g_old, d):
        if _curvature_ok(s, y):
            self._pairs.append((s, y, 1.0 / (s @ y)))

    def get_config(self):
        return {**super().get_config(), "history_size": self.history_size}


__all__ = ["BFGS", "ConjugateGradient", "LBFGS", "Newton", "OptimizeResult",
           "SecondOrderOptimizer"]

"""Line searches: how far to go along a descent direction. Shared by every second-order method.

Along a direction ``d`` from ``x`` the loss is a function of one variable,
``phi(a) = f(x + a d)``, with slope ``phi'(a) = grad f(x + a d) . d`` (negative at 0 for a
descent direction). A step ``a`` is accepted when (Nocedal & Wright, Numerical Optimization,
chapter 3):

* Armijo (sufficient decrease):   ``phi(a) <= phi(0) + c1 a phi'(0)``;
* strong Wolfe: Armijo and        ``|phi'(a)| <= c2 |phi'(0)|`` (the slope has flattened).

``"armijo"`` backtracks from the initial step (``a <- shrink * a``) until Armijo holds; it
suits Newton, whose full step is usually right. ``"strong_wolfe"`` brackets and zooms with
cubic interpolation (N&W algorithms 3.5 and 3.6); quasi-Newton methods need the curvature
condition so that ``s . y > 0`` keeps their Hessian estimate positive definite, and conjugate
gradients need it (with ``c2 < 1/2``) to keep producing descent directions.

Near a minimum the loss is flat to rounding error and the Armijo test compares noise. Given
the ``noise`` level of the loss values, both searches accept ``phi(a)`` up to ``noise`` above
the Armijo bound, so the decision falls to the slopes, which keep their relative precision
(the "approximate Wolfe" idea of Hager & Zhang, 2005).

A NaN or infinite loss at a trial step means the step went too far (an overflow): the search
shortens it. When no finite value is found the search fails.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nervenet.checks import check_number


@dataclass
class LineSearchResult:
    """The outcome of a line search.

    Attributes:
        step: the accepted step length ``a`` (the last one tried when ``success`` is False).
        value: ``phi(step)``.
        slope: ``phi'(step)``.
        grad: the full gradient at ``x + step d`` (whatever ``phi`` returned with it).
        nfev: how many times ``phi`` was evaluated.
        success: whether the conditions hold at ``step``.
    """

    step: float
    value: float
    slope: float
    grad: np.ndarray | None
    nfev: int
    success: bool


class LineSearch:
    """Find a step length along a descent direction (backtracking Armijo or strong Wolfe).

    Args:
        method: ``"strong_wolfe"`` (default) or ``"armijo"``.
        c1: the sufficient-decrease constant (default 1e-4).
        c2: the curvature constant of strong Wolfe, in (c1, 1) (default 0.9; use 0.1 for
            conjugate gradients).
        max_iter: the most evaluations of ``phi`` per search (default 30).
        shrink: the backtracking factor of Armijo, in (0, 1) (default 0.5).

    Example:
        >>> search = LineSearch("armijo")
        >>> phi = lambda a: ((a - 1.0) ** 2, 2 * (a - 1.0), None)   # value, slope, gradient
        >>> search(phi, value=1.0, slope=-2.0, step=4.0).step
        1.0
    """

    def __init__(self, method: str = "strong_wolfe", c1: float = 1e-4, c2: float = 0.9,
                 max_iter: int = 30, shrink: float = 0.5):
        if method not in ("strong_wolfe", "armijo"):
            raise ValueError(f"LineSearch: method must be 'strong_wolfe' or 'armijo', got "
                             f"{method!r}")
        self.method = method
        self.c1 = check_number("LineSearch", "c1", c1, 0.0, 1.0, low_open=True, high_open=True)
        self.c2 = check_number("LineSearch", "c2", c2, self.c1, 1.0, low_open=True,
                               high_open=True)
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            raise ValueError(f"LineSearch: max_iter must be a positive int, got {max_iter!r}")
        self.max_iter = max_iter
        self.shrink = check_number("LineSearch", "shrink", shrink, 0.0, 1.0, low_open=True,
                                   high_open=True)

    def __call__(self, phi: Callable, value: float, slope: float, step: float = 1.0,
                 noise: float = 0.0) -> LineSearchResult:
        """Search along a direction.

        Args:
            phi: ``phi(a) -> (value, slope, grad)``: the loss, its derivative along the
                direction and the full gradient (passed through) at ``x + a d``.
            value: ``phi(0)``.
            slope: ``phi'(0)``; must be negative (a descent direction).
            step: the first step length to try (default 1.0).
            noise: the rounding error of loss values: a trial value may exceed the Armijo
                bound by this much (default 0.0: the exact test).

        Returns:
            A ``LineSearchResult``.
        """
        if not slope < 0:
            raise ValueError(f"LineSearch: the direction is not a descent direction (slope "
                             f"{slope} at step 0; expected < 0)")
        if not step > 0:
            raise ValueError(f"LineSearch: the initial step must be positive, got {step}")
        if self.method == "armijo":
            return self._armijo(phi, value, slope, step, noise)
        return self._strong_wolfe(phi, value, slope, step, noise)

    def _armijo(self, phi, f0, d0, step, noise):
        for nfev in range(1, self.max_iter + 1):
            f, d, g = phi(step)
            if math.isfinite(f) and f <= f0 + self.c1 * step * d0 + noise:
                return LineSearchResult(step, f, d, g, nfev, True)
            if nfev < self.max_iter:
                step *= self.shrink
        return LineSearchResult(step, f, d, g, self.max_iter, False)

    def _strong_wolfe(self, phi, f0, d0, step, noise):
        """N&W algorithm 3.5: grow the step until a bracket contains acceptable points."""
        c1, c2 = self.c1, self.c2
        previous = (0.0, f0, d0, None)
        nfev = 0
        while nfev < self.max_iter:
            f, d, g = phi(step)
            nfev += 1
            if not math.isfinite(f) or not math.isfinite(d):
                step = previous[0] + 0.5 * (step - previous[0])    # overflow: too far
                continue
            current = (step, f, d, g)
            if f > f0 + c1 * step * d0 + noise or (nfev > 1 and f >= previous[1] + noise):
                return self._zoom(phi, f0, d0, previous, current, nfev, noise)
            if abs(d) <= -c2 * d0:
                return LineSearchResult(step, f, d, g, nfev, True)
            if d >= 0:
                return self._zoom(phi, f0, d0, current, previous, nfev, noise)
            previous = current
            step *= 2.0
        step, f, d, g = previous
        return LineSearchResult(step, f, d, g, nfev, False)

    def _zoom(self, phi, f0, d0, low, high, nfev, noise):
        """N&W algorithm 3.6: shrink the bracket [low, high] (low: the best Armijo point so
        far) by safeguarded cubic interpolation until strong Wolfe holds."""
        c1, c2 = self.c1, self.c2
        while nfev < self.max_iter:
            a_low, f_low, d_low, _ = low
            a_high, f_high, d_high, _ = high
            step = _cubic_minimizer(a_low, f_low, d_low, a_high, f_high, d_high)
            width = abs(a_high - a_low)
            margin = 0.1 * width
            if step is None or not (min(a_low, a_high) + margin <= step
                                    <= max(a_low, a_high) - margin):
                step = 0.5 * (a_low + a_high)                       # bisection
            f, d, g = phi(step)
            nfev += 1
            if not math.isfinite(f) or not math.isfinite(d) \
                    or f > f0 + c1 * step * d0 + noise or f >= f_low + noise:
                high = (step, f, d, g)
            else:
                if abs(d) <= -c2 * d0:
                    return LineSearchResult(step, f, d, g, nfev, True)
                if d * (a_high - a_low) >= 0:
                    high = low
                low = (step, f, d, g)
            if width < 1e-16 * max(1.0, abs(a_low)):
                break                                               # bracket at precision
        step, f, d, g = low
        return LineSearchResult(step, f, d, g, nfev, False)


def _cubic_minimizer(a, fa, da, b, fb, db):
    """The minimizer of the cubic matching values and slopes at ``a`` and ``b`` (N&W 3.59), or
    ``None`` when it does not exist or is not finite."""
    if not (math.isfinite(fb) and math.isfinite(db)) or a == b:
        return None
    d1 = da + db - 3.0 * (fa - fb) / (a - b)
    radicand = d1 * d1 - da * db
    if radicand < 0:
        return None
    d2 = math.copysign(math.sqrt(radicand), b - a)
    denominator = db - da + 2.0 * d2
    if denominator == 0:
        return None
    step = b - (b - a) * (db + d2 - d1) / denominator
    return step if math.isfinite(step) else None


__all__ = ["LineSearch", "LineSearchResult"]

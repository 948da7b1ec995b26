"""Elementwise kernels: ReLU, a masked gradient, the sigmoid, erf / erfc, log-softmax."""

from __future__ import annotations

import functools
import math

import numpy as np

from nervenet.backend import get_array_module

_SQRT1_2 = math.sqrt(0.5)

#: the length of the cached row of zeros ``relu`` compares against
ROW = 8192


@functools.lru_cache(maxsize=4)
def _zero_row(dtype: np.dtype) -> np.ndarray:
    zeros = np.zeros(ROW, dtype)
    zeros.flags.writeable = False  # shared between calls
    return zeros


def relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """max(x, 0), into ``out`` (which may be ``x``) or a new array (bit for bit
    ``np.maximum(x, 0)``).

    NOTE: NumPy's vectorized loop for ``maximum`` runs only when both operands are arrays;
    against the scalar 0 it takes a slower element-by-element loop. So a contiguous x is viewed
    as rows of ``ROW`` elements and compared with one cached row of zeros (the last, incomplete
    row against the scalar).
    """
    xp = get_array_module(x)
    if xp is not np:  # the trick is NumPy's; a device's maximum is vectorized against 0
        return xp.maximum(x, 0, out=out)
    y = np.empty_like(x) if out is None else out
    if not (x.flags.c_contiguous and y.flags.c_contiguous) or x.size < ROW:
        return np.maximum(x, 0, out=y)
    body = x.size // ROW * ROW
    flat_x, flat_y = x.reshape(-1), y.reshape(-1)
    np.maximum(flat_x[:body].reshape(-1, ROW), _zero_row(x.dtype),
               out=flat_y[:body].reshape(-1, ROW))
    np.maximum(flat_x[body:], 0, out=flat_y[body:])
    return y


def masked(gy: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``gy * mask`` for a boolean mask of gy's shape, into a new array of gy's dtype.

    NOTE: the mask is copied into the output as 1.0 / 0.0 first, then multiplied in place:
    NumPy's product of a float and a boolean array casts through a buffer, slower than the
    contiguous bool -> float copy followed by a float product.
    """
    xp = get_array_module(gy)
    gx = xp.empty(gy.shape, dtype=gy.dtype)
    xp.copyto(gx, mask)
    return xp.multiply(gx, gy, out=gx)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^(-z)), into one new array.

    For z < -88 (float32) or -709 (float64) e^(-z) overflows to inf and 1 / (1 + inf) = 0, the
    correctly rounded limit: the formula needs no branch to be stable.
    """
    xp = get_array_module(z)
    t = xp.empty_like(z)  # (not np.negative(z): on a 0-d array that returns a scalar)
    xp.negative(z, out=t)
    with np.errstate(over="ignore"):  # NumPy's warning; a device does not warn
        xp.exp(t, out=t)
    t += 1
    return xp.reciprocal(t, out=t)


def log_softmax_and_softmax(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log_softmax(x), softmax(x)) over the last axis, via log-sum-exp (never overflows)."""
    xp = get_array_module(x)
    z = x - x.max(axis=-1, keepdims=True)
    probs = xp.exp(z)
    total = probs.sum(axis=-1, keepdims=True)
    z -= xp.log(total)
    probs /= total
    return z, probs


# ------------------------------------------------------------------ the error function
# Cody's coefficients: erf(x) = x P(x^2)/Q(x^2) for |x| <= 0.46875; erfc(x) = e^(-x^2) P(x)/Q(x)
# for 0.46875 < x <= 4; erfc(x) = e^(-x^2)/x (1/sqrt(pi) + R(1/x^2)/x^2) for x > 4.
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
          3.20937758913846947e03, 1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
          2.84423683343917062e03)
_ERF_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
          2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
          2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_ERF_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
          1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
          3.43936767414372164e03, 1.23033935480374942e03)
_ERF_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
          1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERF_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
          6.05183413124413191e-2, 2.33520497626869185e-3)
_INV_SQRT_PI = 5.6418958354775628695e-1
_ERF_SMALL = 0.46875


def _erf_small(x):
    """erf(x) for |x| <= 0.46875 (relative accuracy near 0 is kept: no 1 - erfc)."""
    z = x * x
    num = _ERF_A[4] * z
    den = z
    for a, b in zip(_ERF_A[:3], _ERF_B[:3]):
        num = (num + a) * z
        den = (den + b) * z
    return x * (num + _ERF_A[3]) / (den + _ERF_B[3])


def _erfc_positive(y):
    """erfc(y) for y > 0.46875, relative accuracy kept deep into the tail."""
    xp = get_array_module(y)
    result = xp.empty_like(y)
    middle = y <= 4.0
    if middle.any():
        t = y[middle]
        num = _ERF_C[8] * t
        den = t
        for c, d in zip(_ERF_C[:7], _ERF_D[:7]):
            num = (num + c) * t
            den = (den + d) * t
        result[middle] = (num + _ERF_C[7]) / (den + _ERF_D[7])
    tail = ~middle
    if tail.any():
        # erfc(40) is far below the smallest double: clamping keeps inf out of the arithmetic.
        t = xp.minimum(y[tail], 40.0)
        z = 1.0 / (t * t)
        num = _ERF_P[5] * z
        den = z
        for p, q in zip(_ERF_P[:4], _ERF_Q[:4]):
            num = (num + p) * z
            den = (den + q) * z
        result[tail] = (_INV_SQRT_PI - z * (num + _ERF_P[4]) / (den + _ERF_Q[4])) / t
    # exp(-y^2) with y^2 split as s^2 + (y - s)(y + s), s = y rounded down to 1/16: s^2 is
    # exact, so the rounding error of y*y is not amplified by the exponential.
    s = xp.trunc(xp.minimum(y, 40.0) * 16.0) / 16.0
    with np.errstate(invalid="ignore"):  # NaN inputs stay NaN
        return result * xp.exp(-s * s) * xp.exp(-(y - s) * (y + s))


def erf(x) -> np.ndarray:
    """The error function ``erf(x) = 2/sqrt(pi) * integral_0^x e^(-t^2) dt`` on an ndarray.

    W. J. Cody's rational Chebyshev approximations (Math. Comp. 23, 1969; the CALERF routine
    of SPECFUN), vectorized, accurate to about one unit in the last place of a double (NumPy
    has no erf). Floating arrays keep their dtype; anything else is computed in float64.

    Example:
        >>> float(erf(0.5))
        0.5204998778130465
    """
    xp = get_array_module(x)
    x, small, near, tail = _erf_pieces(x)
    result = xp.empty_like(x)
    result[small] = near
    if tail is not None:
        result[~small] = xp.copysign((0.5 - tail) + 0.5, x[~small])
    return result


def erfc(x) -> np.ndarray:
    """The complementary error function ``erfc(x) = 1 - erf(x)`` on an ndarray, with full
    relative accuracy for large positive x (where ``1 - erf(x)`` would round to 0).

    Example:
        >>> float(erfc(10.0))
        2.08848758376e-45
    """
    xp = get_array_module(x)
    x, small, near, tail = _erf_pieces(x)
    result = xp.empty_like(x)
    result[small] = 1.0 - near
    if tail is not None:
        result[~small] = xp.where(x[~small] < 0, 2.0 - tail, tail)
    return result


def _erf_pieces(x):
    """What erf and erfc share: ``x`` as a floating array, the mask ``|x| <= 0.46875``
    (Cody's first interval), erf there, and erfc(|x|) elsewhere (``None`` when nothing is)."""
    xp = get_array_module(x)
    x = xp.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    small = xp.abs(x) <= _ERF_SMALL
    tail = None if small.all() else _erfc_positive(xp.abs(x[~small]))
    return x, small, _erf_small(x[small]), tail


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """Phi(x) = P(N(0, 1) <= x) = erfc(-x / sqrt(2)) / 2, accurate in both tails."""
    return 0.5 * erfc(x * -_SQRT1_2)

"""Activation functions: step, sigmoid, tanh, the ReLU family, ELU/SELU, GELU, swish, mish,
softmax, log-softmax, softplus and maxout.

Every backward is written with differentiable Tensor ops, so second derivatives are exact
(Newton's method and Hessian-vector products need them). Where an activation has a kink (ReLU
at 0, the step, ...) the derivative used there is stated: it is the one PyTorch uses.

The hot activations (sigmoid, tanh, relu, gelu, softmax, log-softmax) also state their
gradient on bare arrays (``backward_array``), which the engine uses when the backward pass is
not itself recorded. GELU's normal CDF uses Cody's erf from ``nervenet.kernels``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from nervenet import backend, kernels
from nervenet.autograd.function import Function
from nervenet.autograd.ops.arith import exp, where
from nervenet.autograd.tensor import Tensor, as_tensor
from nervenet.backend import get_array_module

# SELU's constants, as in Klambauer et al. (2017) and torch.nn.SELU.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_TANH_K = math.sqrt(2.0 / math.pi)
_GELU_TANH_C = 0.044715


# ------------------------------------------------------------------ the Functions


class Step(Function):
    """y = high where x > 0, low where x < 0, at_zero at 0;  dx = 0 (the step is flat)."""

    def __init__(self, low: float, high: float, at_zero: float):
        self.low, self.high, self.at_zero = low, high, at_zero

    def forward(self, x):
        kind = x.dtype.type
        y = get_array_module(x).where(x > 0, kind(self.high), kind(self.low))
        if self.at_zero != self.low:
            y[x == 0] = self.at_zero
        return y

    def backward(self, gy):
        return Tensor.from_array(get_array_module(gy.data).zeros(gy.shape, dtype=gy.dtype))


class Sigmoid(Function):
    """y = 1 / (1 + e^(-a x));  dx = gy * a * y * (1 - y)."""

    def __init__(self, a: float = 1.0):
        self.a = a

    def forward(self, x):
        return kernels.sigmoid(x if self.a == 1.0 else x * self.a)

    def backward(self, gy):
        y = self.outputs[0]()
        return gy * (y * (1 - y) * self.a)

    def backward_array(self, gy):
        y = self.outputs[0]().data
        return gy * (y * (1 - y) * self.a)


class Tanh(Function):
    """y = tanh(x);  dx = gy * (1 - y^2)."""

    def forward(self, x):
        return get_array_module(x).tanh(x)

    def backward(self, gy):
        y = self.outputs[0]()
        return gy * (1 - y * y)

    def backward_array(self, gy):
        y = self.outputs[0]().data
        return gy * (1 - y * y)


class ReLU(Function):
    """y = max(x, 0);  dx = gy where x > 0, else 0 (0 at x = 0, as torch)."""

    #: overwrite x with y (set by ``autograd.rewrite`` in a captured step, where no other
    #: operation reads x)
    in_place = False

    def forward(self, x):
        y = kernels.relu(x, out=x if self.in_place else None)
        if self.needs_input_grad[0]:
            # y > 0 exactly where x > 0 (NaN: neither): one byte per element, read by backward
            # instead of x, computed while y is in cache.
            self.positive = y > 0
        return y

    def backward(self, gy):
        # The mask is a constant: ReLU's second derivative is 0 wherever it exists.
        return gy * self.positive.astype(gy.dtype)

    def backward_array(self, gy):
        return kernels.masked(gy, self.positive)


class LeakyReLU(Function):
    """y = x where x > 0, else alpha x;  dx = gy where x > 0, else alpha gy."""

    def __init__(self, alpha: float):
        self.alpha = alpha

    def forward(self, x):
        # max(x, 0) + alpha min(x, 0): no branch (np.where with a random mask is slow)
        xp = get_array_module(x)
        y = xp.minimum(x, 0)
        y *= self.alpha
        y += xp.maximum(x, 0)
        return y

    def backward(self, gy):
        slope = (self.inputs[0].data > 0).astype(gy.dtype)  # 1 where x > 0, alpha elsewhere
        slope *= 1 - self.alpha
        slope += self.alpha
        return gy * slope


class PReLU(Function):
    """y = x where x > 0, else alpha x with a learned alpha broadcast against x;
    dx = gy where x > 0, else alpha gy;  dalpha = gy x where x <= 0, else 0."""

    def forward(self, x, alpha):
        xp = get_array_module(x)
        return xp.maximum(x, 0) + alpha * xp.minimum(x, 0)

    def backward(self, gy):
        x, alpha = self.inputs
        negative = (x.data <= 0).astype(gy.dtype)
        gx = gy * (alpha * negative + (1 - negative)) if self.needs_input_grad[0] else None
        galpha = gy * x * negative if self.needs_input_grad[1] else None
        return gx, galpha


class ELU(Function):
    """y = scale x where x > 0, else scale alpha (e^x - 1);
    dx = gy scale where x > 0, else gy (y + scale alpha)  (SELU is the scaled case)."""

    def __init__(self, alpha: float, scale: float = 1.0):
        self.alpha = alpha
        self.scale = scale

    def forward(self, x):
        # scale (max(x, 0) + alpha (e^min(x, 0) - 1)): no branch, and e^x never overflows.
        xp = get_array_module(x)
        y = xp.expm1(xp.minimum(x, 0))
        y *= self.alpha
        y += xp.maximum(x, 0)
        if self.scale != 1.0:
            y *= self.scale
        return y

    def backward(self, gy):
        y = self.outputs[0]()
        positive = self.inputs[0].data > 0
        # d/dx scale alpha (e^x - 1) = scale alpha e^x = y + scale alpha: written with the
        # output, the second derivative flows through y again and is exact.
        return gy * where(positive, self.scale, y + self.scale * self.alpha)


class Softplus(Function):
    """y = ln(1 + e^x) = max(x, 0) + ln(1 + e^(-|x|));  dx = gy * sigmoid(x)."""

    def forward(self, x):
        xp = get_array_module(x)
        return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))

    def backward(self, gy):
        return gy * Sigmoid()(self.inputs[0])


class NormalCDF(Function):
    """y = Phi(x) = (1 + erf(x / sqrt(2))) / 2;  dx = gy * e^(-x^2/2) / sqrt(2 pi)."""

    def forward(self, x):
        return kernels.normal_cdf(x)

    def backward(self, gy):
        x = self.inputs[0]
        return gy * (exp(x * x * -0.5) * _INV_SQRT_2PI)


class GELU(Function):
    """y = x Phi(x);  dx = gy (Phi(x) + x phi(x)).  With ``approximate``:
    y = x (1 + tanh(k (x + c x^3))) / 2, k = sqrt(2/pi), c = 0.044715;
    dx = gy ((1 + t)/2 + x (1 - t^2) k (1 + 3 c x^2) / 2), t = tanh(k (x + c x^3))."""

    def __init__(self, approximate: bool = False):
        self.approximate = approximate

    def forward(self, x):
        # t (or Phi) is kept for a backward that is not recorded, only if one will come
        if self.approximate:
            t = get_array_module(x).tanh((x + x * x * x * _GELU_TANH_C) * _GELU_TANH_K)
            self.t = t if self.needs_input_grad[0] else None
            return x * (1 + t) * 0.5
        cdf = kernels.normal_cdf(x)
        self.cdf = cdf if self.needs_input_grad[0] else None
        return x * cdf

    def backward(self, gy):
        x = self.inputs[0]
        if self.approximate:
            t = Tanh()((x + x * x * x * _GELU_TANH_C) * _GELU_TANH_K)
            return gy * _gelu_tanh_slope(x, t)
        return gy * (NormalCDF()(x) + x * exp(x * x * -0.5) * _INV_SQRT_2PI)

    def backward_array(self, gy):
        x = self.inputs[0].data
        if self.approximate:
            return gy * _gelu_tanh_slope(x, self.t)
        return gy * (self.cdf + x * get_array_module(x).exp(x * x * -0.5) * _INV_SQRT_2PI)


def _gelu_tanh_slope(x, t):
    """d/dx of x (1 + t) / 2 with t = tanh(k (x + c x^3)), on Tensors or arrays."""
    return (1 + t) * 0.5 + x * (1 - t * t) * (1 + x * x * (3 * _GELU_TANH_C)) * (0.5 * _GELU_TANH_K)


class Softmax(Function):
    """y_i = e^(x_i - m) / sum_j e^(x_j - m) over ``axis`` (m = max, for stability);
    dx = y * (gy - sum(gy * y))."""

    def __init__(self, axis: int = -1):
        self.axis = axis

    def forward(self, x):
        y = x - x.max(axis=self.axis, keepdims=True)
        get_array_module(y).exp(y, out=y)
        y /= y.sum(axis=self.axis, keepdims=True)
        return y

    def backward(self, gy):
        y = self.outputs[0]()
        return y * (gy - (gy * y).sum(axis=self.axis, keepdims=True))

    def backward_array(self, gy):
        y = self.outputs[0]().data
        return y * (gy - (gy * y).sum(axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    """y_i = x_i - m - ln sum_j e^(x_j - m) over ``axis`` (log-sum-exp, m = max);
    dx = gy - e^y * sum(gy)."""

    def __init__(self, axis: int = -1):
        self.axis = axis

    def forward(self, x):
        y = x - x.max(axis=self.axis, keepdims=True)
        xp = get_array_module(y)
        y -= xp.log(xp.exp(y).sum(axis=self.axis, keepdims=True))
        return y

    def backward(self, gy):
        y = self.outputs[0]()
        return gy - exp(y) * gy.sum(axis=self.axis, keepdims=True)

    def backward_array(self, gy):
        y = self.outputs[0]().data
        return gy - get_array_module(y).exp(y) * gy.sum(axis=self.axis, keepdims=True)


# ------------------------------------------------------------------ argument checks


def _floating(x, name: str) -> Tensor:
    """``x`` as a floating Tensor: integer and boolean data become floatx."""
    x = as_tensor(x)
    kind = x.data.dtype.kind
    if kind == "f":
        return x
    if kind in "biu":
        return Tensor.from_array(x.data.astype(backend.floatx()))
    raise TypeError(f"{name}: x must be numeric, got dtype {x.dtype}")


def _number(value, function: str, argument: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{function}: {argument} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{function}: {argument} must be finite, got {value}")
    return value


def _axis(axis, ndim: int, function: str) -> int:
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"{function}: axis must be an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"{function}: axis {axis} is out of range for an input with {ndim} dimensions")
    return int(axis) % ndim


# ------------------------------------------------------------------ public functions


def step(x, low=0.0, high=1.0, at_zero=None):
    """The threshold (Heaviside) activation of the perceptron.

    ``y = high`` where ``x > 0``, ``low`` where ``x < 0`` and ``at_zero`` at exactly 0. The
    default ``at_zero = low`` makes a unit fire only on a strictly positive net input, as the
    course's XOR network and scikit-learn's ``Perceptron`` (class 1 iff the decision function
    is > 0) do. ``low=-1`` gives the bipolar (sign) step.

    NOTE: the derivative is 0 everywhere (and undefined at 0), so backpropagation through a
    step sends no signal back: gradient descent cannot train a network of steps. That is why
    the perceptron is trained by its own rule, ``w += lr * (target - output) * x``, which uses
    the error itself instead of a derivative, and why multilayer networks replaced the step by
    a smooth sigmoid.

    Args:
        x: the net input.
        low: the value for negative inputs (default 0.0).
        high: the value for positive inputs (default 1.0).
        at_zero: the value at 0 (default ``None``, meaning ``low``).

    Returns:
        A Tensor of ``x``'s shape and dtype. Its gradient is 0.

    Shape:
        any -> same.

    Example:
        >>> import nervenet.functional as F
        >>> F.step([-2.0, 0.0, 3.0]).data
        array([0., 0., 1.], dtype=float32)
        >>> F.step([-2.0, 0.0, 3.0], low=-1.0).data
        array([-1., -1.,  1.], dtype=float32)
    """
    low = _number(low, "step", "low")
    high = _number(high, "step", "high")
    at_zero = low if at_zero is None else _number(at_zero, "step", "at_zero")
    return Step(low, high, at_zero)(_floating(x, "step"))


def sigmoid(x, a=1.0):
    """The logistic function with slope ``a``: ``y = 1 / (1 + e^(-a x))``.

    Stable for any x: ``e^(-a x)`` may overflow to inf for very negative ``a x``, and
    ``1 / (1 + inf) = 0`` is then the correct limit (no NaN, no warning).

    Args:
        x: the input.
        a: the slope parameter (default 1.0); larger ``a`` approaches the step.

    Returns:
        A Tensor in (0, 1) of ``x``'s shape. Gradient: ``dx = gy * a * y * (1 - y)``.

    Shape:
        any -> same.

    Example:
        >>> import nervenet.functional as F
        >>> F.sigmoid([0.0, 2.0], a=0.5).data
        array([0.5      , 0.7310586], dtype=float32)
    """
    return Sigmoid(_number(a, "sigmoid", "a"))(_floating(x, "sigmoid"))


def tanh(x):
    """Hyperbolic tangent ``y = (e^x - e^(-x)) / (e^x + e^(-x))``, a sigmoid centred on 0.

    Returns:
        A Tensor in (-1, 1). Gradient: ``dx = gy * (1 - y**2)``.

    Shape:
        any -> same.

    Example:
        >>> import nervenet.functional as F
        >>> F.tanh([0.0, 1.0]).data
        array([0.       , 0.7615942], dtype=float32)
    """
    return Tanh()(_floating(x, "tanh"))


def relu(x):
    """Rectified linear unit ``y = max(x, 0)``.

    Returns:
        A Tensor of ``x``'s shape. Gradient: ``dx = gy`` where ``x > 0``, else 0 (at the kink
        x = 0 the derivative is taken as 0, as torch).

    Shape:
        any -> same.

    Example:
        >>> import nervenet.functional as F
        >>> F.relu([-1.0, 0.0, 2.0]).data
        array([0., 0., 2.], dtype=float32)
    """
    return ReLU()(_floating(x, "relu"))


def leaky_relu(x, alpha=0.01):
    """Leaky ReLU ``y = x`` where ``x > 0``, else ``alpha * x``.

    Args:
        x: the input.
        alpha: the slope for negative inputs (default 0.01, as torch; Keras's layer uses 0.3).

    Returns:
        A Tensor of ``x``'s shape. Gradient: ``dx = gy`` where ``x > 0``, else ``alpha * gy``
        (``alpha`` at x = 0, as torch).

    Shape:
        any -> same.

    Example:
        >>> import nervenet.functional as F
        >>> F.leaky_relu([-2.0, 3.0], alpha=0.1).data
        array([-0.2,  3. ], dtype=float32)
    """
    return LeakyReLU(_number(alpha, "leaky_relu", "alpha"))(_floating(x, "leaky_relu"))


def prelu(x, alpha):
    """Parametric ReLU: ``y = x`` where ``x > 0``, else ``alpha * x``, with ``alpha`` learned.

    Args:
        x: the input.
        alpha: a tensor of slopes that broadcasts against ``x`` (one per channel, shape
            ``(C,)`` for channels-last input, or one per element as Keras's ``PReLU``).

    Returns:
        A Tensor of ``x``'s shape. Gradients: ``dx = gy`` where ``x > 0``, else ``alpha * gy``;
        ``dalpha = gy * x`` where ``x <= 0`` (summed over the broadcast axes).

    Shape:
        x: any; alpha: broadcastable to x's shape -> x's shape.

    Example:
        >>> import nervenet.functional as F
        >>> F.prelu([[-2.0, -2.0], [1.0, 1.0]], [0.1, 0.5]).data
        array([[-0.2, -1. ],
               [ 1. ,  1. ]], dtype=float32)
    """
    x = _floating(x, "prelu")
    alpha = as_tensor(alpha, x)
    if alpha.data.dtype.kind != "f":
        raise TypeError(f"prelu: alpha must be a floating tensor, got dtype {alpha.dtype}")
    try:
        broadcast = np.broadcast_shapes(x.shape, alpha.shape)
    except ValueError:
        broadcast = None
    if broadcast != x.shape:
        raise ValueError(
            f"prelu: alpha must broadcast to the shape of x {x.shape}, got alpha {alpha.shape}")
    return PReLU()(x, alpha)


def elu(x, alpha=1.0):
    """Exponential linear unit: ``y = x`` where ``x > 0``, else ``alpha * (e^x - 1)``.

    Args:
        x: the input.
        alpha: the saturation value for very negative inputs is ``-alpha`` (default 1.0).

    Returns:
        A Tensor of ``x``'s shape. Gradient: ``dx = gy`` where ``x > 0``, else
        ``gy * (y + alpha)`` (= ``alpha e^x``; the derivative jumps at 0 unless alpha = 1).

    Shape:
        any -> same.

    Example:
        >>> import nervenet.functional as F
        >>> F.elu([-1.0, 2.0]).data
        array([-0.63212055,  2.        ], dtype=float32)
    """
    return ELU(_number(alpha, "elu", "alpha"))(_floating(x, "elu"))


def selu(x):
    """Scaled ELU: ``y = scale * elu(x, alpha)`` with torch's (and Klambauer et al.'s)
    self-normalizing constants ``alpha = 1.6732632423543772`` and ``scale = 1.0507009873554805``.

    Returns:
        A Tensor of ``x``'s shape. Gradient: ``dx = gy * scale`` where ``x > 0``, else
        ``gy * (y + scale * alpha)``.

    Shape:
        any -> same.

    Example:
        >>> import nervenet.functional as F
        >>> F.selu([1.0]).data
        array([1.050701], dtype=float32)
    """
    return ELU(SELU_ALPHA, SELU_SCALE)(_floating(x, "selu"))


def gelu(x, approximate=False):
    """Gaussian error linear unit ``y = x * Phi(x)``, Phi the standard normal CDF.

    ``Phi(x) = (1 + erf(x / sqrt(2))) / 2`` uses Cody's double-precision erf (see
    ``nervenet.kernels.erf``). With ``approximate=True`` (or ``"tanh"``, torch's spelling) the
    tanh form ``y = x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2`` is used, as
    ``torch.nn.functional.gelu(x, approximate="tanh")``.

    Args:
        x: the input.
        approximate: use the tanh approximation (default False).

    Returns:
        A Tensor of ``x``'s shape. Gradient: ``dx = gy * (Phi(x) + x phi(x))``, phi the normal
        density (the tanh form differentiates its own formula).

    Shape:
        any -> same.

    Example:
        >>> import nervenet.functional as F
        >>> F.gelu([1.0]).data
        array([0.8413447], dtype=float32)
    """
    if approximate in ("tanh", "none"):
        approximate = approximate == "tanh"
    if not isinstance(approximate, bool):
        raise TypeError(
            f"gelu: approximate must be True, False, 'tanh' or 'none', got {approximate!r}")
    return GELU(approximate)(_floating(x, "gelu"))


def swish(x):
    """Swish / SiLU ``y = x * sigmoid(x)`` (Keras's ``swish`` and ``silu``, torch's ``silu``).

    Composed of ``sigmoid`` and a product, so every derivative is exact.

    Returns:
        A Tensor of ``x``'s shape. Gradient: ``dx = gy * s * (1 + x (1 - s))``, s = sigmoid(x).

    Shape:
        any -> same.

    Example:
        >>> import nervenet.functional as F
        >>> F.swish([0.0, 1.0]).data
        array([0.       , 0.7310586], dtype=float32)
    """
    x = _floating(x, "swish")
    return x * Sigmoid()(x)


def mish(x):
    """Mish ``y = x * tanh(softplus(x))`` (Misra, 2019), composed of the stable ``softplus``,
    ``tanh`` and a product, so every derivative is exact and no step overflows.

    Returns:
        A Tensor of ``x``'s shape.

    Shape:
        any -> same.

    Example:
        >>> import nervenet.functional as F
        >>> F.mish([1.0]).data
        array([0.8650984], dtype=float32)
    """
    x = _floating(x, "mish")
    return x * Tanh()(Softplus()(x))


def softplus(x):
    """Softplus ``y = ln(1 + e^x)``, computed as ``max(x, 0) + ln(1 + e^(-|x|))`` so that
    neither term overflows.

    Returns:
        A Tensor of ``x``'s shape. Gradient: ``dx = gy * sigmoid(x)``.

    Shape:
        any -> same.

    Example:
        >>> import nervenet.functional as F
        >>> F.softplus([0.0, 1000.0]).data
        array([6.931472e-01, 1.000000e+03], dtype=float32)
    """
    return Softplus()(_floating(x, "softplus"))


def softmax(x, axis=-1):
    """Softmax ``y_i = e^(x_i) / sum_j e^(x_j)`` along ``axis``.

    The maximum is subtracted first (the result is unchanged, since softmax is invariant to
    adding a constant), so ``e^`` never overflows, even for logits of 1e4 in float32.

    Args:
        x: the logits.
        axis: the axis that sums to 1 (default -1).

    Returns:
        A Tensor of ``x``'s shape. Gradient: ``dx = y * (gy - sum(gy * y, axis))``.

    Shape:
        any (at least 1-D) -> same.

    Example:
        >>> import nervenet.functional as F
        >>> F.softmax([1.0, 1.0, 1.0, 1.0]).data
        array([0.25, 0.25, 0.25, 0.25], dtype=float32)
    """
    x = _floating(x, "softmax")
    return Softmax(_axis(axis, x.ndim, "softmax"))(x)


def log_softmax(x, axis=-1):
    """Log-softmax ``y_i = x_i - ln sum_j e^(x_j)`` along ``axis``, via log-sum-exp:
    ``ln sum_j e^(x_j) = m + ln sum_j e^(x_j - m)`` with m the maximum. Never overflows, and
    gives finite log-probabilities where ``log(softmax(x))`` would give ``log(0) = -inf``.

    Args:
        x: the logits.
        axis: the normalized axis (default -1).

    Returns:
        A Tensor of ``x``'s shape. Gradient: ``dx = gy - softmax(x) * sum(gy, axis)``.

    Shape:
        any (at least 1-D) -> same.

    Example:
        >>> import nervenet.functional as F
        >>> F.log_softmax([0.0, 1000.0]).data
        array([-1000.,     0.], dtype=float32)
    """
    x = _floating(x, "log_softmax")
    return LogSoftmax(_axis(axis, x.ndim, "log_softmax"))(x)


def maxout(x, num_units):
    """Maxout (Goodfellow et al., 2013), as ``tf.contrib.layers.maxout`` on the last axis.

    The last axis, of size C, is split into ``num_units`` groups of ``C / num_units``
    consecutive features, and each group is replaced by its maximum:
    ``y[..., i] = max_k x[..., i * (C / num_units) + k]``.

    Args:
        x: the input, with C features on the last axis.
        num_units: the number of outputs; must divide C.

    Returns:
        A Tensor of shape ``x.shape[:-1] + (num_units,)``. Gradient: ``gy`` goes to the maximum
        of each group (split evenly on ties, as ``torch.amax``).

    Shape:
        (..., C) -> (..., num_units).

    Example:
        >>> import nervenet.functional as F
        >>> F.maxout([[1.0, 5.0, 3.0, 2.0]], num_units=2).data
        array([[5., 3.]], dtype=float32)
    """
    x = _floating(x, "maxout")
    if isinstance(num_units, bool) or not isinstance(num_units, numbers.Integral) \
            or num_units < 1:
        raise ValueError(f"maxout: num_units must be a positive int, got {num_units!r}")
    if x.ndim < 1:
        raise ValueError("maxout: x must have at least 1 dimension, got a scalar")
    channels = x.shape[-1]
    if channels % num_units:
        raise ValueError(
            f"maxout: the last axis of x (size {channels}, shape {x.shape}) must be divisible "
            f"by num_units={num_units}")
    num_units = int(num_units)
    grouped = x.reshape(x.shape[:-1] + (num_units, channels // num_units))
    return grouped.max(axis=-1)

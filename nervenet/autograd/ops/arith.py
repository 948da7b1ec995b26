"""Elementwise arithmetic: + - * / ** neg exp log sqrt abs maximum minimum clip where.

Binary ops broadcast like NumPy; the engine sums each gradient back to its input's shape.
"""

from __future__ import annotations

from nervenet.autograd.function import Function
from nervenet.autograd.tensor import Tensor
from nervenet.backend import as_device_array, get_array_module


class Add(Function):
    """y = a + b;  da = gy, db = gy."""

    def forward(self, a, b):
        return a + b

    def backward(self, gy):
        return gy, gy


class Sub(Function):
    """y = a - b;  da = gy, db = -gy."""

    def forward(self, a, b):
        return a - b

    def backward(self, gy):
        return gy, (-gy if self.needs_input_grad[1] else None)


class Mul(Function):
    """y = a * b;  da = gy * b, db = gy * a."""

    def forward(self, a, b):
        return a * b

    def backward(self, gy):
        a, b = self.inputs
        return (gy * b if self.needs_input_grad[0] else None,
                gy * a if self.needs_input_grad[1] else None)


class Div(Function):
    """y = a / b;  da = gy / b, db = -gy * a / b^2."""

    def forward(self, a, b):
        return a / b

    def backward(self, gy):
        a, b = self.inputs
        ga = gy / b if self.needs_input_grad[0] else None
        gb = -gy * a / (b * b) if self.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    """y = -x;  dx = -gy."""

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Pow(Function):
    """y = a ** b;  da = gy * b * a^(b-1), db = gy * y * log(a)."""

    def forward(self, a, b):
        return a ** b

    def backward(self, gy):
        a, b = self.inputs
        ga = gy * b * a ** (b - 1) if self.needs_input_grad[0] else None
        gb = gy * self.outputs[0]() * log(a) if self.needs_input_grad[1] else None
        return ga, gb


class Exp(Function):
    """y = e^x;  dx = gy * y."""

    def forward(self, x):
        return get_array_module(x).exp(x)

    def backward(self, gy):
        return gy * self.outputs[0]()


class Log(Function):
    """y = ln x;  dx = gy / x."""

    def forward(self, x):
        return get_array_module(x).log(x)

    def backward(self, gy):
        return gy / self.inputs[0]


class Sqrt(Function):
    """y = sqrt(x);  dx = gy / (2 y)."""

    def forward(self, x):
        return get_array_module(x).sqrt(x)

    def backward(self, gy):
        return gy / (2 * self.outputs[0]())


class Abs(Function):
    """y = |x|;  dx = gy * sign(x) (0 at x = 0, as torch)."""

    def forward(self, x):
        return get_array_module(x).abs(x)

    def backward(self, gy):
        x = self.inputs[0]
        return gy * get_array_module(x.data).sign(x.data)


class Maximum(Function):
    """y = max(a, b) elementwise; the gradient goes to the larger input, split evenly on ties
    (as torch.maximum)."""

    def forward(self, a, b):
        return get_array_module(a, b).maximum(a, b)

    def backward(self, gy):
        a, b = self.inputs
        return _split_by_mask(gy, a.data > b.data, a.data == b.data, self.needs_input_grad)


class Minimum(Function):
    """y = min(a, b) elementwise; the gradient goes to the smaller input, split evenly on ties."""

    def forward(self, a, b):
        return get_array_module(a, b).minimum(a, b)

    def backward(self, gy):
        a, b = self.inputs
        return _split_by_mask(gy, a.data < b.data, a.data == b.data, self.needs_input_grad)


def _split_by_mask(gy, first_wins, tie, needs_input_grad):
    """Route ``gy`` to the first input where ``first_wins``, to the second elsewhere, and half to
    each on ties."""
    dtype = gy.dtype
    share_first = first_wins.astype(dtype) + tie.astype(dtype) * dtype.type(0.5)
    share_second = 1 - share_first
    return (gy * share_first if needs_input_grad[0] else None,
            gy * share_second if needs_input_grad[1] else None)


class Clip(Function):
    """y = min(max(x, low), high);  dx = gy where low <= x <= high, else 0 (as torch.clamp)."""

    def __init__(self, low, high):
        self.low = low
        self.high = high

    def forward(self, x):
        return get_array_module(x).clip(x, self.low, self.high)

    def backward(self, gy):
        x = self.inputs[0].data
        inside = get_array_module(x).ones(x.shape, dtype=bool)
        if self.low is not None:
            inside &= x >= self.low
        if self.high is not None:
            inside &= x <= self.high
        return gy * inside.astype(gy.dtype)


class Where(Function):
    """y = a where condition else b;  da = gy where condition, db = gy elsewhere."""

    def __init__(self, condition):
        self.condition = condition

    def forward(self, a, b):
        return get_array_module(self.condition, a, b).where(self.condition, a, b)

    def backward(self, gy):
        zero = get_array_module(gy.data).zeros((), dtype=gy.dtype)
        return (where(self.condition, gy, zero) if self.needs_input_grad[0] else None,
                where(self.condition, zero, gy) if self.needs_input_grad[1] else None)


# ------------------------------------------------------------------ public functions


def add(a, b):
    """Elementwise sum ``a + b`` with broadcasting.

    Args:
        a, b: Tensors, arrays or numbers.

    Returns:
        A Tensor of the broadcast shape. Gradients: ``da = gy``, ``db = gy`` (summed back over
        broadcast axes).

    Example:
        >>> import nervenet.functional as F
        >>> F.add([1.0, 2.0], 1.0).data
        array([2., 3.], dtype=float32)
    """
    return Add()(a, b)


def sub(a, b):
    """Elementwise difference ``a - b``. Gradients: ``da = gy``, ``db = -gy``."""
    return Sub()(a, b)


def mul(a, b):
    """Elementwise product ``a * b``. Gradients: ``da = gy * b``, ``db = gy * a``."""
    return Mul()(a, b)


def div(a, b):
    """Elementwise quotient ``a / b``. Gradients: ``da = gy / b``, ``db = -gy * a / b**2``."""
    return Div()(a, b)


def neg(x):
    """``-x``. Gradient: ``dx = -gy``."""
    return Neg()(x)


def pow(a, b):  # noqa: A001  (the public name is F.pow, as torch)
    """Elementwise power ``a ** b`` (``b`` a number or a tensor).

    Gradients: ``da = gy * b * a**(b - 1)``, ``db = gy * a**b * ln(a)`` (only computed when
    ``b`` requires a gradient, since ln needs ``a > 0``).
    """
    return Pow()(a, b)


def exp(x):
    """Elementwise ``e**x``. Gradient: ``dx = gy * e**x`` (reuses the output)."""
    return Exp()(x)


def log(x):
    """Elementwise natural logarithm. Gradient: ``dx = gy / x``."""
    return Log()(x)


def sqrt(x):
    """Elementwise square root. Gradient: ``dx = gy / (2 sqrt(x))``."""
    return Sqrt()(x)


def abs(x):  # noqa: A001  (the public name is F.abs, as torch)
    """Elementwise ``|x|``. Gradient: ``dx = gy * sign(x)``, taken as 0 at x = 0 (as torch)."""
    return Abs()(x)


def maximum(a, b):
    """Elementwise maximum. The gradient goes to the larger input; on ties it is split in half
    between both (as ``torch.maximum``)."""
    return Maximum()(a, b)


def minimum(a, b):
    """Elementwise minimum. The gradient goes to the smaller input; split in half on ties."""
    return Minimum()(a, b)


def clip(x, low=None, high=None):
    """Clamp ``x`` into ``[low, high]`` (either bound may be ``None``).

    Gradient: ``dx = gy`` where ``low <= x <= high`` (bounds included, as ``torch.clamp``), 0
    where the value was clipped.
    """
    if low is None and high is None:
        raise ValueError("clip: give at least one of low and high")
    if low is not None and high is not None and low > high:
        raise ValueError(f"clip: low must be <= high, got low={low}, high={high}")
    return Clip(low, high)(x)


def where(condition, a, b):
    """Choose elementwise: ``a`` where ``condition`` is True, else ``b`` (broadcasting).

    Args:
        condition: a boolean array or Tensor (not differentiated).
        a, b: Tensors, arrays or numbers.

    Gradients: ``da = gy`` where the condition holds, 0 elsewhere; ``db`` the converse.
    """
    condition = condition.data if isinstance(condition, Tensor) else as_device_array(condition)
    if condition.dtype != bool:
        raise TypeError(f"where: condition must be boolean, got dtype {condition.dtype}")
    return Where(condition)(a, b)

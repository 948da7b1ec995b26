"""Pooling over channels-last images: max, average and stochastic pooling.

Every pooling op reads, for each output cell, a window of the (padded) input; the array work,
one vectorized step per offset (p, q) of the window, is in ``nervenet.kernels.window``.

Max and stochastic pooling both pick ONE position per window (its offset ``k = p*kw + q`` is
stored, as small integers of the output's shape); their backward scatters ``gy`` to the picked
positions (``WindowScatter``), whose backward is the gather of the same positions
(``WindowGather``) and vice versa: second derivatives are exact. Average pooling is linear:
its backward spreads ``gy / count`` over each window (``AvgPool2dGrad``), whose backward is
average pooling again.
"""

from __future__ import annotations

import numpy as np

from nervenet import backend, kernels
from nervenet.autograd.function import Function
from nervenet.autograd.ops.arith import where
from nervenet.autograd.ops.conv import pair
from nervenet.autograd.tensor import Tensor, as_tensor
from nervenet.kernels import ConvGeometry

# ------------------------------------------------------------------------- Functions


class MaxPool2d(Function):
    """y[n,i,j,c] = max over the window of x;  dx = gy routed to the first maximum of each
    window (WindowScatter)."""

    def __init__(self, geometry: ConvGeometry):
        self.geometry = geometry

    def forward(self, x):
        lowest = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        y, self.argmax = kernels.max_and_argmax(self.geometry.pad(x, lowest), self.geometry,
                                        with_argmax=self.needs_input_grad[0])
        return y

    def backward(self, gy):
        return WindowScatter(self.geometry, self.argmax)(gy)

    def backward_array(self, gy):
        return kernels.scatter(gy, self.argmax, self.geometry)


class WindowScatter(Function):
    """y = zeros with x[n,i,j,c] added at the cell picked in window (i, j);  dx = WindowGather(gy)
    at the same cells."""

    def __init__(self, geometry: ConvGeometry, picked: np.ndarray):
        self.geometry = geometry
        self.picked = picked

    def forward(self, x):
        return kernels.scatter(x, self.picked, self.geometry)

    def backward(self, gy):
        return WindowGather(self.geometry, self.picked)(gy)


class WindowGather(Function):
    """y[n,i,j,c] = x at the cell picked in window (i, j);  dx = WindowScatter(gy)."""

    def __init__(self, geometry: ConvGeometry, picked: np.ndarray):
        self.geometry = geometry
        self.picked = picked

    def forward(self, x):
        return kernels.gather(x, self.picked, self.geometry)

    def backward(self, gy):
        return WindowScatter(self.geometry, self.picked)(gy)


class AvgPool2d(Function):
    """y[n,i,j,c] = mean of x over the window's cells inside the input;  dx = AvgPool2dGrad(gy):
    gy / count spread over each window."""

    def __init__(self, geometry: ConvGeometry):
        self.geometry = geometry

    def forward(self, x):
        return kernels.window_mean(x, self.geometry)

    def backward(self, gy):
        return AvgPool2dGrad(self.geometry)(gy)


class AvgPool2dGrad(Function):
    """y = each window's x / count added to its cells (the adjoint of AvgPool2d);
    dx = AvgPool2d(gy)."""

    def __init__(self, geometry: ConvGeometry):
        self.geometry = geometry

    def forward(self, x):
        return kernels.spread(x, self.geometry)

    def backward(self, gy):
        return AvgPool2d(self.geometry)(gy)


# --------------------------------------------------------------------- public functions


def _pool_geometry(x: Tensor, pool_size, strides, padding, function: str) -> ConvGeometry:
    if x.ndim != 4:
        raise ValueError(f"{function}: x must be 4-D images (N, H, W, C), got shape {x.shape}")
    window = pair(pool_size, "pool_size", function)
    stride = window if strides is None else pair(strides, "strides", function)
    if not (isinstance(padding, str) and padding.lower() in ("valid", "same")):
        raise ValueError(f"{function}: padding must be 'valid' or 'same', got {padding!r}")
    return ConvGeometry.build(x.shape, window, stride, padding, function)


def max_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """Max pooling of channels-last images: the largest value of each window.

        y[n, i, j, c] = max_{p, q} xp[n, i*sh + p, j*sw + q, c]

    Args:
        x: images of shape (N, H, W, C).
        pool_size: window size, an int or a pair (default 2).
        strides: an int or a pair (default ``None``: equal to ``pool_size``).
        padding: ``"valid"`` (default: windows that do not fit are dropped) or ``"same"``
            (output ceil(H / sh) x ceil(W / sw); the padding is -inf, as TensorFlow, so it is
            never the maximum).

    Returns:
        A Tensor of shape (N, Ho, Wo, C). Gradient: ``gy`` goes to the FIRST maximum of each
        window (row-major order inside the window), as torch does; on ties (common on blank
        image backgrounds) the other maxima get nothing. Second derivatives are exact.

    Shape:
        (N, H, W, C) -> (N, Ho, Wo, C), Ho = (H + padding - pool_h) // sh + 1.

    Example:
        >>> import numpy as np
        >>> import nervenet.functional as F
        >>> x = np.arange(16.0).reshape(1, 4, 4, 1)
        >>> F.max_pool2d(x).data[0, :, :, 0]
        array([[ 5.,  7.],
               [13., 15.]])
    """
    x = as_tensor(x)
    return MaxPool2d(_pool_geometry(x, pool_size, strides, padding, "max_pool2d"))(x)


def avg_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """Average pooling of channels-last images: the mean of each window.

        y[n, i, j, c] = (1 / count[i, j]) * sum_{p, q} xp[n, i*sh + p, j*sw + q, c]

    where ``count[i, j]`` is the number of cells of window (i, j) inside the image: with
    ``"same"`` padding the padded cells are excluded from the average (as Keras/TensorFlow,
    torch's ``count_include_pad=False``).

    Args:
        x: images of shape (N, H, W, C).
        pool_size: window size, an int or a pair (default 2).
        strides: an int or a pair (default ``None``: equal to ``pool_size``).
        padding: ``"valid"`` (default) or ``"same"``.

    Returns:
        A Tensor of shape (N, Ho, Wo, C). Gradient: each window's ``gy / count`` is added to
        each of its cells. Second derivatives are exact (the op is linear).

    Shape:
        (N, H, W, C) -> (N, Ho, Wo, C), as ``max_pool2d``.

    Example:
        >>> import numpy as np
        >>> import nervenet.functional as F
        >>> x = np.arange(9.0).reshape(1, 3, 3, 1)
        >>> F.avg_pool2d(x, padding="same").data[0, :, :, 0]
        array([[2. , 3.5],
               [6.5, 8. ]])
    """
    x = as_tensor(x)
    return AvgPool2d(_pool_geometry(x, pool_size, strides, padding, "avg_pool2d"))(x)


def stochastic_pool2d(x, pool_size, rng, training):
    """Stochastic pooling (Zeiler & Fergus, 2013) of non-negative channels-last images.

    In each window of activations a_1..a_K (e.g. after ReLU) let p_k = a_k / sum_l a_l.

    * training: the window outputs ONE of its activations, a_k drawn with probability p_k
      (a window of zeros outputs 0); the gradient flows to the drawn position only.
    * inference: the output is the probability-weighted average
      sum_k p_k a_k = sum_k a_k^2 / sum_k a_k (0 for a window of zeros), differentiable.

    Windows do not overlap (strides = pool_size) and windows that do not fit are dropped.

    Args:
        x: non-negative images of shape (N, H, W, C).
        pool_size: window size, an int or a pair.
        rng: a ``numpy.random.Generator``, an int seed, or ``None`` (a generator derived from
            the process-wide one, see ``nervenet.backend.make_rng``). Used in training only.
        training: draw (True) or average (False).

    Returns:
        A Tensor of shape (N, H // pool_h, W // pool_w, C).

    Raises:
        ValueError: when ``x`` has a negative value (the p_k would not be probabilities).

    Example:
        >>> import numpy as np
        >>> import nervenet.functional as F
        >>> x = np.array([1.0, 3.0, 0.0, 0.0]).reshape(1, 2, 2, 1)
        >>> F.stochastic_pool2d(x, 2, rng=0, training=False).data.ravel()  # (1 + 9) / 4
        array([2.5])
        >>> float(F.stochastic_pool2d(x, 2, rng=0, training=True).data[0, 0, 0, 0]) in (1.0, 3.0)
        True
    """
    x = as_tensor(x)
    geometry = _pool_geometry(x, pool_size, None, "valid", "stochastic_pool2d")
    if x.size and x.data.min() < 0:
        raise ValueError(f"stochastic_pool2d: x must be non-negative (activations after ReLU, "
                         f"say), got a minimum of {x.data.min()}")
    if not training:
        weighted = AvgPool2d(geometry)(x * x)  # both means share the 1 / count factor
        mean = AvgPool2d(geometry)(x)
        positive = mean.data > 0
        safe = where(positive, mean, mean.dtype.type(1))
        return where(positive, weighted / safe, mean.dtype.type(0))
    picked = kernels.sample_windows(x.data, geometry, backend.make_rng(rng))
    return WindowGather(geometry, picked)(x)

"""Pooling over channels-last images: max, average and stochastic pooling.

Every pooling op reads, for each output cell, a window of the (padded) input. The loops below
run over the few offsets (p, q) of the window, never over pixels: for one offset, the cells
read by all output positions form one strided slice of the input (``ConvGeometry``), so each
step is one vectorized NumPy operation on arrays of the output's size.

Max and stochastic pooling both pick ONE position per window (its offset ``k = p*kw + q`` is
stored, as small integers of the output's shape); their backward scatters ``gy`` to the picked
positions (``WindowScatter``), whose backward is the gather of the same positions
(``WindowGather``) and vice versa: second derivatives are exact. Average pooling is linear:
its backward spreads ``gy / count`` over each window (``AvgPool2dGrad``), whose backward is
average pooling again.
"""

from __future__ import annotations

import numpy as np

from nervenet import backend
from nervenet.autograd.function import Function
from nervenet.autograd.ops.arith import where
from nervenet.autograd.ops.conv import ConvGeometry, pair
from nervenet.autograd.tensor import Tensor, as_tensor

# ----------------------------------------------------------------------- array kernels


def _disjoint(geometry: ConvGeometry) -> bool:
    """True when windows do not overlap (stride >= window): each input cell is read at most
    once, so scatters may assign instead of add."""
    return all(s >= k for s, k in zip(geometry.stride, geometry.window))


def _scatter_target(geometry: ConvGeometry, dtype) -> np.ndarray:
    """The padded gradient buffer of a scatter. When the windows tile the padded input
    exactly (2x2 pooling of 26x26 maps), every cell is written once: no need to zero it."""
    (kh, kw), (sh, sw), (ho, wo) = geometry.window, geometry.stride, geometry.output_hw
    _, hp, wp, _ = geometry.padded_shape
    if (sh, sw) == (kh, kw) and ho * sh == hp and wo * sw == wp:
        return np.empty(geometry.padded_shape, dtype=dtype)
    return np.zeros(geometry.padded_shape, dtype=dtype)


def max_and_argmax(xp: np.ndarray, geometry: ConvGeometry, with_argmax: bool):
    """The window maxima and, if asked, the offset of the FIRST maximum of each window
    (row-major order inside the window, as torch): a later offset wins only when strictly
    greater than the running maximum, so ties keep the earliest one.

    NOTE: masked writes (``np.copyto(..., where=mask)``, ``np.where``) branch on every element
    and are 10-20x slower than arithmetic on random masks; offsets grow with k, so "k if
    greater" is ``maximum(argmax, greater * k)``, and routing is a product with a boolean mask.
    The cells of each offset, a strided slice (runs of C values), are copied into one
    contiguous buffer first: the comparison and the maximum then both read contiguous data
    (25% faster than both reading the slice).
    """
    windows = geometry.window_slices()
    _, first = next(windows)
    y = xp[first].copy()
    argmax = np.zeros(y.shape, dtype=_offset_dtype(geometry)) if with_argmax else None
    cells = np.empty_like(y)
    greater = np.empty(y.shape, dtype=bool)
    for k, (_, index) in enumerate(windows, start=1):
        np.copyto(cells, xp[index])
        if with_argmax:
            np.greater(cells, y, out=greater)
            np.maximum(argmax, greater.view(np.uint8) * argmax.dtype.type(k), out=argmax)
        np.maximum(y, cells, out=y)
    return y, argmax


def _offset_dtype(geometry: ConvGeometry):
    return np.uint8 if np.prod(geometry.window) <= 256 else np.int32


def scatter(gy: np.ndarray, picked: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """dx: zeros with each gy[n, i, j, c] added at the input cell its window picked."""
    gxp = _scatter_target(geometry, gy.dtype)
    disjoint = _disjoint(geometry)
    for k, (_, index) in enumerate(geometry.window_slices()):
        if disjoint:  # each input cell belongs to one window at most: write, do not add
            np.multiply(gy, picked == k, out=gxp[index])
        else:
            gxp[index] += gy * (picked == k)
    return geometry.crop(gxp)


def gather(x: np.ndarray, picked: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """y[n, i, j, c] = x at the cell window (i, j) picked (the adjoint of ``scatter``)."""
    xp = geometry.pad(x)
    y = np.zeros(picked.shape, dtype=x.dtype)
    for k, (_, index) in enumerate(geometry.window_slices()):
        y += xp[index] * (picked == k)
    return y


def window_count(geometry: ConvGeometry, dtype) -> np.ndarray | float:
    """How many cells of each window lie inside the unpadded input, shape (Ho, Wo, 1) (a
    number when no window touches the padding)."""
    (kh, kw), (sh, sw), (ho, wo) = geometry.window, geometry.stride, geometry.output_hw
    if not geometry.has_padding:
        return dtype.type(kh * kw)
    _, h, w, _ = geometry.input_shape
    top, _, left, _ = geometry.pads

    def inside(out, k, s, before, size):
        start = np.arange(out) * s - before
        return np.minimum(start + k, size) - np.maximum(start, 0)

    rows = inside(ho, kh, sh, top, h)
    cols = inside(wo, kw, sw, left, w)
    return np.multiply.outer(rows, cols)[:, :, None].astype(dtype)


def window_mean(x: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """Average of every window over its cells inside the input (padding excluded)."""
    xp = geometry.pad(x)
    windows = geometry.window_slices()
    _, first = next(windows)
    y = xp[first].copy()
    for _, index in windows:
        y += xp[index]
    y /= window_count(geometry, x.dtype)
    return y


def spread(gy: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """The adjoint of ``window_mean``: each window's gy / count added to each of its cells."""
    share = gy / window_count(geometry, gy.dtype)
    gxp = _scatter_target(geometry, gy.dtype)
    disjoint = _disjoint(geometry)
    for _, index in geometry.window_slices():
        if disjoint:
            gxp[index] = share
        else:
            gxp[index] += share
    return geometry.crop(gxp)


# ------------------------------------------------------------------------- Functions


class MaxPool2d(Function):
    """y[n,i,j,c] = max over the window of x;  dx = gy routed to the first maximum of each
    window (WindowScatter)."""

    def __init__(self, geometry: ConvGeometry):
        self.geometry = geometry

    def forward(self, x):
        lowest = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        y, self.argmax = max_and_argmax(self.geometry.pad(x, lowest), self.geometry,
                                        with_argmax=self.needs_input_grad[0])
        return y

    def backward(self, gy):
        return WindowScatter(self.geometry, self.argmax)(gy)


class WindowScatter(Function):
    """y = zeros with x[n,i,j,c] added at the cell picked in window (i, j);  dx = WindowGather(gy)
    at the same cells."""

    def __init__(self, geometry: ConvGeometry, picked: np.ndarray):
        self.geometry = geometry
        self.picked = picked

    def forward(self, x):
        return scatter(x, self.picked, self.geometry)

    def backward(self, gy):
        return WindowGather(self.geometry, self.picked)(gy)


class WindowGather(Function):
    """y[n,i,j,c] = x at the cell picked in window (i, j);  dx = WindowScatter(gy)."""

    def __init__(self, geometry: ConvGeometry, picked: np.ndarray):
        self.geometry = geometry
        self.picked = picked

    def forward(self, x):
        return gather(x, self.picked, self.geometry)

    def backward(self, gy):
        return WindowScatter(self.geometry, self.picked)(gy)


class AvgPool2d(Function):
    """y[n,i,j,c] = mean of x over the window's cells inside the input;  dx = AvgPool2dGrad(gy):
    gy / count spread over each window."""

    def __init__(self, geometry: ConvGeometry):
        self.geometry = geometry

    def forward(self, x):
        return window_mean(x, self.geometry)

    def backward(self, gy):
        return AvgPool2dGrad(self.geometry)(gy)


class AvgPool2dGrad(Function):
    """y = each window's x / count added to its cells (the adjoint of AvgPool2d);
    dx = AvgPool2d(gy)."""

    def __init__(self, geometry: ConvGeometry):
        self.geometry = geometry

    def forward(self, x):
        return spread(x, self.geometry)

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


def sample_windows(xp: np.ndarray, geometry: ConvGeometry, rng: np.random.Generator):
    """Draw one cell per window with probability a_k / sum(a): the offsets drawn.

    The running sums c_k = a_0 + ... + a_k of the window split [0, c_last) into intervals of
    lengths a_k; u = r * c_last with r uniform in [0, 1) falls into interval k with probability
    a_k / c_last, and k = the number of running sums <= u. All-zero windows get offset 0.
    """
    running = None
    running_sums = []
    for _, index in geometry.window_slices():
        running = xp[index].copy() if running is None else running + xp[index]
        running_sums.append(running)
    total = running_sums[-1]
    u = rng.random(total.shape, dtype=total.dtype) * total
    # NOTE: r * total can round up to total itself; stay strictly below it, so a cell with
    # zero probability is never drawn.
    np.minimum(u, np.nextafter(total, 0), out=u)
    picked = np.zeros(total.shape, dtype=_offset_dtype(geometry))
    for c_k in running_sums[:-1]:
        picked += c_k <= u
    picked *= total > 0
    return picked


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
        safe = where(positive, mean, np.ones((), dtype=mean.dtype))
        return where(positive, weighted / safe, np.zeros((), dtype=mean.dtype))
    picked = sample_windows(x.data, geometry, backend.make_rng(rng))
    return WindowGather(geometry, picked)(x)

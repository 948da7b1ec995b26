"""2-D convolution over channels-last images, by im2col and matrix products.

Images are (N, H, W, C) as in Keras; kernels are (kh, kw, C, O). With the input zero-padded to
``xp`` (see ``ConvGeometry`` for the padding rules) and strides (sh, sw), the layer computes

    y[n, i, j, o] = sum_{p, q, c} xp[n, i*sh + p, j*sw + q, c] * w[p, q, c, o] + b[o]

im2col copies every receptive field into one row of a matrix ``cols`` of shape
(N*Ho*Wo, kh*kw*C), ordered (p, q, c) like the rows of ``w.reshape(kh*kw*C, O)``, so that the
whole convolution is ONE matrix product, ``y = cols @ W`` (BLAS does the work). The bias
rides along as in a dense layer with a constant input: a column of ones appended to ``cols``
and ``b`` appended to ``W`` as a last row, ``y = [cols 1] @ [W; b]``. The three gradients are
products again:

    dW = cols^T @ gy            (kh*kw*C, O): one product
    db = sum of gy over (N, Ho, Wo)   (O,): ``channel_sum``
    dx = for every kernel offset (p, q): gy @ w[p, q]^T added into the strided slice of dxp
         that this offset read (kh*kw small products; no np.add.at, no col2im scatter)

``bench/conv_kernels.py`` times the alternatives (np.add.at col2im, one product then col2im,
the transposed-operand layouts of dW) on the shapes of a LeNet-style MNIST network.

Double backward: the input gradient and the weight gradient are Functions of their own,
``Conv2dInputGrad(gy, w)`` and ``Conv2dWeightGrad(x, gy)``. All three maps are bilinear and
each one's derivatives are the other two, so second derivatives are exact:

    conv(x, w)               ->  dx = input_grad(gy, w),    dw = weight_grad(x, gy)
    input_grad(gy, w)        ->  dgy = conv(g, w),          dw = weight_grad(g, gy)
    weight_grad(x, gy)       ->  dx = input_grad(gy, g),    dgy = conv(x, g)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from nervenet.autograd.function import Function
from nervenet.autograd.ops.reduce import sum_rows
from nervenet.autograd.tensor import Tensor, as_tensor


def pair(value, name: str, function: str) -> tuple[int, int]:
    """Return ``value`` (an int or a pair of ints, all >= 1) as a pair; ``name`` and
    ``function`` only serve the error message."""
    values = (value, value) if isinstance(value, (int, np.integer)) else (
        tuple(value) if isinstance(value, (tuple, list)) else ())
    if len(values) != 2 or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1
            for v in values):
        raise ValueError(f"{function}: {name} must be a positive int or a pair of positive ints, "
                         f"got {value!r}")
    return int(values[0]), int(values[1])


def same_padding(size: int, window: int, stride: int) -> tuple[int, int]:
    """Keras/TensorFlow "same" padding of one axis: the output has ceil(size / stride) cells.

    total = max((ceil(size / stride) - 1) * stride + window - size, 0), split as
    before = total // 2 and after = total - before (the extra cell goes after, as TF).
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


@dataclass(frozen=True)
class ConvGeometry:
    """Everything the sliding-window ops need to know about one call.

    Attributes:
        input_shape: (N, H, W, C) of the unpadded input.
        window: (kh, kw), the kernel or pooling window.
        stride: (sh, sw).
        pads: (top, bottom, left, right) cells added around the input.
        output_hw: (Ho, Wo).
    """

    input_shape: tuple[int, int, int, int]
    window: tuple[int, int]
    stride: tuple[int, int]
    pads: tuple[int, int, int, int]
    output_hw: tuple[int, int]

    @classmethod
    def build(cls, input_shape, window, stride, padding, function: str) -> ConvGeometry:
        """Resolve ``padding`` ("valid", "same" or an int) and check that a window fits."""
        _, h, w, _ = input_shape
        (kh, kw), (sh, sw) = window, stride
        if isinstance(padding, str) and padding.lower() == "valid":
            pads = (0, 0, 0, 0)
        elif isinstance(padding, str) and padding.lower() == "same":
            pads = same_padding(h, kh, sh) + same_padding(w, kw, sw)
        elif isinstance(padding, (int, np.integer)) and not isinstance(padding, bool) \
                and padding >= 0:
            pads = (int(padding),) * 4
        else:
            raise ValueError(f"{function}: padding must be 'valid', 'same' or a non-negative "
                             f"int, got {padding!r}")
        hp, wp = h + pads[0] + pads[1], w + pads[2] + pads[3]
        if kh > hp or kw > wp:
            raise ValueError(
                f"{function}: the window ({kh}, {kw}) is larger than the padded input "
                f"({hp}, {wp}) (input shape {tuple(input_shape)}, padding {padding!r})")
        output_hw = ((hp - kh) // sh + 1, (wp - kw) // sw + 1)
        return cls(tuple(input_shape), (kh, kw), (sh, sw), pads, output_hw)

    @property
    def padded_shape(self) -> tuple[int, int, int, int]:
        n, h, w, c = self.input_shape
        top, bottom, left, right = self.pads
        return (n, h + top + bottom, w + left + right, c)

    @property
    def has_padding(self) -> bool:
        return any(self.pads)

    def window_slices(self):
        """Yield ((p, q), index): for each offset of the window, in row-major order, the index
        of the strided slice of the padded input that this offset reads for every output
        cell. Loops run over the kh*kw offsets, never over pixels."""
        (kh, kw), (sh, sw), (ho, wo) = self.window, self.stride, self.output_hw
        for p in range(kh):
            for q in range(kw):
                yield (p, q), (slice(None), slice(p, p + sh * (ho - 1) + 1, sh),
                               slice(q, q + sw * (wo - 1) + 1, sw))

    def pad(self, x: np.ndarray, value: float = 0.0) -> np.ndarray:
        """Return x surrounded by the padding (x itself when there is none)."""
        if not self.has_padding:
            return x
        xp = np.full(self.padded_shape[:3] + x.shape[3:], value, dtype=x.dtype)
        xp[self.interior] = x
        return xp

    @property
    def interior(self) -> tuple[slice, slice, slice]:
        """Index of the unpadded input inside the padded one."""
        _, h, w, _ = self.input_shape
        top, _, left, _ = self.pads
        return (slice(None), slice(top, top + h), slice(left, left + w))

    def crop(self, xp: np.ndarray) -> np.ndarray:
        """The inverse of ``pad``: the unpadded part of ``xp``."""
        return xp[self.interior] if self.has_padding else xp


# ----------------------------------------------------------------------- array kernels


def im2col(xp: np.ndarray, geometry: ConvGeometry, bias_column: bool = False) -> np.ndarray:
    """Copy every receptive field of the padded input into one row: (N*Ho*Wo, kh*kw*C).

    With ``bias_column`` a last column of ones is appended, so that the bias becomes the last
    row of the kernel matrix: ``[cols 1] @ [W; b] = cols @ W + b`` in one product (faster than
    adding b to the (N*Ho*Wo, O) result afterwards, a pass over short rows).

    Two ways of making the same copy, the faster one for the channel count (see the
    benchmark): one copy from a strided view of all windows, or one slice copy per kernel
    offset, several times faster for a single input channel (the view's inner loops would
    have length 1).
    """
    n, _, _, c = xp.shape
    (kh, kw), (sh, sw), (ho, wo) = geometry.window, geometry.stride, geometry.output_hw
    k = kh * kw * c
    cols = np.empty((n, ho, wo, k + bias_column), dtype=xp.dtype)
    fields = cols[..., :k].reshape(n, ho, wo, kh, kw, c)  # a view into cols
    if c == 1:
        for (p, q), index in geometry.window_slices():
            fields[:, :, :, p, q, :] = xp[index]
    else:
        s_n, s_h, s_w, s_c = xp.strides
        np.copyto(fields, as_strided(xp, (n, ho, wo, kh, kw, c),
                                     (s_n, s_h * sh, s_w * sw, s_h, s_w, s_c), writeable=False))
    if bias_column:
        cols[..., k] = 1
    return cols.reshape(n * ho * wo, k + bias_column)


def conv_forward(x: np.ndarray, w: np.ndarray, geometry: ConvGeometry, b=None):
    """y = im2col(pad(x)) @ w.reshape(kh*kw*C, O) (+ b, as a column of ones times a row b),
    and the im2col matrix it used (with the ones column when there is a bias)."""
    kh, kw, c, o = w.shape
    n = x.shape[0]
    ho, wo = geometry.output_hw
    cols = im2col(geometry.pad(x), geometry, bias_column=b is not None)
    kernel = w.reshape(kh * kw * c, o)
    if b is not None:
        kernel = np.concatenate([kernel, b.reshape(1, o)])
    return (cols @ kernel).reshape(n, ho, wo, o), cols


def conv_input_grad(gy: np.ndarray, w: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """dx = the adjoint of the convolution applied to gy: each kernel offset (p, q) adds
    gy @ w[p, q]^T into the slice of the padded input it read; the padding is cropped."""
    n, ho, wo, o = gy.shape
    c = w.shape[2]
    g2d = gy.reshape(n * ho * wo, o)
    gxp = np.zeros(geometry.padded_shape, dtype=np.result_type(gy, w))
    for (p, q), index in geometry.window_slices():
        gxp[index] += (g2d @ w[p, q].T).reshape(n, ho, wo, c)
    return geometry.crop(gxp)


#: kernels of at most this many weights get their gradient as a sum of per-sample products
SMALL_KERNEL = 1024


def conv_weight_grad(x: np.ndarray, gy: np.ndarray, geometry: ConvGeometry, cols=None):
    """dW = cols^T @ gy as (kh, kw, C, O); ``cols`` is im2col(pad(x)) (extra columns, such
    as the forward's column of ones, are ignored), rebuilt when not given. Small kernels
    (``SMALL_KERNEL``) sum one product per sample instead: sum_n cols_n^T @ gy_n."""
    n, ho, wo, o = gy.shape
    (kh, kw), c = geometry.window, geometry.input_shape[3]
    k = kh * kw * c
    if cols is None:
        cols = im2col(geometry.pad(x), geometry)
    if k * o <= SMALL_KERNEL:
        # NOTE: for a small kernel (3x3x1x32: a (9, 32) result summed over 43264 rows) one
        # product runs at half speed with one OpenBLAS thread and took milliseconds now and
        # then with two on a busy machine; one product per sample, summed, is 2-3x faster and
        # each of them is small enough for OpenBLAS to run on one thread.
        per_sample = np.matmul(cols.reshape(n, ho * wo, -1)[:, :, :k].transpose(0, 2, 1),
                               gy.reshape(n, ho * wo, o))
        return per_sample.sum(axis=0).reshape(kh, kw, c, o)
    # NOTE: a product of two tall, skinny matrices (7744 rows for the second LeNet layer)
    # with a transposed operand, where OpenBLAS has slow paths. bench/conv_kernels.py times
    # the layouts on the LeNet shapes: (g^T @ cols)^T is 15% faster than cols^T @ g with one
    # thread and as fast with two, and a contiguous copy of cols^T only adds its own cost.
    gw = (gy.reshape(n * ho * wo, o).T @ cols[:, :k]).T
    return gw.reshape(kh, kw, c, o)


def channel_sum(gy: np.ndarray) -> np.ndarray:
    """Sum over every axis but the last: (..., W, C) -> (C,).

    NOTE: NumPy sums the rows of a matrix one row at a time, so the rows are made long: the
    array is summed as (..., W*C) rows first, then the W pieces of C. About 7x faster than
    summing rows of C, and no BLAS: the matrix-vector product ``ones @ gy2d`` is as fast on
    one thread but stalled for milliseconds with two OpenBLAS threads on a busy machine.
    """
    if gy.ndim < 3:
        return sum_rows(gy.reshape(-1, gy.shape[-1]))
    width, channels = gy.shape[-2:]
    return gy.reshape(-1, width * channels).sum(axis=0).reshape(width, channels).sum(axis=0)


# ------------------------------------------------------------------------- Functions


class Conv2d(Function):
    """y[n,i,j,o] = sum_{p,q,c} xp[n, i*sh+p, j*sw+q, c] w[p,q,c,o] + b[o] (one im2col GEMM);
    dx = Conv2dInputGrad(gy, w), dw = Conv2dWeightGrad(x, gy), db = ChannelSum(gy)."""

    def __init__(self, geometry: ConvGeometry):
        self.geometry = geometry

    def forward(self, x, w, b=None):
        y, cols = conv_forward(x, w, self.geometry, b)
        if self.needs_input_grad[1]:
            self.cols = cols  # the weight gradient is cols^T @ gy: keep them, not rebuild
        return y

    def backward(self, gy):
        x, w = self.inputs[0], self.inputs[1]
        gx = Conv2dInputGrad(self.geometry)(gy, w) if self.needs_input_grad[0] else None
        gw = Conv2dWeightGrad(self.geometry, self.cols)(x, gy) if self.needs_input_grad[1] \
            else None
        gb = ChannelSum()(gy) if len(self.inputs) == 3 and self.needs_input_grad[2] else None
        return gx, gw, gb


class Conv2dInputGrad(Function):
    """y = the transposed convolution of gy by w (the input gradient of Conv2d);
    dgy = Conv2d(g, w), dw = Conv2dWeightGrad(g, gy)."""

    def __init__(self, geometry: ConvGeometry):
        self.geometry = geometry

    def forward(self, gy, w):
        return conv_input_grad(gy, w, self.geometry)

    def backward(self, g):
        gy, w = self.inputs
        ggy = Conv2d(self.geometry)(g, w) if self.needs_input_grad[0] else None
        gw = Conv2dWeightGrad(self.geometry)(g, gy) if self.needs_input_grad[1] else None
        return ggy, gw


class Conv2dWeightGrad(Function):
    """y = im2col(x)^T @ gy as (kh, kw, C, O) (the kernel gradient of Conv2d);
    dx = Conv2dInputGrad(gy, g), dgy = Conv2d(x, g)."""

    def __init__(self, geometry: ConvGeometry, cols: np.ndarray | None = None):
        self.geometry = geometry
        self.cols = cols  # im2col(x) when the caller already has it

    def forward(self, x, gy):
        gw = conv_weight_grad(x, gy, self.geometry, self.cols)
        self.cols = None  # not needed by backward
        return gw

    def backward(self, g):
        x, gy = self.inputs
        gx = Conv2dInputGrad(self.geometry)(gy, g) if self.needs_input_grad[0] else None
        ggy = Conv2d(self.geometry)(x, g) if self.needs_input_grad[1] else None
        return gx, ggy


class ChannelSum(Function):
    """y[o] = sum of x[..., o] over every other axis (the bias gradient);  dx = gy broadcast."""

    def forward(self, x):
        self.input_shape = x.shape
        return channel_sum(x)

    def backward(self, gy):
        return gy.broadcast_to(self.input_shape)


# --------------------------------------------------------------------- public function


def conv2d(x, w, b=None, stride=1, padding="valid"):
    """2-D convolution (cross-correlation, as every deep-learning library) of channels-last
    images.

    With ``xp`` the zero-padded input and ``(sh, sw)`` the strides:

        y[n, i, j, o] = sum_{p, q, c} xp[n, i*sh + p, j*sw + q, c] * w[p, q, c, o] + b[o]

    computed as one matrix product of the im2col matrix (every receptive field as a row) with
    the kernel reshaped to (kh*kw*C, O).

    Args:
        x: images of shape (N, H, W, C).
        w: kernel of shape (kh, kw, C, O) (Keras's layout).
        b: optional bias of shape (O,) (default ``None``).
        stride: an int or a pair (sh, sw) (default 1).
        padding: ``"valid"`` (no padding, default), ``"same"`` (Keras/TensorFlow: the output
            has ceil(H / sh) x ceil(W / sw) cells; the total padding
            max((ceil(H/sh) - 1)*sh + kh - H, 0) is split with the extra cell after), or an
            int p (p zero cells on every side).

    Returns:
        A Tensor of shape (N, Ho, Wo, O). Gradients: ``dx`` is the transposed convolution of
        ``gy`` by ``w``, ``dw = im2col(x)^T @ gy``, ``db = sum of gy over (N, Ho, Wo)``; all
        three are differentiable again (exact second derivatives).

    Shape:
        (N, H, W, C), (kh, kw, C, O) -> (N, Ho, Wo, O) with
        Ho = (H + pad_top + pad_bottom - kh) // sh + 1 (likewise Wo).

    Raises:
        ValueError: for an input that is not 4-D, a kernel that is not 4-D, a channel mismatch,
            a bias of the wrong shape, or a kernel larger than the padded input.

    Example:
        >>> import numpy as np
        >>> import nervenet.functional as F
        >>> x = np.ones((1, 4, 4, 1)); w = np.ones((3, 3, 1, 2))
        >>> F.conv2d(x, w).shape
        (1, 2, 2, 2)
        >>> F.conv2d(x, w, padding="same", stride=2).data[0, :, :, 0]
        array([[9., 6.],
               [6., 4.]])
    """
    x = as_tensor(x, w if isinstance(w, Tensor) else None)
    w = as_tensor(w, x)
    if x.ndim != 4:
        raise ValueError(f"conv2d: x must be 4-D images (N, H, W, C), got shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"conv2d: w must be a 4-D kernel (kh, kw, in_channels, out_channels), "
                         f"got shape {w.shape}")
    if x.shape[3] != w.shape[2]:
        raise ValueError(
            f"conv2d: x has {x.shape[3]} channels (x shape {x.shape}) but the kernel expects "
            f"{w.shape[2]} input channels (w shape {w.shape})")
    geometry = ConvGeometry.build(x.shape, w.shape[:2], pair(stride, "stride", "conv2d"),
                                  padding, "conv2d")
    if b is None:
        return Conv2d(geometry)(x, w)
    b = as_tensor(b, x)
    if b.shape != (w.shape[3],):
        raise ValueError(f"conv2d: b must have shape ({w.shape[3]},) (one per output channel "
                         f"of w shape {w.shape}), got {b.shape}")
    return Conv2d(geometry)(x, w, b)

"""2-D convolution over channels-last images, by im2col and matrix products.

Images are (N, H, W, C) as in Keras; kernels are (kh, kw, C, O). With the input zero-padded to
``xp`` (see ``ConvGeometry`` for the padding rules), strides (sh, sw) and dilation (dh, dw), the
layer computes

    y[n, i, j, o] = sum_{p, q, c} xp[n, i*sh + p*dh, j*sw + q*dw, c] * w[p, q, c, o] + b[o]

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

The array work (im2col and the three products) is in ``nervenet.kernels.window``;
``bench/conv_kernels.py`` times the alternatives on the shapes of a LeNet-style MNIST network.

Double backward: the input gradient and the weight gradient are Functions of their own,
``Conv2dInputGrad(gy, w)`` and ``Conv2dWeightGrad(x, gy)``. All three maps are bilinear and
each one's derivatives are the other two, so second derivatives are exact:

    conv(x, w)               ->  dx = input_grad(gy, w),    dw = weight_grad(x, gy)
    input_grad(gy, w)        ->  dgy = conv(g, w),          dw = weight_grad(g, gy)
    weight_grad(x, gy)       ->  dx = input_grad(gy, g),    dgy = conv(x, g)
"""

from __future__ import annotations

import numpy as np

from nervenet import kernels
from nervenet.autograd.function import Function
from nervenet.autograd.tensor import Tensor, as_tensor
from nervenet.kernels import ConvGeometry


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


# ------------------------------------------------------------------------- Functions


class Conv2d(Function):
    """y[n,i,j,o] = sum_{p,q,c} xp[n, i*sh+p*dh, j*sw+q*dw, c] w[p,q,c,o] + b[o] (one im2col GEMM);
    dx = Conv2dInputGrad(gy, w), dw = Conv2dWeightGrad(x, gy), db = ChannelSum(gy)."""

    def __init__(self, geometry: ConvGeometry):
        self.geometry = geometry

    def forward(self, x, w, b=None):
        y, cols = kernels.conv_forward(x, w, self.geometry, b)
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

    def backward_array(self, gy):
        """The same three gradients on arrays (the kernels the Functions above call)."""
        x, w = self.inputs[0].data, self.inputs[1].data
        needs = self.needs_input_grad
        return (kernels.conv_input_grad(gy, w, self.geometry) if needs[0] else None,
                kernels.conv_weight_grad(x, gy, self.geometry, self.cols) if needs[1] else None,
                kernels.channel_sum(gy) if len(self.inputs) == 3 and needs[2] else None)


class Conv2dInputGrad(Function):
    """y = the transposed convolution of gy by w (the input gradient of Conv2d);
    dgy = Conv2d(g, w), dw = Conv2dWeightGrad(g, gy)."""

    def __init__(self, geometry: ConvGeometry):
        self.geometry = geometry

    def forward(self, gy, w):
        return kernels.conv_input_grad(gy, w, self.geometry)

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
        gw = kernels.conv_weight_grad(x, gy, self.geometry, self.cols)
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
        return kernels.channel_sum(x)

    def backward(self, gy):
        return gy.broadcast_to(self.input_shape)


# --------------------------------------------------------------------- public function


def conv2d(x, w, b=None, stride=1, padding="valid", dilation=1):
    """2-D convolution (cross-correlation, as every deep-learning library) of channels-last
    images.

    With ``x_pad`` the zero-padded input, ``(sh, sw)`` the strides and ``(dh, dw)`` the
    dilation:

        y[n, i, j, o] = sum_{p, q, c} x_pad[n, i*sh + p*dh, j*sw + q*dw, c] * w[p, q, c, o] + b[o]

    computed as one matrix product of the im2col matrix (every receptive field as a row) with
    the kernel reshaped to (kh*kw*C, O).

    Args:
        x: images of shape (N, H, W, C).
        w: kernel of shape (kh, kw, C, O) (Keras's layout).
        b: optional bias of shape (O,) (default ``None``).
        stride: an int or a pair (sh, sw) (default 1).
        padding: ``"valid"`` (no padding, default), ``"same"`` (Keras/TensorFlow: the output
            has ceil(H / sh) x ceil(W / sw) cells; the total padding
            max((ceil(H/sh) - 1)*sh + span_h - H, 0) is split with the extra cell after), or
            an int p (p zero cells on every side).
        dilation: an int or a pair (dh, dw) (default 1): the kernel's taps are dh rows and dw
            columns apart (an atrous convolution; ``torch``'s ``dilation``, Keras's
            ``dilation_rate``), so a kernel spans span_h = (kh - 1)*dh + 1 rows.

    Returns:
        A Tensor of shape (N, Ho, Wo, O). Gradients: ``dx`` is the transposed convolution of
        ``gy`` by ``w``, ``dw = im2col(x)^T @ gy``, ``db = sum of gy over (N, Ho, Wo)``; all
        three are differentiable again (exact second derivatives).

    Shape:
        (N, H, W, C), (kh, kw, C, O) -> (N, Ho, Wo, O) with
        Ho = (H + pad_top + pad_bottom - span_h) // sh + 1 (likewise Wo).

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
        >>> F.conv2d(np.ones((1, 5, 5, 1)), w, dilation=2).shape   # taps 2 apart: span 5
        (1, 1, 1, 2)
    """
    x, w = _operands(x, w)
    geometry = ConvGeometry.build(x.shape, w.shape[:2], pair(stride, "stride", "conv2d"),
                                  padding, "conv2d", pair(dilation, "dilation", "conv2d"))
    if b is None:
        return Conv2d(geometry)(x, w)
    return Conv2d(geometry)(x, w, _bias(b, x, w))


def _operands(x, w) -> tuple[Tensor, Tensor]:
    """x and w as Tensors, checked: 4-D images and a 4-D kernel with matching channels."""
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
    return x, w


def _bias(b, x: Tensor, w: Tensor) -> Tensor:
    b = as_tensor(b, x)
    if b.shape != (w.shape[3],):
        raise ValueError(f"conv2d: b must have shape ({w.shape[3]},) (one per output channel "
                         f"of w shape {w.shape}), got {b.shape}")
    return b

"""Batch normalization (Ioffe & Szegedy, 2015): one fused op for training; inference is an
affine map composed of plain ops.

For each channel (every index of ``axis``), over the m values of all the other axes:

    mu = mean(x),  var = mean((x - mu)^2)   (the biased variance),
    xhat = (x - mu) / sqrt(var + eps),      y = gamma * xhat + beta

and the backward of the training op, where the statistics depend on x too, is the standard

    dx = gamma / sqrt(var + eps) * (gy - mean(gy) - xhat * mean(gy * xhat))
    dgamma = sum(gy * xhat),  dbeta = sum(gy)

(means and sums per channel). At inference the statistics are fixed arrays, so y is affine in
x, ``y = a * x + b`` with ``a = gamma / sqrt(var + eps)`` and ``b = beta - a * mu``
(``batch_norm_affine``, the one place of that formula: the layer's ``fold()`` and
``models.fold_batch_norm`` use it too).
"""

from __future__ import annotations

import numpy as np

from nervenet import kernels
from nervenet.autograd.function import Function
from nervenet.autograd.ops.arith import sqrt
from nervenet.autograd.tensor import Tensor, as_tensor
from nervenet.backend import as_array, get_array_module


class _Layout:
    """Which axes are reduced, and how a per-channel array broadcasts against x."""

    def __init__(self, shape: tuple[int, ...], axis: int):
        ndim = len(shape)
        self.axis = axis % ndim
        self.axes = tuple(i for i in range(ndim) if i != self.axis)
        self.count = int(np.prod([shape[i] for i in self.axes]))
        self.channels_last = self.axis == ndim - 1
        self.param_shape = tuple(n if i == self.axis else 1 for i, n in enumerate(shape))
        self.first = tuple(slice(0, 1) if i in self.axes else slice(None) for i in range(ndim))

    def mean(self, a: np.ndarray) -> np.ndarray:
        """Per-channel mean, shaped to broadcast against x (``param_shape``)."""
        if self.channels_last:
            return (kernels.channel_sum(a) / a.dtype.type(self.count)).reshape(self.param_shape)
        return a.mean(axis=self.axes, keepdims=True)

    def sum(self, a: np.ndarray) -> np.ndarray:
        if self.channels_last:
            return kernels.channel_sum(a).reshape(self.param_shape)
        return a.sum(axis=self.axes, keepdims=True)


def batch_statistics(x: np.ndarray, layout: _Layout):
    """Per-channel mean and biased variance, two-pass, and the centred data.

    NOTE: the first pass sums x minus the first value of each channel rather than x itself:
    float32 data with mean 1e4 and standard deviation 1 would lose three digits of the mean
    to rounding in a plain float32 sum, and the variance (about 1) would inherit the error
    squared. Shifted data have values of the order of the spread, so both passes keep float32
    precision relative to the variance.
    """
    shift = x[layout.first]
    centred = x - shift
    shifted_mean = layout.mean(centred)
    centred -= shifted_mean
    var = layout.mean(centred * centred)
    return shift + shifted_mean, var, centred


class BatchNorm(Function):
    """y = gamma * (x - mu) / sqrt(var + eps) + beta with the batch's mean and biased variance;
    dx = gamma / sigma * (gy - mean(gy) - xhat * mean(gy * xhat)), dgamma = sum(gy * xhat),
    dbeta = sum(gy).

    After the call, ``mean`` and ``var`` hold the batch statistics (arrays of shape (C,)), for
    the layer's moving averages.
    """

    def __init__(self, axis: int = -1, epsilon: float = 1e-3):
        self.axis = axis
        self.epsilon = epsilon

    def forward(self, x, gamma, beta):
        layout = self.layout = _Layout(x.shape, self.axis)
        mean, var, centred = batch_statistics(x, layout)
        inv_std = 1 / get_array_module(var).sqrt(var + x.dtype.type(self.epsilon))
        xhat = centred
        xhat *= inv_std
        self.mean = mean.reshape(-1)
        self.var = var.reshape(-1)
        if any(self.needs_input_grad):
            self.xhat, self.inv_std = xhat, inv_std
        return xhat * gamma + beta

    def backward(self, gy):
        """The formula with Tensor ops, from x itself, so that second derivatives see how mu,
        var and xhat depend on x."""
        x, gamma, _ = self.inputs
        layout = self.layout
        centred = x - x.data[layout.first]  # the same shift as forward, for precision
        centred = centred - centred.mean(layout.axes, keepdims=True)
        var = (centred * centred).mean(layout.axes, keepdims=True)
        inv_std = (var + self.epsilon) ** -0.5
        xhat = centred * inv_std
        gy_xhat = gy * xhat
        gx = None
        if self.needs_input_grad[0]:
            gx = gamma * inv_std * (gy - gy.mean(layout.axes, keepdims=True)
                                    - xhat * gy_xhat.mean(layout.axes, keepdims=True))
        return gx, gy_xhat, gy

    def backward_array(self, gy):
        """The same formula from the xhat and 1 / sigma that forward kept."""
        layout, xhat = self.layout, self.xhat
        gamma = self.inputs[1].data
        gbeta = layout.sum(gy)
        ggamma = layout.sum(gy * xhat)
        gx = None
        if self.needs_input_grad[0]:
            m = gy.dtype.type(layout.count)
            gx = gy - gbeta / m
            gx -= xhat * (ggamma / m)
            gx *= gamma * self.inv_std
        return gx, ggamma.reshape(gamma.shape), gbeta.reshape(gamma.shape)


# --------------------------------------------------------------------- public functions


def _check(x: Tensor, gamma: Tensor, beta: Tensor, axis, function: str) -> int:
    if x.dtype.kind != "f":
        raise TypeError(f"{function}: x must be floating, got dtype {x.dtype}")
    if x.ndim < 2:
        raise ValueError(f"{function}: x must have a batch axis and a channel axis (at least "
                         f"2-D), got shape {x.shape}")
    if not isinstance(axis, (int, np.integer)) or not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{function}: axis must be an int in [-{x.ndim}, {x.ndim}) for x of "
                         f"shape {x.shape}, got {axis!r}")
    channels = x.shape[axis]
    for name, p in (("gamma", gamma), ("beta", beta)):
        if p.shape != (channels,):
            raise ValueError(f"{function}: {name} must have shape ({channels},) (axis {axis} of "
                             f"x shape {x.shape}), got {p.shape}")
    return int(axis) % x.ndim


def _as_params(x, gamma, beta):
    x = as_tensor(x)
    return x, as_tensor(gamma, x), as_tensor(beta, x)


def _broadcastable(p: Tensor, layout: _Layout) -> Tensor:
    """(C,) -> the shape that broadcasts against x along ``axis`` (unchanged for the last
    axis)."""
    return p if layout.channels_last else p.reshape(layout.param_shape[layout.axis:])


def batch_norm_training(x, gamma, beta, epsilon=1e-3, axis=-1, sum_over_replicas=None):
    """Batch normalization with the batch's own statistics, also returning them.

    The lower-level form of ``batch_norm(x, gamma, beta)`` for layers that keep moving
    averages: the statistics come from the same pass that normalizes.

    Args:
        x, gamma, beta, epsilon, axis: as ``batch_norm``.
        sum_over_replicas: ``None`` (default): the statistics of this batch. For a
            data-parallel batch split over replicas, a function returning the elementwise sum
            of an array over them: the statistics of the global batch (``SyncBatchNorm``;
            first derivatives only).

    Returns:
        ``(y, mean, var)``: the normalized Tensor, and the batch mean and biased variance of
        each channel as arrays of shape (C,) (not differentiated).

    Example:
        >>> import numpy as np
        >>> y, mean, var = batch_norm_training(np.array([[1.0], [3.0]]), np.ones(1), np.zeros(1))
        >>> mean, var
        (array([2.]), array([1.]))
    """
    x, gamma, beta = _as_params(x, gamma, beta)
    function = "batch_norm" if sum_over_replicas is None else "sync batch_norm"
    axis = _check(x, gamma, beta, axis, function)
    layout = _Layout(x.shape, axis)
    if sum_over_replicas is not None:
        op = SyncBatchNorm(axis, epsilon, sum_over_replicas)  # counts over all replicas
    elif layout.count < 2:
        raise ValueError(f"batch_norm: training needs more than one value per channel to "
                         f"estimate a variance, got x of shape {x.shape} (channel axis {axis})")
    else:
        op = BatchNorm(axis, epsilon)
    y = op(x, _broadcastable(gamma, layout), _broadcastable(beta, layout))
    return y, op.mean, op.var


def batch_norm_affine(gamma, beta, mean, var, epsilon=1e-3):
    """Batch normalization at inference as one scale and one shift per channel:

        a = gamma / sqrt(var + epsilon),   b = beta - a * mean,   so that
        gamma * (x - mean) / sqrt(var + epsilon) + beta = a * x + b.

    Args:
        gamma, beta, mean, var: per-channel arrays or Tensors of shape (C,).
        epsilon: added to the variance (default 1e-3, as Keras).

    Returns:
        ``(a, b)``: Tensors of shape (C,), differentiable in every argument.

    Example:
        >>> import numpy as np
        >>> a, b = batch_norm_affine(np.array([2.0]), np.array([1.0]), np.array([3.0]),
        ...                          np.array([4.0]), epsilon=0.0)
        >>> a.data, b.data
        (array([1.]), array([-2.]))
    """
    gamma = as_tensor(gamma)
    a = gamma / sqrt(as_tensor(var, gamma) + epsilon)
    return a, beta - a * mean


def batch_norm(x, gamma, beta, mean=None, var=None, epsilon=1e-3, axis=-1):
    """Batch normalization: normalize each channel, then scale and shift it.

        y = gamma * (x - mu) / sqrt(var + epsilon) + beta

    Statistics are per channel (per index of ``axis``) over every other axis: per unit for
    (N, C) inputs, per feature map for (N, H, W, C) images (N*H*W values each).

    * ``mean`` and ``var`` omitted: training mode. mu and var are the batch's mean and biased
      variance (divided by m, as Keras and torch normalize), computed two-pass; the gradient
      accounts for their dependence on x:
      ``dx = gamma / sqrt(var + eps) * (gy - mean(gy) - xhat * mean(gy * xhat))``.
    * ``mean`` and ``var`` given (the moving averages): inference mode; they are constants
      (not differentiated): ``y = a * x + b`` as ``batch_norm_affine`` gives a and b.

    In both modes ``dgamma = sum(gy * xhat)`` and ``dbeta = sum(gy)``, and second derivatives
    are exact. ``batch_norm_training`` also returns the batch statistics.

    Args:
        x: input of shape (N, ..., C) (at least 2-D).
        gamma: scale, shape (C,).
        beta: shift, shape (C,).
        mean: population mean, shape (C,), or ``None`` for batch statistics (default).
        var: population variance, shape (C,), or ``None`` (default).
        epsilon: added to the variance (default 1e-3, as Keras).
        axis: the channel axis (default -1: channels last).

    Returns:
        A Tensor of ``x``'s shape.

    Shape:
        (N, ..., C), (C,), (C,) -> (N, ..., C).

    Raises:
        ValueError: for parameters of the wrong shape, only one of mean/var, or (training) a
            batch with a single value per channel.

    Example:
        >>> import numpy as np
        >>> import nervenet.functional as F
        >>> x = np.array([[1.0, 10.0], [3.0, 30.0]])
        >>> F.batch_norm(x, np.ones(2), np.zeros(2), epsilon=0.0).data
        array([[-1., -1.],
               [ 1.,  1.]])
        >>> F.batch_norm(x, np.ones(2), np.zeros(2), mean=np.zeros(2), var=np.ones(2),
        ...              epsilon=0.0).data
        array([[ 1., 10.],
               [ 3., 30.]])
    """
    if (mean is None) != (var is None):
        raise ValueError("batch_norm: give both mean and var (inference) or neither "
                         f"(training), got mean={'None' if mean is None else 'an array'} and "
                         f"var={'None' if var is None else 'an array'}")
    if mean is None:
        return batch_norm_training(x, gamma, beta, epsilon, axis)[0]
    return _batch_norm_inference(x, gamma, beta, mean, var, epsilon, axis)


def _batch_norm_inference(x, gamma, beta, mean, var, epsilon, axis) -> Tensor:
    """``batch_norm`` with the population statistics ``mean`` and ``var``: ``a * x + b``."""
    x, gamma, beta = _as_params(x, gamma, beta)
    axis = _check(x, gamma, beta, axis, "batch_norm")
    layout = _Layout(x.shape, axis)
    a, b = batch_norm_affine(gamma, beta, _statistic(mean, "mean", x, axis),
                             _statistic(var, "var", x, axis), epsilon)
    return x * _broadcastable(a, layout) + _broadcastable(b, layout)


def _statistic(value, name: str, x: Tensor, axis: int) -> np.ndarray:
    """A population statistic of shape (C,), checked, in x's dtype (a constant)."""
    value = as_array(value.data if isinstance(value, Tensor) else value, dtype=x.dtype)
    if value.shape != (x.shape[axis],):
        raise ValueError(f"batch_norm: {name} must have shape ({x.shape[axis]},) (axis "
                         f"{axis} of x shape {x.shape}), got {value.shape}")
    return value


class SyncBatchNorm(BatchNorm):
    """BatchNorm whose statistics cover the batches of all replicas (data-parallel ranks):
    ``sum_over_replicas(array)`` returns the elementwise sum of ``array`` over them (the
    identity in one process). With m_r values per channel on replica r and M = sum_r m_r:

        mu = (1/M) sum_r sum_i x_ri,   var = (1/M) sum_r sum_i (x_ri - mu)^2   (two passes)

    Backward: replica r's loss enters the global one with the weight s_r = m_r / M (the
    share data-parallel training gives it), so the per-channel sums of the other replicas'
    upstream gradients are weighted by their shares:

        c1 = (sum_r s_r sum_i gy_ri) / (M s_r),   c2 = (sum_r s_r sum_i gy_ri xhat_ri) / (M s_r)
        dx = gamma / sigma * (gy - c1 - xhat * c2),  dgamma = sum(gy * xhat),  dbeta = sum(gy)

    which in one replica is BatchNorm's backward. First derivatives only (the engine refuses
    create_graph=True through it).
    """

    differentiable_backward = False

    def __init__(self, axis: int, epsilon: float, sum_over_replicas):
        super().__init__(axis, epsilon)
        self.sum_over_replicas = sum_over_replicas

    def _per_channel_sums(self, a: np.ndarray, layout: _Layout) -> np.ndarray:
        return a.sum(axis=layout.axes, dtype=np.float64).reshape(-1)

    def forward(self, x, gamma, beta):
        layout = self.layout = _Layout(x.shape, self.axis)
        channels = x.shape[layout.axis]
        xp = get_array_module(x)
        first = xp.concatenate([xp.asarray([layout.count], dtype=xp.float64),
                                self._per_channel_sums(x, layout)])
        first = self.sum_over_replicas(first)
        self.total = total = first[0]
        if total < 2:
            raise ValueError(f"sync batch_norm: training needs more than one value per channel "
                             f"over all replicas, got {int(total)}")
        mean = (first[1:] / total).reshape(layout.param_shape)
        centred = x - mean.astype(x.dtype)
        var = self.sum_over_replicas(self._per_channel_sums(centred * centred, layout)) / total
        var = var.astype(x.dtype).reshape(layout.param_shape)
        inv_std = 1 / xp.sqrt(var + x.dtype.type(self.epsilon))
        xhat = centred * inv_std
        self.mean = mean.astype(x.dtype).reshape(channels)
        self.var = var.reshape(channels)
        self.share = layout.count / total
        if any(self.needs_input_grad):
            self.xhat, self.inv_std = xhat, inv_std
        return xhat * gamma + beta

    def backward_array(self, gy):
        layout, xhat = self.layout, self.xhat
        gamma = self.inputs[1].data
        gbeta = self._per_channel_sums(gy, layout)
        ggamma = self._per_channel_sums(gy * xhat, layout)
        gx = None
        xp = get_array_module(gy)
        if self.needs_input_grad[0] and self.share > 0:
            sums = self.sum_over_replicas(xp.concatenate([gbeta, ggamma]) * self.share)
            scale = self.total * self.share
            c1, c2 = xp.split(sums / scale, 2)
            gx = gy - c1.astype(gy.dtype).reshape(layout.param_shape)
            gx -= xhat * c2.astype(gy.dtype).reshape(layout.param_shape)
            gx *= gamma * self.inv_std
        elif self.needs_input_grad[0]:
            self.sum_over_replicas(xp.zeros(2 * gbeta.size))  # an empty replica still joins
            gx = xp.zeros_like(gy)
        dtype = gamma.dtype
        return gx, ggamma.astype(dtype).reshape(gamma.shape), gbeta.astype(dtype).reshape(
            gamma.shape)

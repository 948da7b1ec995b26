"""Losses as fused, numerically stable ops, with Keras's semantics.

Each loss takes the target first and the prediction second (``loss(y, p)``), computes the
elementwise loss, averages it over the last axis (the features or classes of one sample) and
then over the batch, and returns that scalar (Keras's default ``"sum_over_batch_size"``).

Probabilities are clipped to ``[eps, 1 - eps]`` with ``eps = 1e-7``, as Keras does, so a
prediction of exactly 0 or 1 gives a large but finite loss (the clipped entries get no gradient,
as in Keras). The ``from_logits=True`` forms never clip: they fuse the sigmoid or softmax into
the loss and are exact for any logit, e.g. ``binary_cross_entropy(1, -100, from_logits=True)``
is 100 with gradient -1, where clipping after a sigmoid (Keras's NumPy backend does) would give
-ln(1e-7) = 16.1 and gradient 0.

Each backward is written with differentiable Tensor ops, so the Hessian of every loss is exact
(Newton's method needs it). The regression losses and the hinge are fused too, though each is
a short composition of ops: composed, they made a training step of a small regression network
markedly slower (``bench/losses.py``).
The cross-entropies, on the hot path of every classifier, also state their gradient on bare
arrays (``backward_array``) for first-order passes.
"""

from __future__ import annotations

import numbers

import numpy as np

from nervenet import backend, kernels
from nervenet.autograd.function import Function
from nervenet.autograd.ops.activation import LogSoftmax, Sigmoid, Softmax
from nervenet.autograd.ops.arith import clip, log, where
from nervenet.autograd.tensor import Tensor, as_tensor
from nervenet.backend import as_array, as_device_array, get_array_module

#: Keras's ``backend.epsilon()``: probabilities are clipped to [EPSILON, 1 - EPSILON].
EPSILON = 1e-7


# ------------------------------------------------------------------ regression losses


class MeanSquaredError(Function):
    """L = mean((p - y)^2);  dp = gy * 2 (p - y) / n,  dy = -dp."""

    def forward(self, y, p):
        d = (p - y).ravel()
        return get_array_module(d).asarray(d.dot(d) / d.size)

    def backward(self, gy):
        y, p = self.inputs
        gp = (p - y) * (gy * (2.0 / p.size))
        return (-gp if self.needs_input_grad[0] else None,
                gp if self.needs_input_grad[1] else None)


class MeanAbsoluteError(Function):
    """L = mean(|p - y|);  dp = gy * sign(p - y) / n (0 where p = y, as torch),  dy = -dp."""

    def forward(self, y, p):
        xp = get_array_module(p)
        return xp.asarray(xp.abs(p - y).mean())

    def backward(self, gy):
        y, p = self.inputs
        sign = get_array_module(p.data).sign(p.data - y.data)
        gp = gy * (1.0 / p.size) * sign
        return (-gp if self.needs_input_grad[0] else None,
                gp if self.needs_input_grad[1] else None)


class Huber(Function):
    """L = mean(e^2 / 2 where |e| <= delta, else delta (|e| - delta / 2)), e = p - y;
    dp = gy * clip(e, -delta, delta) / n,  dy = -dp."""

    def __init__(self, delta: float):
        self.delta = delta

    def forward(self, y, p):
        xp = get_array_module(p)
        a = xp.abs(p - y)
        q = xp.minimum(a, self.delta)
        # q (a - q/2) is a^2/2 where a <= delta and delta (a - delta/2) beyond: no branch.
        return xp.asarray((q * (a - q * 0.5)).mean())

    def backward(self, gy):
        y, p = self.inputs
        # clip's derivative (1 inside, 0 outside) is exactly Huber's second derivative.
        gp = clip(p - y, -self.delta, self.delta) * (gy * (1.0 / p.size))
        return (-gp if self.needs_input_grad[0] else None,
                gp if self.needs_input_grad[1] else None)


class Hinge(Function):
    """L = mean(max(1 - y p, 0)) for labels y in {-1, 1};  dp = -gy y / n where y p < 1."""

    def __init__(self, y: np.ndarray):
        self.y = y  # as given: in {-1, 1}, or all in {0, 1} (checked by forward)

    def forward(self, p):
        self.signs = _signs(self.y)
        margin = 1 - self.signs * p
        self.active = margin > 0
        xp = get_array_module(margin)
        return xp.asarray(xp.maximum(margin, 0).mean())

    def backward(self, gy):
        slope = (self.signs * self.active).astype(gy.dtype) * (-1.0 / self.signs.size)
        return gy * slope


def _signs(y: np.ndarray) -> np.ndarray:
    """Hinge labels as -1 and 1: as they are, or ``2 y - 1`` when every label is 0 or 1 (as
    Keras converts them); a ValueError names any other label."""
    if ((y == -1) | (y == 1)).all():
        return y
    if ((y == 0) | (y == 1)).all():
        return 2 * y - 1
    value = y[(y != -1) & (y != 1)].ravel()[0].item()
    raise ValueError(f"hinge: y must hold labels in {{-1, 1}}, or only 0 and 1 (converted to -1 "
                     f"and 1 as Keras does), got {value}")


# ------------------------------------------------------------------ binary cross-entropy


class BinaryCrossEntropy(Function):
    """L = -mean(y ln q + (1 - y) ln(1 - q)), q = clip(p, eps, 1 - eps);
    dp = gy (q - y) / (q (1 - q)) / n where p is not clipped,  dy = -gy ln(q / (1 - q)) / n."""

    def forward(self, y, p):
        xp = get_array_module(p)
        q = xp.clip(p, EPSILON, 1 - EPSILON)
        return xp.asarray(-(y * xp.log(q) + (1 - y) * xp.log1p(-q)).mean())

    def backward(self, gy):
        y, p = self.inputs
        scale = gy * (1.0 / p.size)
        q = clip(p, EPSILON, 1 - EPSILON)  # its derivative is the "not clipped" mask
        gy_true = -(log(q) - log(1 - q)) * scale if self.needs_input_grad[0] else None
        gp = (q - y) / (q * (1 - q)) * scale if self.needs_input_grad[1] else None
        if gp is not None:
            inside = (p.data >= EPSILON) & (p.data <= 1 - EPSILON)
            if not inside.all():
                gp = gp * inside.astype(gp.dtype)
        return gy_true, gp


class BinaryCrossEntropyWithLogits(Function):
    """L = mean(max(x, 0) - x y + ln(1 + e^(-|x|))) = BCE of sigmoid(x), exact for any x;
    dx = gy (sigmoid(x) - y) / n,  dy = -gy x / n."""

    def forward(self, y, x):
        xp = get_array_module(x)
        return xp.asarray((xp.maximum(x, 0) - x * y + xp.log1p(xp.exp(-xp.abs(x)))).mean())

    def backward(self, gy):
        y, x = self.inputs
        scale = gy * (1.0 / x.size)
        return (x * -scale if self.needs_input_grad[0] else None,
                (Sigmoid()(x) - y) * scale if self.needs_input_grad[1] else None)

    def backward_array(self, gy):
        y, x = self.inputs[0].data, self.inputs[1].data
        scale = gy * (1.0 / x.size)
        return (x * -scale if self.needs_input_grad[0] else None,
                (kernels.sigmoid(x) - y) * scale if self.needs_input_grad[1] else None)


# ------------------------------------------------------------------ categorical cross-entropy


def _row_totals(p: np.ndarray, keepdims: bool = True) -> np.ndarray:
    """``sum(p)`` over the last axis, at least the smallest normal number: a row of zeros
    normalizes to zeros (clipped to eps: a finite loss) instead of 0 / 0."""
    return get_array_module(p).maximum(p.sum(axis=-1, keepdims=keepdims), np.finfo(p.dtype).tiny)


def _probability_ce_grad(y, p, scale, unclipped: np.ndarray):
    """d/dp of -sum(y ln clip(p / sum(p))) as differentiable Tensor ops:
    ``-y m / p + sum(y m) / sum(p)`` with m the (constant) mask of unclipped entries."""
    w = y * unclipped.astype(p.dtype)
    safe_p = where(unclipped, p, 1.0) if not unclipped.all() else p
    total = clip(p.sum(axis=-1, keepdims=True), np.finfo(p.dtype).tiny)  # as _row_totals
    return (w.sum(axis=-1, keepdims=True) / total - w / safe_p) * scale


class CategoricalCrossEntropy(Function):
    """L = -sum(y ln q) / M, q = clip(p / sum(p), eps, 1 - eps) over the last axis, M rows;
    dp = gy (sum(y m) / sum(p) - y m / p) / M (m: q not clipped),  dy = -gy ln q / M."""

    def forward(self, y, p):
        q = p / _row_totals(p)
        self.unclipped = (q >= EPSILON) & (q <= 1 - EPSILON)
        xp = get_array_module(q)
        xp.clip(q, EPSILON, 1 - EPSILON, out=q)
        xp.log(q, out=q)
        self.rows = p.size // p.shape[-1]  # M: the samples (public checks: M, C >= 1)
        self.log_q = q if self.needs_input_grad[0] else None
        return xp.asarray(-xp.vdot(y, q) / self.rows)

    def backward(self, gy):
        y, p = self.inputs
        scale = gy * (1.0 / self.rows)
        gp = _probability_ce_grad(y, p, scale, self.unclipped) if self.needs_input_grad[1] \
            else None
        gy_true = None
        if self.needs_input_grad[0]:
            total = clip(p.sum(axis=-1, keepdims=True), np.finfo(p.dtype).tiny)  # as _row_totals
            gy_true = -log(clip(p / total, EPSILON, 1 - EPSILON)) * scale
        return gy_true, gp

    def backward_array(self, gy):
        y, p = self.inputs[0].data, self.inputs[1].data
        scale = gy * (1.0 / self.rows)
        gp = None
        if self.needs_input_grad[1]:
            w = y * self.unclipped  # only unclipped entries have a gradient
            # w is 0 where clipped, so w / p with 1 put there gives 0 (and never 0 / 0)
            gp = w / get_array_module(p).where(self.unclipped, p, p.dtype.type(1))
            gp = (w.sum(axis=-1, keepdims=True) / _row_totals(p) - gp) * scale
        return (self.log_q * -scale if self.needs_input_grad[0] else None), gp


class SoftmaxCrossEntropy(Function):
    """L = -sum(y log_softmax(x)) / M over the last axis (M rows), via log-sum-exp;
    dx = gy (softmax(x) sum(y) - y) / M,  dy = -gy log_softmax(x) / M."""

    def forward(self, y, x):
        log_probs, self.probs = kernels.log_softmax_and_softmax(x)
        self.rows = x.size // x.shape[-1]
        self.log_probs = log_probs if self.needs_input_grad[0] else None
        xp = get_array_module(log_probs)
        return xp.asarray(-xp.vdot(y, log_probs) / self.rows)

    def backward(self, gy):
        y, x = self.inputs
        scale = gy * (1.0 / self.rows)
        return (-LogSoftmax()(x) * scale if self.needs_input_grad[0] else None,
                (Softmax()(x) * y.sum(axis=-1, keepdims=True) - y) * scale
                if self.needs_input_grad[1] else None)

    def backward_array(self, gy):
        # With one-hot (or any normalized) targets sum(y) = 1 and dx is softmax(x) - y.
        y = self.inputs[0].data
        scale = gy * (1.0 / self.rows)
        return (self.log_probs * -scale if self.needs_input_grad[0] else None,
                (self.probs * y.sum(axis=-1, keepdims=True) - y) * scale
                if self.needs_input_grad[1] else None)


class SparseCategoricalCrossEntropy(Function):
    """L = -mean(ln q[label]), q = clip(p / sum(p), eps, 1 - eps) over the last axis;
    dp = gy (1 / sum(p) - [j = label] / p) / N where q[label] is not clipped, else 0."""

    def __init__(self, labels: np.ndarray):
        self.labels = labels  # one per row of p, as given (checked by forward)

    def forward(self, p):
        self.indices = _class_indices(self.labels, p.shape[-1])
        xp = get_array_module(p)
        p2 = p.reshape(-1, p.shape[-1])
        self.rows = xp.arange(len(p2))
        self.total = _row_totals(p2, keepdims=False)
        picked = p2[self.rows, self.indices] / self.total
        self.unclipped = (picked >= EPSILON) & (picked <= 1 - EPSILON)
        xp.clip(picked, EPSILON, 1 - EPSILON, out=picked)
        return xp.asarray(-xp.log(picked).mean())

    def backward(self, gy):
        p = self.inputs[0]
        onehot = _one_hot(self.indices, p.shape, p.dtype)
        unclipped = (onehot > 0) & self.unclipped.reshape(p.shape[:-1] + (1,))
        return _probability_ce_grad(onehot, p, gy * (1.0 / len(self.rows)), unclipped)

    def backward_array(self, gy):
        p = self.inputs[0].data
        p2 = p.reshape(-1, p.shape[-1])
        coef = self.unclipped * (gy * (1.0 / len(self.rows)))  # 0 for clipped rows
        xp = get_array_module(p)
        g = xp.empty_like(p2)
        g[...] = (coef / self.total)[:, None]
        picked = xp.where(self.unclipped, p2[self.rows, self.indices], 1)
        g[self.rows, self.indices] -= coef / picked
        return g.reshape(p.shape)


class SparseSoftmaxCrossEntropy(Function):
    """L = mean(ln sum_j e^(x_j) - x[label]) over rows, via log-sum-exp;
    dx = gy (softmax(x) - onehot(label)) / N."""

    def __init__(self, labels: np.ndarray):
        self.labels = labels  # one per row of x, as given (checked by forward)

    def forward(self, x):
        self.indices = _class_indices(self.labels, x.shape[-1])
        xp = get_array_module(x)
        x2 = x.reshape(-1, x.shape[-1])
        self.rows = xp.arange(len(x2))
        shifted = x2 - x2.max(axis=-1, keepdims=True)
        probs = xp.exp(shifted)
        total = probs.sum(axis=-1)
        loss = (xp.log(total).sum() - shifted[self.rows, self.indices].sum()) / len(x2)
        if self.needs_input_grad[0]:  # softmax(x), kept for the backward pass
            probs /= total[:, None]
            self.probs = probs
        return xp.asarray(loss, dtype=x.dtype)

    def backward(self, gy):
        x = self.inputs[0]
        return (Softmax()(x) - _one_hot(self.indices, x.shape, x.dtype)) * (
            gy * (1.0 / len(self.rows)))

    def backward_array(self, gy):
        scale = gy * (1.0 / len(self.rows))
        g = self.probs * scale
        g[self.rows, self.indices] -= scale
        return g.reshape(self.inputs[0].shape)


def _one_hot(labels: np.ndarray, shape: tuple[int, ...], dtype) -> np.ndarray:
    xp = get_array_module(labels)
    onehot = xp.zeros((len(labels), shape[-1]), dtype=dtype)
    onehot[xp.arange(len(labels)), labels] = 1
    return onehot.reshape(shape)


# ------------------------------------------------------------------ argument checks


def _prediction(p, function: str) -> Tensor:
    """The prediction as a floating Tensor (integer data becomes floatx)."""
    p = as_tensor(p)
    kind = p.data.dtype.kind
    if kind in "biu":
        p = Tensor.from_array(p.data.astype(backend.floatx()))
    elif kind != "f":
        raise TypeError(f"{function}: p must be numeric, got dtype {p.dtype}")
    if p.size == 0:
        raise ValueError(f"{function}: p is empty (shape {p.shape}); the mean of no losses is "
                         "undefined")
    return p


def _target(y, p: Tensor, function: str, argument: str = "y") -> Tensor:
    """The target in the prediction's dtype, of the prediction's shape.

    A target that requires a gradient is used as it is (it must then have p's dtype already);
    any other target is converted to p's dtype, as Keras casts ``y_true`` to ``y_pred``'s.
    """
    if isinstance(y, Tensor) and y.requires_grad:
        if y.dtype != p.dtype:
            raise TypeError(
                f"{function}: {argument} requires a gradient, so it must have the dtype of p "
                f"({p.dtype}); got {y.dtype}")
    else:
        data = y.data if isinstance(y, Tensor) else y
        try:
            y = Tensor.from_array(as_array(data, dtype=p.dtype))
        except (TypeError, ValueError) as error:
            raise TypeError(f"{function}: {argument} must be numeric ({error})") from None
    if y.shape != p.shape:
        raise ValueError(
            f"{function}: {argument} and p must have the same shape, got {argument} {y.shape} "
            f"and p {p.shape}")
    return y


def _classes(p: Tensor, function: str) -> int:
    if p.ndim < 1 or p.shape[-1] < 1:
        raise ValueError(
            f"{function}: p must have the classes on a last axis of size >= 1, got shape "
            f"{p.shape}")
    return p.shape[-1]


def _sparse_labels(labels, p: Tensor, function: str) -> np.ndarray:
    """Integer class labels for p (..., C), of shape p.shape[:-1] (a trailing axis of 1 is
    dropped); their values are checked by the Function (``_class_indices``), at every call."""
    _classes(p, function)
    data = labels.data if isinstance(labels, Tensor) else as_device_array(labels)
    expected = p.shape[:-1]
    if data.shape == expected + (1,):  # Keras accepts (N, 1) as well as (N,)
        data = data.reshape(expected)
    elif data.shape != expected:
        raise ValueError(
            f"{function}: labels must have shape {expected} or {expected + (1,)} for p of shape "
            f"{p.shape}, got {data.shape}")
    if data.dtype.kind not in "iuf":
        raise TypeError(
            f"{function}: labels must be integer class indices, got dtype {data.dtype}")
    return data


def _class_indices(labels: np.ndarray, classes: int) -> np.ndarray:
    """The labels as flat class indices (intp), or a ValueError naming a label that is not an
    integer in [0, classes)."""
    function = "sparse_categorical_cross_entropy"
    if labels.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            fractional = labels != get_array_module(labels).floor(labels)  # NaN caught too
        if fractional.any():
            value = labels[fractional].ravel()[0].item()
            raise ValueError(
                f"{function}: labels must be integer class indices in [0, {classes}), got "
                f"{value}")
    flat = labels.ravel()
    if flat.size:
        low, high = flat.min(), flat.max()
        if low < 0 or high >= classes:
            value = (low if low < 0 else high).item()
            raise ValueError(
                f"{function}: labels must be class indices in [0, {classes}) for p with "
                f"{classes} classes, got {value}")
    return flat.astype(np.intp, copy=False)


def _from_logits(value, function: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{function}: from_logits must be True or False, got {value!r}")
    return bool(value)


# ------------------------------------------------------------------ public functions


def mse(y, p):
    """Mean squared error ``L = mean((p - y)**2)`` over every element (Keras: the mean over
    the last axis, then over the batch, which is the same number).

    Args:
        y: the targets.
        p: the predictions, of the same shape.

    Returns:
        A scalar Tensor. Gradients: ``dp = 2 (p - y) / n``, ``dy = -dp``.

    Shape:
        y, p: (N, ...) -> ().

    Example:
        >>> import nervenet.functional as F
        >>> F.mse([[0.0, 1.0]], [[1.0, 3.0]]).data
        array(2.5, dtype=float32)
    """
    p = _prediction(p, "mse")
    return MeanSquaredError()(_target(y, p, "mse"), p)


def mae(y, p):
    """Mean absolute error ``L = mean(|p - y|)``.

    Args:
        y: the targets.
        p: the predictions, of the same shape.

    Returns:
        A scalar Tensor. Gradients: ``dp = sign(p - y) / n`` (0 where p = y, as torch),
        ``dy = -dp``.

    Shape:
        y, p: (N, ...) -> ().

    Example:
        >>> import nervenet.functional as F
        >>> F.mae([[0.0, 1.0]], [[1.0, 3.0]]).data
        array(1.5, dtype=float32)
    """
    p = _prediction(p, "mae")
    return MeanAbsoluteError()(_target(y, p, "mae"), p)


def huber(y, p, delta=1.0):
    """Huber loss: quadratic for small errors, linear for large ones (robust to outliers).

    With ``e = p - y``: ``l = e**2 / 2`` where ``|e| <= delta``, else
    ``delta * (|e| - delta / 2)``; ``L = mean(l)``. Equals Keras's ``Huber`` and
    ``torch.nn.functional.huber_loss``.

    Args:
        y: the targets.
        p: the predictions, of the same shape.
        delta: where the loss turns from quadratic to linear (default 1.0, > 0).

    Returns:
        A scalar Tensor. Gradients: ``dp = clip(e, -delta, delta) / n``, ``dy = -dp``.

    Shape:
        y, p: (N, ...) -> ().

    Example:
        >>> import nervenet.functional as F
        >>> F.huber([[0.0, 0.0]], [[0.5, 3.0]]).data
        array(1.3125, dtype=float32)
    """
    if isinstance(delta, bool) or not isinstance(delta, numbers.Real) or not delta > 0:
        raise ValueError(f"huber: delta must be a positive number, got {delta!r}")
    p = _prediction(p, "huber")
    return Huber(float(delta))(_target(y, p, "huber"), p)


def hinge(y, p):
    """Hinge loss of a maximum-margin classifier: ``L = mean(max(1 - y * p, 0))``.

    Labels are -1 and 1. Labels given as 0 and 1 are converted to -1 and 1 (``2 y - 1``), as
    Keras does when every label is 0 or 1.

    Args:
        y: the labels (not differentiated), in {-1, 1} or all in {0, 1}.
        p: the raw scores (not probabilities), of the same shape.

    Returns:
        A scalar Tensor. Gradient: ``dp = -y / n`` where ``y * p < 1``, else 0 (the kink at
        ``y * p = 1`` gets 0).

    Raises:
        ValueError: a label outside {-1, 1} (other than all-0/1 labels).

    Shape:
        y, p: (N, ...) -> ().

    Example:
        >>> import nervenet.functional as F
        >>> F.hinge([[1.0, 0.0]], [[0.5, -2.0]]).data
        array(0.25, dtype=float32)
    """
    p = _prediction(p, "hinge")
    return Hinge(_target(y.detach() if isinstance(y, Tensor) else y, p, "hinge").data)(p)


def binary_cross_entropy(y, p, from_logits=False):
    """Binary cross-entropy ``L = -mean(y ln p + (1 - y) ln(1 - p))`` (Keras semantics).

    Probabilities are clipped to ``[1e-7, 1 - 1e-7]`` as Keras does, so p = 0 or 1 gives a
    finite loss. With ``from_logits=True``, ``p`` holds logits x and the fused form
    ``max(x, 0) - x y + ln(1 + e^(-|x|))`` is used: exact for any x (no clipping), e.g. at
    x = -100 with y = 1 the loss is 100 and dL/dx = -1.

    Args:
        y: the targets in [0, 1] (soft labels allowed).
        p: the probabilities (or logits), of the same shape.
        from_logits: whether ``p`` holds logits (default False).

    Returns:
        A scalar Tensor. Gradients: ``dp = (p - y) / (p (1 - p)) / n`` (0 where clipped), or
        from logits ``dx = (sigmoid(x) - y) / n``; ``dy = -ln(p / (1 - p)) / n`` (``-x / n``).

    Shape:
        y, p: (N, ...) -> ().

    Example:
        >>> import nervenet.functional as F
        >>> F.binary_cross_entropy([1.0], [-100.0], from_logits=True).data
        array(100., dtype=float32)
    """
    function = "binary_cross_entropy"
    from_logits = _from_logits(from_logits, function)
    p = _prediction(p, function)
    y = _target(y, p, function)
    return (BinaryCrossEntropyWithLogits() if from_logits else BinaryCrossEntropy())(y, p)


def categorical_cross_entropy(y_onehot, p, from_logits=False):
    """Categorical cross-entropy ``L = mean over samples of -sum_c y_c ln p_c`` (Keras).

    The classes are on the last axis. As Keras 3, probabilities are first normalized by their
    sum over the last axis, then clipped to ``[1e-7, 1 - 1e-7]``. With ``from_logits=True``,
    ``p`` holds logits x and ``-sum(y * log_softmax(x))`` is computed through log-sum-exp
    (finite for |x| up to 1e4 in float32 and 1e300 in float64).

    Args:
        y_onehot: one-hot (or soft) targets.
        p: the probabilities (or logits), of the same shape.
        from_logits: whether ``p`` holds logits (default False).

    Returns:
        A scalar Tensor. Gradient from logits: ``dx = (softmax(x) * sum(y) - y) / M`` (M the
        number of samples), i.e. ``(softmax(x) - y) / M`` for one-hot targets;
        ``dy = -log_softmax(x) / M``.

    Shape:
        y_onehot, p: (N, ..., C) -> ().

    Example:
        >>> import nervenet.functional as F
        >>> F.categorical_cross_entropy([[0.0, 1.0]], [[0.5, 0.5]]).data
        array(0.6931472, dtype=float32)
    """
    function = "categorical_cross_entropy"
    from_logits = _from_logits(from_logits, function)
    p = _prediction(p, function)
    _classes(p, function)
    y = _target(y_onehot, p, function, "y_onehot")
    return (SoftmaxCrossEntropy() if from_logits else CategoricalCrossEntropy())(y, p)


def sparse_categorical_cross_entropy(labels, p, from_logits=False):
    """Categorical cross-entropy with integer labels: ``L = mean(-ln p[label])`` (Keras).

    Equal to ``categorical_cross_entropy(one_hot(labels), p)`` without building the one-hot
    matrix. Probabilities are normalized and clipped as there; with ``from_logits=True`` the
    loss is ``mean(logsumexp(x) - x[label])``.

    Args:
        labels: integer class indices of shape (N,) or (N, 1) (generally ``p.shape[:-1]``,
            optionally with a trailing 1). Float labels are accepted when integral.
        p: the probabilities (or logits), shape (N, C).
        from_logits: whether ``p`` holds logits (default False).

    Returns:
        A scalar Tensor. Gradient from logits: ``dx = (softmax(x) - onehot(labels)) / N``.

    Raises:
        ValueError: a label that is not an integer, or outside [0, C) (the message names it
            and C); labels of the wrong shape.

    Shape:
        labels: (N,) or (N, 1); p: (N, C) -> ().

    Example:
        >>> import nervenet.functional as F
        >>> F.sparse_categorical_cross_entropy([1], [[0.0, 0.0]], from_logits=True).data
        array(0.6931472, dtype=float32)
    """
    function = "sparse_categorical_cross_entropy"
    from_logits = _from_logits(from_logits, function)
    p = _prediction(p, function)
    labels = _sparse_labels(labels, p, function)
    return (SparseSoftmaxCrossEntropy(labels) if from_logits
            else SparseCategoricalCrossEntropy(labels))(p)

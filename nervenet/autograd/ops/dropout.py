"""Dropout (Srivastava et al., 2014, inverted as Keras and PyTorch implement it) and alpha
dropout (Klambauer et al., 2017).

``keep_mask`` is the one place a dropout mask is drawn: the ``Dropout`` and ``AlphaDropout``
layers (and spatial dropout, through ``noise_shape``) all call these functions.
"""

from __future__ import annotations

import numpy as np

from nervenet import backend
from nervenet.autograd.function import Function
from nervenet.autograd.ops.activation import SELU_ALPHA, SELU_SCALE
from nervenet.autograd.tensor import as_tensor


class Dropout(Function):
    """y = x * m with m = keep / (1 - rate), keep ~ Bernoulli(1 - rate);  dx = gy * m.

    The mask (of ``noise_shape``, broadcast against x) is drawn in ``forward`` from ``rng``,
    so a captured step that replays ``forward`` draws the masks eager would draw, in order.
    """

    def __init__(self, rng: np.random.Generator, rate: float, noise_shape=None):
        self.rng = rng
        self.rate = rate
        self.noise_shape = noise_shape

    def forward(self, x):
        keep = keep_mask(_mask_shape(x.shape, self.noise_shape, "dropout"), self.rate,
                         self.rng, backend.device_of(x))
        self.scaled_mask = keep * x.dtype.type(1 / (1 - self.rate))
        return x * self.scaled_mask

    def backward(self, gy):
        return gy * self.scaled_mask

    def backward_array(self, gy):
        return gy * self.scaled_mask


class AlphaDropout(Function):
    """y = a * (x * keep + alpha' * (1 - keep)) + b = x * s + t with s = a * keep and
    t = b + a * alpha' * (1 - keep);  dx = gy * s. The mask is drawn in ``forward``, as
    Dropout's."""

    def __init__(self, rng: np.random.Generator, rate: float, noise_shape=None):
        self.rng = rng
        self.rate = rate
        self.noise_shape = noise_shape

    def forward(self, x):
        keep = keep_mask(_mask_shape(x.shape, self.noise_shape, "alpha_dropout"), self.rate,
                         self.rng, backend.device_of(x))
        alpha_p = -SELU_SCALE * SELU_ALPHA
        a = ((1.0 - self.rate) * (1.0 + self.rate * alpha_p ** 2)) ** -0.5
        b = -a * alpha_p * self.rate
        xp, dtype = backend.get_array_module(keep), x.dtype.type
        self.scale = xp.where(keep, dtype(a), dtype(0))
        return x * self.scale + xp.where(keep, dtype(b), dtype(a * alpha_p + b))

    def backward(self, gy):
        return gy * self.scale

    def backward_array(self, gy):
        return gy * self.scale


def keep_mask(shape: tuple, rate: float, rng=None, device: str = "cpu"):
    """A boolean mask of ``shape`` on ``device``: each entry True (kept) with probability
    ``1 - rate``.

    ``rng``: a ``numpy.random.Generator``, an int seed or ``None`` (see
    ``nervenet.backend.make_rng``). The draw uses float32 uniforms (half the random bits of
    float64) for either dtype, so the same seed gives the same mask in float32 and float64;
    it is drawn on the host and moved, so a seed gives the same mask on every device.
    """
    keep = backend.make_rng(rng).random(shape, dtype=np.float32) >= rate
    return backend.to_device(keep, device)


def _mask_shape(x_shape: tuple, noise_shape, function: str) -> tuple:
    """``noise_shape`` with its ``None`` entries replaced by ``x``'s sizes (``x``'s shape when
    it is ``None``), checked to broadcast against ``x``."""
    if noise_shape is None:
        return x_shape
    if len(noise_shape) != len(x_shape):
        raise ValueError(f"{function}: noise_shape {tuple(noise_shape)} must have one entry per "
                         f"input axis, got input of shape {x_shape}")
    mask = tuple(n if d is None else int(d) for d, n in zip(noise_shape, x_shape))
    if any(d not in (1, n) for d, n in zip(mask, x_shape)):
        raise ValueError(f"{function}: noise_shape {tuple(noise_shape)} does not broadcast "
                         f"against input of shape {x_shape}")
    return mask


def _check_rate(rate, function: str) -> None:
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating, np.integer)) \
            or not 0 <= rate < 1:
        raise ValueError(f"{function}: rate must be a number in [0, 1), got {rate!r}")


def _floating(x, function: str):
    x = as_tensor(x)
    if x.dtype.kind != "f":
        raise TypeError(f"{function}: x must be floating, got dtype {x.dtype}")
    return x


def dropout(x, rate, training, rng=None, noise_shape=None):
    """Inverted dropout: in training, zero each value with probability ``rate`` and scale the
    kept ones by 1 / (1 - rate); at inference, return ``x`` unchanged.

        training:   y = x * keep / (1 - rate),  keep ~ Bernoulli(1 - rate) per value
        inference:  y = x

    Why scale in training: a unit that feeds ``w * a`` forward sees, under dropout,
    E[w * keep * a] = (1 - rate) * w * a. The original formulation (no scaling in training)
    therefore multiplies the weights by (1 - rate) at test time, so that the test-time input
    of the next layer equals its expected training-time input. Inverted dropout moves that
    same factor into training instead: E[w * keep * a / (1 - rate)] = w * a, so the trained
    weights are used unchanged at test time and inference needs no special case.

    Args:
        x: a Tensor or array of any shape.
        rate: the probability of dropping a value, in [0, 1).
        training: drop (True) or pass ``x`` through unchanged (False).
        rng: a ``numpy.random.Generator``, an int seed, or ``None`` (default: a generator
            derived from the process-wide one, see ``nervenet.backend.make_rng``).
        noise_shape: the shape of the mask, broadcast against ``x`` (default ``None``: x's
            shape); a ``None`` entry takes x's size, so ``(None, 1, 1, None)`` on (N, H, W, C)
            images drops whole feature maps (spatial dropout).

    Returns:
        A Tensor of ``x``'s shape and dtype (``x`` itself at inference or when rate is 0).
        Gradient: ``dx = gy * keep / (1 - rate)``, with the same mask.

    Raises:
        ValueError: when ``rate`` is not in [0, 1) or ``noise_shape`` does not fit ``x``.

    Example:
        >>> import numpy as np
        >>> import nervenet.functional as F
        >>> y = F.dropout(np.ones(8), rate=0.5, training=True, rng=0)
        >>> sorted(set(y.data.tolist())) in ([0.0, 2.0], [0.0], [2.0])
        True
        >>> F.dropout(np.ones(3), rate=0.5, training=False).data
        array([1., 1., 1.])
    """
    _check_rate(rate, "dropout")
    x = as_tensor(x)
    if not training or rate == 0:
        return x
    x = _floating(x, "dropout")
    _mask_shape(x.shape, noise_shape, "dropout")  # a noise_shape that does not fit: now
    return Dropout(backend.make_rng(rng), rate, noise_shape)(x)


def alpha_dropout(x, rate, training, rng=None, noise_shape=None):
    """Alpha dropout (Klambauer et al., 2017): dropout that keeps SELU's self-normalization.

    A dropped value is set to SELU's negative saturation ``alpha' = -SCALE * ALPHA`` instead
    of 0, then an affine map restores the mean and variance the input had (0 and 1 for
    SELU-normalized activations)::

        training:   y = a * (x * keep + alpha' * (1 - keep)) + b,   keep ~ Bernoulli(1 - rate)
                    a = ((1 - rate) * (1 + rate * alpha'^2))^(-1/2),  b = -a * alpha' * rate
        inference:  y = x

    Args:
        x, rate, training, rng, noise_shape: as ``dropout``.

    Returns:
        A Tensor of ``x``'s shape and dtype. Gradient: ``dx = gy * a`` where kept, 0 where
        dropped.

    Example:
        >>> import numpy as np
        >>> import nervenet.functional as F
        >>> y = F.alpha_dropout(np.random.default_rng(0).standard_normal(20000), 0.2, True,
        ...                     rng=0)
        >>> round(float(y.data.mean()), 1), round(float(y.data.std()), 1)
        (0.0, 1.0)
    """
    _check_rate(rate, "alpha_dropout")
    x = as_tensor(x)
    if not training or rate == 0:
        return x
    x = _floating(x, "alpha_dropout")
    _mask_shape(x.shape, noise_shape, "alpha_dropout")
    return AlphaDropout(backend.make_rng(rng), rate, noise_shape)(x)

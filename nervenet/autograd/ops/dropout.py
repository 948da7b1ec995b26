"""Inverted dropout (Srivastava et al., 2014, as Keras and PyTorch implement it)."""

from __future__ import annotations

import numpy as np

from nervenet import backend
from nervenet.autograd.function import Function
from nervenet.autograd.tensor import as_tensor


class Dropout(Function):
    """y = x * m with m = keep / (1 - rate), keep ~ Bernoulli(1 - rate);  dx = gy * m.

    The mask is drawn in ``forward`` from ``rng`` (float32 uniforms, half the random bits of
    float64, for either dtype: the same seed gives the same mask in float32 and float64), so
    a captured step that replays ``forward`` draws the masks eager would draw, in order.
    """

    def __init__(self, rng: np.random.Generator, rate: float):
        self.rng = rng
        self.rate = rate

    def forward(self, x):
        keep = self.rng.random(x.shape, dtype=np.float32) >= self.rate
        # drawn on the host and moved: a seed gives the same mask on every device
        keep = backend.to_device(keep, backend.device_of(x))
        self.scaled_mask = keep * x.dtype.type(1 / (1 - self.rate))
        return x * self.scaled_mask

    def backward(self, gy):
        return gy * self.scaled_mask

    def backward_array(self, gy):
        return gy * self.scaled_mask


def dropout(x, rate, training, rng=None):
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

    Returns:
        A Tensor of ``x``'s shape and dtype (``x`` itself at inference or when rate is 0).
        Gradient: ``dx = gy * keep / (1 - rate)``, with the same mask.

    Raises:
        ValueError: when ``rate`` is not in [0, 1).

    Example:
        >>> import numpy as np
        >>> import nervenet.functional as F
        >>> y = F.dropout(np.ones(8), rate=0.5, training=True, rng=0)
        >>> sorted(set(y.data.tolist())) in ([0.0, 2.0], [0.0], [2.0])
        True
        >>> F.dropout(np.ones(3), rate=0.5, training=False).data
        array([1., 1., 1.])
    """
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating, np.integer)) \
            or not 0 <= rate < 1:
        raise ValueError(f"dropout: rate must be a number in [0, 1), got {rate!r}")
    x = as_tensor(x)
    if not training or rate == 0:
        return x
    if x.dtype.kind != "f":
        raise TypeError(f"dropout: x must be floating, got dtype {x.dtype}")
    return Dropout(backend.make_rng(rng), rate)(x)

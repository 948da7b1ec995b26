"""Noise layers that regularize: Dropout, AlphaDropout, GaussianNoise, GaussianDropout.

Each is active only when called with ``training=True`` (``fit`` does; ``predict`` and
``evaluate`` do not) and is the identity otherwise. Each layer draws from its own
``numpy.random.Generator``, seeded from its ``seed`` argument or, without one, from
``nervenet.backend.make_rng()`` when the layer is created (so
``nervenet.utils.set_random_seed`` before building a model makes its training reproducible).
"""

from __future__ import annotations

import math

import numpy as np

import nervenet.functional as F
from nervenet import backend
from nervenet.autograd import Tensor
from nervenet.checks import check_int, check_number
from nervenet.layers.base import Layer, registry, unchanged_shape


def _check_rate(layer: str, rate) -> float:
    return check_number(layer, "rate", rate, 0, 1, high_open=True)


def _check_seed(layer: str, seed) -> int | None:
    return check_int(layer, "seed", seed, 0, allow_none=True)


class _NoiseLayer(Layer):
    """Shared plumbing: the seed, the layer's own generator, and the config."""

    compute_output_shape = unchanged_shape

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = _check_seed(type(self).__name__, seed)
        self._rng = backend.make_rng(self.seed)

    def _noise_input(self, inputs: Tensor) -> None:
        if inputs.dtype.kind != "f":
            raise TypeError(f"{type(self).__name__} layer {self.name!r}: expected floating "
                            f"input, got dtype {inputs.dtype}")

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@registry.register("Dropout")
class Dropout(_NoiseLayer):
    """Inverted dropout (Srivastava et al., 2014): in training, each value is zeroed with
    probability ``rate`` and the kept ones are scaled by 1 / (1 - rate)::

        training:   y = x * keep / (1 - rate),   keep ~ Bernoulli(1 - rate)
        inference:  y = x

    so that E[y] = x and the next layer sees, on average, the same input in both modes.
    Scaling in training is equivalent to the original recipe (no scaling in training, the
    outgoing weights multiplied by (1 - rate) at test time): there the next layer computes
    ``(1 - rate) W x`` at test, the expectation of ``W (keep * x)`` in training; here both
    are divided by (1 - rate), which changes nothing but where the factor is applied.

    Args:
        rate: the probability of dropping a value, in [0, 1).
        noise_shape: the shape of the mask, broadcast against the input (default ``None``:
            the input's shape). ``None`` entries take the input's size, so
            ``(None, 1, 1, None)`` on (N, H, W, C) images drops whole feature maps
            (spatial dropout), one mask per sample and channel.
        seed: seed of the layer's generator (default ``None``).

    Shape:
        Any shape -> the same shape.

    Example:
        >>> layer = Dropout(0.5, seed=0)
        >>> y = layer(np.ones((2, 4)), training=True).data
        >>> sorted(set(y.ravel().tolist()))
        [0.0, 2.0]
        >>> layer(np.ones((1, 3))).data  # inference: the identity
        array([[1., 1., 1.]], dtype=float32)
    """

    #: the op that draws the mask and applies it
    function = staticmethod(F.dropout)

    def __init__(self, rate: float, noise_shape=None, seed: int | None = None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate = _check_rate("Dropout", rate)
        if noise_shape is not None:
            if not isinstance(noise_shape, (list, tuple)) or any(
                    d is not None and (isinstance(d, bool) or not isinstance(d, (int, np.integer))
                                       or d < 1) for d in noise_shape):
                raise ValueError(f"Dropout: noise_shape must be a sequence of positive ints or "
                                 f"None, got {noise_shape!r}")
            noise_shape = tuple(None if d is None else int(d) for d in noise_shape)
        self.noise_shape = noise_shape

    def call(self, inputs, training: bool = False):
        if not training or self.rate == 0.0:
            return inputs
        self._noise_input(inputs)
        try:
            return self.function(inputs, self.rate, True, rng=self._rng,
                                 noise_shape=self.noise_shape)
        except ValueError as error:  # a noise_shape that does not fit the input
            raise ValueError(f"{type(self).__name__} layer {self.name!r}: {error}") from None

    def get_config(self):
        noise_shape = None if self.noise_shape is None else list(self.noise_shape)
        return {**super().get_config(), "rate": self.rate, "noise_shape": noise_shape}


@registry.register("AlphaDropout")
class AlphaDropout(Dropout):
    """Dropout that keeps SELU's self-normalization (Klambauer et al., 2017), as Keras's.

    A dropped value is set to SELU's negative saturation ``alpha' = -SCALE * ALPHA`` instead of
    0, then an affine map restores the mean and variance the input had (0 and 1 for
    SELU-normalized activations)::

        training:   y = a * (x * keep + alpha' * (1 - keep)) + b,   keep ~ Bernoulli(1 - rate)
                    a = ((1 - rate) * (1 + rate * alpha'^2))^(-1/2),  b = -a * alpha' * rate
        inference:  y = x

    Args:
        rate: the probability of dropping a value, in [0, 1).
        noise_shape: the shape of the mask, as ``Dropout``'s (default ``None``).
        seed: seed of the layer's generator (default ``None``).

    Shape:
        Any shape -> the same shape.

    Example:
        >>> layer = AlphaDropout(0.2, seed=0)
        >>> y = layer(np.random.default_rng(0).standard_normal((4000, 50)), training=True)
        >>> round(float(y.data.mean()), 1), round(float(y.data.std()), 1)
        (0.0, 1.0)
    """

    #: the op that draws the mask and applies it
    function = staticmethod(F.alpha_dropout)


@registry.register("GaussianNoise")
class GaussianNoise(_NoiseLayer):
    """Additive zero-mean Gaussian noise, in training only::

        training:   y = x + e,   e ~ N(0, stddev^2) per value
        inference:  y = x

    Training on noisy inputs is, for small noise, equivalent to a penalty on the curvature of
    the network's function (Bishop, 1995): a smoothness regularizer.

    Args:
        stddev: the noise's standard deviation (>= 0).
        seed: seed of the layer's generator (default ``None``).

    Shape:
        Any shape -> the same shape.

    Example:
        >>> layer = GaussianNoise(0.1, seed=0)
        >>> y = layer(np.zeros((1000, 10)), training=True).data
        >>> round(float(y.std()), 2)
        0.1
    """

    def __init__(self, stddev: float, seed: int | None = None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if isinstance(stddev, bool) or not isinstance(stddev, (int, float, np.number)) \
                or not (math.isfinite(stddev) and stddev >= 0):
            raise ValueError(f"GaussianNoise: stddev must be a finite number >= 0, got "
                             f"{stddev!r}")
        self.stddev = float(stddev)

    def call(self, inputs, training: bool = False):
        if not training or self.stddev == 0.0:
            return inputs
        self._noise_input(inputs)
        noise = self._rng.normal(0.0, self.stddev, inputs.shape).astype(inputs.dtype)
        return inputs + Tensor.from_array(backend.to_device(noise, inputs.device))

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev}


@registry.register("GaussianDropout")
class GaussianDropout(_NoiseLayer):
    """Multiplicative Gaussian noise with mean 1, in training only::

        training:   y = x * e,   e ~ N(1, rate / (1 - rate)) per value
        inference:  y = x

    The variance rate / (1 - rate) is that of the inverted-dropout factor keep / (1 - rate),
    so this is dropout with the Bernoulli mask replaced by a Gaussian of the same mean and
    variance (Srivastava et al., 2014, section 10).

    Args:
        rate: the equivalent drop probability, in [0, 1).
        seed: seed of the layer's generator (default ``None``).

    Shape:
        Any shape -> the same shape.

    Example:
        >>> layer = GaussianDropout(0.5, seed=0)
        >>> y = layer(np.ones((1000, 10)), training=True).data
        >>> round(float(y.mean()), 1), round(float(y.std()), 1)
        (1.0, 1.0)
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate = _check_rate("GaussianDropout", rate)

    def call(self, inputs, training: bool = False):
        if not training or self.rate == 0.0:
            return inputs
        self._noise_input(inputs)
        stddev = math.sqrt(self.rate / (1.0 - self.rate))
        noise = self._rng.normal(1.0, stddev, inputs.shape).astype(inputs.dtype)
        return inputs * Tensor.from_array(backend.to_device(noise, inputs.device))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}

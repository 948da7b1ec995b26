"""Weight initializers, with Keras's names, defaults and formulas.

Why initialization matters: with n inputs of unit variance, a unit computing
``sum_i w_i x_i`` has variance ``n * Var(w)``. Keeping that near 1 through every layer, in
the forward pass (fan_in) and the backward pass (fan_out), is what Glorot/Xavier
(``Var(w) = 2 / (fan_in + fan_out)``), He (``2 / fan_in``, for ReLU, which zeroes half the
signal) and LeCun (``1 / fan_in``, for SELU) initialization do.

For a kernel of shape (fan_in, fan_out), or (kh, kw, in, out) for a convolution where
``fan_in = kh*kw*in`` and ``fan_out = kh*kw*out``:

=============== ================================ =============================================
initializer     distribution                     scale
=============== ================================ =============================================
glorot_uniform  U(-limit, limit)                 limit = sqrt(6 / (fan_in + fan_out))
glorot_normal   truncated N(0, s^2)              s = sqrt(2 / (fan_in + fan_out)) / .8796
he_uniform      U(-limit, limit)                 limit = sqrt(6 / fan_in)
he_normal       truncated N(0, s^2)              s = sqrt(2 / fan_in) / .8796
lecun_uniform   U(-limit, limit)                 limit = sqrt(3 / fan_in)
lecun_normal    truncated N(0, s^2)              s = sqrt(1 / fan_in) / .8796
=============== ================================ =============================================

(0.87962566103423978 is the standard deviation of a unit normal truncated at two standard
deviations, so that the truncated samples have the intended variance.)
"""

from __future__ import annotations

import math

import numpy as np

from nervenet import backend
from nervenet.checks import check_int
from nervenet.registry import Registry

registry = Registry("initializer")

_TRUNCATED_STD = 0.87962566103423978


def compute_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Return (fan_in, fan_out) of a weight shape (Keras's convention)."""
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


class Initializer:
    """Base class: ``initializer(shape, dtype=None) -> ndarray``.

    Random initializers take ``seed``: an int gives the same values at every call, ``None``
    draws from the generator that ``nervenet.utils.set_random_seed`` seeds.
    """

    def __call__(self, shape, dtype=None) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Initializer:
        return cls(**config)

    def __repr__(self) -> str:
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


def _dtype(dtype) -> np.dtype:
    return backend.floatx() if dtype is None else np.dtype(dtype)


class _Seeded(Initializer):
    def __init__(self, seed: int | None = None):
        self.seed = check_int(type(self).__name__, "seed", seed, allow_none=True)

    def _rng(self) -> np.random.Generator:
        return backend.make_rng(self.seed)

    def get_config(self) -> dict:
        return {"seed": self.seed}


@registry.register("zeros", "Zeros")
class Zeros(Initializer):
    """All zeros (the default bias initializer)."""

    def __call__(self, shape, dtype=None):
        return np.zeros(shape, dtype=_dtype(dtype))


@registry.register("ones", "Ones")
class Ones(Initializer):
    """All ones."""

    def __call__(self, shape, dtype=None):
        return np.ones(shape, dtype=_dtype(dtype))


@registry.register("constant", "Constant")
class Constant(Initializer):
    """Every value equal to ``value`` (default 0.0)."""

    def __init__(self, value: float = 0.0):
        self.value = float(value)

    def __call__(self, shape, dtype=None):
        return np.full(shape, self.value, dtype=_dtype(dtype))

    def get_config(self):
        return {"value": self.value}


@registry.register("random_normal", "RandomNormal")
class RandomNormal(_Seeded):
    """N(mean, stddev^2) with Keras's defaults mean=0.0, stddev=0.05."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        if not stddev >= 0:
            raise ValueError(f"RandomNormal: stddev must be >= 0, got {stddev}")
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape, dtype=None):
        values = self._rng().normal(self.mean, self.stddev, shape)
        return values.astype(_dtype(dtype))

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


@registry.register("random_uniform", "RandomUniform")
class RandomUniform(_Seeded):
    """U(minval, maxval) with Keras's defaults -0.05 and 0.05."""

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        if not minval <= maxval:
            raise ValueError(f"RandomUniform: minval must be <= maxval, got {minval}, {maxval}")
        self.minval, self.maxval = float(minval), float(maxval)

    def __call__(self, shape, dtype=None):
        values = self._rng().uniform(self.minval, self.maxval, shape)
        return values.astype(_dtype(dtype))

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, **super().get_config()}


def _truncated_normal(rng: np.random.Generator, stddev: float, shape) -> np.ndarray:
    """N(0, stddev^2) with values beyond two standard deviations redrawn (as Keras)."""
    values = rng.standard_normal(shape)
    outside = np.abs(values) > 2.0
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2.0
    return values * stddev


@registry.register("truncated_normal", "TruncatedNormal")
class TruncatedNormal(_Seeded):
    """N(mean, stddev^2) truncated at two standard deviations (defaults 0.0, 0.05)."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape, dtype=None):
        values = self.mean + _truncated_normal(self._rng(), self.stddev, shape)
        return values.astype(_dtype(dtype))

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


@registry.register("variance_scaling", "VarianceScaling")
class VarianceScaling(_Seeded):
    """Samples with variance ``scale / n`` where n is fan_in, fan_out or their average.

    Args:
        scale: the numerator (default 1.0).
        mode: ``"fan_in"`` (default), ``"fan_out"`` or ``"fan_avg"``.
        distribution: ``"truncated_normal"`` (default), ``"untruncated_normal"`` or
            ``"uniform"`` (uniform on ``[-sqrt(3 scale / n), sqrt(3 scale / n)]``).
        seed: int or None.
    """

    MODES = ("fan_in", "fan_out", "fan_avg")
    DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(self, scale: float = 1.0, mode: str = "fan_in",
                 distribution: str = "truncated_normal", seed: int | None = None):
        super().__init__(seed)
        if not scale > 0:
            raise ValueError(f"VarianceScaling: scale must be > 0, got {scale}")
        if mode not in self.MODES:
            raise ValueError(f"VarianceScaling: mode must be one of {self.MODES}, got {mode!r}")
        if distribution not in self.DISTRIBUTIONS:
            raise ValueError(f"VarianceScaling: distribution must be one of "
                             f"{self.DISTRIBUTIONS}, got {distribution!r}")
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def __call__(self, shape, dtype=None):
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, n)
        rng = self._rng()
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            values = rng.uniform(-limit, limit, shape)
        elif self.distribution == "untruncated_normal":
            values = rng.normal(0.0, math.sqrt(variance), shape)
        else:
            values = _truncated_normal(rng, math.sqrt(variance) / _TRUNCATED_STD, shape)
        return values.astype(_dtype(dtype))

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                **super().get_config()}


def _preset(class_name: str, scale: float, mode: str, distribution: str, doc: str):
    """A named VarianceScaling preset (GlorotUniform, HeNormal, ...) with only ``seed``."""

    class Preset(VarianceScaling):
        def __init__(self, seed: int | None = None):
            super().__init__(scale, mode, distribution, seed)

        def get_config(self):
            return {"seed": self.seed}

    Preset.__name__ = Preset.__qualname__ = class_name
    Preset.__doc__ = doc
    return Preset


GlorotUniform = _preset("GlorotUniform", 1.0, "fan_avg", "uniform",
                        "Glorot/Xavier uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out)).")
GlorotNormal = _preset("GlorotNormal", 1.0, "fan_avg", "truncated_normal",
                       "Glorot/Xavier normal: truncated N(0, 2 / (fan_in + fan_out)).")
HeUniform = _preset("HeUniform", 2.0, "fan_in", "uniform",
                    "He uniform (for ReLU): U(-l, l), l = sqrt(6 / fan_in).")
HeNormal = _preset("HeNormal", 2.0, "fan_in", "truncated_normal",
                   "He normal (for ReLU): truncated N(0, 2 / fan_in).")
LecunUniform = _preset("LecunUniform", 1.0, "fan_in", "uniform",
                       "LeCun uniform (for SELU): U(-l, l), l = sqrt(3 / fan_in).")
LecunNormal = _preset("LecunNormal", 1.0, "fan_in", "truncated_normal",
                      "LeCun normal (for SELU): truncated N(0, 1 / fan_in).")

for _cls, _id in [(GlorotUniform, "glorot_uniform"), (GlorotNormal, "glorot_normal"),
                  (HeUniform, "he_uniform"), (HeNormal, "he_normal"),
                  (LecunUniform, "lecun_uniform"), (LecunNormal, "lecun_normal")]:
    registry.add(_id, _cls)
    registry.add(_cls.__name__, _cls)


def get(identifier) -> Initializer:
    """Resolve ``"he_normal"``, ``"HeNormal"``, a config dict, an Initializer or a callable."""
    return registry.resolve(identifier)


def serialize(initializer: Initializer) -> dict:
    """The JSON-serialisable ``{"class_name", "config"}`` form of a built-in initializer."""
    return registry.serialize(initializer)

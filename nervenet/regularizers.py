"""Weight penalties added to the loss: L1, L2 and both (elastic net), as Keras.

For a weight matrix W:

* ``L1(l1)``:  l1 * sum |W|  — pushes weights to exactly zero (sparse models);
* ``L2(l2)``:  l2 * sum W^2  — shrinks all weights towards zero ("weight decay": its gradient
  2 * l2 * W pulls each weight back in proportion to its size);
* ``L1L2(l1, l2)``: both.

The function forms ``l1(0.01)``, ``l2(0.01)`` and ``l1_l2(l1, l2)`` build the same objects, as
Keras code writes them (``kernel_regularizer=regularizers.l2(0.01)``).

Keras's default factor is 0.01. A regularizer is called on a weight Tensor and returns a scalar
Tensor, so the penalty is differentiated with the loss.
"""

from __future__ import annotations

import math

import numpy as np

from nervenet.autograd import Tensor
from nervenet.autograd.ops.arith import abs as absolute
from nervenet.registry import Registry

registry = Registry("regularizer")


def _factor(name: str, value) -> float:
    value = float(value)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


class Regularizer:
    """Base class: ``regularizer(weight) -> scalar Tensor``."""

    def __call__(self, weight: Tensor) -> Tensor:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Regularizer:
        return cls(**config)

    def __repr__(self) -> str:
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


@registry.register("l1_l2", "L1L2")
class L1L2(Regularizer):
    """Elastic net: ``l1 * sum|W| + l2 * sum W^2`` (defaults 0.0 and 0.0, as Keras)."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1 = _factor("l1", l1)
        self.l2 = _factor("l2", l2)

    def __call__(self, weight):
        penalty = Tensor.from_array(np.zeros((), dtype=weight.dtype))
        if self.l1:
            penalty = penalty + self.l1 * absolute(weight).sum()
        if self.l2:
            penalty = penalty + self.l2 * (weight * weight).sum()
        return penalty

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


@registry.register("l1", "L1")
class L1(L1L2):
    """Lasso penalty ``l1 * sum|W|`` (default l1=0.01)."""

    def __init__(self, l1: float = 0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


@registry.register("l2", "L2")
class L2(L1L2):
    """Ridge penalty ``l2 * sum W^2`` (default l2=0.01)."""

    def __init__(self, l2: float = 0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


def l1(l1: float = 0.01) -> L1:
    """The function form Keras code writes, ``regularizers.l1(0.01)``: an ``L1``."""
    return L1(l1)


def l2(l2: float = 0.01) -> L2:
    """The function form Keras code writes, ``regularizers.l2(0.01)``: an ``L2``."""
    return L2(l2)


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:
    """The function form Keras code writes, ``regularizers.l1_l2(l1=0.01, l2=0.01)``: an
    ``L1L2``. NOTE: the defaults are TF-Keras 2's ``l1_l2`` (0.01 each); ``L1L2()`` keeps
    Keras's class defaults (0.0 each)."""
    return L1L2(l1, l2)


def get(identifier) -> Regularizer | None:
    """Resolve ``"l1"``, ``"l2"``, ``"l1_l2"``, a config dict, a Regularizer, or ``None``."""
    return registry.resolve(identifier, allow_none=True)


def serialize(regularizer: Regularizer) -> dict:
    """The JSON-serialisable ``{"class_name", "config"}`` form of a registered regularizer."""
    return registry.serialize(regularizer)

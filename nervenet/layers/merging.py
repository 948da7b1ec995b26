"""Merge layers: combine a list of same-shaped inputs elementwise, as Keras's ``Add``,
``Subtract``, ``Multiply``, ``Average``, ``Maximum`` and ``Minimum`` (``Concatenate``, which joins
along an axis, is in ``core``). Each has a function form, ``add([a, b])`` etc., as Keras.

The inputs' shapes must be equal or broadcast against each other (as NumPy's, batch axis
included); the output has the broadcast shape. Gradients are those of the elementwise ops
(``Maximum``/``Minimum`` split the gradient in half on ties, as torch.maximum).
"""

from __future__ import annotations

import nervenet.functional as F
from nervenet.layers.base import Layer, registry

__all__ = ["Add", "Average", "Maximum", "Minimum", "Multiply", "Subtract", "add", "average",
           "maximum", "minimum", "multiply", "subtract"]


def _broadcast(layer: Layer, shapes: list[tuple]) -> tuple:
    """The broadcast of ``shapes`` (``None``: unknown size, e.g. the batch), or a clear error."""
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    out = []
    for axis in range(rank):
        sizes = {d for d in (s[axis] for s in padded) if d != 1}
        known = {d for d in sizes if d is not None}
        if len(known) > 1:
            raise ValueError(f"{type(layer).__name__} layer {layer.name!r}: the inputs' shapes "
                             f"{[tuple(s) for s in shapes]} do not broadcast (axis {axis} has "
                             f"sizes {sorted(known)})")
        out.append(known.pop() if known else (None if None in sizes else 1))
    return tuple(out)


class _Merge(Layer):
    """Shared checks: a list of at least ``min_inputs`` (at most ``max_inputs``) inputs whose
    shapes broadcast; ``merge(inputs)`` combines the Tensors."""

    min_inputs, max_inputs = 2, None

    def _check_list(self, inputs) -> None:
        kind = type(self).__name__
        if not isinstance(inputs, (list, tuple)) or len(inputs) < self.min_inputs or (
                self.max_inputs is not None and len(inputs) > self.max_inputs):
            count = (f"exactly {self.min_inputs}" if self.max_inputs == self.min_inputs
                     else f"at least {self.min_inputs}")
            got = f"{len(inputs)} input(s)" if isinstance(inputs, (list, tuple)) else \
                type(inputs).__name__
            raise ValueError(f"{kind} layer {self.name!r}: expected a list of {count} inputs, "
                             f"got {got}")

    def call(self, inputs):
        self._check_list(inputs)
        _broadcast(self, [x.shape for x in inputs])
        return self.merge(list(inputs))

    def merge(self, inputs: list):
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        self._check_list(input_shape)
        return _broadcast(self, [tuple(s) for s in input_shape])


@registry.register("Add")
class Add(_Merge):
    """``y = x_1 + x_2 + ... + x_n`` (the shortcut of a residual block)."""

    def merge(self, inputs):
        total = inputs[0]
        for x in inputs[1:]:
            total = total + x
        return total


@registry.register("Subtract")
class Subtract(_Merge):
    """``y = x_1 - x_2`` (exactly two inputs)."""

    max_inputs = 2

    def merge(self, inputs):
        return inputs[0] - inputs[1]


@registry.register("Multiply")
class Multiply(_Merge):
    """``y = x_1 * x_2 * ... * x_n`` elementwise (e.g. a gate)."""

    def merge(self, inputs):
        product = inputs[0]
        for x in inputs[1:]:
            product = product * x
        return product


@registry.register("Average")
class Average(_Merge):
    """``y = (x_1 + ... + x_n) / n``."""

    def merge(self, inputs):
        return Add.merge(self, inputs) * (1.0 / len(inputs))


@registry.register("Maximum")
class Maximum(_Merge):
    """``y = max(x_1, ..., x_n)`` elementwise."""

    def merge(self, inputs):
        out = inputs[0]
        for x in inputs[1:]:
            out = F.maximum(out, x)
        return out


@registry.register("Minimum")
class Minimum(_Merge):
    """``y = min(x_1, ..., x_n)`` elementwise."""

    def merge(self, inputs):
        out = inputs[0]
        for x in inputs[1:]:
            out = F.minimum(out, x)
        return out


def add(inputs, **kwargs):
    """Functional form of ``Add`` (as ``keras.layers.add``): ``Add(**kwargs)(inputs)``.

    Example:
        >>> from nervenet.layers import Input
        >>> add([Input(shape=(3,)), Input(shape=(3,))]).shape
        (None, 3)
    """
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    """Functional form of ``Subtract``: ``Subtract(**kwargs)(inputs)``."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    """Functional form of ``Multiply``: ``Multiply(**kwargs)(inputs)``."""
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    """Functional form of ``Average``: ``Average(**kwargs)(inputs)``."""
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    """Functional form of ``Maximum``: ``Maximum(**kwargs)(inputs)``."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    """Functional form of ``Minimum``: ``Minimum(**kwargs)(inputs)``."""
    return Minimum(**kwargs)(inputs)

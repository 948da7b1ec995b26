"""Activation layers with parameters: LeakyReLU, PReLU (learned slope), ELU, ReLU, Softmax,
Maxout."""

from __future__ import annotations

import warnings

import nervenet.functional as F
from nervenet import constraints, initializers, regularizers
from nervenet.layers.base import InputSpec, Layer, registry, serialize_optional, unchanged_shape


@registry.register("LeakyReLU")
class LeakyReLU(Layer):
    """``y = x if x > 0 else negative_slope * x`` (Keras 3 default slope 0.3).

    Args:
        negative_slope: the slope for ``x < 0`` (default 0.3, non-negative).
        alpha: the TF-Keras 2 name of ``negative_slope``, accepted with a DeprecationWarning
            as Keras 3 does (``LeakyReLU(alpha=0.2)``).
    """

    compute_output_shape = unchanged_shape

    def __init__(self, negative_slope: float = 0.3, *, alpha: float | None = None, **kwargs):
        super().__init__(**kwargs)
        if alpha is not None:
            if negative_slope != 0.3:
                raise TypeError(f"LeakyReLU: got both alpha={alpha} and negative_slope="
                                f"{negative_slope}; alpha is the old name of negative_slope")
            warnings.warn("LeakyReLU: the argument alpha is deprecated, use negative_slope",
                          DeprecationWarning, stacklevel=2)
            negative_slope = alpha
        if not negative_slope >= 0:
            raise ValueError(f"LeakyReLU: negative_slope must be >= 0, got {negative_slope}")
        self.negative_slope = float(negative_slope)

    def call(self, inputs):
        return F.leaky_relu(inputs, alpha=self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


@registry.register("PReLU")
class PReLU(Layer):
    """Parametric ReLU: ``y = x if x > 0 else alpha * x`` with alpha learned per unit.

    Args:
        alpha_initializer: default ``"zeros"`` (starts as a ReLU, as Keras).
        alpha_regularizer, alpha_constraint: default ``None``.
        shared_axes: axes along which one alpha is shared, e.g. ``[1, 2]`` for one alpha per
            feature map of a (batch, H, W, C) input (default ``None``: one alpha per value).
    """

    compute_output_shape = unchanged_shape

    def __init__(self, alpha_initializer="zeros", alpha_regularizer=None, alpha_constraint=None,
                 shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        if shared_axes is not None and not isinstance(shared_axes, (list, tuple)):
            shared_axes = [shared_axes]
        self.shared_axes = None if shared_axes is None else [int(a) for a in shared_axes]

    def build(self, input_shape):
        shape = list(input_shape[1:])
        for axis in self.shared_axes or []:
            shape[axis - 1] = 1
        self.alpha = self.add_weight("alpha", tuple(shape), self.alpha_initializer,
                                     regularizer=self.alpha_regularizer,
                                     constraint=self.alpha_constraint)
        self.input_spec = InputSpec(ndim=len(input_shape), axes={
            i: d for i, d in enumerate(input_shape) if i and d is not None and
            i not in (self.shared_axes or [])})

    def call(self, inputs):
        return F.prelu(inputs, self.alpha)

    def get_config(self):
        return {**super().get_config(),
                "alpha_initializer": initializers.serialize(self.alpha_initializer),
                "alpha_regularizer": serialize_optional(regularizers, self.alpha_regularizer),
                "alpha_constraint": serialize_optional(constraints, self.alpha_constraint),
                "shared_axes": self.shared_axes}


@registry.register("ELU")
class ELU(Layer):
    """``y = x if x > 0 else alpha * (e^x - 1)`` (default alpha 1.0)."""

    compute_output_shape = unchanged_shape

    def __init__(self, alpha: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, inputs):
        return F.elu(inputs, alpha=self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


@registry.register("ReLU")
class ReLU(Layer):
    """``y = max(x, 0)``."""

    compute_output_shape = unchanged_shape

    def call(self, inputs):
        return F.relu(inputs)


@registry.register("Softmax")
class Softmax(Layer):
    """``y_i = e^x_i / sum_j e^x_j`` along ``axis`` (default -1)."""

    compute_output_shape = unchanged_shape

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def call(self, inputs):
        return F.softmax(inputs, axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


@registry.register("Maxout")
class Maxout(Layer):
    """Maxout (Goodfellow et al. 2013): the last axis of size C is split into ``num_units``
    groups of C / num_units features, and each output is the maximum of its group. Put it
    after a Dense layer with ``num_units * k`` units to get k linear pieces per unit."""

    def __init__(self, num_units: int, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(num_units, int) or num_units < 1:
            raise ValueError(f"Maxout: num_units must be a positive int, got {num_units!r}")
        self.num_units = num_units
        self.input_spec = InputSpec(min_ndim=2)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % self.num_units:
            raise ValueError(f"Maxout layer {self.name!r}, input 0: the last dimension of the "
                             f"input shape {input_shape} must be a multiple of num_units "
                             f"({self.num_units})")
        self.input_spec = InputSpec(min_ndim=2, axes={-1: channels})

    def call(self, inputs):
        return F.maxout(inputs, self.num_units)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_units,)

    def get_config(self):
        return {**super().get_config(), "num_units": self.num_units}

"""Core layers: Input, Dense, Activation, Flatten, Reshape, Concatenate, Rescaling."""

from __future__ import annotations

import math

import numpy as np

import nervenet.functional as F
from nervenet import activations
from nervenet.layers.base import (
    InputSpec,
    Layer,
    kernel_arguments_config,
    registry,
    set_kernel_arguments,
    shape_tuple,
    unchanged_shape,
)
from nervenet.layers.symbolic import SymbolicTensor, record_call

__all__ = ["Activation", "Concatenate", "Dense", "Flatten", "Input", "InputLayer", "Rescaling",
           "Reshape", "SymbolicTensor", "concatenate"]


@registry.register("InputLayer")
class InputLayer(Layer):
    """The entry point of a model: passes its input through, after checking its shape.

    Args:
        shape: the shape of one sample (without the batch axis); ``None`` for a free size.
        batch_size: an optional fixed batch size (default ``None``).
        name, dtype: as Layer.
    """

    compute_output_shape = unchanged_shape

    def __init__(self, shape=None, batch_size=None, name=None, dtype=None, **kwargs):
        shape = kwargs.pop("input_shape", shape)
        if shape is None:
            raise ValueError("InputLayer: shape is required (the shape of one sample)")
        super().__init__(name=name, dtype=dtype, **kwargs)
        self.shape = shape_tuple(shape)
        self.batch_size = batch_size
        self.input_spec = InputSpec(shape=(batch_size,) + self.shape)
        self.built = True
        self.input_shape = self.output_shape = (batch_size,) + self.shape
        #: the placeholder a functional model starts from
        self.output = record_call(self, [], {}, (batch_size,) + self.shape, name=self.name)

    def call(self, inputs):
        return inputs

    def get_config(self):
        return {"shape": list(self.shape), "batch_size": self.batch_size, "name": self.name,
                "dtype": self.dtype.name}


def Input(shape=None, batch_size=None, name=None, dtype=None) -> SymbolicTensor:  # noqa: N802
    """Declare a model input of ``shape`` (one sample, no batch axis), as ``keras.Input``.

    Calling layers on the result builds a graph that ``Model(inputs, outputs)`` turns into a
    model (the functional API); ``Sequential`` accepts it as its first entry.

    Args:
        shape: the shape of one sample, e.g. ``(784,)`` or ``X_train.shape[1:]``.
        batch_size: a fixed batch size (default ``None``: any).
        name: the input's name; several inputs may then be fed as a dict keyed by name
            (default: ``input_layer``, numbered).
        dtype: default ``nervenet.backend.floatx()``.

    Returns:
        A SymbolicTensor of shape ``(batch_size,) + shape``.

    Example:
        >>> Input(shape=(784,)).shape
        (None, 784)
    """
    return InputLayer(shape=shape, batch_size=batch_size, name=name, dtype=dtype).output


@registry.register("Dense")
class Dense(Layer):
    """A fully connected layer: ``y = activation(x @ kernel + bias)``.

    Args:
        units: the number of output units.
        activation: an activation id or callable (default ``None``: linear).
        use_bias: add a bias (default ``True``).
        kernel_initializer: default ``"glorot_uniform"`` (as Keras).
        bias_initializer: default ``"zeros"``.
        kernel_regularizer, bias_regularizer, activity_regularizer: penalties added to the loss
            (default ``None``).
        kernel_constraint, bias_constraint: projections after each update (default ``None``).

    Shape:
        (batch, ..., input_dim) -> (batch, ..., units). The kernel is (input_dim, units).

    Example:
        >>> layer = Dense(3, activation="relu")
        >>> layer(np.ones((2, 4))).shape
        (2, 3)
        >>> layer.count_params()
        15
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"Dense: units must be a positive int, got {units!r}")
        self.units = int(units)
        set_kernel_arguments(self, activation, use_bias, kernel_initializer, bias_initializer,
                             kernel_regularizer, bias_regularizer, activity_regularizer,
                             kernel_constraint, bias_constraint)
        self.input_spec = InputSpec(min_ndim=2)

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(f"Dense layer {self.name!r}: the last dimension of the input must "
                             f"be known, got {input_shape}")
        self.kernel = self.add_weight("kernel", (input_dim, self.units), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.units,), self.bias_initializer,
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint)
        self.input_spec = InputSpec(min_ndim=2, axes={-1: input_dim})

    def call(self, inputs):
        return self.activation(F.linear(inputs, self.kernel, self.bias))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {
            **super().get_config(), "units": self.units,
            **kernel_arguments_config(self),
        }


@registry.register("Activation")
class Activation(Layer):
    """Applies an activation function: ``y = activation(x)``.

    Args:
        activation: an activation id or callable.
    """

    compute_output_shape = unchanged_shape

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, inputs):
        return self.activation(inputs)

    def get_config(self):
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


@registry.register("Flatten")
class Flatten(Layer):
    """Flattens every axis but the batch axis: (batch, d1, d2, ...) -> (batch, d1*d2*...)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.input_spec = InputSpec(min_ndim=1)

    def call(self, inputs):
        return F.reshape(inputs, (inputs.shape[0], -1))

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        size = None if any(d is None for d in rest) else math.prod(rest)
        return (input_shape[0], size)


@registry.register("Reshape")
class Reshape(Layer):
    """Reshapes each sample to ``target_shape`` (one entry may be -1); the batch axis stays.

    Args:
        target_shape: the shape of one output sample.
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)
        if sum(d == -1 for d in self.target_shape) > 1 or any(
                d < -1 or d == 0 for d in self.target_shape):
            raise ValueError(f"Reshape: target_shape may hold one -1 and positive sizes, got "
                             f"{target_shape!r}")

    def call(self, inputs):
        sample_size = math.prod(inputs.shape[1:])
        known = math.prod(d for d in self.target_shape if d != -1)
        if (-1 in self.target_shape and sample_size % known) or (
                -1 not in self.target_shape and known != sample_size):
            raise ValueError(f"Reshape layer {self.name!r}, input 0: cannot reshape input of "
                             f"shape {inputs.shape} (samples of {sample_size} values) to "
                             f"samples of shape {self.target_shape}")
        return F.reshape(inputs, (inputs.shape[0],) + self.target_shape)

    def compute_output_shape(self, input_shape):
        if -1 not in self.target_shape:
            return (input_shape[0],) + self.target_shape
        known = math.prod(d for d in self.target_shape if d != -1)
        rest = input_shape[1:]
        missing = None if any(d is None for d in rest) else math.prod(rest) // known
        return (input_shape[0],) + tuple(missing if d == -1 else d for d in self.target_shape)

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


@registry.register("Concatenate")
class Concatenate(Layer):
    """Joins a list of inputs along ``axis`` (default -1); the other axes must match."""

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
            raise ValueError(f"Concatenate layer {self.name!r}: expected a list of at least 2 "
                             f"inputs, got {type(inputs).__name__}")
        shapes = [x.shape for x in inputs]
        axis = self.axis % len(shapes[0])
        for index, shape in enumerate(shapes):
            if len(shape) != len(shapes[0]) or any(
                    a != b for i, (a, b) in enumerate(zip(shape, shapes[0])) if i != axis):
                raise ValueError(
                    f"Concatenate layer {self.name!r}: input {index} has shape {shape}, which "
                    f"does not match input 0's {shapes[0]} except on axis {self.axis}")
        return F.concatenate(inputs, axis=self.axis)

    def compute_output_shape(self, input_shape):
        axis = self.axis % len(input_shape[0])
        sizes = [s[axis] for s in input_shape]
        total = None if any(d is None for d in sizes) else sum(sizes)
        return tuple(total if i == axis else d for i, d in enumerate(input_shape[0]))

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def concatenate(inputs, axis: int = -1, **kwargs):
    """Functional form of ``Concatenate`` (as ``keras.layers.concatenate``): join ``inputs``.

    Example:
        >>> a, b = Input(shape=(2,)), Input(shape=(3,))
        >>> concatenate([a, b]).shape
        (None, 5)
    """
    return Concatenate(axis=axis, **kwargs)(inputs)


@registry.register("Rescaling")
class Rescaling(Layer):
    """``y = x * scale + offset`` (e.g. ``Rescaling(1 / 255)`` for pixel values)."""

    compute_output_shape = unchanged_shape

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)
        self.offset = float(offset)

    def call(self, inputs):
        return inputs * self.scale + self.offset

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}

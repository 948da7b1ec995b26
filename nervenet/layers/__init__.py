"""Layers (Keras's names and arguments). Each family lives in its own module."""

from nervenet.layers.activation import ELU, LeakyReLU, Maxout, PReLU, ReLU, Softmax
from nervenet.layers.base import InputSpec, Layer, registry
from nervenet.layers.core import (
    Activation,
    Concatenate,
    Dense,
    Flatten,
    Input,
    InputLayer,
    Rescaling,
    Reshape,
    SymbolicTensor,
)
from nervenet.layers.normalization import Normalization

__all__ = [
    "ELU", "Activation", "Concatenate", "Dense", "Flatten", "Input", "InputLayer", "InputSpec",
    "Layer", "LeakyReLU", "Maxout", "Normalization", "PReLU", "ReLU", "Rescaling", "Reshape",
    "Softmax", "SymbolicTensor", "registry",
]

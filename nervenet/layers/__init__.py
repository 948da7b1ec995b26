"""Layers (Keras's names and arguments). Each family lives in its own module."""

from nervenet.layers.activation import ELU, LeakyReLU, Maxout, PReLU, ReLU, Softmax
from nervenet.layers.augmentation import (
    RandomBrightness,
    RandomContrast,
    RandomCrop,
    RandomFlip,
    RandomPCAColor,
    RandomRotation,
    RandomShear,
    RandomTranslation,
    RandomZoom,
)
from nervenet.layers.base import InputSpec, Layer, registry
from nervenet.layers.conv import Conv2D
from nervenet.layers.core import (
    Activation,
    Concatenate,
    Dense,
    Flatten,
    Input,
    InputLayer,
    Rescaling,
    Reshape,
    concatenate,
)
from nervenet.layers.merging import (
    Add,
    Average,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    maximum,
    minimum,
    multiply,
    subtract,
)
from nervenet.layers.normalization import (
    BatchNormalization,
    LayerNormalization,
    Normalization,
    ScaleShift,
    SyncBatchNormalization,
    recompute_population_statistics,
)
from nervenet.layers.pooling import (
    AveragePooling2D,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    MaxPooling2D,
    StochasticPooling2D,
    ZeroPadding2D,
)
from nervenet.layers.regularization import AlphaDropout, Dropout, GaussianDropout, GaussianNoise
from nervenet.layers.symbolic import Node, SymbolicTensor

__all__ = [
    # core
    "Activation", "Concatenate", "Dense", "Flatten", "Input", "InputLayer", "InputSpec", "Layer",
    "Node", "Rescaling", "Reshape", "SymbolicTensor", "concatenate", "registry",
    # merging
    "Add", "Average", "Maximum", "Minimum", "Multiply", "Subtract", "add", "average", "maximum",
    "minimum", "multiply", "subtract",
    # activations with parameters
    "ELU", "LeakyReLU", "Maxout", "PReLU", "ReLU", "Softmax",
    # convolution and pooling
    "AveragePooling2D", "Conv2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "MaxPooling2D",
    "StochasticPooling2D", "ZeroPadding2D",
    # normalization and regularization
    "AlphaDropout", "BatchNormalization", "Dropout", "GaussianDropout", "GaussianNoise",
    "LayerNormalization", "Normalization", "ScaleShift", "SyncBatchNormalization",
    "recompute_population_statistics",
    # augmentation
    "RandomBrightness", "RandomContrast", "RandomCrop", "RandomFlip", "RandomPCAColor",
    "RandomRotation", "RandomShear", "RandomTranslation", "RandomZoom",
]

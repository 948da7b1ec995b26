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
from nervenet.layers.base import InputSpec, Layer, Node, SymbolicTensor, registry
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
from nervenet.layers.normalization import (
    BatchNormalization,
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
from nervenet.layers.regularization import Dropout, GaussianDropout, GaussianNoise

__all__ = [
    # core
    "Activation", "Concatenate", "Dense", "Flatten", "Input", "InputLayer", "InputSpec", "Layer",
    "Node", "Rescaling", "Reshape", "SymbolicTensor", "concatenate", "registry",
    # activations with parameters
    "ELU", "LeakyReLU", "Maxout", "PReLU", "ReLU", "Softmax",
    # convolution and pooling
    "AveragePooling2D", "Conv2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "MaxPooling2D",
    "StochasticPooling2D", "ZeroPadding2D",
    # normalization and regularization
    "BatchNormalization", "Dropout", "GaussianDropout", "GaussianNoise", "Normalization",
    "ScaleShift", "SyncBatchNormalization", "recompute_population_statistics",
    # augmentation
    "RandomBrightness", "RandomContrast", "RandomCrop", "RandomFlip", "RandomPCAColor",
    "RandomRotation", "RandomShear", "RandomTranslation", "RandomZoom",
]

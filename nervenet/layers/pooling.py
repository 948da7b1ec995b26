"""Pooling and padding layers over channels-last images: MaxPooling2D, AveragePooling2D,
StochasticPooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, ZeroPadding2D.

Pooling summarizes each window of a feature map by one number, channel by channel. It has no
weights: it shrinks the maps (2x2 windows with stride 2 keep a quarter of the cells), which
cuts the computation of the layers after it, and makes the output insensitive to small shifts
of the input inside a window. The arithmetic is the ops' (``nervenet.functional.max_pool2d``,
``avg_pool2d``, ``stochastic_pool2d``): loops over the few window offsets, never over pixels.
"""

from __future__ import annotations

import numpy as np

import nervenet.functional as F
from nervenet import backend
from nervenet.layers.base import InputSpec, Layer, registry
from nervenet.layers.conv import (
    check_data_format,
    normalize_padding,
    normalize_pair,
    spatial_output_shape,
)

__all__ = ["AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "MaxPooling2D",
           "StochasticPooling2D", "ZeroPadding2D"]


class _Pooling2D(Layer):
    """Shared plumbing of the windowed pooling layers: arguments, shape, config."""

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(**kwargs)
        layer = type(self).__name__
        self.pool_size = normalize_pair(pool_size, "pool_size", layer)
        self.strides = self.pool_size if strides is None else normalize_pair(
            strides, "strides", layer)
        self.padding = normalize_padding(padding, layer)
        self.data_format = check_data_format(data_format, layer)
        self.input_spec = InputSpec(ndim=4)

    def compute_output_shape(self, input_shape):
        return spatial_output_shape(self, input_shape, self.pool_size, self.strides,
                                    self.padding, tuple(input_shape)[-1],
                                    hint=not isinstance(self, StochasticPooling2D))

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding,
                "data_format": self.data_format}


@registry.register("MaxPooling2D")
class MaxPooling2D(_Pooling2D):
    """Max pooling (``keras.layers.MaxPooling2D``): the largest value of each window,

        y[n, i, j, c] = max_{p < ph, q < pw} x[n, i*sh + p, j*sw + q, c]

    The gradient goes to the first maximum of each window (as torch), nothing to the others.

    Args:
        pool_size: the window (ph, pw), or an int (default (2, 2)).
        strides: (sh, sw), an int, or ``None`` (default: equal to ``pool_size``, windows that
            do not overlap).
        padding: ``"valid"`` (default: windows that do not fit are dropped) or ``"same"``
            (output ceil(H / sh) x ceil(W / sw); the padding never wins the maximum).
        data_format: ``None`` or ``"channels_last"`` (default ``None``).

    Shape:
        (batch, H, W, C) -> (batch, Ho, Wo, C), Ho = floor((H - ph) / sh) + 1 ("valid") or
        ceil(H / sh) ("same"). No weights.

    Example:
        >>> x = np.arange(16.0).reshape(1, 4, 4, 1)
        >>> MaxPooling2D()(x).data[0, :, :, 0]
        array([[ 5.,  7.],
               [13., 15.]], dtype=float32)
        >>> MaxPooling2D(3, strides=2, padding="same").compute_output_shape((None, 7, 7, 8))
        (None, 4, 4, 8)
    """

    def call(self, inputs):
        self.compute_output_shape(inputs.shape)  # a window too large: this layer's message
        return F.max_pool2d(inputs, self.pool_size, self.strides, self.padding)


@registry.register("AveragePooling2D")
class AveragePooling2D(_Pooling2D):
    """Average pooling (``keras.layers.AveragePooling2D``): the mean of each window,

        y[n, i, j, c] = (1 / count) * sum_{p, q} x[n, i*sh + p, j*sw + q, c]

    where ``count`` is the number of the window's cells inside the image (with "same" padding
    the padded cells are left out of the average, as Keras).

    Args:
        pool_size: the window (ph, pw), or an int (default (2, 2)).
        strides: (sh, sw), an int, or ``None`` (default: equal to ``pool_size``).
        padding: ``"valid"`` (default) or ``"same"``.
        data_format: ``None`` or ``"channels_last"`` (default ``None``).

    Shape:
        (batch, H, W, C) -> (batch, Ho, Wo, C), as ``MaxPooling2D``. No weights.

    Example:
        >>> x = np.arange(16.0).reshape(1, 4, 4, 1)
        >>> AveragePooling2D()(x).data[0, :, :, 0]
        array([[ 2.5,  4.5],
               [10.5, 12.5]], dtype=float32)
    """

    def call(self, inputs):
        self.compute_output_shape(inputs.shape)
        return F.avg_pool2d(inputs, self.pool_size, self.strides, self.padding)


@registry.register("StochasticPooling2D")
class StochasticPooling2D(_Pooling2D):
    """Stochastic pooling (Zeiler & Fergus, 2013) of non-negative activations (after a ReLU).

    In each window of activations a_1..a_K let p_k = a_k / sum_l a_l:

    * training: the window outputs one a_k, drawn with probability p_k (a window of zeros
      outputs 0); the gradient reaches the drawn cell only. This is a regularizer: like
      dropout, it trains on many sub-sampled versions of the network.
    * inference: the expectation, sum_k p_k a_k = sum_k a_k^2 / sum_k a_k.

    The draws come from the layer's own ``numpy.random.Generator``, seeded by ``seed`` or,
    without one, from ``nervenet.backend.make_rng()`` when the layer is created (so
    ``nervenet.utils.set_random_seed`` before building a model makes training reproducible).

    Args:
        pool_size: the window (ph, pw), or an int (default (2, 2)). Windows do not overlap
            (strides = pool_size) and those that do not fit are dropped.
        seed: seed of the layer's generator, a non-negative int (default ``None``).
        data_format: ``None`` or ``"channels_last"`` (default ``None``).

    Shape:
        (batch, H, W, C) -> (batch, H // ph, W // pw, C). No weights.

    Raises:
        ValueError: for a negative input value (p_k would not be probabilities).

    Example:
        >>> x = np.array([1.0, 3.0, 0.0, 0.0]).reshape(1, 2, 2, 1)
        >>> layer = StochasticPooling2D(seed=0)
        >>> layer(x).data.ravel()            # inference: (1*1 + 3*3) / (1 + 3)
        array([2.5], dtype=float32)
        >>> float(layer(x, training=True).data.ravel()[0]) in (1.0, 3.0)
        True
    """

    def __init__(self, pool_size=(2, 2), seed: int | None = None, data_format=None, **kwargs):
        super().__init__(pool_size=pool_size, data_format=data_format, **kwargs)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise ValueError(f"StochasticPooling2D: seed must be a non-negative int or None, "
                             f"got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self._rng = backend.make_rng(self.seed)

    def call(self, inputs, training: bool = False):
        self.compute_output_shape(inputs.shape)
        return F.stochastic_pool2d(inputs, self.pool_size, rng=self._rng, training=training)

    def get_config(self):
        config = super().get_config()
        del config["strides"], config["padding"]  # fixed: not constructor arguments here
        return {**config, "seed": self.seed}


class _GlobalPooling2D(Layer):
    """Shared plumbing of the global pooling layers."""

    def __init__(self, data_format=None, keepdims: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = check_data_format(data_format, type(self).__name__)
        self.keepdims = bool(keepdims)
        self.input_spec = InputSpec(ndim=4)

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 4:
            raise ValueError(f"{type(self).__name__} layer {self.name!r}: expected 4-D input "
                             f"(batch, height, width, channels), got shape {input_shape}")
        if self.keepdims:
            return (input_shape[0], 1, 1, input_shape[3])
        return (input_shape[0], input_shape[3])

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format,
                "keepdims": self.keepdims}


@registry.register("GlobalAveragePooling2D")
class GlobalAveragePooling2D(_GlobalPooling2D):
    """The mean of each feature map over all its cells (``keras.layers.GlobalAveragePooling2D``):

        y[n, c] = (1 / (H*W)) * sum_{i, j} x[n, i, j, c]

    A common replacement for Flatten + Dense at the end of a convolutional network: one number
    per channel, whatever the image size, and no weights.

    Args:
        data_format: ``None`` or ``"channels_last"`` (default ``None``).
        keepdims: keep the spatial axes with size 1 (default ``False``).

    Shape:
        (batch, H, W, C) -> (batch, C), or (batch, 1, 1, C) with ``keepdims``.

    Example:
        >>> x = np.arange(8.0).reshape(1, 2, 2, 2)
        >>> GlobalAveragePooling2D()(x).data
        array([[3., 4.]], dtype=float32)
        >>> GlobalAveragePooling2D(keepdims=True).compute_output_shape((None, 5, 5, 3))
        (None, 1, 1, 3)
    """

    def call(self, inputs):
        return inputs.mean(axis=(1, 2), keepdims=self.keepdims)


@registry.register("GlobalMaxPooling2D")
class GlobalMaxPooling2D(_GlobalPooling2D):
    """The maximum of each feature map over all its cells (``keras.layers.GlobalMaxPooling2D``):

        y[n, c] = max_{i, j} x[n, i, j, c]

    The gradient goes to the maximal cells, split evenly on ties (as ``torch.amax``).

    Args:
        data_format: ``None`` or ``"channels_last"`` (default ``None``).
        keepdims: keep the spatial axes with size 1 (default ``False``).

    Shape:
        (batch, H, W, C) -> (batch, C), or (batch, 1, 1, C) with ``keepdims``.

    Example:
        >>> x = np.arange(8.0).reshape(1, 2, 2, 2)
        >>> GlobalMaxPooling2D()(x).data
        array([[6., 7.]], dtype=float32)
    """

    def call(self, inputs):
        return inputs.max(axis=(1, 2), keepdims=self.keepdims)


def _normalize_padding_pairs(padding) -> tuple[tuple[int, int], tuple[int, int]]:
    """ZeroPadding2D's padding as ((top, bottom), (left, right))."""
    def count(value) -> bool:
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0

    if count(padding):
        return (int(padding),) * 2, (int(padding),) * 2
    if isinstance(padding, (tuple, list)) and len(padding) == 2:
        if all(count(v) for v in padding):
            (h, w) = padding
            return (int(h), int(h)), (int(w), int(w))
        if all(isinstance(v, (tuple, list)) and len(v) == 2 and all(count(c) for c in v)
               for v in padding):
            (top, bottom), (left, right) = padding
            return (int(top), int(bottom)), (int(left), int(right))
    raise ValueError(f"ZeroPadding2D: padding must be a non-negative int, a pair (rows, columns) "
                     f"or ((top, bottom), (left, right)), got {padding!r}")


@registry.register("ZeroPadding2D")
class ZeroPadding2D(Layer):
    """Adds rows and columns of zeros around each image (``keras.layers.ZeroPadding2D``).

    Args:
        padding: an int (the same on every side), a pair ``(rows, columns)`` (symmetric), or
            ``((top, bottom), (left, right))`` (default (1, 1)).
        data_format: ``None`` or ``"channels_last"`` (default ``None``).

    Shape:
        (batch, H, W, C) -> (batch, H + top + bottom, W + left + right, C). No weights.

    Example:
        >>> layer = ZeroPadding2D(((1, 0), (0, 2)))
        >>> layer(np.ones((1, 2, 2, 1))).data[0, :, :, 0]
        array([[0., 0., 0., 0.],
               [1., 1., 0., 0.],
               [1., 1., 0., 0.]], dtype=float32)
    """

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.padding = _normalize_padding_pairs(padding)
        self.data_format = check_data_format(data_format, "ZeroPadding2D")
        self.input_spec = InputSpec(ndim=4)

    def call(self, inputs):
        return F.pad(inputs, ((0, 0),) + self.padding + ((0, 0),))

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 4:
            raise ValueError(f"ZeroPadding2D layer {self.name!r}: expected 4-D input (batch, "
                             f"height, width, channels), got shape {input_shape}")
        (top, bottom), (left, right) = self.padding
        h, w = input_shape[1:3]
        return (input_shape[0], None if h is None else h + top + bottom,
                None if w is None else w + left + right, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "padding": [list(p) for p in self.padding],
                "data_format": self.data_format}

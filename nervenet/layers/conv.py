"""Convolutional layers: Conv2D, and the shape arithmetic the sliding-window layers share.

A convolution layer is a dense layer with two constraints on its weights (LeCun et al., 1998):

* **local connectivity**: an output cell (i, j) sees only the kh x kw window of the input
  under it, not the whole image;
* **weight sharing**: every window is multiplied by the same kernel, so a feature detector
  learned in one place is applied everywhere (translation equivariance).

For (H, W, C) inputs, a Conv2D with ``filters`` output channels and a (kh, kw) kernel has
``kh*kw*C*filters + filters`` parameters whatever H and W are: 3*3*1*32 + 32 = 320 for the
first layer of an MNIST network, against 784*26*26*32 + 26*26*32 = 17 M for a dense layer
producing the same (26, 26, 32) output from a 28x28 image. The arithmetic is the op's
(``nervenet.functional.conv2d``: im2col and one matrix product); ``docs/cnn.md`` explains it.
"""

from __future__ import annotations

import numpy as np

import nervenet.functional as F
from nervenet.layers.base import (
    InputSpec,
    Layer,
    kernel_arguments_config,
    registry,
    set_kernel_arguments,
)

__all__ = ["Conv2D", "conv_output_length", "normalize_pair", "normalize_padding"]


def normalize_pair(value, name: str, layer: str) -> tuple[int, int]:
    """``value`` (an int or a pair of positive ints) as a pair, or a ValueError naming it."""
    values = (value, value) if isinstance(value, (int, np.integer)) else (
        tuple(value) if isinstance(value, (tuple, list)) else ())
    if len(values) != 2 or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1
            for v in values):
        raise ValueError(f"{layer}: {name} must be a positive int or a pair of positive ints, "
                         f"got {value!r}")
    return int(values[0]), int(values[1])


def normalize_padding(padding, layer: str) -> str:
    """``"valid"`` or ``"same"`` (any case), lowercased, or a ValueError naming it."""
    if not (isinstance(padding, str) and padding.lower() in ("valid", "same")):
        raise ValueError(f"{layer}: padding must be 'valid' or 'same', got {padding!r}")
    return padding.lower()


def check_data_format(data_format, layer: str) -> str:
    """nervenet's images are channels-last (N, H, W, C), as Keras's default."""
    if data_format not in (None, "channels_last"):
        raise ValueError(f"{layer}: data_format must be 'channels_last' (or None), got "
                         f"{data_format!r}; nervenet's images are (batch, height, width, "
                         "channels)")
    return "channels_last"


def conv_output_length(size: int | None, window: int, stride: int, padding: str) -> int | None:
    """The output length of one spatial axis, as Keras computes it:

        "valid":  floor((size - window) / stride) + 1    (windows that do not fit are dropped)
        "same":   ceil(size / stride)                     (zeros added around the input)

    ``None`` (an unknown size) stays ``None``. A negative or zero "valid" length (a window
    larger than the input) returns ``size - window + 1 <= 0``, for the caller to report.
    """
    if size is None:
        return None
    if padding == "same":
        return -(-size // stride)
    if size < window:
        return size - window + 1
    return (size - window) // stride + 1


def spatial_output_shape(layer: Layer, input_shape, window: tuple[int, int],
                         strides: tuple[int, int], padding: str, channels,
                         window_name: str = "pool window", hint: bool = True) -> tuple:
    """(batch, Ho, Wo, channels) for a sliding window over (batch, H, W, C) inputs, or a
    ValueError naming the input shape and the window (``window_name``: "kernel", ...) when
    the window does not fit; ``hint`` suggests padding="same"."""
    input_shape = tuple(input_shape)
    if len(input_shape) != 4:
        raise ValueError(f"{type(layer).__name__} layer {layer.name!r}: expected 4-D input "
                         f"(batch, height, width, channels), got shape {input_shape}")
    out = [conv_output_length(size, k, s, padding)
           for size, k, s in zip(input_shape[1:3], window, strides)]
    if any(length is not None and length < 1 for length in out):
        raise ValueError(
            f"{type(layer).__name__} layer {layer.name!r}: the {window_name} {window} is larger "
            f"than the input's spatial size {input_shape[1:3]} (input shape {input_shape}, "
            f"padding {padding!r})" + ("; use padding='same', a smaller window or larger images"
                                       if hint else ""))
    return (input_shape[0], out[0], out[1], channels)


@registry.register("Conv2D")
class Conv2D(Layer):
    """2-D convolution over channels-last images (``keras.layers.Conv2D``):

        y[n, i, j, o] = activation( sum_{p, q, c} xp[n, i*sh + p*dh, j*sw + q*dw, c]
                                                  * kernel[p, q, c, o] + bias[o] )

    where ``xp`` is the input, zero-padded for ``padding="same"``, and (dh, dw) the
    ``dilation_rate``.

    Args:
        filters: the number of output channels (feature maps), a positive int.
        kernel_size: (kh, kw), or an int for a square kernel.
        strides: (sh, sw), or an int (default 1).
        padding: ``"valid"`` (default: no padding; the output shrinks by kernel - 1) or
            ``"same"`` (zeros around the input so that the output has ceil(H / sh) rows and
            ceil(W / sw) columns; the odd cell of padding goes after, as Keras/TensorFlow).
        data_format: ``None`` or ``"channels_last"`` (the only layout; default ``None``).
        dilation_rate: (dh, dw), or an int (default 1): the kernel's taps are dh rows and dw
            columns apart (an atrous convolution), so a kh x kw kernel sees a window spanning
            (kh - 1)*dh + 1 rows and (kw - 1)*dw + 1 columns with kh*kw weights. Unlike Keras
            (but as torch), strides above 1 may go with it.
        activation: an activation id or callable (default ``None``: linear).
        use_bias: add one bias per filter (default ``True``).
        kernel_initializer: default ``"glorot_uniform"``, with fan_in = kh*kw*C and
            fan_out = kh*kw*filters (as Keras).
        bias_initializer: default ``"zeros"``.
        kernel_regularizer, bias_regularizer, activity_regularizer: penalties added to the loss
            (default ``None``).
        kernel_constraint, bias_constraint: projections after each update (default ``None``);
            ``MaxNorm(axis=[0, 1, 2])`` bounds each filter's norm.

    Shape:
        (batch, H, W, C) -> (batch, Ho, Wo, filters) with Ho = floor((H - span_h) / sh) + 1
        for "valid", span_h = (kh - 1)*dh + 1, and Ho = ceil(H / sh) for "same" (likewise
        Wo). The kernel is (kh, kw, C, filters) and the bias (filters,):
        ``kh*kw*C*filters + filters`` parameters.

    Raises:
        ValueError: for input that is not 4-D, whose channels do not match the kernel's, or
            smaller than the kernel with ``padding="valid"`` (the message names both shapes).

    Example:
        >>> layer = Conv2D(32, 3, activation="relu")
        >>> layer(np.zeros((2, 28, 28, 1))).shape
        (2, 26, 26, 32)
        >>> layer.kernel.shape, layer.count_params()   # 3*3*1*32 + 32
        ((3, 3, 1, 32), 320)
        >>> Conv2D(8, (3, 5), strides=2, padding="same").compute_output_shape((None, 7, 9, 3))
        (None, 4, 5, 8)
        >>> Conv2D(4, 3, dilation_rate=2).compute_output_shape((None, 28, 28, 1))  # span 5
        (None, 24, 24, 4)
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) \
                or filters < 1:
            raise ValueError(f"Conv2D: filters must be a positive int, got {filters!r}")
        self.filters = int(filters)
        self.kernel_size = normalize_pair(kernel_size, "kernel_size", "Conv2D")
        self.strides = normalize_pair(strides, "strides", "Conv2D")
        self.padding = normalize_padding(padding, "Conv2D")
        self.data_format = check_data_format(data_format, "Conv2D")
        self.dilation_rate = normalize_pair(dilation_rate, "dilation_rate", "Conv2D")
        set_kernel_arguments(self, activation, use_bias, kernel_initializer, bias_initializer,
                             kernel_regularizer, bias_regularizer, activity_regularizer,
                             kernel_constraint, bias_constraint)
        self.kernel = self.bias = None
        self.input_spec = InputSpec(ndim=4)

    def build(self, input_shape):
        self.compute_output_shape(input_shape)  # checks the rank and that the kernel fits
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"Conv2D layer {self.name!r}: the channel axis (last) of the input "
                             f"must be known, got input shape {tuple(input_shape)}")
        self.kernel = self.add_weight("kernel", self.kernel_size + (channels, self.filters),
                                      self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer,
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint)
        self.input_spec = InputSpec(ndim=4, axes={-1: channels})

    def check_input_shapes(self, shapes: list[tuple]) -> None:
        shape = tuple(shapes[0])
        if len(shape) == 3:
            raise ValueError(
                f"Conv2D layer {self.name!r}: expected 4-D input (batch, height, width, "
                f"channels), got shape {shape}; a batch of single-channel images needs a "
                f"channel axis: x.reshape({shape[0]}, {shape[1]}, {shape[2]}, 1)")
        if self.kernel is not None and len(shape) == 4 and shape[-1] is not None \
                and shape[-1] != self.kernel.shape[2]:
            raise ValueError(
                f"Conv2D layer {self.name!r}: the input has {shape[-1]} channels (input shape "
                f"{shape}) but the kernel of shape {self.kernel.shape} expects "
                f"{self.kernel.shape[2]}")
        super().check_input_shapes(shapes)

    def call(self, inputs):
        # checks, with this layer's name, that the kernel fits these (possibly new) sizes
        self.compute_output_shape(inputs.shape)
        return self.activation(F.conv2d(inputs, self.kernel, self.bias, stride=self.strides,
                                        padding=self.padding, dilation=self.dilation_rate))

    def compute_output_shape(self, input_shape):
        span = tuple((k - 1) * d + 1 for k, d in zip(self.kernel_size, self.dilation_rate))
        name = "kernel" if span == self.kernel_size else \
            f"kernel {self.kernel_size} with dilation_rate {self.dilation_rate}, spanning"
        return spatial_output_shape(self, input_shape, span, self.strides,
                                    self.padding, self.filters, window_name=name)

    def get_config(self):
        return {
            **super().get_config(), "filters": self.filters,
            "kernel_size": list(self.kernel_size), "strides": list(self.strides),
            "padding": self.padding, "data_format": self.data_format,
            "dilation_rate": list(self.dilation_rate), **kernel_arguments_config(self),
        }

"""Normalization layers: Normalization (z-score from data, with ``adapt``)."""

from __future__ import annotations

import numpy as np

from nervenet.layers.base import InputSpec, Layer, registry


@registry.register("Normalization")
class Normalization(Layer):
    """Feature-wise standardization: ``y = (x - mean) / max(sqrt(variance), 1e-7)``.

    The statistics come from the constructor or from ``adapt(data)``, which computes them over
    every axis but ``axis`` (as Keras's preprocessing layer). They are non-trainable weights, so
    they are saved with the model. ``invert=True`` computes ``x * sqrt(variance) + mean``
    instead (to turn standardized predictions back into original units).

    Args:
        axis: the feature axis kept (default -1); ``None`` for one scalar mean and variance.
        mean, variance: known statistics (default ``None``: call ``adapt`` before use).
        invert: apply the inverse transformation (default ``False``).

    Example:
        >>> layer = Normalization()
        >>> layer.adapt(np.array([[1.0], [3.0]]))
        >>> layer(np.array([[5.0]])).data
        array([[3.]], dtype=float32)
    """

    _EPSILON = 1e-7

    def __init__(self, axis=-1, mean=None, variance=None, invert: bool = False, **kwargs):
        super().__init__(**kwargs)
        if (mean is None) != (variance is None):
            raise ValueError("Normalization: give both mean and variance, or neither")
        self.axis = axis
        self.invert = bool(invert)
        self.initial_mean = None if mean is None else np.asarray(mean, dtype=float)
        self.initial_variance = None if variance is None else np.asarray(variance, dtype=float)
        if self.initial_variance is not None and np.any(self.initial_variance < 0):
            raise ValueError("Normalization: variance must be >= 0")
        self.adapted = mean is not None

    def _stat_shape(self, input_shape) -> tuple:
        if self.axis is None:
            return ()
        return (input_shape[self.axis],)

    def build(self, input_shape):
        shape = self._stat_shape(input_shape)
        if None in shape:
            raise ValueError(f"Normalization layer {self.name!r}: the feature axis must be "
                             f"known, got input shape {input_shape}")
        self.mean = self.add_weight("mean", shape, "zeros", trainable=False)
        self.variance = self.add_weight("variance", shape, "ones", trainable=False)
        if self.initial_mean is not None:
            self.mean.data[...] = np.broadcast_to(self.initial_mean, shape)
            self.variance.data[...] = np.broadcast_to(self.initial_variance, shape)
        if self.axis is not None:
            self.input_spec = InputSpec(axes={self.axis: shape[0]})

    def adapt(self, data) -> None:
        """Compute the mean and (biased) variance of ``data`` over every axis but ``axis``."""
        data = np.asarray(getattr(data, "data", data), dtype=np.float64)
        if data.ndim < 1 or data.shape[0] == 0:
            raise ValueError(f"Normalization.adapt: data must hold at least one sample, got "
                             f"shape {data.shape}")
        if not np.all(np.isfinite(data)):
            raise ValueError("Normalization.adapt: data contains NaN or Inf")
        if not self.built:
            self.build((None,) + data.shape[1:])
            self.built = True
        axes = None if self.axis is None else tuple(
            i for i in range(data.ndim) if i != self.axis % data.ndim)
        self.mean.data[...] = data.mean(axis=axes)
        self.variance.data[...] = data.var(axis=axes)  # two-pass, in float64
        self.adapted = True

    def _broadcast(self, values, ndim: int):
        if self.axis is None:
            return values
        shape = [1] * ndim
        shape[self.axis] = -1
        return values.reshape(shape)

    def call(self, inputs):
        if not self.adapted:
            raise ValueError(f"Normalization layer {self.name!r}: call adapt(data) or pass "
                             "mean and variance before using it")
        mean = self._broadcast(self.mean.data, inputs.ndim)
        std = np.maximum(np.sqrt(self._broadcast(self.variance.data, inputs.ndim)),
                         self._EPSILON).astype(self.dtype)
        if self.invert:
            return inputs * std + mean
        return (inputs - mean) / std

    def get_config(self):
        config = {**super().get_config(), "axis": self.axis, "invert": self.invert}
        if self.built and self.adapted:
            config["mean"] = self.mean.data.tolist()
            config["variance"] = self.variance.data.tolist()
        elif self.initial_mean is not None:
            config["mean"] = self.initial_mean.tolist()
            config["variance"] = self.initial_variance.tolist()
        return config

"""Normalization layers.

* ``Normalization``: a z-score with statistics computed once from data (``adapt``);
* ``BatchNormalization`` (Ioffe & Szegedy, 2015): minibatch statistics in training, moving
  averages at inference, learned scale ``gamma`` and shift ``beta``;
* ``LayerNormalization`` (Ba et al., 2016): per-sample statistics over the feature axes;
* ``ScaleShift``: the per-channel affine map a trained BatchNormalization is at inference
  (what ``BatchNormalization.fold()`` returns);
* ``recompute_population_statistics(model, x)``: the "post-processing" step that replaces the
  moving averages by averages of batch statistics over the whole training set.
"""

from __future__ import annotations

import numpy as np

import nervenet.functional as F
from nervenet import backend, constraints, initializers, regularizers, world
from nervenet.autograd import Tensor, no_grad
from nervenet.layers.base import (
    InputSpec,
    Layer,
    nested_layers,
    registry,
    serialize_optional,
    unchanged_shape,
    update_state,
)


def set_scale_shift_arguments(layer: Layer, beta_initializer, gamma_initializer,
                              beta_regularizer, gamma_regularizer, beta_constraint,
                              gamma_constraint) -> None:
    """Resolve and store the arguments of a normalization layer's ``gamma`` and ``beta``
    through their registries (BatchNormalization, LayerNormalization)."""
    layer.beta_initializer = initializers.get(beta_initializer)
    layer.gamma_initializer = initializers.get(gamma_initializer)
    layer.beta_regularizer = regularizers.get(beta_regularizer)
    layer.gamma_regularizer = regularizers.get(gamma_regularizer)
    layer.beta_constraint = constraints.get(beta_constraint)
    layer.gamma_constraint = constraints.get(gamma_constraint)


@registry.register("Normalization")
class Normalization(Layer):
    """Feature-wise standardization: ``y = (x - mean) / max(sqrt(variance), 1e-7)``.

    The statistics come from the constructor or from ``adapt(data)``, which computes them over
    every axis but ``axis`` (as Keras's preprocessing layer). They are non-trainable weights, so
    they are saved with the model, with Keras's ``count`` (how many values per feature the
    statistics were computed from), so parameter counts equal Keras's (``2 * features + 1``).
    ``invert=True`` computes ``x * sqrt(variance) + mean`` instead (to turn standardized
    predictions back into original units).

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

    compute_output_shape = unchanged_shape

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

    # files saved before ``count`` existed hold adapted (or given) statistics; how many values
    # they came from was not saved, and 1 marks them as known, which is all count is read for
    older_file_defaults = {"count": 1.0}

    @property
    def adapted(self) -> bool:
        """Whether the statistics are known (given, adapted, or loaded with the weights)."""
        return self.initial_mean is not None or (self.built and float(self.count.data) > 0)

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
        self.count = self.add_weight("count", (), "zeros", trainable=False)
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
        self.count.data[...] = data.size // max(self.mean.data.size, 1)

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
        xp = backend.get_array_module(self.variance.data)
        std = xp.maximum(xp.sqrt(self._broadcast(self.variance.data, inputs.ndim)),
                         self._EPSILON).astype(self.dtype)
        if self.invert:
            return inputs * std + mean
        return (inputs - mean) / std

    def get_config(self):
        config = {**super().get_config(), "axis": self.axis, "invert": self.invert}
        if self.built and self.adapted:
            config["mean"] = self.mean.numpy().tolist()
            config["variance"] = self.variance.numpy().tolist()
        elif self.initial_mean is not None:
            config["mean"] = self.initial_mean.tolist()
            config["variance"] = self.initial_variance.tolist()
        return config


def _channel_shape(ndim: int, axis: int) -> tuple:
    """The shape that broadcasts a (C,) array along ``axis`` of an ndim-D input."""
    shape = [1] * ndim
    shape[axis] = -1
    return tuple(shape)


@registry.register("BatchNormalization")
class BatchNormalization(Layer):
    """Batch normalization: normalize each channel with batch statistics, then scale and shift.

    For each channel (each index of ``axis``) over the m values of all other axes (m = N for
    (N, C) inputs after a Dense layer, m = N*H*W per feature map after a Conv2D)::

        training:   mu_B = mean(x),  var_B = mean((x - mu_B)^2)   (biased: divided by m)
                    y = gamma * (x - mu_B) / sqrt(var_B + epsilon) + beta
                    moving_mean     <- momentum * moving_mean     + (1 - momentum) * mu_B
                    moving_variance <- momentum * moving_variance + (1 - momentum) * var_B
        inference:  y = gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta

    The gradient of the training form accounts for mu_B and var_B depending on x (see
    ``nervenet.functional.batch_norm``). As in Keras 3, a layer with ``trainable = False``
    runs in inference mode even when the model trains (fine-tuning keeps its statistics).

    NOTE: the conventions differ from PyTorch's in two ways. Keras's ``momentum`` is the
    weight of the *old* average (torch's ``momentum`` is ``1 - momentum`` here), and the
    moving variance averages the biased batch variance, where torch's ``running_var`` uses the
    unbiased one (``var_B * m / (m - 1)``). The normalization itself is identical.

    Args:
        axis: the channel axis (default -1: channels last).
        momentum: the weight of the old moving average (default 0.99).
        epsilon: added to the variance (default 1e-3).
        center: learn the shift ``beta`` (default ``True``; ``False``: beta = 0).
        scale: learn the scale ``gamma`` (default ``True``; ``False``: gamma = 1).
        beta_initializer, gamma_initializer: default ``"zeros"`` and ``"ones"``.
        moving_mean_initializer, moving_variance_initializer: default ``"zeros"``, ``"ones"``.
        beta_regularizer, gamma_regularizer: penalties added to the loss (default ``None``).
        beta_constraint, gamma_constraint: projections after each update (default ``None``).

    Shape:
        (N, ..., C) -> the same shape. Weights: gamma, beta (trainable, shape (C,)),
        moving_mean, moving_variance (non-trainable, shape (C,)), in that order.

    Raises:
        ValueError: in training, for a batch with a single value per channel (batch size 1
            for Dense inputs): its variance is 0 and the output would be beta alone.

    Example:
        >>> layer = BatchNormalization(momentum=0.9, epsilon=0.0)
        >>> y = layer(np.array([[1.0], [3.0]]), training=True)
        >>> y.data.ravel().tolist()
        [-1.0, 1.0]
        >>> layer.moving_mean.data, layer.moving_variance.data
        (array([0.2], dtype=float32), array([1.], dtype=float32))
    """

    compute_output_shape = unchanged_shape

    def __init__(self, axis: int = -1, momentum: float = 0.99, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"BatchNormalization: axis must be an int, got {axis!r}")
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) \
                or not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNormalization: momentum must be a number in [0, 1], got "
                             f"{momentum!r}")
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) \
                or not epsilon >= 0.0:
            raise ValueError(f"BatchNormalization: epsilon must be a number >= 0, got "
                             f"{epsilon!r}")
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        set_scale_shift_arguments(self, beta_initializer, gamma_initializer, beta_regularizer,
                                  gamma_regularizer, beta_constraint, gamma_constraint)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.input_spec = InputSpec(min_ndim=2)
        # set by recompute_population_statistics: a list collecting (count, mean, var)
        self._recorded: list | None = None

    def build(self, input_shape):
        ndim = len(input_shape)
        if not -ndim <= self.axis < ndim or self.axis % ndim == 0:
            raise ValueError(f"BatchNormalization layer {self.name!r}: axis {self.axis} is not "
                             f"a channel axis of inputs of shape {input_shape} (the batch axis "
                             "0 cannot be normalized over itself)")
        channels = input_shape[self.axis]
        if channels is None:
            raise ValueError(f"BatchNormalization layer {self.name!r}: the channel axis "
                             f"{self.axis} must be known, got input shape {input_shape}")
        shape = (channels,)
        self.gamma = self.beta = None
        if self.scale:
            self.gamma = self.add_weight("gamma", shape, self.gamma_initializer,
                                         regularizer=self.gamma_regularizer,
                                         constraint=self.gamma_constraint)
        if self.center:
            self.beta = self.add_weight("beta", shape, self.beta_initializer,
                                        regularizer=self.beta_regularizer,
                                        constraint=self.beta_constraint)
        self.moving_mean = self.add_weight("moving_mean", shape, self.moving_mean_initializer,
                                           trainable=False)
        self.moving_variance = self.add_weight("moving_variance", shape,
                                               self.moving_variance_initializer,
                                               trainable=False)
        self.input_spec = InputSpec(min_ndim=2, axes={self.axis: channels})
        super().build(input_shape)

    def _gamma_beta(self, channels: int, dtype) -> tuple:
        xp = backend.get_array_module(self.moving_mean.data)  # on the layer's device
        gamma = self.gamma if self.gamma is not None else Tensor(xp.ones(channels, dtype))
        beta = self.beta if self.beta is not None else Tensor(xp.zeros(channels, dtype))
        return gamma, beta

    def call(self, inputs, training: bool = False):
        gamma, beta = self._gamma_beta(inputs.shape[self.axis], inputs.dtype)
        if self._recorded is not None:  # recompute_population_statistics is running
            y, mean, var = F.batch_norm_training(inputs, gamma, beta, self.epsilon, self.axis)
            self._recorded.append((inputs.shape[0], inputs.size // inputs.shape[self.axis],
                                   mean, var))
            return y
        if training and self.trainable:
            if inputs.size == inputs.shape[self.axis]:
                raise ValueError(
                    f"BatchNormalization layer {self.name!r}: training needs more than one "
                    f"value per channel to compute batch statistics, got input of shape "
                    f"{inputs.shape} (a batch of size 1); use a batch size of at least 2")
            y, mean, var = F.batch_norm_training(inputs, gamma, beta, self.epsilon, self.axis)
            self._update_moving_averages(mean, var)
            return y
        return F.batch_norm(inputs, gamma, beta, self.moving_mean.data, self.moving_variance.data,
                          self.epsilon, self.axis)

    def _update_moving_averages(self, mean: np.ndarray, var: np.ndarray) -> None:
        momentum = self.dtype.type(self.momentum)

        def update_moving_statistics():
            for moving, batch in ((self.moving_mean, mean), (self.moving_variance, var)):
                moving.data *= momentum
                moving.data += (1 - momentum) * batch.astype(self.dtype, copy=False)

        # NOTE: inside a training step this waits for the step to succeed: a batch whose
        # loss is NaN must not write NaN statistics
        update_state(update_moving_statistics)

    def folded_affine(self) -> tuple[np.ndarray, np.ndarray]:
        """The inference form as one scale and one shift per channel, in float64:

            a = gamma / sqrt(moving_variance + epsilon),   b = beta - a * moving_mean,

        so that the layer computes ``y = a * x + b`` at inference.
        """
        if not self.built:
            raise ValueError(f"BatchNormalization layer {self.name!r}: fold() needs a built "
                             "layer; call it on data first")
        channels = self.moving_mean.shape[0]

        def float64(weight, absent: float) -> np.ndarray:
            return np.full(channels, absent) if weight is None else weight.data.astype(np.float64)

        a, b = F.batch_norm_affine(float64(self.gamma, 1.0), float64(self.beta, 0.0),
                                   float64(self.moving_mean, 0.0),
                                   float64(self.moving_variance, 1.0), self.epsilon)
        return a.data, b.data

    def fold(self) -> ScaleShift:
        """A ``ScaleShift`` layer computing this layer's inference output,
        ``z' = gamma/sqrt(var+eps) * z + (beta - gamma*mu/sqrt(var+eps))``.

        ``nervenet.models.fold_batch_norm(model)`` goes further and merges it into the
        preceding Dense or Conv2D layer where there is one.
        """
        a, b = self.folded_affine()
        layer = ScaleShift(axis=self.axis, name=f"{self.name}_folded", dtype=self.dtype.name)
        layer.build(self.input_shape if self.input_shape is not None else
                    _shape_with_channels(self.axis, a.shape[0]))
        layer.set_weights([a.astype(self.dtype), b.astype(self.dtype)])
        return layer

    def get_config(self):
        return {
            **super().get_config(), "axis": self.axis, "momentum": self.momentum,
            "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
            "moving_variance_initializer": initializers.serialize(
                self.moving_variance_initializer),
            "beta_regularizer": serialize_optional(regularizers, self.beta_regularizer),
            "gamma_regularizer": serialize_optional(regularizers, self.gamma_regularizer),
            "beta_constraint": serialize_optional(constraints, self.beta_constraint),
            "gamma_constraint": serialize_optional(constraints, self.gamma_constraint),
        }


@registry.register("SyncBatchNormalization")
class SyncBatchNormalization(BatchNormalization):
    """BatchNormalization whose training statistics cover the global batch of a data-parallel
    fit: the mean and variance of each channel over the rows of *every* rank (two sums over
    ranks in the forward pass, one in the backward; see
    ``nervenet.autograd.ops.norm.SyncBatchNorm``). In a world of one process it computes what
    BatchNormalization computes; inference (moving averages) is the same in both.

    Plain BatchNormalization under ``mpiexec`` normalizes each rank's slice by that slice's own
    statistics, so its result depends on the number of ranks; this layer's does not.

    Args:
        as BatchNormalization.

    Example (one process):
        >>> layer = SyncBatchNormalization(epsilon=0.0)
        >>> layer(np.array([[1.0], [3.0]]), training=True).data.ravel().tolist()
        [-1.0, 1.0]
    """

    def call(self, inputs, training: bool = False):
        if not (training and self.trainable) or self._recorded is not None:
            return super().call(inputs, training)
        gamma, beta = self._gamma_beta(inputs.shape[self.axis], inputs.dtype)
        y, mean, var = F.batch_norm_training(inputs, gamma, beta, self.epsilon, self.axis,
                                             sum_over_replicas=_sum_over_ranks)
        self._update_moving_averages(mean, var)
        return y


def _sum_over_ranks(array: np.ndarray) -> np.ndarray:
    # MPI reduces host buffers: a device's array goes through the host
    device = backend.device_of(array)
    return backend.to_device(world.allreduce(backend.to_numpy(array), op="sum"), device)


def _shape_with_channels(axis: int, channels: int) -> tuple:
    """A minimal input shape (batch axis None) with ``channels`` at ``axis``."""
    ndim = max(2, axis + 1 if axis >= 0 else -axis + 1)
    shape = [None] * ndim
    shape[axis] = channels
    return tuple(shape)


@registry.register("ScaleShift")
class ScaleShift(Layer):
    """A per-channel affine map ``y = scale * x + shift`` along ``axis``: the inference form of
    a BatchNormalization layer (``BatchNormalization.fold()`` returns one).

    Args:
        axis: the channel axis (default -1).

    Shape:
        (N, ..., C) -> the same shape. Weights: scale (initialized to ones) and shift (zeros),
        both of shape (C,).

    Example:
        >>> layer = ScaleShift()
        >>> layer.build((None, 2))
        >>> layer.set_weights([np.array([2.0, 3.0]), np.array([1.0, 0.0])])
        >>> layer(np.ones((1, 2))).data
        array([[3., 3.]], dtype=float32)
    """

    compute_output_shape = unchanged_shape

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"ScaleShift: axis must be an int, got {axis!r}")
        self.axis = int(axis)
        self.input_spec = InputSpec(min_ndim=2)

    def build(self, input_shape):
        channels = input_shape[self.axis]
        if channels is None:
            raise ValueError(f"ScaleShift layer {self.name!r}: the channel axis {self.axis} "
                             f"must be known, got input shape {input_shape}")
        self.scale = self.add_weight("scale", (channels,), "ones")
        self.shift = self.add_weight("shift", (channels,), "zeros")
        self.input_spec = InputSpec(min_ndim=2, axes={self.axis: channels})
        super().build(input_shape)

    def call(self, inputs):
        shape = _channel_shape(inputs.ndim, self.axis)
        if self.axis in (-1, inputs.ndim - 1):
            return inputs * self.scale + self.shift
        return inputs * self.scale.reshape(shape) + self.shift.reshape(shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def _batch_norm_layers(model: Layer) -> list[BatchNormalization]:
    """The BatchNormalization layers in ``model`` (ValueError when there is none)."""
    found = [bn for bn in [model, *nested_layers(model)] if isinstance(bn, BatchNormalization)]
    if not found:
        raise ValueError(f"recompute_population_statistics: {getattr(model, 'name', model)!r} "
                         "has no BatchNormalization layer")
    return found


def recompute_population_statistics(model: Layer, x, batch_size: int = 32,
                                    unbiased: bool = False) -> None:
    """Replace the moving averages of every BatchNormalization layer in ``model`` by averages
    of batch statistics over the whole of ``x`` (the course's "post-processing" step).

    The moving averages of training are a biased estimate: they weigh recent batches most
    and average statistics computed while the weights were still changing. After training,
    with the weights fixed, this runs ``x`` (the training set) through the model in batches
    of ``batch_size``, each BatchNormalization layer normalizing with its batch statistics as
    in training (other layers, such as Dropout, in inference mode), and sets

        moving_mean     = average over batches of mu_B
        moving_variance = average over batches of var_B      (times m/(m-1) if unbiased)

    Batches are weighted by their number of samples (the first layer's mean is the exact mean
    of ``x``); a lone last sample joins the batch before. ``unbiased=True`` applies Ioffe &
    Szegedy's Algorithm 2 correction m/(m-1), m the values per channel in a batch; the
    default matches what the moving averages estimate (biased variances, as Keras).

    Args:
        model: a model or layer containing BatchNormalization layers (nested ones included).
        x: the training inputs, an array of shape (n, ...).
        batch_size: the batch size the statistics are computed over (default 32; use the
            training batch size).
        unbiased: scale each batch variance by m/(m-1) (default ``False``).

    Raises:
        ValueError: when ``model`` has no BatchNormalization layer, ``x`` has fewer than 2
            samples or ``batch_size`` is not an int >= 2.

    Example:
        >>> from nervenet import layers, models
        >>> bn = BatchNormalization()
        >>> model = models.Sequential([layers.Input(shape=(1,)), bn])
        >>> recompute_population_statistics(model, np.array([[0.0], [2.0], [4.0], [6.0]]),
        ...                                 batch_size=2)
        >>> bn.moving_mean.data, bn.moving_variance.data
        (array([3.], dtype=float32), array([1.], dtype=float32))
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 2:
        raise ValueError(f"recompute_population_statistics: batch_size must be an int >= 2, "
                         f"got {batch_size!r}")
    layers = _batch_norm_layers(model)
    x = np.asarray(getattr(x, "data", x))
    if len(x) < 2:
        raise ValueError(f"recompute_population_statistics: x must hold at least 2 samples, "
                         f"got shape {x.shape}")
    for layer in layers:
        layer._recorded = []
    try:
        with no_grad():
            for start, stop in _batches_of_two_or_more(len(x), batch_size):
                model(x[start:stop], training=False)
        for layer in layers:
            _set_population_statistics(layer, unbiased)
    finally:
        for layer in layers:
            layer._recorded = None


def _batches_of_two_or_more(n: int, batch_size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of consecutive batches of ``batch_size`` over ``n`` samples; a lone
    last sample joins the batch before (it has no variance to contribute)."""
    starts = list(range(0, n, batch_size))
    if n - starts[-1] == 1:
        starts.pop()
    return list(zip(starts, starts[1:] + [n]))


def _set_population_statistics(layer: BatchNormalization, unbiased: bool) -> None:
    """The moving statistics of ``layer`` from the batch statistics it recorded: their
    averages weighted by the batches' sample counts (variances times m/(m-1) if
    ``unbiased``, m the values per channel in the batch)."""
    if not layer._recorded:
        raise ValueError(f"recompute_population_statistics: BatchNormalization layer "
                         f"{layer.name!r} was not reached by the model's forward pass")
    weights = np.array([count for count, _, _, _ in layer._recorded], dtype=np.float64)
    means = np.stack([mean for _, _, mean, _ in layer._recorded]).astype(np.float64)
    variances = np.stack([var * (m / (m - 1) if unbiased else 1.0)
                          for _, m, _, var in layer._recorded]).astype(np.float64)
    weights /= weights.sum()
    layer.moving_mean.data[...] = weights @ means
    layer.moving_variance.data[...] = weights @ variances


@registry.register("LayerNormalization")
class LayerNormalization(Layer):
    """Layer normalization (Ba, Kiros and Hinton, 2016): normalize each sample over its
    feature axes, then scale and shift. No batch statistics, so training and inference agree
    and any batch size works::

        mu = mean(x),  var = mean((x - mu)^2)     over ``axis``, per sample (biased)
        y = gamma * (x - mu) / sqrt(var + epsilon) + beta
        rms_scaling:  y = gamma * x / sqrt(mean(x^2) + epsilon)

    Equal to ``torch.nn.LayerNorm(normalized_shape, eps=epsilon)`` when ``axis`` lists the
    last axes. Composed of differentiable primitives, so second derivatives are exact.

    Args:
        axis: the axis or list of axes normalized over (default -1); not the batch axis.
        epsilon: added to the variance (default 1e-3, Keras's; torch's is 1e-5).
        center: learn the shift ``beta`` (default ``True``).
        scale: learn the scale ``gamma`` (default ``True``).
        rms_scaling: divide by the root mean square instead of the standard deviation, with
            no centring and no ``beta`` (RMSNorm; default ``False``).
        beta_initializer, gamma_initializer: default ``"zeros"`` and ``"ones"``.
        beta_regularizer, gamma_regularizer, beta_constraint, gamma_constraint: default
            ``None``.

    Shape:
        (N, ...) -> the same shape. Weights: gamma, beta (trainable; the sizes of ``axis``).

    Example:
        >>> layer = LayerNormalization(epsilon=0.0)
        >>> layer(np.array([[1.0, 3.0], [0.0, 10.0]])).data
        array([[-1.,  1.],
               [-1.,  1.]], dtype=float32)
    """

    compute_output_shape = unchanged_shape

    def __init__(self, axis=-1, epsilon: float = 1e-3, center: bool = True, scale: bool = True,
                 rms_scaling: bool = False, beta_initializer="zeros", gamma_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
        if not axes or any(isinstance(a, bool) or not isinstance(a, (int, np.integer))
                           for a in axes):
            raise ValueError(f"LayerNormalization: axis must be an int or a list of ints, got "
                             f"{axis!r}")
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) \
                or not epsilon >= 0.0:
            raise ValueError(f"LayerNormalization: epsilon must be a number >= 0, got "
                             f"{epsilon!r}")
        self.axis = [int(a) for a in axes] if isinstance(axis, (list, tuple)) else int(axis)
        self.epsilon = float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.rms_scaling = bool(rms_scaling)
        set_scale_shift_arguments(self, beta_initializer, gamma_initializer, beta_regularizer,
                                  gamma_regularizer, beta_constraint, gamma_constraint)
        self.input_spec = InputSpec(min_ndim=2)

    def build(self, input_shape):
        ndim = len(input_shape)
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        if any(not -ndim <= a < ndim or a % ndim == 0 for a in axes):
            raise ValueError(f"LayerNormalization layer {self.name!r}: axis {self.axis} must "
                             f"name feature axes of inputs of shape {input_shape}, not the "
                             "batch axis 0")
        self._axes = tuple(sorted({a % ndim for a in axes}))
        if any(input_shape[a] is None for a in self._axes):
            raise ValueError(f"LayerNormalization layer {self.name!r}: the normalized axes "
                             f"{self._axes} must have known sizes, got {input_shape}")
        shape = tuple(input_shape[a] for a in self._axes)
        self._broadcast = tuple(input_shape[a] if a in self._axes else 1 for a in range(ndim))
        self.gamma = self.beta = None
        if self.scale:
            self.gamma = self.add_weight("gamma", shape, self.gamma_initializer,
                                         regularizer=self.gamma_regularizer,
                                         constraint=self.gamma_constraint)
        if self.center and not self.rms_scaling:
            self.beta = self.add_weight("beta", shape, self.beta_initializer,
                                        regularizer=self.beta_regularizer,
                                        constraint=self.beta_constraint)
        self.input_spec = InputSpec(ndim=ndim, axes={a: input_shape[a] for a in self._axes})
        super().build(input_shape)

    def call(self, inputs):
        if self.rms_scaling:
            y = inputs / F.sqrt((inputs * inputs).mean(axis=self._axes, keepdims=True)
                              + self.epsilon)
        else:
            centred = inputs - inputs.mean(axis=self._axes, keepdims=True)
            variance = (centred * centred).mean(axis=self._axes, keepdims=True)
            y = centred / F.sqrt(variance + self.epsilon)
        if self.gamma is not None:
            y = y * self.gamma.reshape(self._broadcast)
        if self.beta is not None:
            y = y + self.beta.reshape(self._broadcast)
        return y

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale, "rms_scaling": self.rms_scaling,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "beta_regularizer": serialize_optional(regularizers, self.beta_regularizer),
                "gamma_regularizer": serialize_optional(regularizers, self.gamma_regularizer),
                "beta_constraint": serialize_optional(constraints, self.beta_constraint),
                "gamma_constraint": serialize_optional(constraints, self.gamma_constraint)}

"""Loss objects and ids, as Keras's ``losses`` module.

The formulas live in ``nervenet.functional`` (fused and numerically stable); a Loss object
holds the options (``from_logits``, ``delta``) so that ``compile(loss=...)`` can take a name or
an object, and checks targets against the model's output before training starts.

Every loss is the mean over the batch of a per-sample loss (itself averaged over the last
axis); with ``sample_weight`` it is ``sum_i w_i * loss_i / N`` (Keras's
"sum_over_batch_size"). Without weights the fused op of ``nervenet.functional`` computes it in
one step; with weights, each Loss composes its per-sample loss (``per_sample``) from
differentiable primitives and weights it, which also defines what the fused op computes
(tests check that both agree).
"""

from __future__ import annotations

import numpy as np

from nervenet.autograd import Tensor
from nervenet.autograd.ops import activation, arith, loss as ops
from nervenet.registry import Registry

registry = Registry("loss")


def _weighted_mean(per_sample: Tensor, sample_weight) -> Tensor:
    """``sum(w * l) / size(l)`` with one weight per sample (broadcast over other axes)."""
    weights = np.asarray(getattr(sample_weight, "data", sample_weight), dtype=per_sample.dtype)
    n = per_sample.shape[0]
    if weights.shape not in ((n,), (n, 1)):
        raise ValueError(f"sample_weight must have shape ({n},), one weight per sample, got "
                         f"{weights.shape}")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError("sample_weight must be finite and non-negative")
    weights = weights.reshape((n,) + (1,) * (per_sample.ndim - 1))
    return (per_sample * weights).sum() * (1.0 / per_sample.size)


class Loss:
    """Base class: ``loss(y_true, y_pred, sample_weight=None) -> scalar Tensor``.

    Subclasses give ``fused(y_true, y_pred)`` (the fast batch mean) and
    ``per_sample(y_true, y_pred)`` (the loss of each sample, for weighting).
    """

    name = "loss"

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is None:
            return self.fused(y_true, y_pred)
        y_pred = y_pred if isinstance(y_pred, Tensor) else Tensor(y_pred)
        self.fused(y_true, y_pred.detach())  # the fused op's argument checks
        y_true = np.asarray(getattr(y_true, "data", y_true)).astype(y_pred.dtype)
        return _weighted_mean(self.per_sample(y_true, y_pred), sample_weight)

    def fused(self, y_true, y_pred) -> Tensor:
        raise NotImplementedError

    def per_sample(self, y_true: np.ndarray, y_pred: Tensor) -> Tensor:
        raise NotImplementedError

    def validate_targets(self, y_true: np.ndarray, output_shape: tuple) -> None:
        """Raise ValueError when ``y_true`` cannot be a target for outputs of
        ``output_shape`` (checked by fit before any weight changes)."""
        expected = (len(y_true),) + tuple(output_shape[1:])
        if y_true.shape != expected and y_true.size != int(np.prod(expected)):
            raise ValueError(f"{type(self).__name__}: targets of shape {y_true.shape} do not "
                             f"match the model's output shape {tuple(output_shape)}")

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Loss:
        return cls(**config)

    def __repr__(self) -> str:
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


@registry.register("mean_squared_error", "mse", "MeanSquaredError")
class MeanSquaredError(Loss):
    """mean((y - p)^2): regression with Gaussian noise."""

    name = "mean_squared_error"

    def fused(self, y_true, y_pred):
        return ops.mse(y_true, y_pred)

    def per_sample(self, y_true, y_pred):
        error = y_pred - y_true
        return (error * error).mean(axis=-1)


@registry.register("mean_absolute_error", "mae", "MeanAbsoluteError")
class MeanAbsoluteError(Loss):
    """mean(|y - p|): regression robust to outliers."""

    name = "mean_absolute_error"

    def fused(self, y_true, y_pred):
        return ops.mae(y_true, y_pred)

    def per_sample(self, y_true, y_pred):
        return arith.abs(y_pred - y_true).mean(axis=-1)


@registry.register("huber", "Huber")
class Huber(Loss):
    """0.5 e^2 for |e| <= delta, delta (|e| - 0.5 delta) beyond (default delta 1.0)."""

    name = "huber"

    def __init__(self, delta: float = 1.0):
        if not delta > 0:
            raise ValueError(f"Huber: delta must be > 0, got {delta}")
        self.delta = float(delta)

    def fused(self, y_true, y_pred):
        return ops.huber(y_true, y_pred, delta=self.delta)

    def per_sample(self, y_true, y_pred):
        size = arith.abs(y_pred - y_true)
        inside = arith.minimum(size, self.delta)  # q (|e| - q/2): e^2/2 inside, linear beyond
        return (inside * (size - inside * 0.5)).mean(axis=-1)

    def get_config(self):
        return {"delta": self.delta}


def _log_probabilities(y_pred: Tensor, from_logits: bool) -> Tensor:
    """ln of the class probabilities: log_softmax of logits, or ln of the normalized and
    clipped probabilities (as Keras)."""
    if from_logits:
        return activation.log_softmax(y_pred, axis=-1)
    normalized = y_pred / y_pred.sum(axis=-1, keepdims=True)
    return arith.log(arith.clip(normalized, ops.EPSILON, 1 - ops.EPSILON))


class _FromLogits(Loss):
    def __init__(self, from_logits: bool = False):
        self.from_logits = bool(from_logits)

    def get_config(self):
        return {"from_logits": self.from_logits}


@registry.register("binary_crossentropy", "BinaryCrossentropy")
class BinaryCrossentropy(_FromLogits):
    """-(y log p + (1 - y) log(1 - p)) for labels in [0, 1]."""

    name = "binary_crossentropy"

    def fused(self, y_true, y_pred):
        return ops.binary_cross_entropy(y_true, y_pred, from_logits=self.from_logits)

    def per_sample(self, y_true, y_pred):
        if self.from_logits:  # max(x, 0) - x y + ln(1 + e^-|x|)
            x = y_pred
            values = (arith.maximum(x, 0.0) - x * y_true
                      + activation.softplus(-arith.abs(x)))
        else:
            q = arith.clip(y_pred, ops.EPSILON, 1 - ops.EPSILON)
            values = -(y_true * arith.log(q) + (1 - y_true) * arith.log(1 - q))
        return values.mean(axis=-1)

    def validate_targets(self, y_true, output_shape):
        super().validate_targets(y_true, output_shape)
        if np.any((y_true < 0) | (y_true > 1)):
            raise ValueError(f"BinaryCrossentropy: targets must lie in [0, 1], got values from "
                             f"{y_true.min()} to {y_true.max()}")


@registry.register("categorical_crossentropy", "CategoricalCrossentropy")
class CategoricalCrossentropy(_FromLogits):
    """-sum_k y_k log p_k for one-hot (or soft) targets."""

    name = "categorical_crossentropy"

    def fused(self, y_true, y_pred):
        return ops.categorical_cross_entropy(y_true, y_pred, from_logits=self.from_logits)

    def per_sample(self, y_true, y_pred):
        return -(y_true * _log_probabilities(y_pred, self.from_logits)).sum(axis=-1)


@registry.register("sparse_categorical_crossentropy", "SparseCategoricalCrossentropy")
class SparseCategoricalCrossentropy(_FromLogits):
    """-log p_label for integer labels in [0, n_classes)."""

    name = "sparse_categorical_crossentropy"

    def fused(self, y_true, y_pred):
        return ops.sparse_categorical_cross_entropy(y_true, y_pred,
                                                    from_logits=self.from_logits)

    def per_sample(self, y_true, y_pred):
        labels = y_true.reshape(y_pred.shape[:-1]).astype(np.intp)
        onehot = (labels[..., None] == np.arange(y_pred.shape[-1])).astype(y_pred.dtype)
        return -(onehot * _log_probabilities(y_pred, self.from_logits)).sum(axis=-1)

    def validate_targets(self, y_true, output_shape):
        classes = output_shape[-1]
        if y_true.ndim > 1 and not (y_true.ndim == 2 and y_true.shape[1] == 1):
            raise ValueError(f"SparseCategoricalCrossentropy: labels must have shape (N,) or "
                             f"(N, 1), got {y_true.shape}")
        if y_true.dtype.kind == "f" and np.any(y_true != np.round(y_true)):
            raise ValueError("SparseCategoricalCrossentropy: labels must be integers")
        if y_true.size and (y_true.min() < 0 or y_true.max() >= classes):
            raise ValueError(f"SparseCategoricalCrossentropy: labels must lie in [0, {classes}) "
                             f"for a model with {classes} outputs, got values from "
                             f"{y_true.min()} to {y_true.max()}")


@registry.register("hinge", "Hinge")
class Hinge(Loss):
    """mean(max(1 - y p, 0)) with labels in {-1, 1} (0/1 labels are converted)."""

    name = "hinge"

    def fused(self, y_true, y_pred):
        return ops.hinge(y_true, y_pred)

    def per_sample(self, y_true, y_pred):
        signs = y_true.astype(y_pred.dtype)
        if np.all((signs == 0) | (signs == 1)):
            signs = 2 * signs - 1  # 0/1 labels become -1/1, as Keras
        return arith.maximum(1 - signs * y_pred, 0.0).mean(axis=-1)


def get(identifier) -> Loss:
    """Resolve a loss id (``"mse"``, ``"sparse_categorical_crossentropy"``, ...), a config
    dict, a Loss, or a callable ``fn(y_true, y_pred)``."""
    return registry.resolve(identifier)


def serialize(loss) -> dict:
    """The ``{"class_name", "config"}`` form of a registered loss."""
    return registry.serialize(loss)

"""Metrics: running averages of a quality measure over the batches of an epoch (as Keras).

A metric is stateful: ``update_state(y_true, y_pred, sample_weight=None)`` adds a batch,
``result()`` returns the value over everything seen since ``reset_state()``. Metrics work on
plain arrays (predictions are not differentiated) and keep Python floats, so an epoch of
updates holds no arrays alive.
"""

from __future__ import annotations

import numpy as np

from nervenet.registry import Registry

registry = Registry("metric")


def _arrays(y_true, y_pred, sample_weight):
    y_true = np.asarray(getattr(y_true, "data", y_true))
    y_pred = np.asarray(getattr(y_pred, "data", y_pred))
    if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
        y_true = y_true[..., None]  # targets (N,) for outputs (N, 1), as the loss does
    if sample_weight is not None:
        sample_weight = np.asarray(getattr(sample_weight, "data", sample_weight), dtype=float)
    return y_true, y_pred, sample_weight


class Metric:
    """Base class. Subclasses implement ``update_state`` and ``result``.

    Args:
        name: the key under which fit reports it (default: the class's Keras name).
    """

    default_name = "metric"

    def __init__(self, name: str | None = None):
        self.name = name or self.default_name
        self.reset_state()

    def reset_state(self) -> None:
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        raise NotImplementedError

    def result(self) -> float:
        raise NotImplementedError

    def __call__(self, y_true, y_pred, sample_weight=None) -> float:
        """Update with one batch and return the running result."""
        self.update_state(y_true, y_pred, sample_weight)
        return self.result()

    def get_config(self) -> dict:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> Metric:
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class MeanMetricWrapper(Metric):
    """A metric that is the (weighted) mean of a per-sample value ``values(y_true, y_pred)``."""

    def reset_state(self) -> None:
        self.total = 0.0
        self.count = 0.0

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        y_true, y_pred, sample_weight = _arrays(y_true, y_pred, sample_weight)
        values = self.values(y_true, y_pred)
        if sample_weight is None:
            self.total += float(values.sum())
            self.count += float(values.size)
        else:
            weight = np.broadcast_to(sample_weight.reshape(
                sample_weight.shape + (1,) * (values.ndim - sample_weight.ndim)), values.shape)
            self.total += float((values * weight).sum())
            self.count += float(weight.sum())

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0


@registry.register("binary_accuracy", "BinaryAccuracy")
class BinaryAccuracy(MeanMetricWrapper):
    """Fraction of predictions on the right side of ``threshold`` (default 0.5)."""

    default_name = "binary_accuracy"

    def __init__(self, name: str | None = None, threshold: float = 0.5):
        self.threshold = float(threshold)
        super().__init__(name)

    def values(self, y_true, y_pred):
        return ((y_pred > self.threshold) == (y_true > 0.5)).astype(float)

    def get_config(self):
        return {"name": self.name, "threshold": self.threshold}


@registry.register("categorical_accuracy", "CategoricalAccuracy")
class CategoricalAccuracy(MeanMetricWrapper):
    """Fraction of samples whose largest prediction is the one-hot label's class."""

    default_name = "categorical_accuracy"

    def values(self, y_true, y_pred):
        return (y_pred.argmax(-1) == y_true.argmax(-1)).astype(float)


@registry.register("sparse_categorical_accuracy", "SparseCategoricalAccuracy")
class SparseCategoricalAccuracy(MeanMetricWrapper):
    """Fraction of samples whose largest prediction is the integer label."""

    default_name = "sparse_categorical_accuracy"

    def values(self, y_true, y_pred):
        labels = y_true.reshape(y_pred.shape[:-1])
        return (y_pred.argmax(-1) == labels).astype(float)


@registry.register("mean_absolute_error", "mae", "MeanAbsoluteError")
class MeanAbsoluteError(MeanMetricWrapper):
    """Mean of |y_true - y_pred|."""

    default_name = "mean_absolute_error"

    def values(self, y_true, y_pred):
        return np.abs(y_true - y_pred).reshape(len(y_pred), -1).mean(-1)


@registry.register("mean_squared_error", "mse", "MeanSquaredError")
class MeanSquaredError(MeanMetricWrapper):
    """Mean of (y_true - y_pred)^2."""

    default_name = "mean_squared_error"

    def values(self, y_true, y_pred):
        return ((y_true - y_pred) ** 2).reshape(len(y_pred), -1).mean(-1)


@registry.register("root_mean_squared_error", "rmse", "RootMeanSquaredError")
class RootMeanSquaredError(MeanSquaredError):
    """sqrt of the mean squared error over everything seen (not the mean of batch RMSEs)."""

    default_name = "root_mean_squared_error"

    def result(self) -> float:
        return float(np.sqrt(super().result()))


class _ConfusionMetric(Metric):
    """Counts of true/false positives for a binary decision at ``threshold``."""

    def __init__(self, name: str | None = None, threshold: float = 0.5):
        self.threshold = float(threshold)
        super().__init__(name)

    def reset_state(self) -> None:
        self.true_positives = 0.0
        self.false_positives = 0.0
        self.false_negatives = 0.0

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        y_true, y_pred, sample_weight = _arrays(y_true, y_pred, sample_weight)
        predicted = (y_pred > self.threshold).reshape(len(y_pred), -1)
        actual = (y_true > 0.5).reshape(len(y_pred), -1)
        weight = np.ones((len(y_pred), 1)) if sample_weight is None else (
            sample_weight.reshape(len(y_pred), -1))
        self.true_positives += float((weight * (predicted & actual)).sum())
        self.false_positives += float((weight * (predicted & ~actual)).sum())
        self.false_negatives += float((weight * (~predicted & actual)).sum())

    def get_config(self):
        return {"name": self.name, "threshold": self.threshold}


@registry.register("precision", "Precision")
class Precision(_ConfusionMetric):
    """TP / (TP + FP): of the samples predicted positive, the fraction that are."""

    default_name = "precision"

    def result(self) -> float:
        predicted = self.true_positives + self.false_positives
        return self.true_positives / predicted if predicted else 0.0


@registry.register("recall", "Recall")
class Recall(_ConfusionMetric):
    """TP / (TP + FN): of the positive samples, the fraction predicted positive."""

    default_name = "recall"

    def result(self) -> float:
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else 0.0


#: which accuracy "accuracy"/"acc" means for a given loss id (as Keras decides)
_ACCURACY_BY_LOSS = {
    "binary_crossentropy": BinaryAccuracy,
    "hinge": BinaryAccuracy,
    "sparse_categorical_crossentropy": SparseCategoricalAccuracy,
    "categorical_crossentropy": CategoricalAccuracy,
}


def get(identifier, loss_name: str | None = None, output_shape=None) -> Metric:
    """Resolve a metric id, config or instance.

    ``"accuracy"`` / ``"acc"`` becomes binary, categorical or sparse categorical accuracy
    depending on the loss (``loss_name``), as Keras does; without a known loss it follows the
    output shape (one unit: binary; several: categorical). The metric keeps the name the user
    wrote ("accuracy"), so History reports ``accuracy`` and ``val_accuracy``.
    """
    if identifier in ("accuracy", "acc"):
        cls = _ACCURACY_BY_LOSS.get(loss_name)
        if cls is None:
            units = output_shape[-1] if output_shape else None
            cls = BinaryAccuracy if units == 1 else CategoricalAccuracy
        return cls(name=identifier)
    metric = registry.get(identifier, instantiate=True)
    if not isinstance(metric, Metric):
        raise ValueError(f"metric must be a name, a config or a Metric, got {identifier!r}")
    if isinstance(identifier, str):
        metric.name = identifier
    return metric

"""Metrics: running averages of a quality measure over the batches of an epoch (as Keras).

A metric is stateful: ``update_state(y_true, y_pred, sample_weight=None)`` adds a batch,
``result()`` returns the value over everything seen since ``reset_state()``. Metrics work on
plain arrays (predictions are not differentiated) and keep Python floats, so an epoch of
updates holds no arrays alive.
"""

from __future__ import annotations

import numpy as np

from nervenet.checks import check_int
from nervenet.registry import Registry

registry = Registry("metric")

#: Keras's ``backend.epsilon()``, used where Keras's F1 score adds it to a denominator
EPSILON = 1e-7


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


@registry.register("top_k_categorical_accuracy", "TopKCategoricalAccuracy")
class TopKCategoricalAccuracy(MeanMetricWrapper):
    """Fraction of samples whose one-hot label's class is among the ``k`` largest predictions.

    A class tied with the k-th largest prediction counts as in the top k (Keras's
    ``in_top_k``): the label is in the top k when fewer than ``k`` predictions exceed its own.

    Args:
        k: how many of the largest predictions count (default 5, positive).
        name: default ``"top_k_categorical_accuracy"``.
    """

    default_name = "top_k_categorical_accuracy"

    def __init__(self, k: int = 5, name: str | None = None):
        self.k = check_int(type(self).__name__, "k", k, low=1)
        super().__init__(name)

    def labels(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return y_true.argmax(-1)

    def values(self, y_true, y_pred):
        labels = self.labels(y_true, y_pred)
        own = np.take_along_axis(y_pred, labels[..., None].astype(np.intp), axis=-1)
        return ((y_pred > own).sum(-1) < self.k).astype(float)

    def get_config(self):
        return {"name": self.name, "k": self.k}


@registry.register("sparse_top_k_categorical_accuracy", "SparseTopKCategoricalAccuracy")
class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    """``TopKCategoricalAccuracy`` for integer labels (default name
    ``"sparse_top_k_categorical_accuracy"``)."""

    default_name = "sparse_top_k_categorical_accuracy"

    def labels(self, y_true, y_pred):
        return y_true.reshape(y_pred.shape[:-1])


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


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))      # = 1 / (1 + e^-z), without overflow


def _weighted_label_columns(owner, y_true, y_pred, sample_weight, columns: bool):
    """Labels as booleans, predictions and per-value weights, as (N, L) columns when
    ``columns`` (one per label), else flattened to (N * L, 1)."""
    y_true, y_pred, sample_weight = _arrays(y_true, y_pred, sample_weight)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{owner}: y_true has shape {y_true.shape}, y_pred {y_pred.shape}; "
                         "expected the same shape")
    n = len(y_pred)
    weight = np.ones((n, 1)) if sample_weight is None else sample_weight.reshape(n, -1)
    weight = np.broadcast_to(weight, (n, y_pred[0].size)) if n else np.ones((0, 1))
    shape = (n, -1) if columns else (-1, 1)
    return (y_true.reshape(shape) != 0, y_pred.reshape(shape).astype(float),
            weight.reshape(shape).astype(float))


@registry.register("auc", "AUC")
class AUC(Metric):
    """Area under the ROC or precision-recall curve, from confusion counts at fixed thresholds
    (Keras's algorithm, so it can be accumulated over batches).

    At each threshold ``t_j`` a prediction ``p > t_j`` counts as positive; the curve through the
    points (FPR_j, TPR_j) (ROC) or (recall_j, precision_j) (PR) is summed by rectangles of
    height ``(y_j + y_{j+1}) / 2`` (``"interpolation"``: the trapezoid rule; for PR, Davis and
    Goadrich's interpolation of precision, as Keras), ``min`` (``"minoring"``) or ``max``
    (``"majoring"``). With a threshold between every two distinct predictions the ROC area
    equals scikit-learn's ``roc_auc_score``.

    Args:
        num_thresholds: how many thresholds, evenly spaced in [0, 1] plus one just below 0
            and one just above 1 (default 200, at least 2).
        curve: ``"ROC"`` (default) or ``"PR"``.
        summation_method: ``"interpolation"`` (default), ``"minoring"`` or ``"majoring"``.
        name: default ``"auc"``.
        thresholds: explicit thresholds in [0, 1] (default ``None``); then
            ``num_thresholds = len(thresholds) + 2``.
        multi_label: one curve per label column, their areas averaged (default ``False``:
            every value is one binary decision).
        num_labels: accepted for Keras compatibility (the columns are counted at the first
            batch).
        label_weights: weights of the label areas in the average (``multi_label`` only).
        from_logits: predictions are logits; a sigmoid is applied first (default ``False``).
    """

    default_name = "auc"

    def __init__(self, num_thresholds: int = 200, curve: str = "ROC",
                 summation_method: str = "interpolation", name: str | None = None,
                 thresholds=None, multi_label: bool = False, num_labels: int | None = None,
                 label_weights=None, from_logits: bool = False):
        owner = type(self).__name__
        if curve not in ("ROC", "PR"):
            raise ValueError(f"{owner}: curve must be 'ROC' or 'PR', got {curve!r}")
        if summation_method not in ("interpolation", "minoring", "majoring"):
            raise ValueError(f"{owner}: summation_method must be 'interpolation', 'minoring' or "
                             f"'majoring', got {summation_method!r}")
        if thresholds is not None:
            inner = np.sort(np.asarray(thresholds, dtype=float).reshape(-1))
            if inner.size and not (np.all(inner >= 0) and np.all(inner <= 1)):
                raise ValueError(f"{owner}: thresholds must lie in [0, 1], got {thresholds!r}")
            num_thresholds = inner.size + 2
        elif isinstance(num_thresholds, bool) or not isinstance(num_thresholds, int) \
                or num_thresholds < 2:
            raise ValueError(f"{owner}: num_thresholds must be an int >= 2, got "
                             f"{num_thresholds!r}")
        else:
            inner = np.arange(1, num_thresholds - 1) / (num_thresholds - 1)
        self.curve, self.summation_method = curve, summation_method
        self.num_thresholds = int(num_thresholds)
        self.explicit_thresholds = None if thresholds is None else inner.tolist()
        self.thresholds = np.concatenate([[-EPSILON], inner, [1.0 + EPSILON]])
        self.multi_label, self.num_labels = bool(multi_label), num_labels
        self.label_weights = None if label_weights is None else np.asarray(
            label_weights, dtype=float).reshape(-1)
        self.from_logits = bool(from_logits)
        super().__init__(name)

    def reset_state(self) -> None:
        #: (num_thresholds, labels) weighted counts; None until the first batch
        self.true_positives = self.false_positives = None
        self.true_negatives = self.false_negatives = None

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        actual, predicted, weight = _weighted_label_columns(
            type(self).__name__, y_true, y_pred, sample_weight, self.multi_label)
        if self.from_logits:
            predicted = _sigmoid(predicted)
        # bucket b: the prediction exceeds thresholds[:b], so it is positive at every j < b
        buckets = np.searchsorted(self.thresholds, predicted, side="left")
        counts = []
        for mask in (actual, ~actual):
            per_bucket = np.zeros((self.num_thresholds + 1, predicted.shape[1]))
            for label in range(predicted.shape[1]):
                per_bucket[:, label] = np.bincount(
                    buckets[:, label], weights=(weight * mask)[:, label],
                    minlength=self.num_thresholds + 1)
            above = per_bucket[::-1].cumsum(0)[::-1]     # above[j] = sum of buckets >= j
            counts += [above[1:], above[0] - above[1:]]    # positive at j / negative at j
        tp, fn, fp, tn = counts
        if self.true_positives is None:
            self.true_positives, self.false_negatives = tp, fn
            self.false_positives, self.true_negatives = fp, tn
        elif tp.shape != self.true_positives.shape:
            raise ValueError(f"{type(self).__name__}: this batch has {tp.shape[1]} label "
                             f"columns, earlier ones {self.true_positives.shape[1]}")
        else:
            self.true_positives += tp
            self.false_negatives += fn
            self.false_positives += fp
            self.true_negatives += tn

    def result(self) -> float:
        if self.true_positives is None:
            return 0.0
        tp, fp, fn, tn = (self.true_positives, self.false_positives, self.false_negatives,
                          self.true_negatives)
        if self.curve == "PR" and self.summation_method == "interpolation":
            areas = _interpolated_pr_auc(tp, fp, fn)
        else:
            recall = _divide(tp, tp + fn)
            x, y = (_divide(fp, fp + tn), recall) if self.curve == "ROC" else (
                recall, _divide(tp, tp + fp))
            heights = {"interpolation": (y[:-1] + y[1:]) / 2,
                       "minoring": np.minimum(y[:-1], y[1:]),
                       "majoring": np.maximum(y[:-1], y[1:])}[self.summation_method]
            areas = ((x[:-1] - x[1:]) * heights).sum(0)
        if not self.multi_label:
            return float(areas[0])
        if self.label_weights is None:
            return float(areas.mean())
        return float(_divide((areas * self.label_weights).sum(), self.label_weights.sum()))

    def get_config(self):
        return {"num_thresholds": self.num_thresholds, "curve": self.curve,
                "summation_method": self.summation_method, "name": self.name,
                "thresholds": self.explicit_thresholds, "multi_label": self.multi_label,
                "num_labels": self.num_labels,
                "label_weights": None if self.label_weights is None
                else self.label_weights.tolist(), "from_logits": self.from_logits}


def _divide(a, b):
    """``a / b``, 0 where ``b`` is 0 (Keras's ``divide_no_nan``)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b != 0)


def _interpolated_pr_auc(tp, fp, fn):
    """Davis & Goadrich (2006): precision interpolated between thresholds, as Keras's
    ``interpolate_pr_auc``; each area is ``sum_j slope_j (dtp_j + b_j log(p_j / p_{j+1}))
    / (tp + fn)_{j+1}`` with ``p = tp + fp``, ``slope = dtp / dp``, ``b = tp_{j+1} - slope
    p_{j+1}``."""
    dtp = tp[:-1] - tp[1:]
    p = tp + fp
    slope = _divide(dtp, np.maximum(p[:-1] - p[1:], 0))
    intercept = tp[1:] - slope * p[1:]
    both = (p[:-1] > 0) & (p[1:] > 0)
    ratio = np.where(both, _divide(p[:-1], np.maximum(p[1:], 0)), 1.0)
    increments = _divide(slope * (dtp + intercept * np.log(ratio)),
                         np.maximum(tp[1:] + fn[1:], 0))
    return increments.sum(0)


@registry.register("f1_score", "F1Score")
class F1Score(Metric):
    """F1 score, the harmonic mean of precision and recall, per class and averaged (Keras 3's
    ``F1Score``; scikit-learn's ``f1_score`` up to Keras's epsilon)::

        P_c = TP_c / (TP_c + FP_c + eps),  R_c = TP_c / (TP_c + FN_c + eps)
        F1_c = 2 P_c R_c / (P_c + R_c + eps)

    Inputs are (batch, classes): one-hot (or multi-hot) labels and scores.

    Args:
        average: ``None`` (default, Keras's: the per-class scores as an array), ``"micro"``
            (the counts summed over classes first), ``"macro"`` (the mean of the class scores)
            or ``"weighted"`` (the mean weighted by each class's support).
        threshold: a score above it counts as predicted (default ``None``: the largest score
            of each row is the prediction).
        name: default ``"f1_score"``.
    """

    default_name = "f1_score"

    def __init__(self, average: str | None = None, threshold: float | None = None,
                 name: str | None = None):
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(f"F1Score: average must be None, 'micro', 'macro' or 'weighted', "
                             f"got {average!r}")
        if threshold is not None and not 0.0 <= float(threshold) <= 1.0:
            raise ValueError(f"F1Score: threshold must be in [0, 1] or None, got {threshold!r}")
        self.average = average
        self.threshold = None if threshold is None else float(threshold)
        super().__init__(name)

    def reset_state(self) -> None:
        self.true_positives = self.false_positives = self.false_negatives = 0.0
        self.support = 0.0                                  # weighted count of each class

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        y_true, y_pred, sample_weight = _arrays(y_true, y_pred, sample_weight)
        if y_pred.ndim != 2 or y_true.shape != y_pred.shape:
            raise ValueError(f"F1Score: expected y_true and y_pred of the same shape (batch, "
                             f"classes), got {y_true.shape} and {y_pred.shape}")
        if self.threshold is None:
            predicted = y_pred >= y_pred.max(-1, keepdims=True)
        else:
            predicted = y_pred > self.threshold
        actual = y_true != 0
        weight = np.ones((len(y_pred), 1)) if sample_weight is None else (
            sample_weight.reshape(len(y_pred), -1))
        axis = None if self.average == "micro" else 0
        self.true_positives = self.true_positives + (weight * (predicted & actual)).sum(axis)
        self.false_positives = self.false_positives + (weight * (predicted & ~actual)).sum(axis)
        self.false_negatives = self.false_negatives + (weight * (~predicted & actual)).sum(axis)
        self.support = self.support + (weight * actual).sum(axis)

    def result(self):
        """A float, or the per-class array for ``average=None``."""
        tp = np.asarray(self.true_positives, dtype=float)
        precision = tp / (tp + self.false_positives + EPSILON)
        recall = tp / (tp + self.false_negatives + EPSILON)
        f1 = 2 * precision * recall / (precision + recall + EPSILON)
        if self.average is None:
            return f1
        if self.average == "weighted":
            support = np.asarray(self.support, dtype=float)
            return float((f1 * support).sum() / support.sum()) if support.sum() else 0.0
        return float(np.mean(f1))

    def get_config(self):
        return {"average": self.average, "threshold": self.threshold, "name": self.name}


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
    output shape (one unit: binary; several: categorical). A metric named by a string id keeps
    the name the user wrote (``"accuracy"``, ``"mae"``), so History reports ``accuracy`` and
    ``val_accuracy``; one named by its class (``"RootMeanSquaredError"``) is logged under the
    class's Keras name (``root_mean_squared_error``), as TF-Keras 2 logs it.
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
    if isinstance(identifier, str) and identifier != type(metric).__name__:
        metric.name = identifier
    return metric

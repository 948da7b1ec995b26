"""What ``compile`` settles for each output of a model: its loss, the loss's weight in the total,
and its metrics.

A model with several outputs (the functional API) minimizes

    total = sum_k loss_weight_k * loss_k(y_k, y_pred_k)

and reports, as Keras does, ``loss`` (the total), ``<output>_loss`` for each output (its loss,
unweighted) and ``<output>_<metric>`` for each metric. One output reports ``loss`` and the
metric names. ``compile_config`` and ``compile_arguments`` turn the settings into JSON (for a
model file) and back: ``Model.get_compile_config`` and ``Model.compile_from_config`` use them.
"""

from __future__ import annotations

import numpy as np

from nervenet import losses, metrics, optimizers
from nervenet.autograd import Tensor
from nervenet.nest import map_structure


def per_output(value, names: list[str], argument: str, default=None) -> list:
    """Spread a compile argument over the outputs ``names``: a dict is matched by output name,
    a list/tuple must have one entry per output, anything else applies to every output."""
    if isinstance(value, dict):
        unknown = [k for k in value if k not in names]
        if unknown:
            raise ValueError(f"compile: {argument} names outputs {unknown}, but the model's "
                             f"outputs are {names}")
        return [value.get(name, default) for name in names]
    if isinstance(value, (list, tuple)) and not (argument == "metrics" and len(names) == 1):
        if len(value) != len(names):
            raise ValueError(f"compile: {argument} has {len(value)} entries for a model with "
                             f"{len(names)} output(s) {names}")
        return list(value)
    return [value] * len(names)


class OutputLosses:
    """The per-output losses and weights of a compiled model.

    Args:
        loss: one loss for every output, a list (one per output) or a dict by output name
            (outputs left out are not trained).
        loss_weights: ``None`` (all 1.0), a list or a dict by output name (default 1.0), or a
            number for a single-output model.
        output_names: the model's output names.
    """

    def __init__(self, loss, loss_weights, output_names: list[str]):
        self.output_names = list(output_names)
        given = per_output(loss, self.output_names, "loss")
        if all(entry is None for entry in given):
            raise ValueError("compile: loss is required (e.g. loss='mse')")
        self.losses = [None if entry is None else losses.get(entry) for entry in given]
        if loss_weights is None:
            weights = [1.0] * len(self.output_names)
        elif isinstance(loss_weights, (int, float)) and len(self.output_names) == 1:
            weights = [loss_weights]
        elif isinstance(loss_weights, (dict, list, tuple)):
            weights = per_output(loss_weights, self.output_names, "loss_weights", 1.0)
        else:
            raise TypeError(f"compile: loss_weights must be a list or a dict by output name, "
                            f"got {type(loss_weights).__name__}")
        for name, weight in zip(self.output_names, weights):
            if isinstance(weight, bool) or not isinstance(weight, (int, float, np.number)) or (
                    not np.isfinite(weight)) or weight < 0:
                raise ValueError(f"compile: the loss weight of output {name!r} must be a "
                                 f"finite non-negative number, got {weight!r}")
        self.weights = [float(w) for w in weights]
        self.multi = len(self.output_names) > 1
        #: the unweighted loss of each output at the last call (floats), for the logs
        self.last = [0.0] * len(self.output_names)

    def __call__(self, y, y_pred, sample_weight=None) -> Tensor:
        """The weighted total; ``y`` and ``y_pred`` are lists, one entry per output."""
        total = None
        for index, (loss, weight) in enumerate(zip(self.losses, self.weights)):
            if loss is None:
                continue
            value = output_loss(loss, y[index], y_pred[index], sample_weight)
            self.last[index] = value.data
            term = value if weight == 1.0 else value * weight
            total = term if total is None else total + term
        return total


def output_loss(loss, y, y_pred: Tensor, sample_weight=None) -> Tensor:
    """``loss(y, y_pred)``; targets of shape (N,) for outputs (N, 1) get the missing axis."""
    if isinstance(y, np.ndarray) and y.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
        y = y[..., None]
    if sample_weight is None:
        return loss(y, y_pred)
    return loss(y, y_pred, sample_weight)


class OutputMetrics:
    """The metrics of each output, resolved once the output shapes are known.

    Args:
        metric_ids: a list (every output gets each), a list of lists (one per output) or a
            dict by output name.
        output_names: the model's output names.
    """

    def __init__(self, metric_ids, output_names: list[str]):
        self.output_names = list(output_names)
        if metric_ids is None:
            metric_ids = []
        if _one_metric(metric_ids):
            metric_ids = [metric_ids]
        if isinstance(metric_ids, dict):
            spread = per_output(metric_ids, self.output_names, "metrics", [])
        elif len(self.output_names) > 1 and metric_ids and all(
                isinstance(m, (list, tuple)) for m in metric_ids):
            spread = per_output(metric_ids, self.output_names, "metrics per output")
        else:
            spread = [list(metric_ids)] * len(self.output_names)
        self.ids = [[m] if _one_metric(m) else list(m or []) for m in spread]
        #: (output index, Metric, log name), filled by ``resolve``
        self.entries: list[tuple[int, metrics.Metric, str]] = []

    def resolve(self, loss_objects: list, output_shapes: list[tuple]) -> None:
        if self.entries or not any(self.ids):
            return
        multi = len(self.output_names) > 1
        for index, ids in enumerate(self.ids):
            loss_name = getattr(loss_objects[index], "name", None)
            for identifier in ids:
                metric = metrics.get(identifier, loss_name, output_shapes[index])
                if isinstance(identifier, metrics.Metric) and multi and index > 0:
                    # one Metric object given for every output: each output needs its own state
                    metric = type(metric).from_config(metric.get_config())
                name = f"{self.output_names[index]}_{metric.name}" if multi else metric.name
                self.entries.append((index, metric, name))


def _one_metric(value) -> bool:
    """A metric id, object or ``{"class_name", "config"}`` dict (not a list or a dict by
    output name)."""
    return isinstance(value, (str, metrics.Metric)) or (
        isinstance(value, dict) and "class_name" in value)


# ------------------------------------------------------------------ the JSON form, for files
def _serialize_loss(loss):
    if loss is None or isinstance(loss, str):
        return loss
    if isinstance(loss, losses.Loss):
        return losses.serialize(loss)
    raise ValueError(f"the loss {loss!r} is a Python function, which a model file cannot name")


def _serialize_metric(metric):
    if metric is None or isinstance(metric, str):
        return metric
    name = metrics.registry.name_of(metric) if isinstance(metric, metrics.Metric) else None
    if name is not None:
        return {"class_name": name, "config": metric.get_config()}
    raise ValueError(f"the metric {metric!r} is not registered, so a model file cannot name it")


def _is_serialized(value) -> bool:
    """A serialized object ``{"class_name": ..., "config": ...}``: one leaf of a structure."""
    return isinstance(value, dict) and "class_name" in value


def _objects(value, getter):
    """``value`` with every serialized object in it rebuilt by ``getter``."""
    return map_structure(lambda leaf: getter(leaf) if _is_serialized(leaf) else leaf, value,
                         _is_serialized)


def compile_config(optimizer, loss, loss_weights=None, metrics=None,
                   jit_compile="auto") -> dict:
    """The JSON form of ``compile``'s arguments: the optimizer's config, the losses and
    metrics by registered name (with their configs), ``jit_compile``.

    Raises:
        ValueError: a loss given as a Python function, or a metric class not registered (a
            model file cannot name them).
    """
    return {"optimizer": optimizers.serialize(optimizer),
            "loss": map_structure(_serialize_loss, loss, _is_serialized),
            "loss_weights": loss_weights,
            "metrics": map_structure(_serialize_metric, metrics, _is_serialized),
            "jit_compile": jit_compile}


def compile_arguments(config: dict) -> dict:
    """``compile``'s keyword arguments from ``compile_config``'s dict (registered names only)."""
    if not isinstance(config, dict) or not {"optimizer", "loss"} <= set(config):
        raise ValueError("the compile settings must be a dict with 'optimizer' and 'loss'")
    metric_ids = config.get("metrics")
    map_structure(lambda m: metrics.get(m) if isinstance(m, str) else m, metric_ids,
                  _is_serialized)  # known ids
    return {"optimizer": optimizers.get(config["optimizer"]),
            "loss": _objects(config["loss"], losses.get),
            "loss_weights": config.get("loss_weights"),
            "metrics": _objects(metric_ids, metrics.get),
            "jit_compile": config.get("jit_compile", "auto")}

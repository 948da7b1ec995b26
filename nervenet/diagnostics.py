"""Gradient diagnostics: is the signal reaching every layer, and is every unit alive?

For a probe batch (x, y) and a model, per layer (in ``model.layers`` order):

* **gradient norm** ``||dL/dW||_2`` over all of the layer's trainable weights. Backpropagation
  multiplies the error by ``W^T`` and by the activation's derivative once per layer; a
  sigmoid's derivative is at most 1/4, so through n sigmoid layers the gradient can shrink like
  ``(1/4)^n``: the first layers stop learning (*vanishing gradients*). Norms that grow layer
  after layer, or become Inf/NaN, *explode*.
* **update ratio** ``||W_after - W_before|| / ||W_before||`` over one optimizer step (the last
  step of each epoch); about 1e-3 is healthy (CS231n's rule of thumb), much smaller means the
  layer barely learns, much larger means the learning rate is too high.
* **dead-ReLU fraction**: the share of a ReLU layer's units (channels, for feature maps) whose
  output is 0 for every probe sample; their gradient is 0, so they never recover.
* **saturated fraction**: the share of sigmoid outputs outside [1 - s, s] and of tanh outputs
  with ``|t| > s`` (s = 0.99 by default), where the derivative is nearly 0.

Activation statistics need the layers' outputs one by one, so they are computed for models
whose ``layers`` form a chain (``Sequential``); gradient norms work for every model.
``nervenet.callbacks.GradientMonitor`` records all of this after every epoch of ``fit`` and
warns when gradients vanish or explode.
"""

from __future__ import annotations

import numpy as np

from nervenet import activations, backend
from nervenet.autograd import Tensor, grad, no_grad


def layer_weights(model) -> list[tuple[str, list[Tensor]]]:
    """``(layer name, trainable weights)`` of every top-level layer that has some."""
    return [(layer.name, layer.trainable_weights) for layer in model.layers
            if layer.trainable_weights]


def gradient_norms(model, x, y, sample_weight=None, training: bool = True) -> dict[str, float]:
    """The L2 norm of the loss gradient with respect to each layer's trainable weights.

    Args:
        model: a compiled model (its loss, plus regularization, is differentiated).
        x, y: the probe batch.
        sample_weight: optional per-sample loss weights (default ``None``).
        training: run the forward pass in training mode (dropout, batch statistics) as fit
            does (default ``True``).

    Returns:
        ``{layer name: sqrt(sum over the layer's weights of ||dL/dW||^2)}``.
    """
    if getattr(model, "loss", None) is None:
        raise ValueError("gradient_norms: the model must be compiled (it needs a loss)")
    groups = layer_weights(model)
    weights = [w for _, group in groups for w in group]
    x, y = _on_model_device(model, x), _on_model_device(model, np.asarray(y))
    loss = model.compute_loss(y, model(x, training=training), sample_weight)
    gradients = grad(loss, weights, allow_unused=True)
    norms, index = {}, 0
    for name, group in groups:
        squares = 0.0
        for g in gradients[index:index + len(group)]:
            if g is not None:
                xp = backend.get_array_module(g.data)
                squares += float(xp.square(g.data, dtype=np.float64).sum())
        index += len(group)
        norms[name] = float(np.sqrt(squares))
    return norms


def _activation_kind(layer) -> str | None:
    if type(layer).__name__ == "ReLU" and not getattr(layer, "negative_slope", 0):
        return "relu"
    fn = getattr(layer, "activation", None)
    if not callable(fn):
        return None
    try:
        name = activations.serialize(fn)
    except ValueError:
        return None
    return name if name in ("relu", "sigmoid", "tanh") else None


def layer_outputs(model, x, training: bool = False) -> list[tuple[object, np.ndarray]]:
    """The output of every layer of a chain model (``Sequential``) for input ``x``.

    Returns:
        ``[(layer, output array), ...]`` in ``model.layers`` order.

    Raises:
        ValueError: for a model whose layers do not form a chain.
    """
    if not hasattr(model, "add"):  # Sequential's defining method: layers are a chain
        raise ValueError(f"layer_outputs: needs a Sequential model (a chain of layers), got "
                         f"{type(model).__name__}")
    outputs = []
    with no_grad():
        value = _on_model_device(model, x)
        for layer in model.layers:
            value = layer(value, training=training)
            outputs.append((layer, value.numpy()))  # on the host, for the statistics
    return outputs


def _on_model_device(model, x):
    """A probe batch on the device of the model's weights (``Model.to``)."""
    if isinstance(x, Tensor):
        x = x.data
    return backend.to_device(backend.as_array(x), getattr(model, "device", "cpu"))


def activation_statistics(model, x, saturation: float = 0.99) -> dict[str, dict[str, float]]:
    """Dead-ReLU and saturation fractions of the ReLU, sigmoid and tanh layers.

    Args:
        model: a ``Sequential`` model.
        x: the probe inputs.
        saturation: the threshold s of the module docstring (default 0.99).

    Returns:
        ``{layer name: {"dead_fraction": f}}`` for ReLU layers and
        ``{layer name: {"saturated_fraction": f}}`` for sigmoid and tanh layers.

    Example:
        >>> from nervenet import layers, models
        >>> model = models.Sequential([layers.Dense(2, activation="relu",
        ...                                         kernel_initializer="ones",
        ...                                         name="hidden")])
        >>> activation_statistics(model, -np.ones((3, 2)))   # every unit is 0: dead
        {'hidden': {'dead_fraction': 1.0}}
    """
    if not 0.5 < saturation < 1:
        raise ValueError(f"activation_statistics: saturation must be in (0.5, 1), got "
                         f"{saturation}")
    stats = {}
    for layer, out in layer_outputs(model, x):
        kind = _activation_kind(layer)
        if kind == "relu":
            per_unit = out.reshape(-1, out.shape[-1])
            stats[layer.name] = {"dead_fraction": float(np.mean(np.all(per_unit <= 0, axis=0)))}
        elif kind == "sigmoid":
            stats[layer.name] = {"saturated_fraction": float(np.mean(
                (out < 1 - saturation) | (out > saturation)))}
        elif kind == "tanh":
            stats[layer.name] = {"saturated_fraction": float(np.mean(np.abs(out) > saturation))}
    return stats

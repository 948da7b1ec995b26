"""Folding batch normalization into the layer before it, for inference.

At inference a BatchNormalization layer is a fixed affine map per channel,

    z' = a * z + b,   a = gamma / sqrt(var + eps),   b = beta - a * mu,

with the moving (or recomputed) statistics mu and var. When the layer before it is linear in
its input, ``z = x @ W + c`` (a Dense layer, or a Conv2D with kernel (kh, kw, in, out), whose
output channel j is a sum of inputs times ``W[..., j]``), the two compose into one layer of
the same kind:

    z' = a * (x @ W + c) + b = x @ (W * a) + (a * c + b),

that is ``W'[..., j] = a_j * W[..., j]`` and ``c' = a * c + b``: one multiply per weight, done
once, and inference pays nothing for the normalization. A BatchNormalization with no such
layer before it (after an activation, or first in the model) becomes a ``ScaleShift`` layer.
"""

from __future__ import annotations

import numpy as np

from nervenet import activations
from nervenet.layers.base import Layer, registry
from nervenet.layers.normalization import BatchNormalization
from nervenet.models.sequential import Sequential


def _clone(layer: Layer) -> Layer:
    """A new layer from ``layer``'s config, built for the same input, with copies of its
    weights."""
    if isinstance(layer, Sequential):
        return _fold_sequential(layer)
    clone = registry.from_config({"class_name": type(layer).__name__,
                                  "config": layer.get_config()})
    if layer.weights:
        clone.build(layer.input_shape)
        clone.built = True
        clone.set_weights(layer.get_weights())
    return clone


def _foldable_into(previous: Layer | None, bn: BatchNormalization) -> bool:
    """Whether ``bn`` can be merged into ``previous``: a layer whose output is linear in its
    input, with a kernel whose last axis is the output channel (Dense, Conv1D/2D/3D, found by
    duck-typing on ``kernel`` and ``units``/``filters``) and no activation after it."""
    if previous is None or getattr(previous, "kernel", None) is None:
        return False
    channels = getattr(previous, "units", getattr(previous, "filters", None))
    if channels is None or previous.kernel.shape[-1] != channels:
        return False
    if getattr(previous, "activation", activations.linear) is not activations.linear:
        return False
    if getattr(previous, "data_format", "channels_last") != "channels_last":
        return False
    ndim = len(previous.output_shape)
    return bn.axis % ndim == ndim - 1 and not hasattr(previous, "depth_multiplier")


def _merge(previous: Layer, bn: BatchNormalization) -> Layer:
    """A copy of ``previous`` computing ``bn(previous(x))`` at inference."""
    a, b = bn.folded_affine()
    config = {**previous.get_config(), "use_bias": True}
    merged = registry.from_config({"class_name": type(previous).__name__, "config": config})
    merged.build(previous.input_shape)
    merged.built = True
    kernel = previous.kernel.data.astype(np.float64) * a
    bias = np.zeros_like(a) if previous.bias is None else previous.bias.data.astype(np.float64)
    values = {"kernel": kernel, "bias": a * bias + b}
    merged.set_weights([values[w.name.rsplit("/", 1)[-1]].astype(w.dtype)
                        for w in merged.weights])
    return merged


def _fold_sequential(model: Sequential) -> Sequential:
    if not model.built or model.output_shape is None:
        raise ValueError(f"fold_batch_norm: model {model.name!r} must be built (call it on data "
                         "or give it an Input) before folding")
    folded: list[Layer] = []
    previous: Layer | None = None  # the last original layer, while it can still take a BN
    for layer in model._stack:
        if isinstance(layer, BatchNormalization):
            if _foldable_into(previous, layer):
                folded[-1] = _merge(previous, layer)
            else:
                folded.append(layer.fold())
            previous = None  # a second BatchNormalization in a row folds into a ScaleShift
            continue
        folded.append(_clone(layer))
        previous = layer
    stack = [] if model._input_layer is None else [_clone(model._input_layer)]
    result = Sequential(stack + folded, name=f"{model.name}_folded")
    if model._input_layer is None:
        result.build(model.input_shape)
        result.built = True
    return result


def fold_batch_norm(model: Sequential) -> Sequential:
    """An inference copy of ``model`` without BatchNormalization layers.

    Each BatchNormalization (with its moving statistics) is merged into the Dense or Conv2D
    layer before it when that layer has no activation:
    ``W' = W * gamma / sqrt(var + eps)`` per output channel and
    ``c' = (c - mu) * gamma / sqrt(var + eps) + beta``; otherwise it becomes its ``fold()``,
    a ``ScaleShift`` layer. Nested Sequential models are folded too. The original model is not
    changed and shares no weight with the copy. The copy's predictions equal the original's
    inference predictions up to rounding; use it for inference only (its layers no longer
    normalize with batch statistics in training).

    Args:
        model: a built Sequential model.

    Returns:
        A new Sequential model.

    Raises:
        TypeError: when ``model`` is not a Sequential model.
        ValueError: when it is not built.

    Example:
        >>> from nervenet import layers, models
        >>> from nervenet.layers.normalization import BatchNormalization
        >>> model = models.Sequential([layers.Input(shape=(3,)), layers.Dense(4),
        ...                            BatchNormalization(), layers.Dense(1)])
        >>> folded = fold_batch_norm(model)
        >>> [type(layer).__name__ for layer in folded.layers]
        ['Dense', 'Dense']
        >>> x = np.ones((2, 3), dtype=np.float32)
        >>> bool(np.allclose(folded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6))
        True
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"fold_batch_norm: model must be a Sequential model (nested ones "
                        f"included), got {type(model).__name__}")
    return _fold_sequential(model)

"""``clone_model``: the same architecture with new layers (and new weights), as Keras's.

Transfer learning often starts here: clone a trained model, copy its weights over
(``clone.set_weights(model.get_weights())``), and change the clone without touching the
original, whose layers would otherwise be shared.
"""

from __future__ import annotations

from collections.abc import Callable

from nervenet.layers.base import Layer, deserialize
from nervenet.layers.core import InputLayer
from nervenet.models.functional import Graph
from nervenet.models.model import Model
from nervenet.models.sequential import Sequential


def _fresh(layer: Layer) -> Layer:
    return type(layer).from_config(layer.get_config())


def clone_model(model: Model, clone_function: Callable[[Layer], Layer] | None = None) -> Model:
    """A new model with the architecture of ``model``: every layer rebuilt from its config,
    so the weights are newly initialized (copy them with ``set_weights`` if you want them).

    Args:
        model: a Sequential or functional model.
        clone_function: ``layer -> new layer``, called for every layer except Inputs (default:
            ``type(layer).from_config(layer.get_config())``); return the layer itself to share
            it with the original.

    Returns:
        The clone (not compiled).

    Raises:
        ValueError: a subclassed model (its architecture is code, not a graph).

    Example:
        >>> from nervenet import layers
        >>> model = Sequential([layers.Input(shape=(3,)), layers.Dense(2)])
        >>> clone = clone_model(model)
        >>> clone.layers[0] is model.layers[0], clone.count_params()
        (False, 8)
    """
    clone_function = clone_function or _fresh
    if isinstance(model, Sequential):
        stack = [clone_function(layer) for layer in model.layers]
        if model._input_layer is not None:
            stack.insert(0, deserialize({"class_name": "InputLayer",
                                         "config": model._input_layer.get_config()}))
        return Sequential(stack, name=model.name, trainable=model.trainable)
    graph = getattr(model, "_graph", None)
    if graph is None:
        raise ValueError(f"clone_model: {model.name!r} is a subclassed model; its architecture "
                         "is its Python code: create a new instance of its class instead")
    originals = {layer.name: layer for layer in graph.layers}

    def rebuild(entry: dict) -> Layer:
        original = originals[entry["config"]["name"]]
        if isinstance(original, InputLayer):
            return deserialize({"class_name": "InputLayer", "config": original.get_config()})
        return clone_function(original)

    inputs, outputs = Graph.inputs_outputs_from_config(graph.get_config(False),
                                                       clone_function=rebuild)
    return Model(inputs=inputs, outputs=outputs, name=model.name, trainable=model.trainable)

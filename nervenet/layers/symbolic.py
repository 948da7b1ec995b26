"""The symbolic graph the functional API is built from (as Keras's KerasTensor and Node).

``Input`` returns a ``SymbolicTensor``: a placeholder with a shape and a dtype and no values.
Calling a layer on placeholders computes nothing: the layer is built for their shapes, and
``record_call`` writes down a ``Node`` (this layer, these arguments) and returns new
placeholders for the outputs, each knowing the node that produced it. ``Model(inputs,
outputs)`` (``models/functional.py``) walks these nodes back from the outputs to learn the
graph.

This module knows nothing of ``Layer``'s machinery: it asks a layer only for its ``name``,
``dtype``, ``call`` signature and the list ``_inbound_nodes`` of its recorded calls.
"""

from __future__ import annotations

import inspect

import numpy as np

from nervenet import nest


class SymbolicTensor:
    """A placeholder for data a model will receive: a shape (batch axis ``None``), a dtype,
    and where it comes from (``node``: the layer call that produced it, and ``index``, which
    output of that call). ``Input`` returns one; calling a layer on one returns another."""

    def __init__(self, shape: tuple, dtype, node: Node | None = None, index: int = 0,
                 name: str | None = None):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.node = node
        self.index = index
        self.name = name

    @property
    def layer(self):
        """The layer that produced this tensor (an InputLayer for a model input)."""
        return None if self.node is None else self.node.layer

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        producer = "" if self.layer is None else f" from {self.layer.name!r}"
        return f"<SymbolicTensor shape={self.shape} dtype={self.dtype}{producer}>"


class Node:
    """One call of ``layer`` on symbolic inputs: the graph edge the functional API follows.

    Attributes:
        layer: the layer called.
        args: the inputs exactly as given (a SymbolicTensor, or a list/tuple/dict of them).
        kwargs: extra keyword arguments of the call (JSON-serialisable values only).
        inputs: the SymbolicTensors in ``args``, flattened in order.
        outputs: the SymbolicTensors the call produced.
    """

    def __init__(self, layer, args, kwargs: dict | None = None):
        self.layer = layer
        self.args = args
        self.kwargs = dict(kwargs or {})
        self.inputs = nest.flatten(args)
        self.outputs: list[SymbolicTensor] = []

    def __repr__(self) -> str:
        return f"<Node {self.layer.name!r}: {len(self.inputs)} in, {len(self.outputs)} out>"


def is_symbolic(inputs) -> bool:
    """Whether ``inputs`` (one value or a structure) holds a SymbolicTensor."""
    if type(inputs) is SymbolicTensor:
        return True
    return nest.is_nested(inputs) and any(
        type(leaf) is SymbolicTensor for leaf in nest.flatten(inputs))


def symbolic_shapes(layer, inputs) -> list[tuple]:
    """The shapes of the placeholders in ``inputs``, which must all be placeholders."""
    leaves = nest.flatten(inputs)
    if not all(type(leaf) is SymbolicTensor for leaf in leaves):
        kinds = sorted({type(leaf).__name__ for leaf in leaves})
        raise TypeError(f"{layer.name}: cannot mix symbolic tensors (from Input) with other "
                        f"values in one call; got {', '.join(kinds)}")
    return [leaf.shape for leaf in leaves]


def check_call_arguments(layer, kwargs: dict) -> None:
    """The keyword arguments of a recorded call must be ones ``layer.call`` takes (a saved
    graph naming others would fail only when it runs)."""
    parameters = inspect.signature(type(layer).call).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    unknown = sorted(set(kwargs) - set(parameters) - {"self"})
    if unknown:
        raise TypeError(f"{type(layer).__name__} layer {layer.name!r}: call() takes no "
                        f"argument(s) {unknown}; it takes {sorted(set(parameters) - {'self'})}")


def record_call(layer, args, kwargs: dict, output_shapes, output_dtypes=None,
                name: str | None = None):
    """Record one call of ``layer`` on the placeholders ``args``: a ``Node`` appended to
    ``layer._inbound_nodes``, with one new placeholder per output.

    Args:
        output_shapes: one shape, or a list of shapes for a layer with several outputs.
        output_dtypes: one dtype per output (default ``None``: the layer's dtype).
        name: the name of the (single) output placeholder (default ``None``).

    Returns:
        The output placeholder, or a list of them for several outputs.
    """
    several = isinstance(output_shapes, list) and all(
        isinstance(s, (list, tuple)) for s in output_shapes)
    shapes = [tuple(s) for s in output_shapes] if several else [tuple(output_shapes)]
    node = Node(layer, args, kwargs)
    for index, shape in enumerate(shapes):
        dtype = layer.dtype if output_dtypes is None else output_dtypes[index]
        node.outputs.append(SymbolicTensor(shape, dtype, node, index, name))
    layer._inbound_nodes.append(node)
    return list(node.outputs) if several else node.outputs[0]

"""What the exporter works on: a model traced into layer calls, and the ONNX graph being built.

**Tracing.** ``trace(model)`` calls the model's ``call`` on fresh ``Input`` placeholders. Every
layer call inside then records a ``Node`` (as the functional API does), so Sequential,
functional and subclassed models all become one list of layer calls in execution order; a
nested model is one call, traced again when it is converted. A subclassed ``call`` that does
arithmetic on tensors (not only layer calls) cannot be traced: that is a clear error.

**Building.** ``GraphBuilder`` collects ONNX nodes and initializers with unique names, knows the
opset (some operators changed: ``ReduceMax``'s axes became an input in opset 18, ``Gelu`` and
``Mish`` appeared in 20 and 18), and remembers which initializer holds which model weight, so
that ``nervenet.onnx.load`` can give a nervenet export back its exact weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper

from nervenet.layers.base import Layer, nested_layers
from nervenet.layers.core import Input, InputLayer
from nervenet.layers.symbolic import SymbolicTensor
from nervenet.models.functional import _topological_order
from nervenet.nest import flatten

__all__ = ["Call", "GraphBuilder", "TracedModel", "trace"]


@dataclass
class Call:
    """One layer call of a traced model: the layer, its input and output placeholders and the
    keyword arguments it was called with."""

    layer: Layer
    inputs: list[SymbolicTensor]
    outputs: list[SymbolicTensor]
    kwargs: dict = field(default_factory=dict)

    @property
    def input_shapes(self) -> list[tuple]:
        return [t.shape for t in self.inputs]

    @property
    def output_shapes(self) -> list[tuple]:
        return [t.shape for t in self.outputs]


@dataclass
class TracedModel:
    """A model as its inputs, its layer calls in execution order and its outputs."""

    inputs: list[SymbolicTensor]
    calls: list[Call]
    outputs: list[SymbolicTensor]


def _input_shapes(model: Layer) -> list[tuple]:
    shape = model.input_shape
    if shape is None or not model.built:
        raise ValueError(f"model {model.name!r} is not built: call it on data (or give it an "
                         "Input) before exporting it")
    shapes = shape if isinstance(shape, list) else [shape]
    return [tuple(s) for s in shapes]


def trace(model: Layer, input_shapes: list[tuple] | None = None) -> TracedModel:
    """The layer calls ``model.call`` makes, found by calling it on placeholders of its input
    shapes (or ``input_shapes``). Nothing is computed, and the model is left as it was.

    Raises:
        ValueError: the model is not built, or its ``call`` does more than call layers.
    """
    shapes = _input_shapes(model) if input_shapes is None else input_shapes
    placeholders = [Input(shape=s[1:], batch_size=s[0]) for s in shapes]
    touched = [model, *nested_layers(model)]
    recorded = [len(layer._inbound_nodes) for layer in touched]
    try:
        arguments = placeholders[0] if len(placeholders) == 1 else list(placeholders)
        try:
            result = model.call(arguments)
        except (TypeError, AttributeError) as error:
            raise ValueError(
                f"cannot export model {model.name!r}: tracing its call() failed ({error}); a "
                "subclassed model can be exported when its call() only calls layers (write "
                "tensor arithmetic as layers, e.g. layers.Add)") from None
        outputs = flatten(result)
        if not all(type(t) is SymbolicTensor for t in outputs):
            raise ValueError(f"cannot export model {model.name!r}: its call() returned "
                             "something other than layer outputs")
        nodes = _topological_order(outputs)
    finally:  # the placeholder calls must not stay in the layers' graphs
        for layer, count in zip(touched, recorded):
            del layer._inbound_nodes[count:]
    given = {id(p.node) for p in placeholders}
    calls = []
    for node in nodes:
        if not node.inputs:
            if id(node) not in given:
                raise ValueError(f"cannot export model {model.name!r}: layer "
                                 f"{node.layer.name!r} starts from an input that is not the "
                                 "model's")
            continue
        calls.append(Call(node.layer, list(node.inputs), list(node.outputs), dict(node.kwargs)))
    return TracedModel(placeholders, calls, outputs)


def is_input_call(call: Call) -> bool:
    """An InputLayer applied to a placeholder (what Sequential and functional models do)."""
    return isinstance(call.layer, InputLayer)


class GraphBuilder:
    """Collects the nodes, initializers, inputs and outputs of one ONNX graph.

    Args:
        opset: the ONNX opset the nodes must follow.
        dtype: the floating dtype of the model's values (float32 or float64).
        weight_paths: ``id(weight Tensor) -> path`` (``Layer.named_weights``), so that
            initializers made from a model weight are recorded in ``weight_map``.
    """

    def __init__(self, opset: int, dtype, weight_paths: dict[int, str]):
        self.opset = opset
        self.dtype = np.dtype(dtype)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.weight_paths = weight_paths
        #: weight path -> (initializer name, permutation applied to the weight, or None)
        self.weight_map: dict[str, tuple[str, list[int] | None]] = {}
        self._names: set[str] = set()
        self._weights: dict[tuple[int, tuple | None], str] = {}

    # ---------------------------------------------------------------------- names
    def unique(self, base: str) -> str:
        """``base``, or ``base_1``, ``base_2``, ... whichever is not taken yet."""
        name, count = base, 1
        while name in self._names:
            name, count = f"{base}_{count}", count + 1
        self._names.add(name)
        return name

    def reserve(self, name: str) -> None:
        if name in self._names:
            raise ValueError(f"the ONNX name {name!r} is used twice")
        self._names.add(name)

    # ---------------------------------------------------------------- initializers
    def constant(self, value, name: str, dtype=None) -> str:
        """An initializer holding ``value`` (in the model's dtype unless ``dtype``)."""
        array = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        name = self.unique(name)
        self.initializers.append(numpy_helper.from_array(array.copy(order="C"), name))
        return name

    def ints(self, values, name: str) -> str:
        """An int64 initializer (shapes, axes, pads)."""
        return self.constant(np.asarray(values, dtype=np.int64), name, dtype=np.int64)

    def weight(self, tensor, name: str, perm: list[int] | None = None) -> str:
        """The initializer of a layer weight (transposed by ``perm``); a model weight is
        recorded so that ``load`` can restore it, and is written once however often used."""
        key = (id(tensor), None if perm is None else tuple(perm))
        if key in self._weights:
            return self._weights[key]
        array = getattr(tensor, "data", tensor)
        array = array if perm is None else np.transpose(array, perm)
        initializer = self.constant(array, name)
        path = self.weight_paths.get(id(tensor))
        if path is not None and path not in self.weight_map:
            self.weight_map[path] = (initializer, None if perm is None else list(perm))
        self._weights[key] = initializer
        return initializer

    # ----------------------------------------------------------------------- nodes
    def node(self, op: str, inputs: list[str], name: str, outputs: int = 1,
             **attributes) -> str | list[str]:
        """Append an ``op`` node; returns its output name (a list for several outputs)."""
        node_name = self.unique(name)
        names = [node_name] + [self.unique(f"{node_name}:{i}") for i in range(1, outputs)]
        self.nodes.append(helper.make_node(op, inputs, names, name=node_name, **attributes))
        return names[0] if outputs == 1 else names

    def reduce(self, op: str, x: str, axes: list[int], keepdims: bool, name: str) -> str:
        """``ReduceMax``/``ReduceMean``/... over ``axes``: an attribute before opset 18, an
        input from opset 18 on."""
        if self.opset >= 18:
            return self.node(op, [x, self.ints(axes, f"{name}/axes")], name,
                             keepdims=int(keepdims))
        return self.node(op, [x], name, axes=list(axes), keepdims=int(keepdims))

    def scalar(self, value: float, name: str) -> str:
        return self.constant(np.asarray(value, dtype=self.dtype), name)

    def value_info(self, name: str, shape: tuple, batch: int | None) -> onnx.ValueInfoProto:
        """A graph input/output: the batch axis is ``batch`` (``None``: the symbol ``N``),
        other unknown sizes get their own symbols."""
        dims = [("N" if batch is None else batch) if i == 0 else
                (f"{name}_dim{i}" if d is None else d) for i, d in enumerate(shape)]
        elem_type = helper.np_dtype_to_tensor_dtype(self.dtype)
        return helper.make_tensor_value_info(name, elem_type, dims)

"""The functional API's graph: the layer calls between input placeholders and outputs.

Calling a layer on ``SymbolicTensor`` placeholders records a ``Node`` (see
``nervenet.layers.base``); ``Graph(inputs, outputs)`` walks those nodes back from the outputs,
orders them so that every node comes after the nodes that feed it (a topological order), and
then runs them in that order on real data:

    input_ = layers.Input(shape=(8,))
    hidden = layers.Dense(30, activation="relu")(input_)     # records Node(dense, input_)
    concat = layers.Concatenate()([input_, hidden])           # records Node(concatenate, ...)
    output = layers.Dense(1)(concat)
    model = models.Model(inputs=[input_], outputs=[output])   # Graph(inputs, outputs)

A layer called several times (a shared layer) has several nodes and one set of weights; a
model called on placeholders is one node, like any layer (a nested model).

The graph is also what a saved functional model stores: each layer's config once, then the
nodes in execution order, each naming its inputs as ``[layer name, node index, tensor index]``.
"""

from __future__ import annotations

from nervenet.layers.base import Layer, deserialize, serialize
from nervenet.layers.core import InputLayer
from nervenet.layers.symbolic import Node, SymbolicTensor
from nervenet.nest import flatten, map_structure


class Graph:
    """The directed acyclic graph of layer calls from ``inputs`` to ``outputs``.

    Args:
        inputs: the model's inputs: one SymbolicTensor from ``Input``, or a list, tuple or dict
            (by name) of them.
        outputs: SymbolicTensors computed from the inputs: one, or a list/tuple of them.

    Attributes:
        inputs, outputs: flat lists of SymbolicTensors.
        input_layers: the InputLayer of each input.
        nodes: every node in execution order (the input nodes included).
        layers: every layer once, in order of first use (input layers included).
        input_names, output_names: names used to feed or read data by name.
    """

    def __init__(self, inputs, outputs):
        self.input_struct = inputs
        self.inputs = _flatten_placeholders(inputs, "inputs")
        self.outputs = _flatten_placeholders(outputs, "outputs")
        self.single_output = not isinstance(outputs, (list, tuple)) or len(self.outputs) == 1
        self.input_is_dict = isinstance(inputs, dict)
        for index, tensor in enumerate(self.inputs):
            if not isinstance(tensor.layer, InputLayer):
                raise ValueError(f"Model: inputs[{index}] must come straight from "
                                 f"layers.Input(...), got the output of layer "
                                 f"{tensor.layer.name!r}")
        if len({id(t) for t in self.inputs}) != len(self.inputs):
            raise ValueError("Model: the same Input is given twice in inputs")
        self.input_layers: list[InputLayer] = [t.layer for t in self.inputs]
        self.nodes = _topological_order(self.outputs)
        given = {id(t.node) for t in self.inputs}
        for node in self.nodes:
            if isinstance(node.layer, InputLayer) and id(node) not in given:
                raise ValueError(
                    f"Model: graph disconnected: the outputs depend on the input "
                    f"{node.layer.name!r}, which is not among the model's inputs "
                    f"{[t.layer.name for t in self.inputs]}")
        self._compute = [node for node in self.nodes if not isinstance(node.layer, InputLayer)]
        self.layers: list[Layer] = list(self.input_layers)
        for node in self._compute:
            if all(node.layer is not seen for seen in self.layers):
                self.layers.append(node.layer)
        names = [layer.name for layer in self.layers]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"Model: layer names must be unique within a model; "
                             f"{duplicated} name several layers")
        if self.input_is_dict:
            self.input_names = list(inputs)
        else:
            self.input_names = [layer.name for layer in self.input_layers]
        self.output_names = _unique_names([t.layer.name for t in self.outputs])
        # node index of each node within its layer's nodes in this graph (for configs)
        self._node_index: dict[int, int] = {}
        counts: dict[int, int] = {}
        for node in self.nodes:
            self._node_index[id(node)] = counts.get(id(node.layer), 0)
            counts[id(node.layer)] = self._node_index[id(node)] + 1

    # ------------------------------------------------------------------------ running
    def run(self, inputs, training: bool = False):
        """Compute the outputs for real ``inputs`` (arrays or Tensors, structured as the
        model's inputs: one, a list/tuple, or a dict by input name)."""
        values: dict[int, object] = {}
        for tensor, layer, value in zip(self.inputs, self.input_layers,
                                        self.standardize_inputs(inputs)):
            values[id(tensor)] = layer(value)
        for node in self._compute:
            args = node.args
            if type(args) is SymbolicTensor:
                args = values[id(args)]
            else:
                args = map_structure(lambda t: values[id(t)], args)
            result = node.layer(args, training=training, **node.kwargs)
            if len(node.outputs) == 1 and not isinstance(result, (list, tuple)):
                values[id(node.outputs[0])] = result
            else:
                for tensor, value in zip(node.outputs, result):
                    values[id(tensor)] = value
        if self.single_output:
            return values[id(self.outputs[0])]
        return [values[id(t)] for t in self.outputs]

    def standardize_inputs(self, inputs) -> list:
        """The inputs as a list in the order of ``self.inputs`` (a dict is matched by name)."""
        count = len(self.inputs)
        if isinstance(inputs, dict):
            missing = [n for n in self.input_names if n not in inputs]
            unknown = [k for k in inputs if k not in self.input_names]
            if missing or unknown:
                raise ValueError(f"x: the model's inputs are named {self.input_names}; "
                                 f"missing {missing}, unexpected {unknown}")
            return [inputs[name] for name in self.input_names]
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != count:
                raise ValueError(f"x: the model has {count} input(s) {self.input_names}, got "
                                 f"a {type(inputs).__name__} of {len(inputs)} arrays")
            return list(inputs)
        if count != 1:
            raise ValueError(f"x: the model has {count} inputs {self.input_names}; give a "
                             "list (in that order) or a dict keyed by these names")
        return [inputs]

    def output_shapes(self) -> list[tuple]:
        return [t.shape for t in self.outputs]

    # ------------------------------------------------------------------- description
    def connections(self, layer: Layer) -> list[str]:
        """Where ``layer``'s inputs come from, as Keras writes it: ``dense_1[0][0]``."""
        found = []
        for node in self.nodes:
            if node.layer is layer:
                found += [f"{t.layer.name}[{self._node_index[id(t.node)]}][{t.index}]"
                          for t in node.inputs]
        return found

    # ----------------------------------------------------------------- configuration
    def _reference(self, tensor: SymbolicTensor) -> list:
        return [tensor.layer.name, self._node_index[id(tensor.node)], tensor.index]

    def get_config(self, with_layer_configs: bool = True) -> dict:
        """Every layer's config once, the nodes in execution order, and which tensors are
        the inputs and outputs (JSON-serialisable). ``with_layer_configs=False`` names the
        layers only (what ``clone_model`` needs)."""

        def reference(tensor):
            return {"tensor": self._reference(tensor)}

        if self.input_is_dict:
            input_refs = {k: self._reference(t) for k, t in self.input_struct.items()}
        else:
            input_refs = [self._reference(t) for t in self.inputs]
        return {
            "layers": [serialize(layer) if with_layer_configs else
                       {"class_name": None, "config": {"name": layer.name}}
                       for layer in self.layers],
            "nodes": [{"layer": node.layer.name, "args": map_structure(reference, node.args),
                       "kwargs": node.kwargs} for node in self._compute],
            "input_layers": input_refs,
            "output_layers": [self._reference(t) for t in self.outputs],
            "single_output": self.single_output,
        }

    @staticmethod
    def inputs_outputs_from_config(config: dict, clone_function=None):
        """Rebuild the layers and replay the nodes of ``get_config()``'s dict; returns
        ``(inputs, outputs)`` placeholders ready for ``Model(inputs, outputs)``.

        Args:
            config: the dict.
            clone_function: called on each rebuilt layer config entry, returning the layer to
                use (default: ``deserialize``); ``clone_model`` passes its own.
        """
        layers: dict[str, Layer] = {}
        produced: dict[str, list[list[SymbolicTensor]]] = {}
        for entry in _expect(config, "layers", list):
            layer = deserialize(entry) if clone_function is None else clone_function(entry)
            if layer.name in layers:
                raise ValueError(f"two layers are named {layer.name!r}")
            layers[layer.name] = layer
            if isinstance(layer, InputLayer):
                produced[layer.name] = [[layer.output]]

        def lookup(reference) -> SymbolicTensor:
            if (not isinstance(reference, list) or len(reference) != 3
                    or not isinstance(reference[0], str)
                    or not all(isinstance(i, int) and i >= 0 for i in reference[1:])):
                raise ValueError(f"a tensor reference must be [layer name, node index, "
                                 f"tensor index], got {reference!r}")
            name, node_index, tensor_index = reference
            try:
                return produced[name][node_index][tensor_index]
            except (KeyError, IndexError):
                raise ValueError(f"the graph refers to tensor {reference!r}, which no earlier "
                                 "node produced") from None

        def is_reference(value) -> bool:
            return isinstance(value, dict) and set(value) == {"tensor"}

        def resolve(value):
            if not is_reference(value):
                raise ValueError(f"unexpected value in a node's arguments: {value!r}")
            return lookup(value["tensor"])

        for node in _expect(config, "nodes", list):
            if not isinstance(node, dict) or node.get("layer") not in layers:
                raise ValueError(f"a node must name one of the layers {sorted(layers)}, got "
                                 f"{node!r}")
            kwargs = node.get("kwargs") or {}
            if not isinstance(kwargs, dict):
                raise ValueError(f"a node's kwargs must be a dict, got {kwargs!r}")
            outputs = layers[node["layer"]](map_structure(resolve, node.get("args"), is_reference),
                                              **kwargs)
            outputs = outputs if isinstance(outputs, list) else [outputs]
            produced.setdefault(node["layer"], []).append(outputs)
        input_refs = config.get("input_layers")
        if isinstance(input_refs, dict):
            inputs = {k: lookup(v) for k, v in input_refs.items()}
        else:
            inputs = [lookup(r) for r in _expect(config, "input_layers", list)]
        outputs = [lookup(r) for r in _expect(config, "output_layers", list)]
        if config.get("single_output", False) and len(outputs) == 1:
            outputs = outputs[0]
        return inputs, outputs


def _expect(config: dict, key: str, kind: type):
    value = config.get(key) if isinstance(config, dict) else None
    if not isinstance(value, kind):
        raise ValueError(f"functional model config: {key!r} must be a {kind.__name__}, got "
                         f"{type(value).__name__}")
    return value


def _flatten_placeholders(value, argument: str) -> list[SymbolicTensor]:
    leaves = flatten(value)
    if not leaves:
        raise ValueError(f"Model: {argument} must not be empty")
    for index, leaf in enumerate(leaves):
        if type(leaf) is not SymbolicTensor:
            raise TypeError(f"Model: {argument} must be symbolic tensors (from layers.Input and "
                            f"layer calls on them), got {type(leaf).__name__} at position "
                            f"{index}")
    return leaves


def _topological_order(outputs: list[SymbolicTensor]) -> list[Node]:
    """Every node the outputs depend on, each after all the nodes feeding it (an iterative
    depth-first search: post-order from the outputs, inputs visited in call order)."""
    order: list[Node] = []
    done: set[int] = set()
    stack = [(t.node, False) for t in reversed(outputs)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in done:
            continue
        if expanded:
            done.add(id(node))
            order.append(node)
            continue
        stack.append((node, True))
        for tensor in reversed(node.inputs):
            if id(tensor.node) not in done:
                stack.append((tensor.node, False))
    return order


def _unique_names(names: list[str]) -> list[str]:
    out = []
    for name in names:
        candidate, count = name, 1
        while candidate in out:
            candidate, count = f"{name}_{count}", count + 1
        out.append(candidate)
    return out

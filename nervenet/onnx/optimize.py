"""A peephole pass over the exported nodes: inverse Transpose pairs cancel.

Each channels-first layer is written between a Transpose to NCHW and one back to NHWC, so two
such layers in a row (Conv2D then MaxPooling2D) leave ``Transpose(to NHWC)`` followed by
``Transpose(to NCHW)``: together the identity. An elementwise operator between them (a ReLU
layer) acts on each value alone, so it may run in either layout and the pair still cancels.
This is the core of tf2onnx's transpose optimizer, for the chains this exporter writes.
"""

from __future__ import annotations

import onnx

__all__ = ["cancel_transposes"]

#: single-input operators that act on each value alone (the layout does not matter to them)
ELEMENTWISE = {"Relu", "LeakyRelu", "Elu", "Selu", "Sigmoid", "Tanh", "Softplus", "Gelu",
               "Mish", "Erf", "Identity"}


def _perm(node: onnx.NodeProto) -> list[int]:
    return next(list(a.ints) for a in node.attribute if a.name == "perm")


def _find_pair(nodes, producers, consumers, protected):
    """``(first, chain, second)``: two Transposes whose permutations compose to the identity,
    joined by a chain of elementwise nodes, every tensor between them used once."""
    for second in nodes:
        if second.op_type != "Transpose" or second.output[0] in protected:
            continue
        chain, tensor = [], second.input[0]
        while True:
            producer = producers.get(tensor)
            if producer is None or len(consumers.get(tensor, ())) != 1 or tensor in protected:
                break
            if producer.op_type == "Transpose":
                first, second_perm = _perm(producer), _perm(second)
                if [first[p] for p in second_perm] == list(range(len(first))):
                    return producer, chain, second
                break
            if producer.op_type not in ELEMENTWISE or len(producer.input) != 1:
                break
            chain.append(producer)
            tensor = producer.input[0]
    return None


def cancel_transposes(nodes: list[onnx.NodeProto], protected: set[str]) -> list[onnx.NodeProto]:
    """``nodes`` without the Transpose pairs that undo each other (see the module docstring).
    ``protected`` names tensors that must stay (the graph's outputs)."""
    nodes = list(nodes)
    while True:
        producers = {out: node for node in nodes for out in node.output}
        consumers: dict[str, list] = {}
        for node in nodes:
            for name in node.input:
                consumers.setdefault(name, []).append(node)
        found = _find_pair(nodes, producers, consumers, protected)
        if found is None:
            return nodes
        first, chain, second = found
        source = first.input[0]
        if chain:  # the chain now reads the layout before the pair, and feeds its users
            chain[-1].input[0] = source
            source = chain[0].output[0]
        for user in consumers.get(second.output[0], []):
            for index, name in enumerate(user.input):
                if name == second.output[0]:
                    user.input[index] = source
        nodes = [n for n in nodes if n is not first and n is not second]

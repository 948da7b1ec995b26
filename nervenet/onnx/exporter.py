"""``export(model, path)``: a nervenet model as an ONNX file.

1. trace the model into layer calls (``graph.trace``);
2. plan the BatchNormalization folds: a BatchNormalization right after a Dense or Conv2D
   without activation, which nothing else reads, is merged into its weights
   (``models.folding``) and costs nothing at inference;
3. convert each call with its layer kind's converter (``converters``);
4. cancel the Transpose pairs between channels-first layers (``optimize``);
5. write the graph with the opset asked for and the IR version that opset needs
   (``onnx.helper.make_model_gen_version``), check it with
   ``onnx.checker.check_model(full_check=True)`` and save it atomically.

The nervenet config, and which initializer holds which weight, go into the file's
``metadata_props`` (``nervenet.config``), so that ``nervenet.onnx.load`` rebuilds the model
exactly. Weights that appear only transformed in the graph (a folded BatchNormalization's
statistics and the kernel before folding) are kept as they are in the file's
``training_info`` (an initialization graph named ``nervenet.original_weights``, which
runtimes do not execute), as initializers named ``nervenet/<weight path>``.
"""

from __future__ import annotations

import dataclasses
import json
import os

import onnx
from onnx import helper

from nervenet._version import __version__
from nervenet.layers.base import serialize
from nervenet.layers.normalization import BatchNormalization
from nervenet.models.folding import _foldable_into, _merge
from nervenet.models.model import Model
from nervenet.onnx import DEFAULT_OPSET, OPSETS
from nervenet.onnx.converters import convert
from nervenet.onnx.graph import GraphBuilder, TracedModel, trace
from nervenet.onnx.optimize import cancel_transposes
from nervenet.saving.archive import atomic_write

__all__ = ["FORMAT", "build_proto", "export"]

#: what ``metadata_props`` calls a nervenet export (its version follows after a slash)
FORMAT = "nervenet.onnx/1"
#: the graph of ``training_info`` holding the weights the inference graph has transformed
ORIGINAL_WEIGHTS = "nervenet.original_weights"


def _check_opset(opset) -> int:
    if opset is None:
        return DEFAULT_OPSET
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in OPSETS:
        raise ValueError(f"opset must be an int from {OPSETS[0]} to {OPSETS[-1]} (or None for "
                         f"{DEFAULT_OPSET}), got {opset!r}")
    return opset


def _plan_folds(traced: TracedModel) -> tuple[dict[int, object], set[int]]:
    """``(merged layer by id of the Dense/Conv2D call, ids of the absorbed BN calls)``."""
    producers = {id(t): call for call in traced.calls for t in call.outputs}
    uses: dict[int, int] = {}
    for tensor in [t for call in traced.calls for t in call.inputs] + traced.outputs:
        uses[id(tensor)] = uses.get(id(tensor), 0) + 1
    calls_of: dict[int, int] = {}
    for call in traced.calls:
        calls_of[id(call.layer)] = calls_of.get(id(call.layer), 0) + 1
    merged, absorbed = {}, set()
    for call in traced.calls:
        if not isinstance(call.layer, BatchNormalization) or calls_of[id(call.layer)] != 1:
            continue
        tensor = call.inputs[0]
        before = producers.get(id(tensor))
        if (before is not None and uses[id(tensor)] == 1 and id(before) not in merged
                and calls_of[id(before.layer)] == 1 and _foldable_into(before.layer, call.layer)):
            merged[id(before)] = _merge(before.layer, call.layer)
            absorbed.add(id(call))
    return merged, absorbed


def emit(b: GraphBuilder, traced: TracedModel, inputs: list[str]) -> list[str]:
    """Convert every call of ``traced`` fed by the ONNX tensors ``inputs``; returns the names
    of its outputs. A nested model is traced and emitted in place."""
    names = {id(p): n for p, n in zip(traced.inputs, inputs)}
    merged, absorbed = _plan_folds(traced)
    for call in traced.calls:
        arguments = [names[id(t)] for t in call.inputs]
        if id(call) in absorbed:
            outputs = arguments
        elif isinstance(call.layer, Model):
            outputs = emit(b, trace(call.layer, call.input_shapes), arguments)
        else:
            layer = merged.get(id(call), call.layer)
            outputs = convert(b, dataclasses.replace(call, layer=layer), arguments)
        for tensor, name in zip(call.outputs, outputs):
            names[id(tensor)] = name
    return [names[id(t)] for t in traced.outputs]


def _io_names(names: list[str], count: int, prefix: str) -> list[str]:
    return names if len(names) == count else [f"{prefix}_{i}" for i in range(count)]


def _name_outputs(b: GraphBuilder, results: list[str], names: list[str],
                  inputs: list[str]) -> list[str]:
    """Give the graph's outputs the model's output names: the producing node's output is
    renamed, or an Identity added (an output that is an input, or used twice)."""
    final = []
    for result, wanted in zip(results, names):
        name = b.unique(wanted)
        if result in inputs or result in final:
            b.nodes.append(helper.make_node("Identity", [result], [name], name=f"{name}/Identity"))
        else:
            for node in b.nodes:
                node.output[:] = [name if o == result else o for o in node.output]
                node.input[:] = [name if i == result else i for i in node.input]
        final.append(name)
    return final


def _metadata(model, b: GraphBuilder) -> dict[str, str]:
    props = {"nervenet.format": FORMAT, "nervenet.version": __version__}
    try:
        config = serialize(model)
    except (ValueError, NotImplementedError, TypeError):
        return props  # a subclassed model without get_config: the graph alone describes it
    props["nervenet.config"] = json.dumps({
        "model": config, "input_shape": model.input_shape,
        "weights": {path: {"initializer": name, "perm": perm}
                    for path, (name, perm) in b.weight_map.items()}})
    return props


def build_proto(model, opset: int | None = None, dynamic_batch: bool = True) -> onnx.ModelProto:
    """The checked ONNX ModelProto of ``model`` (what ``export`` writes)."""
    opset = _check_opset(opset)
    if not isinstance(model, Model):
        raise TypeError(f"model must be a nervenet Model, got {type(model).__name__}")
    paths = model.named_weights()
    b = GraphBuilder(opset, model.dtype, {id(w): path for path, w in paths.items()})
    traced = trace(model)
    input_names = _io_names(model.input_names, len(traced.inputs), "input")
    for name in input_names:
        b.reserve(name)
    results = emit(b, traced, input_names)
    output_names = _name_outputs(b, results, _io_names(model.output_names, len(results),
                                                       "output"), input_names)
    b.nodes = cancel_transposes(b.nodes, set(output_names))
    graph_initializers = len(b.initializers)
    for path, weight in paths.items():  # kept for load(), where the graph transformed them
        if path not in b.weight_map:
            b.weight_map[path] = (b.constant(weight.data, f"nervenet/{path}"), None)
    originals = b.initializers[graph_initializers:]
    del b.initializers[graph_initializers:]

    def batch(tensor):
        return None if dynamic_batch else (tensor.shape[0] or 1)

    graph = helper.make_graph(
        b.nodes, model.name,
        [b.value_info(n, t.shape, batch(t)) for n, t in zip(input_names, traced.inputs)],
        [b.value_info(n, t.shape, batch(t)) for n, t in zip(output_names, traced.outputs)],
        b.initializers)
    proto = helper.make_model_gen_version(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="nervenet",
        producer_version=__version__)
    helper.set_model_props(proto, _metadata(model, b))
    if originals:  # training state, which runtimes leave alone
        proto.training_info.add().initialization.CopyFrom(
            helper.make_graph([], ORIGINAL_WEIGHTS, [], [], originals))
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export(model, path, opset: int | None = None, dynamic_batch: bool = True) -> None:
    """Write ``model`` to the ONNX file ``path`` (see ``nervenet.onnx.export``)."""
    proto = build_proto(model, opset, dynamic_batch)
    data = proto.SerializeToString()
    atomic_write(os.fspath(path), lambda handle: handle.write(data))

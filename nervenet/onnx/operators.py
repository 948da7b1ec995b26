"""Importing ONNX graphs made elsewhere (PyTorch's exports): one converter per operator, in
one registry (``operators``), each turning an ONNX node into nervenet layer calls.

ONNX images are channels-first (N, C, H, W); nervenet's are channels-last. A 4-D tensor of
the ONNX graph is held as its channels-last transpose (``Value.nchw``), so a Conv becomes a
Conv2D with its OIHW kernel turned HWIO (``[2, 3, 1, 0]``), the graph's image inputs become
``Input(shape=(H, W, C))``, and axes of per-axis operators are mapped. Flattening such a
tensor gives the values in (H, W, C) order instead of (C, H, W): the flattened value carries
that permutation (``Value.order``), and the Gemm/MatMul that reads it gets its weight rows
permuted to match, so nothing is transposed at run time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper

from nervenet import layers
from nervenet.kernels import same_padding
from nervenet.layers.symbolic import SymbolicTensor
from nervenet.models.model import Model
from nervenet.onnx.reader import OnnxFile, StoredTensor, stored_tensor
from nervenet.registry import Registry
from nervenet.saving import ModelFormatError

__all__ = ["convert_graph", "operators"]

#: ONNX operator type -> converter(importer, node) -> None (it sets the node's outputs)
operators = Registry("ONNX operator")

#: NCHW axis -> the same axis of the NHWC tensor nervenet holds
_NHWC_AXIS = {0: 0, 1: 3, 2: 1, 3: 2}


@dataclass
class Value:
    """A tensor of the ONNX graph as nervenet holds it."""

    tensor: SymbolicTensor
    nchw: bool = False               # a 4-D ONNX tensor held channels-last
    order: np.ndarray | None = None  # flattened: held[:, i] = onnx[:, order[i]]


class Importer:
    """The state of one conversion: the values and constants by ONNX name, the opset."""

    def __init__(self, file: OnnxFile):
        self.file = file
        self.graph = file.proto.graph
        self.opset = next((o.version for o in file.proto.opset_import
                           if o.domain in ("", "ai.onnx")), 0)
        self.constants: dict[str, StoredTensor] = dict(file.tensors)  # read when used
        self.values: dict[str, Value] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in self.graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.skip: set[int] = set()   # nodes already converted with the node before them
        self._names: set[str] = set()
        self.dtype = np.float32

    def fail(self, node: onnx.NodeProto, problem: str) -> ModelFormatError:
        return ModelFormatError(f"{self.file.where}: node {node.name!r} ({node.op_type}): "
                                f"{problem}")

    def layer_name(self, node: onnx.NodeProto) -> str | None:
        """A layer name from the node's (``/c1/Conv`` -> ``c1_Conv``), unique in the model."""
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", node.name).strip("_")
        if not name or name in self._names:
            return None
        self._names.add(name)
        return name

    def value(self, node: onnx.NodeProto, index: int = 0) -> Value:
        name = node.input[index] if index < len(node.input) else ""
        if name in self.values:
            return self.values[name]
        if name in self.constants:
            raise self.fail(node, f"input {index} ({name!r}) is a constant; nervenet layers "
                                  "take a computed tensor there")
        raise self.fail(node, f"input {index} ({name!r}) is not produced by any earlier node "
                              "(the graph has a cycle, or is not in topological order)")

    def constant(self, node: onnx.NodeProto, index: int, required: bool = True):
        """The values of the node's constant input ``index`` (a new array)."""
        stored = self.stored(node, index, required)
        return None if stored is None else stored.read()

    def stored(self, node: onnx.NodeProto, index: int, required: bool = True):
        """The node's constant input ``index``, not read yet: a layer's weight reads it
        straight into place (``StoredTensor.read(out=...)``)."""
        name = node.input[index] if index < len(node.input) else ""
        if name in self.constants:
            return self.constants[name]
        if not name and not required:
            return None
        raise self.fail(node, f"input {index} ({name!r}) must be a constant (an initializer "
                              "or a Constant node)")

    def attributes(self, node: onnx.NodeProto) -> dict:
        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def output(self, node: onnx.NodeProto, value: Value, index: int = 0) -> None:
        self.values[node.output[index]] = value

    def single_consumer(self, name: str) -> onnx.NodeProto | None:
        users = self.consumers.get(name, [])
        outputs = {o.name for o in self.graph.output}
        return users[0] if len(users) == 1 and name not in outputs else None


def operator(*names: str):
    return operators.register(*names)


# ---------------------------------------------------------------------------- pass-through
@operator("Identity", "Dropout")
def _identity(im: Importer, node):
    if len(node.output) > 1 and node.output[1] and im.consumers.get(node.output[1]):
        raise im.fail(node, "its mask output is used; only inference graphs convert")
    im.output(node, im.value(node))


@operator("Constant")
def _constant(im: Importer, node):
    attributes = {a.name: a for a in node.attribute}
    if "value" in attributes:
        value = stored_tensor(attributes["value"].t, im.file.folder, im.file.where).read()
    elif attributes.keys() & {"value_float", "value_floats", "value_int", "value_ints"}:
        key = next(iter(attributes.keys() & {"value_float", "value_floats", "value_int",
                                             "value_ints"}))
        value = np.asarray(helper.get_attribute_value(attributes[key]))
    else:
        raise im.fail(node, f"only tensor and number constants convert, got {sorted(attributes)}")
    im.constants[node.output[0]] = StoredTensor(node.output[0], value.dtype, value.shape,
                                                inline=value)


# ----------------------------------------------------------------------------- activations
def _activation(im: Importer, node, layer) -> None:
    source = im.value(node)
    im.output(node, Value(layer(source.tensor), source.nchw, source.order))


@operator("Relu", "Sigmoid", "Tanh")
def _simple_activation(im: Importer, node):
    _activation(im, node, layers.Activation(node.op_type.lower(), name=im.layer_name(node)))


@operator("LeakyRelu")
def _leaky_relu(im: Importer, node):
    alpha = im.attributes(node).get("alpha", 0.01)
    _activation(im, node, layers.LeakyReLU(negative_slope=alpha, name=im.layer_name(node)))


@operator("Softmax")
def _softmax(im: Importer, node):
    source = im.value(node)
    rank = len(source.tensor.shape)
    axis = im.attributes(node).get("axis", -1 if im.opset >= 13 else 1) % rank
    if im.opset < 13 and axis != rank - 1:  # before 13: over all axes from `axis` on
        raise im.fail(node, f"softmax over axes {axis}.. of a rank-{rank} input (opset "
                            f"{im.opset}) does not convert; only the last axis does")
    if source.nchw:
        axis = _NHWC_AXIS[axis]
    _activation(im, node, layers.Softmax(axis=axis, name=im.layer_name(node)))


# ---------------------------------------------------------------------------- convolutions
def _spatial(im: Importer, node, source: Value, window, strides, dilations=(1, 1)):
    """Keras padding ("valid"/"same") for the node's pads, or ``(top, bottom), (left,
    right)`` pads nervenet must add with ZeroPadding2D first. ``dilations`` are the ones a
    Conv's layer takes (a window then spans (k - 1) * d + 1 cells); any other is an error."""
    attributes = im.attributes(node)
    if not source.nchw:
        raise im.fail(node, f"expected a 4-D (N, C, H, W) input, got shape "
                            f"{source.tensor.shape}")
    if list(attributes.get("dilations", [1, 1])) != list(dilations):
        raise im.fail(node, f"dilations {attributes['dilations']} do not convert (nervenet's "
                            "pooling layers have no dilation)")
    window = [(k - 1) * d + 1 for k, d in zip(window, dilations)]
    auto_pad = attributes.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad == "SAME_UPPER":
        return "same"
    if auto_pad not in ("NOTSET", "VALID"):
        raise im.fail(node, f"auto_pad {auto_pad!r} does not convert")
    pads = list(attributes.get("pads", [0, 0, 0, 0])) if auto_pad == "NOTSET" else [0] * 4
    if not any(pads):
        return "valid"
    sizes = source.tensor.shape[1:3]
    if None not in sizes and [same_padding(n, k, s) for n, k, s in zip(sizes, window, strides)] \
            == [(pads[0], pads[2]), (pads[1], pads[3])]:
        return "same"
    return ((pads[0], pads[2]), (pads[1], pads[3]))


def _padded(im: Importer, node, source: Value, padding):
    if isinstance(padding, str):
        return source.tensor, padding
    pad = layers.ZeroPadding2D(padding, name=None)
    return pad(source.tensor), "valid"


def _fill(im: Importer, node, layer, stored: StoredTensor, scale: float = 1.0, rest=(),
          **layout) -> None:
    """The layer's first weight read from ``stored`` into place (``layout``: ``perm`` and
    ``gather`` of ``StoredTensor.read``), times ``scale``; its other weights set to the
    (small) arrays ``rest``. Non-finite values are an error naming the node."""
    first, *others = layer.weights
    stored.read(out=first.data, **layout)
    if scale != 1.0:
        first.data *= scale
    for weight, value in zip(others, rest, strict=True):
        value = np.asarray(value)
        if value.shape != weight.shape:
            raise im.fail(node, f"{weight.name} needs shape {weight.shape}, the graph gives "
                                f"{value.shape}")
        weight.data[...] = value
    for weight in layer.weights:
        flat = weight.data.reshape(-1)
        step = 2**22  # the check's boolean temporary stays small
        if not all(np.isfinite(flat[i:i + step]).all() for i in range(0, flat.size, step)):
            raise im.fail(node, f"{weight.name} holds values that are not finite")


@operator("Conv")
def _conv(im: Importer, node):
    source, kernel = im.value(node), im.stored(node, 1)
    bias = im.constant(node, 2, required=False)
    attributes = im.attributes(node)
    if attributes.get("group", 1) != 1:
        raise im.fail(node, f"group={attributes['group']} (grouped or depthwise convolution) "
                            "does not convert")
    if kernel.ndim != 4:
        raise im.fail(node, f"only 2-D convolutions convert, got a kernel of shape "
                            f"{kernel.shape}")
    window = tuple(kernel.shape[2:])
    strides = tuple(attributes.get("strides", [1, 1]))
    dilations = tuple(attributes.get("dilations", [1, 1]))
    x, padding = _padded(im, node, source,
                         _spatial(im, node, source, window, strides, dilations))
    layer = layers.Conv2D(kernel.shape[0], window, strides=strides, padding=padding,
                          dilation_rate=dilations, use_bias=bias is not None,
                          name=im.layer_name(node))
    y = layer(x)
    _fill(im, node, layer, kernel, perm=(3, 2, 0, 1), rest=[] if bias is None else [bias])
    im.output(node, Value(y, nchw=True))


def _pool(im: Importer, node, kind):
    source = im.value(node)
    attributes = im.attributes(node)
    window = tuple(attributes["kernel_shape"])
    strides = tuple(attributes.get("strides", [1] * len(window)))
    padding = _spatial(im, node, source, window, strides)
    if attributes.get("ceil_mode", 0):
        sizes = source.tensor.shape[1:3]
        if padding != "valid" or None in sizes or any(
                (n - k) % s for n, k, s in zip(sizes, window, strides)):
            raise im.fail(node, "ceil_mode=1 changes the output size here; it does not convert")
    if not isinstance(padding, str) and (kind is layers.MaxPooling2D
                                         or not attributes.get("count_include_pad", 0)):
        raise im.fail(node, f"pads {attributes.get('pads')} do not convert (nervenet pads "
                                "pools as Keras's 'same' only)")
    x, padding = _padded(im, node, source, padding)
    y = kind(window, strides=strides, padding=padding, name=im.layer_name(node))(x)
    im.output(node, Value(y, nchw=True))


@operator("MaxPool")
def _max_pool(im: Importer, node):
    if len(node.output) > 1 and node.output[1]:
        raise im.fail(node, "its indices output does not convert")
    _pool(im, node, layers.MaxPooling2D)


@operator("AveragePool")
def _average_pool(im: Importer, node):
    _pool(im, node, layers.AveragePooling2D)


@operator("GlobalAveragePool")
def _global_average_pool(im: Importer, node):
    source = im.value(node)
    if not source.nchw:
        raise im.fail(node, f"expected a 4-D input, got shape {source.tensor.shape}")
    y = layers.GlobalAveragePooling2D(keepdims=True, name=im.layer_name(node))(source.tensor)
    im.output(node, Value(y, nchw=True))


# ---------------------------------------------------------------------------------- shapes
def _flatten_value(im: Importer, node, source: Value) -> Value:
    y = layers.Flatten(name=im.layer_name(node))(source.tensor)
    if not source.nchw:
        return Value(y, order=source.order)
    _, h, w, c = source.tensor.shape
    if h * w == 1:
        return Value(y)
    # held index (i, j, k) of (H, W, C) <- ONNX index (k, i, j) of (C, H, W)
    order = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).ravel()
    return Value(y, order=order)


@operator("Flatten")
def _flatten(im: Importer, node):
    source = im.value(node)
    axis = im.attributes(node).get("axis", 1)
    if axis != 1:
        raise im.fail(node, f"Flatten with axis={axis} does not convert (only axis=1 keeps "
                            "the batch axis)")
    if len(source.tensor.shape) == 2:
        im.output(node, source)
        return
    im.output(node, _flatten_value(im, node, source))


@operator("Reshape")
def _reshape(im: Importer, node):
    source, shape = im.value(node), im.constant(node, 1)
    shape = [int(d) for d in np.asarray(shape).ravel()]
    held = source.tensor.shape
    onnx_shape = [held[0], held[3], held[1], held[2]] if source.nchw else list(held)
    if not im.attributes(node).get("allowzero", 0):
        shape = [onnx_shape[i] if d == 0 and i < len(onnx_shape) else d
                 for i, d in enumerate(shape)]
    batch = im.graph.input[0].type.tensor_type.shape.dim[0]
    fixed_batch = batch.dim_value if batch.HasField("dim_value") else None
    if not shape or shape[0] not in (-1, None, fixed_batch) or (
            shape[0] == -1 and -1 in shape[1:]):
        raise im.fail(node, f"the target shape {shape} must keep the batch axis first")
    rest = shape[1:]
    size = None if None in onnx_shape[1:] else int(np.prod(onnx_shape[1:]))
    if len(rest) == 1 and len(held) > 2 and rest[0] in (-1, size):  # (N, C*H*W): a flatten
        im.output(node, _flatten_value(im, node, source))
        return
    if source.nchw or source.order is not None or len(rest) >= 3:
        raise im.fail(node, f"reshaping {onnx_shape} to {shape} does not convert (only "
                            "flattening images, and reshapes of non-image tensors)")
    y = layers.Reshape(rest, name=im.layer_name(node))(source.tensor)
    im.output(node, Value(y))


# ----------------------------------------------------------------------------------- dense
def _dense(im: Importer, node, source: Value, weight: StoredTensor, transposed: bool, bias,
           output: str, scale: float = 1.0) -> None:
    """A Dense layer with kernel ``weight`` (its transpose when ``transposed``) * ``scale``,
    its rows in the order the input holds its features (``Value.order``)."""
    if len(source.tensor.shape) < 2 or source.nchw:
        raise im.fail(node, f"expected a (batch, features) input, got held shape "
                            f"{source.tensor.shape}")
    shape = weight.shape[::-1] if transposed else weight.shape
    if len(shape) != 2 or shape[0] != source.tensor.shape[-1]:
        raise im.fail(node, f"weight of shape {weight.shape}{' transposed' if transposed else ''}"
                            f" does not fit input {source.tensor.shape}")
    layer = layers.Dense(shape[1], use_bias=bias is not None, name=im.layer_name(node))
    y = layer(source.tensor)
    # kernel[i] = weight'[order[i]]: a gather along the stored axis that is the kernel's rows
    gather = None if source.order is None else (1 if transposed else 0, source.order)
    _fill(im, node, layer, weight, scale, perm=(1, 0) if transposed else None, gather=gather,
          rest=[] if bias is None else [bias])
    im.values[output] = Value(y)


def _bias_vector(node, bias, units: int, im: Importer):
    bias = np.asarray(bias)
    if bias.size == 1:
        return np.full(units, bias.ravel()[0], dtype=im.dtype)
    if bias.shape[-1] != units or bias.size != units:
        raise im.fail(node, f"bias of shape {bias.shape} does not broadcast as one value per "
                            f"unit ({units})")
    return bias.reshape(units).astype(im.dtype)


@operator("Gemm")
def _gemm(im: Importer, node):
    """y = alpha A B' + beta C, with B' = B or its transpose: a Dense layer."""
    attributes = im.attributes(node)
    if attributes.get("transA", 0):
        raise im.fail(node, "transA=1 does not convert")
    source, weight = im.value(node), im.stored(node, 1)
    transposed = bool(attributes.get("transB", 0))
    bias = im.constant(node, 2, required=False)
    if bias is not None:
        units = weight.shape[0 if transposed else -1] if weight.ndim else 0
        bias = _bias_vector(node, bias * attributes.get("beta", 1.0), units, im)
    _dense(im, node, source, weight, transposed, bias, node.output[0],
           scale=float(attributes.get("alpha", 1.0)))


@operator("MatMul")
def _matmul(im: Importer, node):
    """x W (a constant W), with the bias of a following Add when it is one: a Dense layer."""
    source, kernel = im.value(node), im.stored(node, 1)
    add = im.single_consumer(node.output[0])
    bias, output = None, node.output[0]
    if add is not None and add.op_type == "Add":
        other = [name for name in add.input if name != node.output[0]]
        if len(other) == 1 and other[0] in im.constants:
            units = kernel.shape[-1] if kernel.ndim else 0
            bias = _bias_vector(add, im.constants[other[0]].read(), units, im)
            output = add.output[0]
            im.skip.add(id(add))
    _dense(im, node, source, kernel, False, bias, output)


@operator("Add")
def _add(im: Importer, node):
    raise im.fail(node, "only an Add of a constant bias right after a MatMul converts")


@operator("BatchNormalization")
def _batch_norm(im: Importer, node):
    source = im.value(node)
    attributes = im.attributes(node)
    if attributes.get("training_mode", 0):
        raise im.fail(node, "training_mode=1 does not convert; export the model in eval mode")
    gamma, beta, mean, var = (im.constant(node, i) for i in range(1, 5))
    rank = len(source.tensor.shape)
    if rank not in (2, 4) or (rank == 4 and not source.nchw):
        raise im.fail(node, f"expected a (N, C) or (N, C, H, W) input, got held shape "
                            f"{source.tensor.shape}")
    if source.order is not None:  # channel i held = ONNX channel order[i]
        gamma, beta, mean, var = (a[source.order] for a in (gamma, beta, mean, var))
    layer = layers.BatchNormalization(momentum=float(attributes.get("momentum", 0.9)),
                                      epsilon=float(attributes.get("epsilon", 1e-5)),
                                      name=im.layer_name(node))
    y = layer(source.tensor)
    layer.set_weights([gamma, beta, mean, var])
    im.output(node, Value(y, source.nchw, source.order))


# ----------------------------------------------------------------------------------- graph
def _graph_input(im: Importer, value: onnx.ValueInfoProto) -> Value:
    tensor_type = value.type.tensor_type
    if tensor_type.elem_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE):
        raise ModelFormatError(f"{im.file.where}: input {value.name!r} has element type "
                               f"{tensor_type.elem_type}; only float inputs convert")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
    if len(dims) < 2:
        raise ModelFormatError(f"{im.file.where}: input {value.name!r} has shape {dims}; "
                               "expected a batch axis and at least one more")
    if len(dims) == 4:
        n, c, h, w = dims
        return Value(layers.Input(shape=(h, w, c), name=value.name), nchw=True)
    return Value(layers.Input(shape=dims[1:], name=value.name))


def convert_graph(file: OnnxFile) -> Model:
    """A functional nervenet model computing what the ONNX graph of ``file`` computes.

    Raises:
        ModelFormatError: an operator without a converter (naming it and its node), an
            attribute that does not convert, a cycle.
    """
    im = Importer(file)
    inputs = []
    for value in im.graph.input:
        if value.name in im.constants:  # old exporters list initializers as inputs too
            continue
        im.values[value.name] = _graph_input(im, value)
        inputs.append(im.values[value.name].tensor)
    for node in im.graph.node:
        if id(node) in im.skip:
            continue
        if node.domain not in ("", "ai.onnx") or node.op_type not in operators:
            raise ModelFormatError(
                f"{file.where}: node {node.name!r} uses operator {node.op_type!r}"
                f"{' of domain ' + repr(node.domain) if node.domain else ''}, which nervenet "
                f"does not import; supported: {', '.join(operators.names())}")
        operators.lookup(node.op_type)(im, node)
    outputs = []
    for value in im.graph.output:
        if value.name not in im.values:
            raise ModelFormatError(f"{file.where}: output {value.name!r} is not computed by "
                                   "the graph")
        if im.values[value.name].order is not None:
            raise ModelFormatError(f"{file.where}: output {value.name!r} is a flattened image; "
                                   "its values would come in another order")
        outputs.append(im.values[value.name].tensor)
    return Model(inputs=inputs if len(inputs) > 1 else inputs[0],
                 outputs=outputs if len(outputs) > 1 else outputs[0],
                 name=re.sub(r"[^A-Za-z0-9_.-]+", "_", im.graph.name) or None)

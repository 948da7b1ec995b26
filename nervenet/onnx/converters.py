"""One ONNX converter per layer kind, in one registry (``converters``), keyed by the layer's
registered name; and the activations, as ONNX nodes.

A converter is ``convert(builder, call, inputs) -> outputs``: it appends the nodes computing
the layer's inference output from the ONNX tensors ``inputs`` and returns the names of its
outputs. Layers that are the identity at inference (Dropout, noise, augmentation) return their
input and add nothing.

Images stay channels-last (N, H, W, C), as the user feeds them. ONNX's Conv and pooling
operators are channels-first, so each of those layers is written as a Transpose to NCHW, the
operator (with the HWIO kernel turned OIHW by ``[3, 2, 0, 1]``), an elementwise activation,
and a Transpose back, as tf2onnx does; ``optimize.cancel_transposes`` then removes each
back-and-forth pair between two such layers.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from nervenet import activations
from nervenet.autograd.ops.activation import SELU_ALPHA, SELU_SCALE
from nervenet.kernels import same_padding
from nervenet.layers.base import registry as layer_registry
from nervenet.onnx.graph import Call, GraphBuilder
from nervenet.registry import Registry

__all__ = ["activation_spec", "converters", "emit_activation"]

#: layer registered name -> converter
converters = Registry("ONNX converter")

TO_NCHW = [0, 3, 1, 2]
TO_NHWC = [0, 2, 3, 1]


# ----------------------------------------------------------------------------- activations
def activation_spec(fn, layer: str) -> tuple[str, dict]:
    """``(name, keyword arguments)`` of an activation: a built-in one, or a
    ``functools.partial`` of one (``partial(F.sigmoid, a=2.0)``, ``partial(F.step, low=-1)``).
    """
    keywords: dict = {}
    if isinstance(fn, functools.partial) and not fn.args:
        fn, keywords = fn.func, dict(fn.keywords)
    try:
        name = activations.serialize(fn)
    except ValueError:
        raise ValueError(f"layer {layer!r}: its activation {fn!r} has no ONNX converter; use a "
                         f"built-in activation ({', '.join(activations.registry.names())}) or "
                         "a functools.partial of one") from None
    return name, keywords


def _gelu(b: GraphBuilder, x: str, approximate: bool, name: str) -> str:
    if b.opset >= 20:
        return b.node("Gelu", [x], name, approximate="tanh" if approximate else "none")
    half = b.node("Mul", [x, b.scalar(0.5, f"{name}/half")], f"{name}/half_x")
    if approximate:  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = b.node("Mul", [b.node("Mul", [x, x], f"{name}/x2"), x], f"{name}/x3")
        inner = b.node("Add", [x, b.node("Mul", [cube, b.scalar(0.044715, f"{name}/c")],
                                         f"{name}/cx3")], f"{name}/inner")
        scaled = b.node("Mul", [inner, b.scalar(math.sqrt(2 / math.pi), f"{name}/k")],
                        f"{name}/scaled")
        core = b.node("Tanh", [scaled], f"{name}/tanh")
    else:  # 0.5 x (1 + erf(x / sqrt 2))
        core = b.node("Erf", [b.node("Mul", [x, b.scalar(1 / math.sqrt(2), f"{name}/k")],
                                     f"{name}/scaled")], f"{name}/erf")
    return b.node("Mul", [half, b.node("Add", [core, b.scalar(1.0, f"{name}/one")],
                                       f"{name}/one_plus")], name)


def _step(b: GraphBuilder, x: str, low=0.0, high=1.0, at_zero=None, name: str = "step") -> str:
    zero = b.scalar(0.0, f"{name}/zero")
    otherwise = b.scalar(low, f"{name}/low")
    if at_zero is not None and at_zero != low:  # the value at exactly 0 differs from low
        otherwise = b.node("Where", [b.node("Less", [x, zero], f"{name}/negative"), otherwise,
                                     b.scalar(at_zero, f"{name}/at_zero")], f"{name}/not_pos")
    return b.node("Where", [b.node("Greater", [x, zero], f"{name}/positive"),
                            b.scalar(high, f"{name}/high"), otherwise], name)


def _unary(op: str, **attributes):
    return lambda b, x, name, **_: b.node(op, [x], name, **attributes)


_ACTIVATIONS = {
    "relu": _unary("Relu"),
    "tanh": _unary("Tanh"),
    "softplus": _unary("Softplus"),
    "selu": _unary("Selu", alpha=SELU_ALPHA, gamma=SELU_SCALE),
    "sigmoid": lambda b, x, name, a=1.0: b.node(
        "Sigmoid", [x if a == 1.0 else b.node("Mul", [x, b.scalar(a, f"{name}/a")],
                                              f"{name}/ax")], name),
    "leaky_relu": lambda b, x, name, alpha=0.01: b.node("LeakyRelu", [x], name,
                                                        alpha=float(alpha)),
    "elu": lambda b, x, name, alpha=1.0: b.node("Elu", [x], name, alpha=float(alpha)),
    "gelu": lambda b, x, name, approximate=False: _gelu(b, x, approximate, name),
    "swish": lambda b, x, name: b.node("Mul", [x, b.node("Sigmoid", [x], f"{name}/sigmoid")],
                                       name),
    "mish": lambda b, x, name: b.node("Mish", [x], name) if b.opset >= 18 else b.node(
        "Mul", [x, b.node("Tanh", [b.node("Softplus", [x], f"{name}/softplus")],
                          f"{name}/tanh")], name),
    "step": lambda b, x, name, **kw: _step(b, x, name=name, **kw),
    "softmax": lambda b, x, name, axis=-1: b.node("Softmax", [x], name, axis=int(axis)),
    "log_softmax": lambda b, x, name, axis=-1: b.node("LogSoftmax", [x], name, axis=int(axis)),
}
#: activations that act on each value alone (the others depend on an axis)
_AXIS_ACTIVATIONS = {"softmax", "log_softmax"}


def is_elementwise(fn, layer: str) -> bool:
    return activation_spec(fn, layer)[0] not in _AXIS_ACTIVATIONS


def emit_activation(b: GraphBuilder, fn, x: str, layer: str) -> str:
    """The nodes of activation ``fn`` applied to ``x`` (nothing for ``linear``)."""
    name, keywords = activation_spec(fn, layer)
    if name == "linear":
        return x
    try:
        return _ACTIVATIONS[name](b, x, f"{layer}/{name}", **keywords)
    except TypeError:
        raise ValueError(f"layer {layer!r}: activation {name!r} with arguments {keywords} has "
                         "no ONNX converter") from None


# ------------------------------------------------------------------------------ converters
def converter(*names: str):
    """Register a converter for the layers registered under ``names``."""
    return converters.register(*names)


def convert(b: GraphBuilder, call: Call, inputs: list[str]) -> list[str]:
    """The ONNX outputs of one layer call (see the module docstring)."""
    name = layer_registry.name_of(type(call.layer))
    if name is None or name not in converters:
        raise ValueError(
            f"layer {call.layer.name!r} ({type(call.layer).__name__}) has no ONNX converter; "
            f"layers that convert: {', '.join(converters.names())}")
    return converters.lookup(name)(b, call, inputs)


@converter("InputLayer", "Dropout", "GaussianNoise", "GaussianDropout", "AlphaDropout",
           "RandomFlip", "RandomRotation", "RandomTranslation",
           "RandomZoom", "RandomShear", "RandomContrast", "RandomBrightness", "RandomPCAColor")
def _inference_identity(b, call, inputs):
    """Training-only layers: the identity at inference, so nothing is written."""
    return inputs


@converter("Dense")
def _dense(b, call, inputs):
    layer, (x,) = call.layer, inputs
    kernel = b.weight(layer.kernel, f"{layer.name}/kernel")
    bias = [] if layer.bias is None else [b.weight(layer.bias, f"{layer.name}/bias")]
    if len(call.input_shapes[0]) == 2:  # y = x W + b in one Gemm
        y = b.node("Gemm", [x, kernel, *bias], f"{layer.name}/Gemm")
    else:
        y = b.node("MatMul", [x, kernel], f"{layer.name}/MatMul")
        if bias:
            y = b.node("Add", [y, bias[0]], f"{layer.name}/Add")
    return [emit_activation(b, layer.activation, y, layer.name)]


def _pads(call: Call, window, strides, padding: str, dilations=(1, 1)) -> dict:
    """ONNX's ``pads`` (begin, begin, end, end) for Keras's "valid"/"same" on the known spatial
    sizes (any size with stride 1: the total is then span - 1); ``auto_pad="SAME_UPPER"``
    (TF's split: the odd cell after) for unknown sizes and strides above 1, which
    onnxruntime does not run dilated."""
    if padding == "valid":
        return {"pads": [0, 0, 0, 0]}
    sizes = list(call.input_shapes[0][1:3])
    for axis, size in enumerate(sizes):
        if size is None and strides[axis] == 1:
            sizes[axis] = 1  # any size: same_padding is then (span - 1) split, the odd after
    if any(size is None for size in sizes):
        if any(d != 1 for d in dilations):
            raise ValueError(
                f"layer {call.layer.name!r}: a dilated convolution with padding='same' and "
                f"strides {tuple(strides)} needs the input's height and width to export "
                f"(onnxruntime runs no dilated Conv with auto_pad SAME_UPPER); got input shape "
                f"{tuple(call.input_shapes[0])}")
        return {"auto_pad": "SAME_UPPER"}
    pairs = [same_padding(size, (k - 1) * d + 1, s)
             for size, k, s, d in zip(sizes, window, strides, dilations)]
    return {"pads": [pairs[0][0], pairs[1][0], pairs[0][1], pairs[1][1]]}


def _channels_first(b: GraphBuilder, x: str, name: str, op, activation=None) -> str:
    """``op(x)`` computed channels-first between two Transposes; an elementwise
    ``activation`` goes before the Transpose back, another one after it."""
    inside = activation is not None and is_elementwise(activation, name)
    y = op(b.node("Transpose", [x], f"{name}/to_nchw", perm=TO_NCHW))
    if inside:
        y = emit_activation(b, activation, y, name)
    y = b.node("Transpose", [y], f"{name}/to_nhwc", perm=TO_NHWC)
    if activation is not None and not inside:
        y = emit_activation(b, activation, y, name)
    return y


@converter("Conv2D")
def _conv2d(b, call, inputs):
    layer = call.layer
    dilations = layer.dilation_rate
    kernel = b.weight(layer.kernel, f"{layer.name}/kernel", perm=[3, 2, 0, 1])  # HWIO -> OIHW
    bias = [] if layer.bias is None else [b.weight(layer.bias, f"{layer.name}/bias")]
    attributes = {"kernel_shape": list(layer.kernel_size), "strides": list(layer.strides),
                  "dilations": list(dilations),
                  **_pads(call, layer.kernel_size, layer.strides, layer.padding, dilations)}

    def conv(x):
        return b.node("Conv", [x, kernel, *bias], f"{layer.name}/Conv", **attributes)

    return [_channels_first(b, inputs[0], layer.name, conv, layer.activation)]


def _pool_attributes(call: Call) -> dict:
    layer = call.layer
    return {"kernel_shape": list(layer.pool_size), "strides": list(layer.strides),
            **_pads(call, layer.pool_size, layer.strides, layer.padding)}


@converter("MaxPooling2D")
def _max_pool(b, call, inputs):
    name = call.layer.name
    return [_channels_first(b, inputs[0], name, lambda x: b.node(
        "MaxPool", [x], f"{name}/MaxPool", **_pool_attributes(call)))]


@converter("AveragePooling2D")
def _average_pool(b, call, inputs):
    # count_include_pad=0: with "same" padding the padded cells are left out of the mean
    name = call.layer.name
    return [_channels_first(b, inputs[0], name, lambda x: b.node(
        "AveragePool", [x], f"{name}/AveragePool", count_include_pad=0,
        **_pool_attributes(call)))]


@converter("StochasticPooling2D")
def _stochastic_pool(b, call, inputs):
    """Inference: sum a^2 / sum a per window (0 for a window of zeros), as two average pools."""
    layer = call.layer
    attributes = {"kernel_shape": list(layer.pool_size), "strides": list(layer.pool_size)}

    def expectation(x):
        name = layer.name
        squares = b.node("AveragePool", [b.node("Mul", [x, x], f"{name}/square")],
                         f"{name}/mean_square", **attributes)
        mean = b.node("AveragePool", [x], f"{name}/mean", **attributes)
        tiny = b.scalar(np.finfo(b.dtype).tiny, f"{name}/tiny")  # 0 / tiny = 0 for zeros
        return b.node("Div", [squares, b.node("Max", [mean, tiny], f"{name}/safe")],
                      f"{name}/Div")

    return [_channels_first(b, inputs[0], layer.name, expectation)]


@converter("GlobalAveragePooling2D")
def _global_average_pool(b, call, inputs):
    layer = call.layer
    return [b.reduce("ReduceMean", inputs[0], [1, 2], layer.keepdims, f"{layer.name}/mean")]


@converter("GlobalMaxPooling2D")
def _global_max_pool(b, call, inputs):
    layer = call.layer
    return [b.reduce("ReduceMax", inputs[0], [1, 2], layer.keepdims, f"{layer.name}/max")]


@converter("ZeroPadding2D")
def _zero_padding(b, call, inputs):
    (top, bottom), (left, right) = call.layer.padding
    pads = b.ints([0, top, left, 0, 0, bottom, right, 0], f"{call.layer.name}/pads")
    return [b.node("Pad", [inputs[0], pads], f"{call.layer.name}/Pad")]


@converter("RandomCrop")
def _center_crop(b, call, inputs):
    """Inference: the central window (offsets rounded down), as ``augment.center_crop``."""
    layer, (x,) = call.layer, inputs
    sizes = call.input_shapes[0][-3:-1]
    if sizes == (layer.height, layer.width):
        return [x]
    if None in sizes:
        raise ValueError(f"RandomCrop layer {layer.name!r}: its ONNX form needs the input's "
                         f"height and width, got input shape {call.input_shapes[0]}")
    rank = len(call.input_shapes[0])
    starts = [(sizes[0] - layer.height) // 2, (sizes[1] - layer.width) // 2]
    ends = [starts[0] + layer.height, starts[1] + layer.width]
    name = layer.name
    return [b.node("Slice", [x, b.ints(starts, f"{name}/starts"), b.ints(ends, f"{name}/ends"),
                             b.ints([rank - 3, rank - 2], f"{name}/axes")], f"{name}/Slice")]


@converter("Flatten")
def _flatten(b, call, inputs):
    # the values stay channels-last, so the order is (H, W, C) as nervenet's reshape
    return [b.node("Flatten", inputs, f"{call.layer.name}/Flatten", axis=1)]


@converter("Reshape")
def _reshape(b, call, inputs):
    # 0 copies the input's size on that axis: the batch axis stays dynamic
    shape = b.ints([0, *call.layer.target_shape], f"{call.layer.name}/shape")
    return [b.node("Reshape", [inputs[0], shape], f"{call.layer.name}/Reshape")]


@converter("Concatenate")
def _concatenate(b, call, inputs):
    return [b.node("Concat", inputs, f"{call.layer.name}/Concat", axis=call.layer.axis)]


def _chain(b: GraphBuilder, op: str, inputs: list[str], name: str) -> str:
    """``op`` applied left to right over ``inputs`` (as the layer computes, pair by pair)."""
    result = inputs[0]
    for index, other in enumerate(inputs[1:]):
        result = b.node(op, [result, other], f"{name}/{op}_{index}" if len(inputs) > 2
                        else f"{name}/{op}")
    return result


@converter("Add")
def _add(b, call, inputs):
    return [_chain(b, "Add", inputs, call.layer.name)]


@converter("Subtract")
def _subtract(b, call, inputs):
    return [b.node("Sub", inputs, f"{call.layer.name}/Sub")]


@converter("Multiply")
def _multiply(b, call, inputs):
    return [_chain(b, "Mul", inputs, call.layer.name)]


@converter("Average")
def _average(b, call, inputs):
    name = call.layer.name
    total = _chain(b, "Add", inputs, name)
    return [b.node("Mul", [total, b.scalar(1.0 / len(inputs), f"{name}/one_over_n")],
                   f"{name}/Mul")]


@converter("Maximum")
def _maximum(b, call, inputs):
    return [_chain(b, "Max", inputs, call.layer.name)]


@converter("Minimum")
def _minimum(b, call, inputs):
    return [_chain(b, "Min", inputs, call.layer.name)]


@converter("LayerNormalization")
def _layer_norm(b, call, inputs):
    """(x - mean) / sqrt(var + epsilon) * gamma + beta over the layer's axes, per sample
    (RMS scaling: x / sqrt(mean(x^2) + epsilon) * gamma), written out as the layer computes
    it, so that any axes and every opset work."""
    layer, (x,) = call.layer, inputs
    name, axes = layer.name, list(layer._axes)
    if layer.rms_scaling:
        centred = x
    else:
        centred = b.node("Sub", [x, b.reduce("ReduceMean", x, axes, True, f"{name}/mean")],
                         f"{name}/centred")
    square = b.node("Mul", [centred, centred], f"{name}/square")
    variance = b.reduce("ReduceMean", square, axes, True, f"{name}/variance")
    std = b.node("Sqrt", [b.node("Add", [variance, b.scalar(layer.epsilon, f"{name}/epsilon")],
                                 f"{name}/plus_epsilon")], f"{name}/std")
    y = b.node("Div", [centred, std], f"{name}/normalized")
    if layer.gamma is not None:
        gamma = b.constant(layer.gamma.data.reshape(layer._broadcast[1:]), f"{name}/gamma")
        y = b.node("Mul", [y, gamma], f"{name}/Mul")
    if layer.beta is not None:
        beta = b.constant(layer.beta.data.reshape(layer._broadcast[1:]), f"{name}/beta")
        y = b.node("Add", [y, beta], f"{name}/Add")
    return [y]


def _channel_constant(b: GraphBuilder, values, rank: int, axis: int | None, name: str) -> str:
    """``values`` (one per channel of ``axis``, or a scalar) shaped to broadcast against
    inputs of ``rank`` dimensions."""
    values = np.asarray(values)
    if axis is None or values.ndim == 0:
        return b.constant(values, name)
    shape = [1] * (rank - 1 - axis % rank)
    return b.constant(values.reshape([-1, *shape]), name)


@converter("BatchNormalization")
def _batch_norm(b, call, inputs):
    """Inference: (x - moving_mean) * gamma / sqrt(moving_variance + epsilon) + beta (three
    nodes; the exporter folds a BatchNormalization into the Dense/Conv2D before it when it
    can)."""
    layer, rank = call.layer, len(call.input_shapes[0])
    scale, _ = layer.folded_affine()
    beta = 0.0 if layer.beta is None else layer.beta.data
    name = layer.name
    centered = b.node("Sub", [inputs[0], _channel_constant(b, layer.moving_mean.data, rank,
                                                           layer.axis, f"{name}/mean")],
                      f"{name}/Sub")
    scaled = b.node("Mul", [centered, _channel_constant(b, scale, rank, layer.axis,
                                                        f"{name}/scale")], f"{name}/Mul")
    return [b.node("Add", [scaled, _channel_constant(b, beta, rank, layer.axis,
                                                     f"{name}/beta")], f"{name}/Add")]


@converter("ScaleShift")
def _scale_shift(b, call, inputs):
    layer, rank = call.layer, len(call.input_shapes[0])
    scale = _channel_constant(b, layer.scale.data, rank, layer.axis, f"{layer.name}/scale")
    shift = _channel_constant(b, layer.shift.data, rank, layer.axis, f"{layer.name}/shift")
    return [b.node("Add", [b.node("Mul", [inputs[0], scale], f"{layer.name}/Mul"), shift],
                   f"{layer.name}/Add")]


@converter("Normalization")
def _normalization(b, call, inputs):
    """(x - mean) / max(sqrt(variance), 1e-7), or the inverse x * std + mean."""
    layer, rank = call.layer, len(call.input_shapes[0])
    std = np.maximum(np.sqrt(layer.variance.data), layer._EPSILON).astype(layer.dtype)
    mean = _channel_constant(b, layer.mean.data, rank, layer.axis, f"{layer.name}/mean")
    std = _channel_constant(b, std, rank, layer.axis, f"{layer.name}/std")
    if layer.invert:
        return [b.node("Add", [b.node("Mul", [inputs[0], std], f"{layer.name}/Mul"), mean],
                       f"{layer.name}/Add")]
    return [b.node("Div", [b.node("Sub", [inputs[0], mean], f"{layer.name}/Sub"), std],
                   f"{layer.name}/Div")]


@converter("Rescaling")
def _rescaling(b, call, inputs):
    layer = call.layer
    y = b.node("Mul", [inputs[0], b.scalar(layer.scale, f"{layer.name}/scale")],
               f"{layer.name}/Mul")
    return [b.node("Add", [y, b.scalar(layer.offset, f"{layer.name}/offset")],
                   f"{layer.name}/Add")]


@converter("Activation")
def _activation(b, call, inputs):
    return [emit_activation(b, call.layer.activation, inputs[0], call.layer.name)]


@converter("ReLU")
def _relu(b, call, inputs):
    return [b.node("Relu", inputs, f"{call.layer.name}/Relu")]


@converter("LeakyReLU")
def _leaky_relu(b, call, inputs):
    return [b.node("LeakyRelu", inputs, f"{call.layer.name}/LeakyRelu",
                   alpha=call.layer.negative_slope)]


@converter("ELU")
def _elu(b, call, inputs):
    return [b.node("Elu", inputs, f"{call.layer.name}/Elu", alpha=call.layer.alpha)]


@converter("PReLU")
def _prelu(b, call, inputs):
    alpha = b.weight(call.layer.alpha, f"{call.layer.name}/alpha")
    return [b.node("PRelu", [inputs[0], alpha], f"{call.layer.name}/PRelu")]


@converter("Softmax")
def _softmax(b, call, inputs):
    return [b.node("Softmax", inputs, f"{call.layer.name}/Softmax", axis=call.layer.axis)]


@converter("Maxout")
def _maxout(b, call, inputs):
    """(..., C) -> (..., units, C / units) -> the maximum over the last axis."""
    layer, rank = call.layer, len(call.input_shapes[0])
    channels = call.input_shapes[0][-1]
    shape = b.ints([0] * (rank - 1) + [layer.num_units, channels // layer.num_units],
                   f"{layer.name}/shape")
    grouped = b.node("Reshape", [inputs[0], shape], f"{layer.name}/Reshape")
    return [b.reduce("ReduceMax", grouped, [rank], False, f"{layer.name}/max")]

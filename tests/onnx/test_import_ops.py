"""Each imported ONNX operator, in small graphs built with ``onnx.helper``: the nervenet model
predicts what onnxruntime computes (images fed channels-last to nervenet, channels-first to
onnxruntime); what does not convert is an error naming the operator and the node."""

from __future__ import annotations

import numpy as np
import pytest

import nervenet.onnx
from nervenet.saving import ModelFormatError
from tests.onnx.common import onnx, run

helper, TensorProto = onnx.helper, onnx.TensorProto


def _rng():
    return np.random.default_rng(0)


def _const(name, shape, low=-1.0, high=1.0):
    return onnx.numpy_helper.from_array(
        _rng().uniform(low, high, shape).astype(np.float32), name)


def _save(path, nodes, input_shape, output_shape, initializers, opset=17):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape)], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def _compare(path, x):
    """nervenet's import of ``path`` against onnxruntime, for NCHW (or 2-D) ``x``."""
    want = run(path, [x])[0]
    model = nervenet.onnx.load(path)
    got = model.predict(x.transpose(0, 2, 3, 1) if x.ndim == 4 else x)
    if want.ndim == 4:
        want = want.transpose(0, 2, 3, 1)  # the imported model's images are channels-last
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    return model


def _node(op, inputs, output, **attributes):
    return helper.make_node(op, inputs, [output], name=f"{op.lower()}_{output}", **attributes)


def test_cnn_operators(tmp_path):
    """Conv (same-size pads, strided with odd pads), BatchNormalization, LeakyRelu,
    AveragePool with and without counted pads, Tanh, Dropout, Identity, GlobalAveragePool,
    Flatten, Gemm with transB and alpha/beta, Sigmoid."""
    nodes = [
        _node("Conv", ["x", "k1", "b1"], "c1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        _node("BatchNormalization", ["c1", "g", "beta", "mean", "var"], "bn", epsilon=1e-3),
        _node("LeakyRelu", ["bn"], "lr", alpha=0.2),
        _node("Conv", ["lr", "k2"], "c2", kernel_shape=[2, 2], strides=[2, 2],
              pads=[0, 1, 1, 0]),
        _node("AveragePool", ["c2"], "ap", kernel_shape=[2, 2], pads=[1, 1, 1, 1],
              count_include_pad=1),
        _node("Tanh", ["ap"], "t"),
        _node("AveragePool", ["t"], "ap2", kernel_shape=[2, 2], strides=[1, 1]),
        _node("Dropout", ["ap2"], "d"),
        _node("Identity", ["d"], "i"),
        _node("GlobalAveragePool", ["i"], "gap"),
        _node("Flatten", ["gap"], "f"),
        _node("Gemm", ["f", "w", "c"], "gemm", transB=1, alpha=0.5, beta=2.0),
        _node("Sigmoid", ["gemm"], "y"),
    ]
    weights = [_const("k1", (4, 3, 3, 3)), _const("b1", (4,)), _const("g", (4,)),
               _const("beta", (4,)), _const("mean", (4,)), _const("var", (4,), 0.5, 2.0),
               _const("k2", (5, 4, 2, 2)), _const("w", (2, 5)), _const("c", (2,))]
    path = _save(tmp_path / "cnn.onnx", nodes, ["N", 3, 8, 8], ["N", 2], weights)
    _compare(path, _rng().normal(size=(7, 3, 8, 8)).astype(np.float32))


def test_dilated_convolutions(tmp_path):
    """Conv with dilations: "same" pads of the dilated span (a Conv2D with padding="same"),
    other pads (ZeroPadding2D first), and dilation with strides (onnxruntime runs no dilated
    Conv with auto_pad SAME_UPPER)."""
    nodes = [
        _node("Conv", ["x", "k1", "b1"], "c1", kernel_shape=[3, 3], dilations=[2, 2],
              pads=[2, 2, 2, 2]),
        _node("Conv", ["c1", "k2"], "c2", kernel_shape=[2, 3], dilations=[3, 1],
              pads=[1, 0, 0, 1]),
        _node("Conv", ["c2", "k3", "b3"], "y", kernel_shape=[3, 2], dilations=[1, 2],
              strides=[2, 1], pads=[1, 1, 1, 1]),
    ]
    weights = [_const("k1", (4, 3, 3, 3), -0.3, 0.3), _const("b1", (4,)),
               _const("k2", (5, 4, 2, 3), -0.3, 0.3), _const("k3", (2, 5, 3, 2), -0.3, 0.3),
               _const("b3", (2,))]  # small: outputs near 1, where float32 keeps 1e-5
    path = _save(tmp_path / "dilated.onnx", nodes, ["N", 3, 9, 8], ["N", 2, 4, 7], weights)
    model = _compare(path, _rng().normal(size=(7, 3, 9, 8)).astype(np.float32))
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert [(c.dilation_rate, c.padding) for c in convs] == \
        [((2, 2), "same"), ((3, 1), "valid"), ((1, 2), "same")]


def test_flatten_order_reaches_the_dense_weights(tmp_path):
    """Flattening channels-first (C, H, W) values: the imported Dense sees them in (H, W, C)
    order, with its weight rows permuted to match; also Reshape to (-1, C*H*W), MatMul + Add
    (one Dense layer), Relu, Softmax and a BatchNormalization of flat features."""
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 24])
    nodes = [
        _node("MaxPool", ["x"], "p", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Constant", [], ["shape_value"], value=shape, name="shape"),
        _node("Reshape", ["p", "shape_value"], "r"),
        _node("BatchNormalization", ["r", "g", "beta", "mean", "var"], "bn"),
        _node("MatMul", ["bn", "w"], "mm"),
        _node("Add", ["mm", "b"], "a"),
        _node("Relu", ["a"], "relu"),
        _node("Softmax", ["relu"], "y", axis=1),
    ]
    weights = [_const("w", (24, 5)), _const("b", (5,)), _const("g", (24,)),
               _const("beta", (24,)), _const("mean", (24,)), _const("var", (24,), 0.5, 2.0)]
    path = _save(tmp_path / "flat.onnx", nodes, ["N", 6, 4, 4], ["N", 5], weights)
    model = _compare(path, _rng().normal(size=(7, 6, 4, 4)).astype(np.float32))
    assert sorted(type(layer).__name__ for layer in model.layers if layer.weights) == \
        ["BatchNormalization", "Dense"]


def test_non_image_reshape_and_softmax_axis(tmp_path):
    nodes = [
        _node("Reshape", ["x", "shape"], "r"),
        _node("Softmax", ["r"], "y", axis=-1),
    ]
    shape = onnx.numpy_helper.from_array(np.array([0, 3, 4], np.int64), "shape")
    path = _save(tmp_path / "r.onnx", nodes, ["N", 12], ["N", 3, 4], [shape])
    _compare(path, _rng().normal(size=(7, 12)).astype(np.float32))


def test_nchw_softmax_over_channels(tmp_path):
    path = _save(tmp_path / "s.onnx", [_node("Softmax", ["x"], "y", axis=1)],
                 ["N", 3, 2, 2], ["N", 3, 2, 2], [])
    _compare(path, _rng().normal(size=(7, 3, 2, 2)).astype(np.float32))


@pytest.mark.parametrize("case", ["op", "domain", "group", "dilation", "pool pads", "cycle"])
def test_what_does_not_convert_names_the_op_and_node(case, tmp_path):
    k = _const("k", (3, 3, 3, 3))
    nodes = {
        "op": [_node("Sin", ["x"], "y")],
        "domain": [helper.make_node("Relu", ["x"], ["y"], name="relu_node", domain="com.x")],
        "group": [_node("Conv", ["x", "kg"], "y", kernel_shape=[3, 3], group=3)],
        "dilation": [_node("MaxPool", ["x"], "y", kernel_shape=[2, 2], dilations=[2, 2])],
        "pool pads": [_node("MaxPool", ["x"], "y", kernel_shape=[3, 3], strides=[2, 2],
                             pads=[1, 1, 1, 1])],
        "cycle": [_node("Relu", ["z"], "y"), _node("Tanh", ["y"], "z")],
    }[case]
    match = {"op": "node 'sin_y' uses operator 'Sin'", "domain": "of domain 'com.x'",
             "group": "'conv_y' \\(Conv\\): group=3",
             "dilation": "'maxpool_y' \\(MaxPool\\): dilations",
             "pool pads": "'maxpool_y' \\(MaxPool\\): pads", "cycle": "cycle"}[case]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [k, _const("kg", (3, 1, 3, 3))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(tmp_path / "m.onnx"))
    with pytest.raises(ModelFormatError, match=match):
        nervenet.onnx.load(tmp_path / "m.onnx")


def test_external_data_beside_the_file(tmp_path):
    weight = onnx.numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3), "w")
    nodes = [_node("MatMul", ["x", "w"], "y")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], [weight])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(proto, str(tmp_path / "m.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location="m.onnx.data", size_threshold=0)
    assert (tmp_path / "m.onnx.data").stat().st_size == 48
    model = nervenet.onnx.load(tmp_path / "m.onnx")
    x = np.ones((2, 4), np.float32)
    np.testing.assert_array_equal(model.predict(x), x @ np.arange(12.0).reshape(4, 3))

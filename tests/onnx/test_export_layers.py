"""Every layer kind and activation exported to ONNX: onnxruntime equals ``model.predict`` to
1e-5 at batch sizes 1 and 7 from one file, the file passes the full checker, and
``nervenet.onnx.load`` gives the same model back."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import nervenet
import nervenet.functional as F
from nervenet import layers, models
from tests.onnx.common import check_export, onnx, run
from tests.scripts import modules_left_imported


def _rng():
    return np.random.default_rng(0)


def _images(shape=(9, 9, 3)):
    return _rng().normal(size=(7, *shape)).astype(np.float32)


def _randomize(model):
    """Weights away from their initial values (BN statistics included), so that nothing is an
    identity by accident."""
    rng = _rng()
    for weight in model.weights:
        values = rng.normal(0.0, 0.5, weight.shape)
        if "variance" in weight.name:
            values = rng.uniform(0.5, 2.0, weight.shape)
        weight.data[...] = values
    return model


def _seq(shape, *stack):
    return _randomize(models.Sequential([layers.Input(shape=shape), *stack]))


# name -> (model factory, input factory)
CASES = {
    "dense_gemm": (lambda: _seq((6,), layers.Dense(4, activation="relu"), layers.Dense(3)),
                   lambda: _images((6,))),
    "dense_matmul_3d": (lambda: _seq((5, 6), layers.Dense(4, activation="tanh")),
                        lambda: _images((5, 6))),
    "dense_no_bias": (lambda: _seq((6,), layers.Dense(4, use_bias=False)),
                      lambda: _images((6,))),
    "conv_valid": (lambda: _seq((9, 9, 3), layers.Conv2D(4, 3, activation="relu")),
                   _images),
    "conv_same_strided": (lambda: _seq((9, 8, 3), layers.Conv2D(4, (3, 2), strides=2,
                                                                   padding="same")),
                          lambda: _images((9, 8, 3))),
    "conv_dilated_same": (lambda: _seq((9, 8, 3), layers.Conv2D(4, 3, dilation_rate=2,
                                                                   padding="same",
                                                                   activation="relu")),
                          lambda: _images((9, 8, 3))),
    "conv_dilated_rect_strided": (lambda: _seq((9, 9, 3), layers.Conv2D(
        3, (2, 3), strides=2, dilation_rate=(3, 2))), _images),
    "conv_softmax": (lambda: _seq((6, 6, 2), layers.Conv2D(3, 1, activation="softmax")),
                     lambda: _images((6, 6, 2))),
    "conv_pool_flatten": (lambda: _seq((10, 10, 2), layers.Conv2D(4, 3, activation="relu"),
                                       layers.ReLU(), layers.MaxPooling2D(),
                                       layers.Conv2D(3, 2, padding="same"),
                                       layers.AveragePooling2D(), layers.Flatten(),
                                       layers.Dense(5)),
                          lambda: _images((10, 10, 2))),
    "max_pool_same": (lambda: _seq((9, 9, 3), layers.MaxPooling2D(3, strides=2,
                                                                  padding="same")), _images),
    "average_pool_same": (lambda: _seq((9, 9, 3), layers.AveragePooling2D(2, padding="same")),
                          _images),
    "average_pool_strided": (lambda: _seq((9, 9, 3), layers.AveragePooling2D(3, strides=2)),
                             _images),
    "global_average": (lambda: _seq((9, 9, 3), layers.GlobalAveragePooling2D()), _images),
    "global_max_keepdims": (lambda: _seq((9, 9, 3), layers.GlobalMaxPooling2D(keepdims=True)),
                            _images),
    "stochastic_pool": (lambda: _seq((8, 8, 3), layers.ReLU(), layers.StochasticPooling2D()),
                        lambda: _images((8, 8, 3))),
    "zero_padding_crop": (lambda: _seq((9, 9, 3), layers.ZeroPadding2D(((1, 0), (2, 1))),
                                       layers.RandomCrop(6, 7)), _images),
    "batch_norm_folded_dense": (lambda: _seq((6,), layers.Dense(5), layers.BatchNormalization(),
                                             layers.Activation("relu")),
                                lambda: _images((6,))),
    "batch_norm_folded_conv": (lambda: _seq((9, 9, 3), layers.Conv2D(4, 3, use_bias=False),
                                            layers.BatchNormalization(center=False)), _images),
    "batch_norm_unfolded": (lambda: _seq((9, 9, 3), layers.BatchNormalization(),
                                         layers.Conv2D(4, 3, activation="relu"),
                                         layers.BatchNormalization(momentum=0.9)), _images),
    "training_only_layers": (lambda: _seq((9, 9, 3), layers.RandomFlip(), layers.RandomZoom(0.2),
                                          layers.GaussianNoise(0.3), layers.Flatten(),
                                          layers.Dropout(0.5), layers.GaussianDropout(0.2),
                                          layers.Dense(2)), _images),
    "reshape": (lambda: _seq((12,), layers.Reshape((3, -1)), layers.Dense(2)),
                lambda: _images((12,))),
    "normalization": (lambda: _seq((4,), layers.Normalization(mean=[1.0, 2, 3, 4],
                                                             variance=[1.0, 4, 0, 2])),
                      lambda: _images((4,))),
    "normalization_invert_axis_1": (lambda: _seq((3, 4), layers.Normalization(
        axis=1, mean=[2.0, 0, 1], variance=[9.0, 1, 4], invert=True)), lambda: _images((3, 4))),
    "normalization_scalar": (lambda: _seq((3, 4), layers.Normalization(
        axis=None, mean=2.0, variance=9.0)), lambda: _images((3, 4))),
    "rescaling_scale_shift": (lambda: _seq((9, 9, 3), layers.Rescaling(1 / 255, offset=-0.5),
                                           layers.ScaleShift()), _images),
    "activation_layers": (lambda: _seq((6,), layers.LeakyReLU(0.2), layers.ELU(0.7),
                                       layers.PReLU(), layers.Softmax()),
                          lambda: _images((6,))),
    "prelu_shared": (lambda: _seq((4, 4, 3), layers.PReLU(shared_axes=[1, 2])),
                     lambda: _images((4, 4, 3))),
    "maxout": (lambda: _seq((5, 6), layers.Maxout(3)), lambda: _images((5, 6))),
    "nested_sequential": (lambda: _seq((6,), models.Sequential([layers.Dense(4),
                                                               layers.Dense(3)]),
                                       layers.Dense(2)), lambda: _images((6,))),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_layer_kind(case, tmp_path):
    make_model, make_input = CASES[case]
    check_export(make_model(), make_input(), tmp_path / f"{case}.onnx")


ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh", "leaky_relu", "elu", "selu", "gelu",
               "swish", "mish", "softplus", "softmax", "log_softmax", "step"]
PARTIALS = {
    "sloped_sigmoid": functools.partial(F.sigmoid, a=2.5),
    "bipolar_step": functools.partial(F.step, low=-1.0),
    "step_half_at_zero": functools.partial(F.step, at_zero=0.5),
    "leaky_relu_alpha": functools.partial(F.leaky_relu, alpha=0.2),
    "elu_alpha": functools.partial(F.elu, alpha=0.5),
    "gelu_tanh": functools.partial(F.gelu, approximate=True),
}


@pytest.mark.parametrize("activation", ACTIVATIONS + sorted(PARTIALS))
@pytest.mark.parametrize("opset", [13, 17, 21])
def test_activation(activation, opset, tmp_path):
    fn = PARTIALS.get(activation, activation)
    x = _images((6,)) * 3
    x[0, :2] = 0.0  # step's value at exactly 0
    model = _seq((6,), layers.Dense(6, activation=fn))
    check_export(model, x, tmp_path / "model.onnx", opset=opset,
                 reload=activation not in PARTIALS)  # a partial has no config to reload


@pytest.mark.parametrize("opset", [13, 17, 18, 20, 21])
def test_opsets_and_ir_version(opset, tmp_path):
    model = _seq((8, 8, 2), layers.Conv2D(6, 3, activation="gelu"), layers.Maxout(3),
                 layers.GlobalMaxPooling2D(), layers.Dense(2, activation="mish"))
    check_export(model, _images((8, 8, 2)), tmp_path / "model.onnx", opset=opset)
    proto = onnx.load(str(tmp_path / "model.onnx"))
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", opset)]
    assert proto.ir_version == onnx.helper.find_min_ir_version_for(proto.opset_import)
    ops = {n.op_type for n in proto.graph.node}
    assert ("Gelu" in ops) == (opset >= 20) and ("Mish" in ops) == (opset >= 18)


def test_default_opset_is_17(tmp_path):
    _seq((3,), layers.Dense(2)).export(tmp_path / "m.onnx")
    assert onnx.load(str(tmp_path / "m.onnx")).opset_import[0].version == 17


def test_transpose_pairs_cancel_and_batch_norm_folds(tmp_path):
    """Conv -> ReLU -> pool -> Conv -> BN -> pool: one Transpose into channels-first at the
    start, one back before Flatten; the BatchNormalization is inside the second Conv."""
    model = _seq((12, 12, 1), layers.Conv2D(4, 3, activation="relu"), layers.ReLU(),
                 layers.MaxPooling2D(), layers.Conv2D(4, 3), layers.BatchNormalization(),
                 layers.AveragePooling2D(), layers.Flatten(), layers.Dense(3))
    check_export(model, _images((12, 12, 1)), tmp_path / "m.onnx")
    ops = [n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node]
    assert ops == ["Transpose", "Conv", "Relu", "Relu", "MaxPool", "Conv", "AveragePool",
                   "Transpose", "Flatten", "Gemm"]


def test_functional_several_inputs_and_outputs(tmp_path):
    a, b = layers.Input(shape=(4,), name="wide"), layers.Input(shape=(3,), name="deep")
    hidden = layers.Dense(5, activation="relu")(b)
    joined = layers.Concatenate()([a, hidden])
    main = layers.Dense(1, name="main")(joined)
    aux = layers.Dense(2, activation="softmax", name="aux")(hidden)
    model = _randomize(models.Model(inputs=[a, b], outputs=[main, aux]))
    check_export(model, [_images((4,)), _images((3,))], tmp_path / "m.onnx")
    sess_inputs = [i.name for i in onnx.load(str(tmp_path / "m.onnx")).graph.input]
    assert sess_inputs == ["wide", "deep"]


def test_shared_layer_and_output_that_is_an_input(tmp_path):
    x = layers.Input(shape=(3,))
    shared = layers.Dense(3)
    y = shared(shared(x))
    model = _randomize(models.Model(inputs=x, outputs=[y, x]))
    check_export(model, _images((3,)), tmp_path / "m.onnx")


class TwoLayer(models.Model):
    def __init__(self):
        super().__init__()
        self.hidden = layers.Dense(5, activation="relu")
        self.out = layers.Dense(2)

    def call(self, inputs, training=False):
        return self.out(self.hidden(inputs))


class Arithmetic(TwoLayer):
    def call(self, inputs, training=False):
        return self.out(self.hidden(inputs) * 2.0)


def test_subclassed_model_is_traced(tmp_path):
    model = TwoLayer()
    x = _images((4,))
    model(x)
    _randomize(model)
    check_export(model, x, tmp_path / "m.onnx", reload=False)
    loaded = nervenet.onnx.load(tmp_path / "m.onnx")  # no config: the graph is imported
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), atol=1e-6)
    assert model.hidden._inbound_nodes == []  # tracing left nothing behind


def test_untraceable_subclassed_model_is_a_clear_error(tmp_path):
    model = Arithmetic()
    model(_images((4,)))
    with pytest.raises(ValueError, match="cannot export model .*only calls layers"):
        model.export(tmp_path / "m.onnx")


@nervenet.saving.register_serializable(package="OnnxTests")
class Doubling(layers.Layer):
    def call(self, inputs):
        return inputs * 2.0


@pytest.mark.parametrize("problem, match", [
    ("layer", "layer 'doubling' \\(Doubling\\) has no ONNX converter"),
    ("activation", "activation .* has no ONNX converter"),
    ("opset", "opset must be an int from 13 to 21"),
    ("format", "unknown export format 'tf'; valid export format ids are: onnx"),
    ("not built", "not built"),
])
def test_errors_name_the_problem(problem, match, tmp_path):
    kwargs = {}
    if problem == "layer":
        model = _seq((3,), Doubling(name="doubling"))
    elif problem == "activation":
        model = _seq((3,), layers.Dense(2, activation=lambda x: x))
    elif problem == "not built":
        model = models.Sequential([layers.Dense(2)])
    else:
        model = _seq((3,), layers.Dense(2))
        kwargs = {"opset": 12} if problem == "opset" else {"format": "tf"}
    with pytest.raises(ValueError, match=match):
        model.export(tmp_path / "m.onnx", **kwargs)
    assert not (tmp_path / "m.onnx").exists()


def test_fixed_batch(tmp_path):
    model = _seq((3,), layers.Dense(2))
    model.export(tmp_path / "m.onnx", dynamic_batch=False)
    dims = onnx.load(str(tmp_path / "m.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 3]
    x = _images((3,))[:1]
    np.testing.assert_allclose(run(tmp_path / "m.onnx", [x])[0], model.predict(x), atol=1e-6)


def test_import_nervenet_imports_neither_onnx_nor_onnxruntime():
    code = ("import nervenet, numpy as np; from nervenet import layers, models; "
            "m = models.Sequential([layers.Input(shape=(2,)), layers.Dense(1)]); "
            "m.predict(np.ones((1, 2)), verbose=0)")
    assert modules_left_imported(code, ("onnx", "onnxruntime", "nervenet.onnx")) == []


@pytest.mark.parametrize("merge", ["Add", "Subtract", "Multiply", "Average", "Maximum",
                                   "Minimum"])
def test_merge_layers(merge, tmp_path):
    inputs = [layers.Input(shape=(4,)) for _ in range(2 if merge == "Subtract" else 3)]
    hidden = [layers.Dense(4)(x) for x in inputs]
    output = getattr(layers, merge)()(hidden)
    model = _randomize(models.Model(inputs=inputs, outputs=output))
    check_export(model, [_images((4,)) for _ in inputs], tmp_path / "m.onnx")


@pytest.mark.parametrize("options", [{}, {"axis": [1, 2]}, {"rms_scaling": True},
                                     {"center": False, "scale": False, "epsilon": 1e-5}])
@pytest.mark.parametrize("opset", [13, 18])
def test_layer_normalization(options, opset, tmp_path):
    model = _seq((3, 4, 5), layers.LayerNormalization(**options))
    check_export(model, _images((3, 4, 5)) * 3 + 1, tmp_path / "m.onnx", opset=opset)


def test_dilated_same_conv_of_any_image_size(tmp_path):
    """Unknown height and width: a stride-1 "same" convolution gets explicit pads (the total
    is span - 1 for any size), so the dilated one runs in onnxruntime at every size; with
    strides above 1 the pads depend on the size, which a dilated Conv cannot leave to
    auto_pad in onnxruntime: a clear error."""
    model = _seq((None, None, 2), layers.Conv2D(3, (3, 2), padding="same",
                                                dilation_rate=(2, 3), activation="tanh"),
                 layers.MaxPooling2D(3, strides=1, padding="same"))
    model.export(tmp_path / "m.onnx")
    for size in ((5, 7), (9, 4)):
        x = _images(size + (2,))
        np.testing.assert_allclose(run(tmp_path / "m.onnx", [x])[0], model.predict(x),
                                   rtol=0, atol=1e-5)
    strided = _seq((None, None, 2), layers.Conv2D(3, 3, strides=2, padding="same",
                                                  dilation_rate=2, name="atrous"))
    with pytest.raises(ValueError, match=r"layer 'atrous': a dilated convolution with "
                                         r"padding='same' and strides \(2, 2\) needs the "
                                         r"input's height and width"):
        strided.export(tmp_path / "s.onnx")
    assert not (tmp_path / "s.onnx").exists()

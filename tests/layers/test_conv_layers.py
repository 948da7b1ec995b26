"""Convolution, pooling and padding layers: the layer harness (output shape against
compute_output_shape and Keras's formulas, parameter counts, one training step, config round
trip), values against direct loops, and the bad-input messages."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import nervenet
from nervenet import models
from nervenet.layers import Flatten, Input, registry
from nervenet.layers.conv import Conv2D
from nervenet.layers.pooling import (
    AveragePooling2D,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    MaxPooling2D,
    StochasticPooling2D,
    ZeroPadding2D,
)


def keras_length(size: int, window: int, stride: int, padding: str) -> int:
    """keras.src.ops.operation_utils: "valid" ceil((size - window + 1) / stride), "same"
    ceil(size / stride) (written as Keras writes it, independently of the layers' code)."""
    if padding == "valid":
        return math.ceil((size - window + 1) / stride)
    return math.ceil(size / stride)


# (factory, input shape, expected output shape, trainable count, non-trainable count)
CASES = {
    "conv-valid": (lambda: Conv2D(32, 3), (2, 28, 28, 1), (2, 26, 26, 32), 320, 0),
    "conv-same-odd": (lambda: Conv2D(4, 3, padding="same"), (2, 7, 5, 3), (2, 7, 5, 4),
                      3 * 3 * 3 * 4 + 4, 0),
    "conv-valid-stride2-odd": (lambda: Conv2D(5, (3, 2), strides=2), (2, 9, 7, 2), (2, 4, 3, 5),
                               3 * 2 * 2 * 5 + 5, 0),
    "conv-same-stride2-odd": (lambda: Conv2D(3, 4, strides=(2, 3), padding="same",
                                             activation="relu"), (2, 9, 7, 2), (2, 5, 3, 3),
                              4 * 4 * 2 * 3 + 3, 0),
    "conv-dilated": (lambda: Conv2D(3, 3, dilation_rate=2), (2, 9, 8, 2), (2, 5, 4, 3),
                     3 * 3 * 2 * 3 + 3, 0),
    "conv-dilated-rect-same-stride2": (lambda: Conv2D(2, (2, 3), strides=2, padding="same",
                                                      dilation_rate=(3, 2)),
                                       (2, 9, 7, 2), (2, 5, 4, 2), 2 * 3 * 2 * 2 + 2, 0),
    "conv-no-bias": (lambda: Conv2D(6, 1, use_bias=False, kernel_initializer="he_normal"),
                     (2, 4, 4, 3), (2, 4, 4, 6), 18, 0),
    "maxpool": (lambda: MaxPooling2D(), (2, 7, 7, 3), (2, 3, 3, 3), 0, 0),
    "maxpool-same-stride1": (lambda: MaxPooling2D(3, strides=1, padding="same"), (2, 5, 4, 2),
                             (2, 5, 4, 2), 0, 0),
    "maxpool-same-stride2": (lambda: MaxPooling2D(3, strides=2, padding="same"), (2, 7, 6, 2),
                             (2, 4, 3, 2), 0, 0),
    "avgpool": (lambda: AveragePooling2D((2, 3)), (2, 7, 7, 3), (2, 3, 2, 3), 0, 0),
    "avgpool-same": (lambda: AveragePooling2D(2, padding="same"), (2, 5, 5, 1), (2, 3, 3, 1),
                     0, 0),
    "stochastic": (lambda: StochasticPooling2D(seed=3), (2, 7, 6, 2), (2, 3, 3, 2), 0, 0),
    "global-avg": (lambda: GlobalAveragePooling2D(), (2, 5, 3, 4), (2, 4), 0, 0),
    "global-avg-keepdims": (lambda: GlobalAveragePooling2D(keepdims=True), (2, 5, 3, 4),
                            (2, 1, 1, 4), 0, 0),
    "global-max": (lambda: GlobalMaxPooling2D(), (2, 5, 3, 4), (2, 4), 0, 0),
    "global-max-keepdims": (lambda: GlobalMaxPooling2D(keepdims=True), (2, 5, 3, 4),
                            (2, 1, 1, 4), 0, 0),
    "zero-padding": (lambda: ZeroPadding2D(((1, 2), (0, 3))), (2, 3, 4, 2), (2, 6, 7, 2), 0, 0),
}


@pytest.fixture(params=sorted(CASES))
def case(request):
    return CASES[request.param]


def _input(shape, seed):
    # non-negative: stochastic pooling needs it, and the others do not mind
    return np.random.default_rng(seed).uniform(0.0, 1.0, shape).astype(np.float32)


def test_output_shape_compute_output_shape_and_weight_counts(case):
    factory, input_shape, output_shape, trainable, non_trainable = case
    layer = factory()
    y = layer(_input(input_shape, 0))
    assert y.shape == output_shape
    assert y.dtype == np.float32
    assert tuple(layer.compute_output_shape((None,) + input_shape[1:])) \
        == (None,) + output_shape[1:]
    assert layer.output_shape == (None,) + output_shape[1:]
    assert sum(w.size for w in layer.trainable_weights) == trainable
    assert sum(w.size for w in layer.non_trainable_weights) == non_trainable
    assert layer.count_params() == trainable + non_trainable


@pytest.mark.parametrize("size", [5, 6, 7, 28])
@pytest.mark.parametrize("window", [1, 2, 3, 5])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_shapes_follow_keras_formulas(size, window, stride, padding):
    expected = keras_length(size, window, stride, padding)
    for layer in (Conv2D(2, (window, 1), strides=(stride, 1), padding=padding),
                  MaxPooling2D((window, 1), strides=(stride, 1), padding=padding),
                  AveragePooling2D((window, 1), strides=(stride, 1), padding=padding)):
        assert layer.compute_output_shape((None, size, 3, 1))[1] == expected
        x = _input((1, size, 3, 1), 1)
        assert layer(x).shape[1] == expected
    if padding == "valid" and stride == window:
        assert StochasticPooling2D((window, 1)).compute_output_shape((None, size, 3, 1))[1] \
            == expected == size // window


def test_one_training_step_moves_the_trainable_weights(case):
    factory, input_shape, *_ = case
    layer = factory()
    x = _input(input_shape, 1)
    layer(x)
    before = [w.data.copy() for w in layer.weights]
    loss = (layer(x, training=True) ** 2).mean()
    if layer.trainable_weights:
        gradients = nervenet.grad(loss, layer.trainable_weights)
        with nervenet.no_grad():
            for w, g in zip(layer.trainable_weights, gradients):
                assert np.abs(g.data).max() > 0, w.name
                w.data -= 0.1 * g.data
        assert (layer(x) ** 2).mean().item() < loss.item()
    for w, old in zip(layer.weights, before):
        assert not np.array_equal(w.data, old), w.name


def test_config_round_trip_gives_identical_outputs(case):
    factory, input_shape, *_ = case
    layer = factory()
    x = _input(input_shape, 2)
    expected = layer(x).data
    config = json.loads(json.dumps(layer.get_config()))  # must be JSON-serialisable
    clone = registry.from_config({"class_name": type(layer).__name__, "config": config})
    assert type(clone) is type(layer)
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(x).data, expected)
    assert clone.get_config() == layer.get_config()


# ------------------------------------------------------------------------------------- values


def _conv_reference(x, w, b, stride, padding, dilation=(1, 1)):
    """A direct loop over output cells, Keras's "same" split (the extra cell after); a
    dilated kernel reads every d-th cell of its span (k - 1) * d + 1."""
    n, h, wd, _ = x.shape
    (dh, dw), o = dilation, w.shape[3]
    kh, kw = (w.shape[0] - 1) * dh + 1, (w.shape[1] - 1) * dw + 1
    sh, sw = stride
    if padding == "same":
        ho, wo = -(-h // sh), -(-wd // sw)
        ph, pw = max((ho - 1) * sh + kh - h, 0), max((wo - 1) * sw + kw - wd, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        ho, wo = (h - kh) // sh + 1, (wd - kw) // sw + 1
    y = np.zeros((n, ho, wo, o))
    for i in range(ho):
        for j in range(wo):
            field = x[:, i * sh:i * sh + kh:dh, j * sw:j * sw + kw:dw, :]
            y[:, i, j, :] = np.tensordot(field, w, axes=([1, 2, 3], [0, 1, 2])) + b
    return y


@pytest.mark.parametrize("strides,padding,dilation", [
    (1, "valid", 1), (2, "valid", 1), (1, "same", 1), ((2, 3), "same", 1), (1, "valid", 2),
    (1, "same", (2, 3)), (2, "same", (3, 1))])
def test_conv2d_layer_equals_the_direct_loop(strides, padding, dilation):
    rng = np.random.default_rng(4)
    layer = Conv2D(3, (3, 2), strides=strides, padding=padding, activation="tanh",
                   dilation_rate=dilation, bias_initializer="random_normal", dtype="float64")
    x = rng.standard_normal((2, 7, 6, 2))
    y = layer(x).data
    stride = strides if isinstance(strides, tuple) else (strides, strides)
    dilation = dilation if isinstance(dilation, tuple) else (dilation, dilation)
    assert layer.dilation_rate == dilation
    expected = np.tanh(_conv_reference(x, layer.kernel.data, layer.bias.data, stride, padding,
                                       dilation))
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("size", [5, 6, 9])
@pytest.mark.parametrize("window,dilation", [(2, 2), (3, 2), (2, 4), (3, 1)])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_dilated_shapes_follow_keras_formulas(size, window, dilation, stride, padding):
    """Keras's conv output length takes the dilated span (window - 1) * dilation + 1."""
    expected = keras_length(size, (window - 1) * dilation + 1, stride, padding)
    layer = Conv2D(2, (window, 1), strides=(stride, 1), padding=padding,
                   dilation_rate=(dilation, 1))
    if expected < 1:
        with pytest.raises(ValueError, match=r"with dilation_rate \(\d, 1\), spanning"):
            layer.compute_output_shape((None, size, 3, 1))
        return
    assert layer.compute_output_shape((None, size, 3, 1))[1] == expected
    assert layer(_input((1, size, 3, 1), 1)).shape[1] == expected


def test_conv2d_kernel_initializer_uses_keras_fans():
    nervenet.utils.set_random_seed(0)
    layer = Conv2D(32, 3)
    layer.build((None, 28, 28, 1))
    limit = math.sqrt(6 / (3 * 3 * 1 + 3 * 3 * 32))  # glorot_uniform, fans kh*kw*in, kh*kw*out
    assert layer.kernel.shape == (3, 3, 1, 32) and layer.bias.shape == (32,)
    assert np.abs(layer.kernel.data).max() <= limit
    assert np.abs(layer.kernel.data).max() > 0.9 * limit
    np.testing.assert_array_equal(layer.bias.data, 0.0)


def test_pooling_values():
    x = np.arange(32.0).reshape(1, 4, 4, 2)
    np.testing.assert_array_equal(MaxPooling2D()(x).data[0, :, :, 1], [[11, 15], [27, 31]])
    np.testing.assert_array_equal(AveragePooling2D()(x).data[0, :, :, 0], [[5, 9], [21, 25]])
    # "same", 3x3 windows with stride 3 on 4x4: one cell of padding on each side, so each
    # window holds 2x2 cells of the image; their mean is divided by 4, not by 9
    same = AveragePooling2D(3, strides=3, padding="same")(x[:, :, :, :1]).data[0, :, :, 0]
    np.testing.assert_allclose(same, [[(0 + 2 + 8 + 10) / 4, (4 + 6 + 12 + 14) / 4],
                                      [(16 + 18 + 24 + 26) / 4, (20 + 22 + 28 + 30) / 4]])
    np.testing.assert_array_equal(GlobalAveragePooling2D()(x).data, [[15.0, 16.0]])
    np.testing.assert_array_equal(GlobalMaxPooling2D(keepdims=True)(x).data,
                                  [[[[30.0, 31.0]]]])
    padded = ZeroPadding2D(1)(np.ones((1, 1, 2, 1))).data[0, :, :, 0]
    np.testing.assert_array_equal(padded, [[0, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]])


def test_stochastic_pooling_draws_with_the_layer_generator():
    x = np.array([[1.0, 3.0], [0.0, 4.0]]).reshape(1, 2, 2, 1)
    layer = StochasticPooling2D(seed=7)
    np.testing.assert_allclose(layer(x).data.ravel(), [(1 + 9 + 16) / 8])  # inference
    draws = [layer(x, training=True).data.item() for _ in range(2000)]
    counts = {v: draws.count(v) / len(draws) for v in set(draws)}
    assert set(counts) == {1.0, 3.0, 4.0}  # the zero is never drawn
    for value, probability in ((1.0, 1 / 8), (3.0, 3 / 8), (4.0, 4 / 8)):
        assert abs(counts[value] - probability) < 0.04
    again = StochasticPooling2D(seed=7)
    assert [again(x, training=True).data.item() for _ in range(2000)] == draws
    with pytest.raises(ValueError, match="non-negative"):
        layer(-x, training=True)
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        StochasticPooling2D(seed=-1)


def test_zero_padding_argument_forms():
    assert ZeroPadding2D(2).padding == ((2, 2), (2, 2))
    assert ZeroPadding2D((1, 3)).padding == ((1, 1), (3, 3))
    assert ZeroPadding2D([[0, 1], [2, 3]]).padding == ((0, 1), (2, 3))
    assert ZeroPadding2D((1, 3)).compute_output_shape((None, None, 5, 2)) == (None, None, 11, 2)
    with pytest.raises(ValueError, match=r"ZeroPadding2D: padding must be .* got \(1, 2, 3\)"):
        ZeroPadding2D((1, 2, 3))


# ------------------------------------------------------------------------- models and summary


def test_sequential_summary_shapes_and_counts_as_keras():
    model = models.Sequential([
        Input(shape=(28, 28, 1)), Conv2D(32, 3, activation="relu"), MaxPooling2D(),
        Conv2D(64, 3, padding="same", strides=2), AveragePooling2D(3, strides=2, padding="same"),
        ZeroPadding2D(1), GlobalMaxPooling2D(keepdims=True), Flatten()])
    # Keras 3 prints these output shapes and parameter counts for the same layers
    assert [layer.output_shape for layer in model.layers] == [
        (None, 26, 26, 32), (None, 13, 13, 32), (None, 7, 7, 64), (None, 4, 4, 64),
        (None, 6, 6, 64), (None, 1, 1, 64), (None, 64)]
    assert [layer.count_params() for layer in model.layers] == [320, 0, 18496, 0, 0, 0, 0]
    assert model.predict(_input((3, 28, 28, 1), 5)).shape == (3, 64)


def test_layers_are_registered_for_safe_loading():
    for name in ("Conv2D", "MaxPooling2D", "AveragePooling2D", "StochasticPooling2D",
                 "GlobalAveragePooling2D", "GlobalMaxPooling2D", "ZeroPadding2D"):
        assert name in registry


# ---------------------------------------------------------------------------------- bad input


def test_conv2d_rejects_3d_input_naming_the_shape():
    with pytest.raises(ValueError, match=r"expected 4-D input \(batch, height, width, channels\)"
                                         r", got shape \(8, 28, 28\).*reshape\(8, 28, 28, 1\)"):
        Conv2D(4, 3)(np.zeros((8, 28, 28)))


def test_conv2d_rejects_a_kernel_larger_than_the_padded_input_naming_both():
    with pytest.raises(ValueError, match=r"kernel \(5, 5\) is larger than the input's spatial "
                                         r"size \(4, 6\) \(input shape \(None, 4, 6, 1\)"):
        Conv2D(4, 5)(np.zeros((2, 4, 6, 1)))
    assert Conv2D(4, 5, padding="same")(np.zeros((2, 4, 6, 1))).shape == (2, 4, 6, 4)
    with pytest.raises(ValueError, match=r"kernel \(3, 3\) is larger .* \(None, 2, 2, 1\)"):
        models.Sequential([Input(shape=(2, 2, 1)), Conv2D(4, 3)])
    with pytest.raises(ValueError, match=r"pool window \(3, 3\) is larger .* \(1, 2, 2, 1\)"):
        MaxPooling2D(3)(np.zeros((1, 2, 2, 1)))


def test_conv2d_rejects_channels_that_do_not_match_the_kernel_naming_both():
    layer = Conv2D(8, 3)
    layer(np.zeros((2, 9, 9, 1)))
    with pytest.raises(ValueError, match=r"the input has 3 channels \(input shape "
                                         r"\(2, 9, 9, 3\)\) but the kernel of shape "
                                         r"\(3, 3, 1, 8\) expects 1"):
        layer(np.zeros((2, 9, 9, 3)))


def test_bad_constructor_arguments_are_named():
    with pytest.raises(ValueError, match="filters must be a positive int, got 0"):
        Conv2D(0, 3)
    with pytest.raises(ValueError, match=r"kernel_size must be .* got \(3, 3, 3\)"):
        Conv2D(2, (3, 3, 3))
    with pytest.raises(ValueError, match="strides must be a positive int .* got 0"):
        MaxPooling2D(2, strides=0)
    with pytest.raises(ValueError, match=r"dilation_rate must be .* got \(2, 0\)"):
        Conv2D(2, 3, dilation_rate=(2, 0))
    with pytest.raises(ValueError, match="padding must be 'valid' or 'same', got 'full'"):
        Conv2D(2, 3, padding="full")
    with pytest.raises(ValueError, match="data_format must be 'channels_last'"):
        GlobalAveragePooling2D(data_format="channels_first")
    with pytest.raises(ValueError, match="unknown activation 'rleu'"):
        Conv2D(2, 3, activation="rleu")

"""Merge layers, LayerNormalization and AlphaDropout (issue #15): values against NumPy and
torch, gradients by finite differences, the layer harness (shapes, a training step, config
round trip), and AlphaDropout's self-normalization."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

import nervenet
from nervenet import backend, layers
from nervenet.autograd.ops.activation import SELU_ALPHA, SELU_SCALE


@pytest.fixture
def float64():
    backend.set_floatx("float64")
    yield
    backend.set_floatx("float32")


def _inputs(rng, n=3, shape=(4, 5)):
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(n)]


MERGES = {
    "Add": (layers.Add, layers.add, lambda xs: xs[0] + xs[1] + xs[2], 3),
    "Subtract": (layers.Subtract, layers.subtract, lambda xs: xs[0] - xs[1], 2),
    "Multiply": (layers.Multiply, layers.multiply, lambda xs: xs[0] * xs[1] * xs[2], 3),
    "Average": (layers.Average, layers.average, lambda xs: (xs[0] + xs[1] + xs[2]) / 3, 3),
    "Maximum": (layers.Maximum, layers.maximum, lambda xs: functools.reduce(np.maximum, xs), 3),
    "Minimum": (layers.Minimum, layers.minimum, lambda xs: functools.reduce(np.minimum, xs), 3),
}


@pytest.mark.parametrize("name", sorted(MERGES))
def test_merge_layers_compute_the_elementwise_op(name):
    cls, function, reference, n = MERGES[name]
    xs = _inputs(np.random.default_rng(0), n)
    layer = cls()
    np.testing.assert_allclose(layer(xs).data, reference(xs), rtol=1e-6, atol=1e-6)
    assert layer.count_params() == 0
    # broadcasting, as Keras: (4, 5) with (4, 1)
    wide, narrow = xs[0], xs[1][:, :1]
    expected = reference([wide, narrow, wide])
    np.testing.assert_allclose(cls()([wide, narrow, wide][:n]).data, expected, rtol=1e-6,
                               atol=1e-6)
    # the function form on placeholders builds a functional model
    inputs = [layers.Input(shape=(5,)) for _ in range(n)]
    model = nervenet.Model(inputs=inputs, outputs=function(inputs))
    assert model.output_shape == (None, 5)
    np.testing.assert_allclose(model.predict(xs, verbose=0), reference(xs), rtol=1e-6,
                               atol=1e-6)
    # config round trip
    clone = cls.from_config(json.loads(json.dumps(layer.get_config())))
    np.testing.assert_array_equal(clone(xs).data, layer(xs).data)


@pytest.mark.parametrize("name", sorted(MERGES))
def test_merge_layer_gradients_by_finite_differences(name, float64):
    cls, _, _, n = MERGES[name]
    layer = cls()
    xs = [nervenet.tensor(x.astype(np.float64)) for x in _inputs(np.random.default_rng(1), n)]
    assert nervenet.gradcheck(lambda *t: layer(list(t)), xs)


def test_merge_layers_reject_bad_inputs():
    a, b = np.ones((2, 3), np.float32), np.ones((2, 4), np.float32)
    with pytest.raises(ValueError, match=r"do not broadcast \(axis 1 has sizes \[3, 4\]\)"):
        layers.Add()([a, b])
    with pytest.raises(ValueError, match="at least 2 inputs, got 1 input"):
        layers.Multiply()([a])
    with pytest.raises(ValueError, match="exactly 2 inputs, got 3"):
        layers.Subtract()([a, a, a])
    with pytest.raises(ValueError, match="list of at least 2 inputs, got Tensor"):
        layers.Maximum()(a)
    with pytest.raises(ValueError, match="do not broadcast"):
        layers.add([layers.Input(shape=(3,)), layers.Input(shape=(4,))])


def test_a_residual_block_trains():
    nervenet.utils.set_random_seed(0)
    inputs = layers.Input(shape=(6,))
    hidden = layers.Dense(6, activation="relu")(inputs)
    output = layers.Dense(1)(layers.add([inputs, hidden]))
    model = nervenet.Model(inputs, output)
    x = np.random.default_rng(2).standard_normal((64, 6)).astype(np.float32)
    y = x.sum(1, keepdims=True)
    model.compile(optimizer="adam", loss="mse")
    before = [w.copy() for w in model.get_weights()]
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert all(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


# ------------------------------------------------------------------ LayerNormalization


def test_layer_normalization_equals_torch_layer_norm(float64):
    torch = pytest.importorskip("torch", reason="torch is the oracle of LayerNorm")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3, 5)) * 3 + 1
    gamma, beta = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    upstream = rng.standard_normal(x.shape)
    layer = layers.LayerNormalization(axis=[1, 2], epsilon=1e-5)
    layer(x)
    layer.set_weights([gamma, beta])
    xt = nervenet.tensor(x, requires_grad=True)
    y = layer(xt)
    (y * nervenet.tensor(upstream)).sum().backward()

    reference = torch.nn.LayerNorm((3, 5), eps=1e-5, dtype=torch.float64)
    with torch.no_grad():
        reference.weight.copy_(torch.tensor(gamma))
        reference.bias.copy_(torch.tensor(beta))
    x_torch = torch.tensor(x, requires_grad=True)
    y_torch = reference(x_torch)
    (y_torch * torch.tensor(upstream)).sum().backward()
    np.testing.assert_allclose(y.data, y_torch.detach().numpy(), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(xt.grad, x_torch.grad.numpy(), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(layer.gamma.grad, reference.weight.grad.numpy(), rtol=1e-7,
                               atol=1e-10)
    np.testing.assert_allclose(layer.beta.grad, reference.bias.grad.numpy(), rtol=1e-7,
                               atol=1e-10)


def test_layer_normalization_rms_scaling_equals_torch_rms_norm(float64):
    torch = pytest.importorskip("torch", reason="torch is the oracle of RMSNorm")
    x = np.random.default_rng(4).standard_normal((6, 7))
    layer = layers.LayerNormalization(rms_scaling=True, epsilon=1e-6,
                                      gamma_initializer="random_normal")
    y = layer(x).data
    reference = torch.nn.RMSNorm(7, eps=1e-6, dtype=torch.float64)
    with torch.no_grad():
        reference.weight.copy_(torch.tensor(layer.gamma.data))
    np.testing.assert_allclose(y, reference(torch.tensor(x)).detach().numpy(), rtol=1e-7,
                               atol=1e-10)
    assert layer.beta is None


@pytest.mark.parametrize("kwargs", [{}, {"axis": [1, 2]}, {"rms_scaling": True},
                                    {"center": False, "scale": False}])
def test_layer_normalization_gradients_by_finite_differences(kwargs, float64):
    layer = layers.LayerNormalization(gamma_initializer="random_normal",
                                      beta_initializer="random_normal", **kwargs)
    x = nervenet.tensor(np.random.default_rng(5).standard_normal((3, 2, 4)))
    assert nervenet.gradcheck(layer, [x])
    assert nervenet.gradgradcheck(layer, [x])


LAYER_CASES = {
    "LayerNormalization": (lambda: layers.LayerNormalization(), (4, 6), 12),
    "LayerNormalization-axes": (lambda: layers.LayerNormalization(axis=[-2, -1], center=False),
                                (4, 3, 6), 18),
    "AlphaDropout": (lambda: layers.AlphaDropout(0.3, seed=1), (4, 6), 0),
}


@pytest.mark.parametrize("name", sorted(LAYER_CASES))
def test_layer_harness(name):
    factory, shape, trainable = LAYER_CASES[name]
    layer = factory()
    x = np.random.default_rng(6).standard_normal(shape).astype(np.float32) * 2 + 1
    y = layer(x)
    assert y.shape == shape and y.dtype == np.float32
    assert tuple(layer.compute_output_shape((None,) + shape[1:])) == (None,) + shape[1:]
    assert sum(w.size for w in layer.trainable_weights) == trainable
    # one training step (in training mode) moves every trainable weight
    if trainable:
        loss = (layer(x, training=True) * np.arange(x.size).reshape(shape)).mean()
        grads = nervenet.grad(loss, layer.trainable_weights)
        for w, g in zip(layer.trainable_weights, grads):
            w.data -= 0.1 * g.data
        assert not np.array_equal(layer(x).data, y.data)
    clone = type(layer).from_config(json.loads(json.dumps(layer.get_config())))
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(x).data, layer(x).data)
    assert clone.get_config() == layer.get_config()


def test_layer_normalization_bad_arguments():
    with pytest.raises(ValueError, match="axis must be an int or a list"):
        layers.LayerNormalization(axis="last")
    with pytest.raises(ValueError, match="not the batch axis"):
        layers.LayerNormalization(axis=0)(np.ones((2, 3)))
    with pytest.raises(ValueError, match="epsilon"):
        layers.LayerNormalization(epsilon=-1.0)


# ------------------------------------------------------------------ AlphaDropout


def _selu_normalized(rng, shape):
    """SELU activations of standard normal pre-activations: mean 0, variance 1 (the fixed
    point of Klambauer et al.)."""
    z = rng.standard_normal(shape)
    return SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(z))


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5])
def test_alpha_dropout_keeps_mean_and_variance_of_selu_activations(rate):
    x = _selu_normalized(np.random.default_rng(7), (400, 500))   # 200,000 values
    assert abs(x.mean()) < 0.01 and abs(x.var() - 1) < 0.01
    y = layers.AlphaDropout(rate, seed=8)(x, training=True).data
    # standard errors at n = 2e5: about 0.0022 for the mean and 0.004 for the variance
    assert abs(y.mean()) < 0.015
    assert abs(y.var() - 1) < 0.03
    # plain dropout would not: its variance grows by 1 / (1 - rate)
    plain = layers.Dropout(rate, seed=8)(x, training=True).data
    assert plain.var() > 1 + 0.5 * rate


def test_alpha_dropout_is_keras_affine_map_and_identity_at_inference(float64):
    rate = 0.25
    x = np.random.default_rng(9).standard_normal((300, 40))
    layer = layers.AlphaDropout(rate, seed=10)
    alpha_p = -SELU_SCALE * SELU_ALPHA
    a = ((1 - rate) * (1 + rate * alpha_p ** 2)) ** -0.5
    b = -a * alpha_p * rate
    xt = nervenet.tensor(x, requires_grad=True)
    y = layer(xt, training=True)
    dropped = np.isclose(y.data, a * alpha_p + b) & ~np.isclose(a * x + b, a * alpha_p + b)
    np.testing.assert_allclose(y.data[~dropped], a * x[~dropped] + b, rtol=1e-12)
    assert abs(dropped.mean() - rate) < 0.01
    y.sum().backward()
    np.testing.assert_allclose(xt.grad, np.where(dropped, 0.0, a), rtol=1e-12)
    np.testing.assert_array_equal(layer(x).data, x)
    # noise_shape: one mask per sample, shared over the features
    a_half = (0.5 * (1 + 0.5 * alpha_p ** 2)) ** -0.5
    shared = layers.AlphaDropout(0.5, noise_shape=(None, 1), seed=11)(x, training=True).data
    kept = np.isclose(shared, a_half * x - a_half * alpha_p * 0.5)
    assert (kept.all(1) | ~kept.any(1)).all() and 0.3 < kept.all(1).mean() < 0.7
    with pytest.raises(ValueError, match="rate"):
        layers.AlphaDropout(1.0)

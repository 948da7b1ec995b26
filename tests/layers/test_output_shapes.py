"""compute_output_shape for every registered layer, and symbolic calls (the functional API)
that compute nothing: a layer whose state is filled later (an un-adapted Normalization) can
build a model before ``adapt``, as Keras's Wide & Deep example does."""

from __future__ import annotations

import numpy as np
import pytest

import nervenet
from nervenet import layers, models
from nervenet.layers.base import Layer, registry


def _functional():
    inputs = layers.Input(shape=(3,))
    return models.Model(inputs, layers.Dense(2)(inputs))


# registered name -> (factory, input shape or list of shapes with the batch axis)
CASES = {
    "Activation": (lambda: layers.Activation("relu"), (2, 3)),
    "Add": (lambda: layers.Add(), [(2, 3, 4), (2, 1, 4), (2, 3, 4)]),
    "AlphaDropout": (lambda: layers.AlphaDropout(0.3), (2, 3)),
    "Average": (lambda: layers.Average(), [(2, 3), (2, 3)]),
    "LayerNormalization": (lambda: layers.LayerNormalization(axis=[1, 2]), (2, 3, 4)),
    "Maximum": (lambda: layers.Maximum(), [(2, 3), (2, 3), (2, 3)]),
    "Minimum": (lambda: layers.Minimum(), [(2, 1), (2, 3)]),
    "Multiply": (lambda: layers.Multiply(), [(2, 3), (2, 3)]),
    "Subtract": (lambda: layers.Subtract(), [(2, 3), (2, 3)]),
    "AveragePooling2D": (lambda: layers.AveragePooling2D(2, padding="same"), (2, 5, 5, 2)),
    "BatchNormalization": (lambda: layers.BatchNormalization(), (2, 4, 4, 3)),
    "SyncBatchNormalization": (lambda: layers.SyncBatchNormalization(), (2, 4, 4, 3)),
    "Concatenate": (lambda: layers.Concatenate(axis=1), [(2, 3, 2), (2, 4, 2)]),
    "Conv2D": (lambda: layers.Conv2D(4, 3, strides=2), (2, 7, 6, 1)),
    "Dense": (lambda: layers.Dense(5), (2, 4, 3)),
    "Dropout": (lambda: layers.Dropout(0.5), (2, 3)),
    "ELU": (lambda: layers.ELU(), (2, 3)),
    "Flatten": (lambda: layers.Flatten(), (2, 3, 4)),
    "Functional": (_functional, (2, 3)),
    "GaussianDropout": (lambda: layers.GaussianDropout(0.2), (2, 3)),
    "GaussianNoise": (lambda: layers.GaussianNoise(0.2), (2, 3)),
    "GlobalAveragePooling2D": (lambda: layers.GlobalAveragePooling2D(keepdims=True),
                               (2, 4, 4, 3)),
    "GlobalMaxPooling2D": (lambda: layers.GlobalMaxPooling2D(), (2, 4, 4, 3)),
    "InputLayer": (lambda: layers.InputLayer(shape=(3,)), (2, 3)),
    "LeakyReLU": (lambda: layers.LeakyReLU(), (2, 3)),
    "MaxPooling2D": (lambda: layers.MaxPooling2D(3, strides=2), (2, 7, 7, 2)),
    "Maxout": (lambda: layers.Maxout(2), (2, 6)),
    "Normalization": (lambda: layers.Normalization(mean=[0.0] * 3, variance=[1.0] * 3),
                      (2, 3)),
    "PReLU": (lambda: layers.PReLU(), (2, 3)),
    "RandomBrightness": (lambda: layers.RandomBrightness(0.2), (2, 4, 4, 3)),
    "RandomContrast": (lambda: layers.RandomContrast(0.2), (2, 4, 4, 3)),
    "RandomCrop": (lambda: layers.RandomCrop(3, 2), (2, 5, 5, 3)),
    "RandomFlip": (lambda: layers.RandomFlip(), (2, 4, 4, 3)),
    "RandomPCAColor": (lambda: layers.RandomPCAColor(eigenvalues=[1.0, 0.5, 0.1],
                                                     eigenvectors=np.eye(3).tolist()),
                       (2, 4, 4, 3)),
    "RandomRotation": (lambda: layers.RandomRotation(0.1), (2, 4, 4, 3)),
    "RandomShear": (lambda: layers.RandomShear(0.1), (2, 4, 4, 3)),
    "RandomTranslation": (lambda: layers.RandomTranslation(0.1, 0.1), (2, 4, 4, 3)),
    "RandomZoom": (lambda: layers.RandomZoom(0.1), (2, 4, 4, 3)),
    "ReLU": (lambda: layers.ReLU(), (2, 3)),
    "Rescaling": (lambda: layers.Rescaling(0.5), (2, 3)),
    "Reshape": (lambda: layers.Reshape((2, -1)), (2, 6)),
    "ScaleShift": (lambda: layers.ScaleShift(), (2, 3)),
    "Sequential": (lambda: models.Sequential([layers.Dense(4), layers.Flatten()]), (2, 3)),
    "Softmax": (lambda: layers.Softmax(), (2, 3)),
    "StochasticPooling2D": (lambda: layers.StochasticPooling2D(2), (2, 4, 4, 1)),
    "ZeroPadding2D": (lambda: layers.ZeroPadding2D((1, 2)), (2, 3, 3, 1)),
}


def _builtin_layer_names() -> list[str]:
    return sorted(name for name in registry.names()
                  if registry.lookup(name).__module__.startswith("nervenet."))


def test_every_builtin_layer_declares_its_output_shape_and_has_a_case_here():
    missing = [name for name in _builtin_layer_names() if name not in CASES]
    assert not missing, f"add these layers to CASES: {missing}"
    undeclared = [name for name in _builtin_layer_names()
                  if registry.lookup(name).compute_output_shape is Layer.compute_output_shape]
    assert not undeclared, f"these layers need compute_output_shape: {undeclared}"


def _unbatched(shape):
    return (None,) + tuple(shape[1:])


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("training", [False, True])
def test_compute_output_shape_equals_the_real_output_shape(name, training):
    factory, shape = CASES[name]
    several = isinstance(shape, list)
    rng = np.random.default_rng(0)
    arrays = [rng.uniform(0.0, 1.0, s).astype(np.float32) for s in (shape if several else
                                                                      [shape])]
    layer = factory()
    output = layer(arrays if several else arrays[0], training=training)
    declared = layer.compute_output_shape([_unbatched(s) for s in shape] if several
                                          else _unbatched(shape))
    assert tuple(declared) == _unbatched(output.shape)


@pytest.mark.parametrize("name", sorted(set(CASES) - {"Functional", "Sequential", "InputLayer"}))
def test_a_symbolic_call_computes_nothing(name, monkeypatch):
    factory, shape = CASES[name]
    layer = factory()

    def refuse(*args, **kwargs):
        raise AssertionError(f"{name}.call ran on a symbolic input")

    monkeypatch.setattr(type(layer), "call", refuse)
    several = isinstance(shape, list)
    inputs = [layers.Input(shape=s[1:]) for s in shape] if several else layers.Input(shape[1:])
    output = layer(inputs)
    real_shape = factory().compute_output_shape([_unbatched(s) for s in shape] if several
                                                else _unbatched(shape))
    assert output.shape == tuple(real_shape)


def _wide_and_deep(normalization):
    input_ = layers.Input(shape=(8,))
    normalized = normalization(input_)
    hidden1 = layers.Dense(30, activation="relu")(normalized)
    hidden2 = layers.Dense(30, activation="relu")(hidden1)
    concat = layers.Concatenate()([normalized, hidden2])
    return models.Model(inputs=[input_], outputs=[layers.Dense(1)(concat)])


def test_wide_and_deep_is_built_before_adapt_as_the_book_orders_it():
    nervenet.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (200, 8)).astype(np.float32)
    y = x @ rng.standard_normal(8).astype(np.float32)
    normalization = layers.Normalization()
    model = _wide_and_deep(normalization)
    model.compile(loss="mse", optimizer="adam")
    with pytest.raises(ValueError, match="call adapt"):  # used before it is ready
        model.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="call adapt"):
        model.predict(x[:3], verbose=0)
    normalization.adapt(x)
    history = model.fit(x, y, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    np.testing.assert_allclose(normalization.mean.data, x.mean(0), rtol=1e-5)


def test_normalization_keeps_keras_count_weight():
    layer = layers.Normalization()
    model = models.Sequential([layers.Input(shape=(8,)), layer, layers.Dense(1)])
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "17" in text.split("(Normalization)")[1].splitlines()[0]
    assert "Non-trainable params: 17" in text
    assert not layer.adapted
    layer.adapt(np.arange(24.0).reshape(3, 8))
    assert float(layer.count.data) == 3 and layer.adapted
    # the statistics, count included, travel with the weights: a fresh layer is ready
    fresh = models.Sequential([layers.Input(shape=(8,)), layers.Normalization(),
                               layers.Dense(1)])
    fresh.set_weights(model.get_weights())
    np.testing.assert_array_equal(fresh.predict(np.ones((2, 8)), verbose=0),
                                  model.predict(np.ones((2, 8)), verbose=0))

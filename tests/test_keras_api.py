"""Keras spellings (issue #15): ``import nervenet as keras`` runs the course notes' code.

The optimizers' ``lr=``/``decay=`` are tested in tests/optimizers/test_keras2_arguments.py;
this file holds the other aliases and a notes-style program using them all together.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import nervenet
import nervenet as keras
from nervenet import constraints, layers, regularizers


def test_top_level_names_are_the_models_and_input():
    assert keras.Sequential is nervenet.models.Sequential
    assert keras.Model is nervenet.models.Model
    assert keras.Input is nervenet.layers.Input
    assert {"Sequential", "Model", "Input", "datasets"} <= set(nervenet.__all__)


def test_leaky_relu_alpha_is_negative_slope_with_a_warning():
    with pytest.warns(DeprecationWarning, match="use negative_slope"):
        old = layers.LeakyReLU(alpha=0.2)
    assert old.negative_slope == 0.2
    x = np.array([[-1.0, 2.0]], dtype=np.float32)
    np.testing.assert_allclose(old(x).data, [[-0.2, 2.0]], rtol=1e-6)
    config = old.get_config()
    assert config["negative_slope"] == 0.2 and "alpha" not in config
    assert layers.LeakyReLU.from_config(json.loads(json.dumps(config))).negative_slope == 0.2
    with pytest.raises(TypeError, match="both alpha"):
        layers.LeakyReLU(negative_slope=0.1, alpha=0.2)


@pytest.mark.parametrize("call, expected", [
    (lambda: regularizers.l1(0.02), regularizers.L1(0.02)),
    (lambda: regularizers.l2(0.03), regularizers.L2(0.03)),
    (lambda: regularizers.l1_l2(l1=0.01, l2=0.02), regularizers.L1L2(0.01, 0.02)),
    (lambda: regularizers.l1_l2(), regularizers.L1L2(0.01, 0.01)),     # TF-Keras 2 defaults
    (lambda: regularizers.l2(), regularizers.L2(0.01)),
])
def test_regularizer_function_forms(call, expected):
    made = call()
    assert type(made) is type(expected) and made.get_config() == expected.get_config()
    w = nervenet.tensor(np.array([[1.0, -2.0], [0.5, 3.0]]))
    assert float(made(w).data) == pytest.approx(float(expected(w).data), rel=1e-12)
    assert regularizers.get(regularizers.serialize(made)).get_config() == made.get_config()


def test_constraint_function_forms():
    w = np.array([[3.0, 0.1], [4.0, -0.2]])
    np.testing.assert_array_equal(constraints.max_norm(2.0)(w), constraints.MaxNorm(2.0)(w))
    assert np.linalg.norm(constraints.max_norm(2.0)(w)[:, 0]) == pytest.approx(2.0, rel=1e-6)
    assert constraints.max_norm(1.0, axis=1).get_config() == {"max_value": 1.0, "axis": 1}
    assert (constraints.non_neg()(w) >= 0).all()
    np.testing.assert_allclose(np.linalg.norm(constraints.unit_norm()(w), axis=0), 1.0,
                               rtol=1e-6)
    with pytest.raises(ValueError, match="max_value"):
        constraints.max_norm(0.0)


def test_utils_to_categorical_as_keras():
    assert keras.utils.to_categorical([2, 0], 3).tolist() == [[0, 0, 1], [1, 0, 0]]
    # labels shaped (n, 1), as Keras users often have them, give (n, K)
    assert keras.utils.to_categorical(np.array([[1], [0]])).shape == (2, 2)
    assert nervenet.data.preprocessing.to_categorical is keras.utils.to_categorical
    with pytest.raises(ValueError, match="out of range"):
        keras.utils.to_categorical([3], num_classes=2)


def test_dataset_loaders_as_keras():
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    (a, b), (c, d) = nervenet.data.datasets.load_mnist()
    np.testing.assert_array_equal(x_train, a)
    np.testing.assert_array_equal(y_test, d)
    (x_train, y_train), (x_test, y_test) = keras.datasets.california_housing.load_data()
    assert x_train.shape == (16512, 8) and x_test.shape == (4128, 8)
    x, y, _ = nervenet.data.datasets.load_california_housing()
    # a permutation of the whole table: nothing lost, nothing repeated
    assert np.sort(np.concatenate([y_train, y_test])).tolist() == np.sort(y).tolist()
    (again, _), _ = keras.datasets.california_housing.load_data()
    np.testing.assert_array_equal(again, x_train)                  # fixed seed
    (_, yi_train), (xi_test, _) = keras.datasets.iris.load_data(test_split=0.1, seed=1)
    assert len(yi_train) == 135 and len(xi_test) == 15
    with pytest.raises(ValueError, match="test_split"):
        keras.datasets.iris.load_data(test_split=1.5)
    with pytest.raises(ValueError, match="subset"):
        keras.datasets.mnist.load_data(subset="10k")


def test_a_notes_program_runs_after_changing_the_import():
    """The notes' Keras 2 code, with ``from tensorflow import keras`` replaced."""
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    x_train, x_test = x_train[:600] / 255.0, x_test[:200] / 255.0
    y_train = keras.utils.to_categorical(y_train[:600], 10)
    y_test = keras.utils.to_categorical(y_test[:200], 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = keras.Sequential([
            keras.layers.Flatten(input_shape=[28, 28]),
            keras.layers.Dense(64, kernel_regularizer=keras.regularizers.l2(0.001),
                               kernel_constraint=keras.constraints.max_norm(3.0)),
            keras.layers.LeakyReLU(alpha=0.2),
            keras.layers.Dense(10, activation="softmax"),
        ])
        optimizer = keras.optimizers.SGD(lr=0.1, momentum=0.9, nesterov=True, decay=1e-4)
    model.compile(loss="categorical_crossentropy", optimizer=optimizer, metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=3, validation_data=(x_test, y_test),
                        verbose=0)
    assert set(history.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert optimizer.iterations == 3 * 19 and optimizer.get_config()["decay"] == 1e-4

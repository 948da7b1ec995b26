"""Bad configurations fail when they are made, bad inputs when they are given: a config value
that would only fail later (at the first call, or after the weights were updated) is refused
at construction or build, with a message naming the argument; inputs to fit/evaluate/predict
are checked before any weight changes."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from nervenet import constraints, layers, losses, models
from nervenet.saving import ModelFormatError, archive


def dense_model(**dense_arguments):
    model = models.Sequential([layers.Input(shape=(4,)), layers.Dense(3, **dense_arguments)])
    model.compile("sgd", "mse")
    return model


@pytest.mark.parametrize("axis", [5, -3, [0, 5]])
def test_a_constraint_axis_outside_the_weight_fails_at_build_before_any_update(axis):
    """Dense(3, kernel_constraint=MaxNorm(axis=5)) used to fail after the first update."""
    with pytest.raises(ValueError, match=r"MaxNorm axis .* out of range .*\(4, 3\)"):
        dense_model(kernel_constraint=constraints.MaxNorm(axis=axis))


@pytest.mark.parametrize("axis", [1.5, "0", True, [], [0, 0], [0.5]])
def test_a_constraint_axis_that_is_not_an_int_fails_at_construction(axis):
    for constraint in (constraints.MaxNorm, constraints.UnitNorm):
        with pytest.raises(ValueError, match="axis must be an int"):
            constraint(axis=axis)


@pytest.mark.parametrize("max_value, error", [(0, ValueError), (-1, ValueError),
                                              (np.inf, ValueError), (np.nan, ValueError),
                                              ("2", TypeError), (True, TypeError)])
def test_max_norm_refuses_max_values_that_are_not_finite_positive_numbers(max_value, error):
    with pytest.raises(error, match="max_value"):
        constraints.MaxNorm(max_value)


@pytest.mark.parametrize("dtype", [[], "object", "U8", "complex128", {"a": 1}, "nope"])
def test_a_layer_dtype_must_name_a_numeric_dtype(dtype):
    with pytest.raises(ValueError, match="dtype must name a numeric dtype"):
        layers.Dense(3, dtype=dtype)


@pytest.mark.parametrize("layer, argument", [
    (lambda f: layers.RandomRotation(f), "factor"),
    (lambda f: layers.RandomTranslation(f, 0.1), "height_factor"),
    (lambda f: layers.RandomBrightness(f), "factor"),
])
@pytest.mark.parametrize("factor", [1e308, 1.5, (0.1, 2.0)])
def test_augmentation_factors_outside_their_range_fail_at_construction(layer, argument, factor):
    with pytest.raises(ValueError, match=argument):
        layer(factor)


def test_a_saved_graph_with_unknown_call_arguments_is_refused_on_load(tmp_path):
    inputs = layers.Input(shape=(4,))
    model = models.Model(inputs, layers.Dense(2)(inputs))
    path = tmp_path / "m.nervenet"
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    config = json.loads(members["config.json"])
    config["model"]["config"]["nodes"][-1]["kwargs"] = {"mask": 1}
    path.write_bytes(archive.zip_bytes({**members, "config.json": json.dumps(config).encode()}))
    with pytest.raises(ModelFormatError, match=r"call\(\) takes no argument\(s\) \['mask'\]"):
        models.load_model(path)


def classifier():
    model = models.Sequential([layers.Input(shape=(4,)), layers.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    return model


XY = (np.ones((6, 4), np.float32), np.array([0, 1, 2, 0, 1, 2]))


@pytest.mark.parametrize("class_weight, message", [
    ({0: 1.0, 1: 1.0, 2: 1.0, -1: 5.0}, "keys must be class indices"),
    ({0: 1.0, 1: 1.0, 2: 1.0, 10**9: 5.0}, None),  # unused: no 7.45 GiB lookup table
    ({0: 1.0, 1: np.nan, 2: 1.0}, "class_weight: the weight of class 1"),
    ({0: 1.0, 1: -1.0, 2: 1.0}, "class_weight: the weight of class 1"),
    ({0: 1.0, 1: 1.0}, "no weight for class"),
])
def test_class_weight_keys_and_values_are_checked(class_weight, message):
    model = classifier()
    weights = [w.copy() for w in model.get_weights()]
    if message is None:
        model.fit(*XY, class_weight=class_weight, verbose=0)
        return
    with pytest.raises(ValueError, match=message):
        model.fit(*XY, class_weight=class_weight, verbose=0)
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("batch_size", [-1, 0, 2.5, "4", True])
def test_evaluate_batch_size_must_be_a_positive_int(batch_size):
    # nervenet.checks's rule: a TypeError for a wrong type, a ValueError for a wrong value
    error = ValueError if type(batch_size) is int else TypeError
    with pytest.raises(error, match="evaluate: batch_size must be a positive int"):
        classifier().evaluate(*XY, batch_size=batch_size)


@pytest.mark.parametrize("initial_epoch", [-3, 1.5, "1"])
def test_initial_epoch_must_be_a_non_negative_int(initial_epoch):
    error = ValueError if type(initial_epoch) is int else TypeError
    with pytest.raises(error, match="fit: initial_epoch must be an int >= 0"):
        classifier().fit(*XY, epochs=2, initial_epoch=initial_epoch, verbose=0)


def test_float64_values_beyond_float32_are_refused_before_they_become_inf():
    model = dense_model()
    x = np.ones((4, 4))
    x[1, 2] = 1e39
    for call in (lambda: model.fit(x, np.zeros((4, 3)), verbose=0),
                 lambda: model.evaluate(x, np.zeros((4, 3))), lambda: model.predict(x)):
        with pytest.raises(ValueError, match="beyond the largest float32"):
            call()
    with pytest.raises(ValueError, match="y has values of magnitude up to 1e"):
        model.fit(np.ones((4, 4)), np.full((4, 3), -1e300), verbose=0)


def test_predict_on_no_samples_returns_the_output_shape():
    assert dense_model().predict(np.zeros((0, 4), np.float32)).shape == (0, 3)


@pytest.mark.parametrize("loss", [losses.CategoricalCrossentropy(),
                                  losses.SparseCategoricalCrossentropy()])
def test_probability_cross_entropy_of_an_all_zero_row_is_finite(loss):
    """docs/reliability.md: finite for p in {0, 1}; a row of zeros was 0/0."""
    import nervenet
    p = nervenet.tensor(np.array([[0.0, 0.0, 0.0], [0.2, 0.3, 0.5]], np.float32),
                        requires_grad=True)
    sparse = isinstance(loss, losses.SparseCategoricalCrossentropy)
    y = np.array([1, 2]) if sparse else np.eye(3, dtype=np.float32)[[1, 2]]
    value = loss(y, p)
    value.backward()
    assert np.isfinite(value.data) and np.isfinite(p.grad).all()
    assert float(value.data) == pytest.approx((-np.log(1e-7) - np.log(0.5)) / 2, rel=1e-5)

"""Saving as Keras users write it: load_weights into a freshly built identical model (matched
by structure, as Keras 3), ``save(..., save_format=)`` and Keras-style file names, read back
from the same name."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import nervenet
from nervenet import callbacks, layers, models
from nervenet.saving import ModelFormatError


def build(units=8):
    return models.Sequential([layers.Input(shape=(5,)), layers.Normalization(),
                              layers.Dense(units, activation="relu"),
                              layers.BatchNormalization(), layers.Dense(1)])


def trained(seed=0):
    nervenet.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((40, 5)).astype(np.float32)
    y = x.sum(1, keepdims=True)
    model = build()
    model.layers[0].adapt(x)
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=2, verbose=0)
    return model, x, y


def test_load_weights_into_a_fresh_identical_model_matches_by_structure(tmp_path):
    model, x, _ = trained()
    model.save_weights(tmp_path / "w.weights.safetensors")
    fresh = build()  # new layer names (dense_7, ...): matched by layer and weight order
    assert [layer.name for layer in fresh.layers] != [layer.name for layer in model.layers]
    fresh.load_weights(tmp_path / "w.weights.safetensors")
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_different_structure_names_the_first_mismatching_layer(tmp_path):
    model, _, _ = trained()
    model.save_weights(tmp_path / "w.weights.safetensors")
    other = build(units=7)
    before = other.get_weights()
    with pytest.raises(ModelFormatError, match=rf"first mismatch is layer "
                                               rf"'{other.layers[1].name}'.*\(5, 7\)"):
        other.load_weights(tmp_path / "w.weights.safetensors")
    for a, b in zip(other.get_weights(), before):  # nothing changed
        np.testing.assert_array_equal(a, b)
    shorter = models.Sequential([layers.Input(shape=(5,)), layers.Normalization(),
                                 layers.Dense(8, activation="relu")])
    with pytest.raises(ModelFormatError, match="weights more than the model"):
        shorter.load_weights(tmp_path / "w.weights.safetensors")


@pytest.mark.parametrize("name, save_format", [("my_keras_model", "tf"),
                                               ("my_keras_model.h5", None),
                                               ("my_model.keras", "keras")])
def test_save_with_keras_names_and_formats_loads_from_the_same_path(tmp_path, name,
                                                                     save_format):
    model, x, _ = trained()
    path = tmp_path / name
    with pytest.warns(UserWarning, match="nervenet writes its own model file"):
        model.save(path, save_format=save_format)
    restored = models.load_model(path)
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(ValueError, match="save_format must be"):
        model.save(path, save_format="onnx")


def test_save_weights_with_keras_style_names(tmp_path):
    model, x, _ = trained()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a plain name is not another format: no warning
        model.save_weights(tmp_path / "my_weights")
    with pytest.warns(UserWarning, match="safetensors weights"):
        model.save_weights(tmp_path / "my_weights.h5")
    for name in ("my_weights", "my_weights.h5"):
        fresh = build()
        fresh.load_weights(tmp_path / name)
        np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))
    # a whole-model file under a plain name gives its weights as well
    model.save(tmp_path / "my_keras_model")
    fresh = build()
    fresh.load_weights(tmp_path / "my_keras_model")
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))


def test_model_checkpoint_with_keras_style_weight_names(tmp_path):
    model, x, y = trained()
    path = str(tmp_path / "my_checkpoints")
    checkpoint = callbacks.ModelCheckpoint(filepath=path, save_weights_only=True)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[checkpoint])
    fresh = build()
    fresh.load_weights(path)
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))

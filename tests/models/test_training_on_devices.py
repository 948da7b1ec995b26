"""Models on the ``fake`` device: ``model.to``, training, evaluating, predicting, saving and
loading give exactly the CPU's results (same seed), and every result comes back as NumPy."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from nervenet import backend, layers, models, utils


def _mlp(dropout=0.2):
    return models.Sequential([layers.Input(shape=(6,)), layers.Dense(16, activation="relu"),
                              layers.Dropout(dropout), layers.Dense(3, activation="softmax")])


def _cnn(dropout=0.3):
    return models.Sequential([
        layers.Input(shape=(8, 8, 1)), layers.Conv2D(4, 3, activation="relu", padding="same"),
        layers.MaxPooling2D(2), layers.BatchNormalization(), layers.Conv2D(6, 3),
        layers.GlobalAveragePooling2D(), layers.Dropout(dropout),
        layers.Dense(3, activation="softmax")])


def _data(kind):
    rng = np.random.default_rng(0)
    shape = (48, 6) if kind == "mlp" else (48, 8, 8, 1)
    return rng.standard_normal(shape).astype(np.float32), rng.integers(0, 3, 48)


def _model(kind, device, optimizer="adam", dropout=None):
    """A compiled model on ``device`` (``dropout``: the rate, default the builder's)."""
    utils.set_random_seed(0)
    build = _mlp if kind == "mlp" else _cnn
    model = build() if dropout is None else build(dropout)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model.to(device)


def _train(kind, device, optimizer="adam"):
    x, y = _data(kind)
    model = _model(kind, device, optimizer)
    initial = model.get_weights()
    utils.set_random_seed(1)  # the shuffling and the dropout masks
    history = model.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0)
    return (model, initial, history.history, model.evaluate(x, y, verbose=0),
            model.predict(x, verbose=0))


@pytest.mark.parametrize("kind, optimizer", [("mlp", "adam"), ("mlp", "sgd"), ("cnn", "adam"),
                                             ("cnn", "rmsprop")])
def test_training_on_the_fake_device_equals_cpu(kind, optimizer):
    cpu = _train(kind, "cpu", optimizer)
    fake = _train(kind, "fake", optimizer)
    model = fake[0]
    assert model.device == "fake"
    assert {w.device for w in model.weights} == {"fake"}  # BatchNormalization's statistics too
    for a, b in zip(cpu[1], fake[1]):  # a seed gives the same initial model on every device
        np.testing.assert_array_equal(a, b)
    assert fake[2] == cpu[2]  # the whole history: losses and metrics, bit for bit
    assert fake[3] == cpu[3]
    assert type(fake[4]) is np.ndarray
    np.testing.assert_array_equal(fake[4], cpu[4])
    for a, b in zip(cpu[0].get_weights(), model.get_weights()):
        assert type(b) is np.ndarray
        np.testing.assert_array_equal(a, b)
    slots = model.optimizer.slots(model.trainable_weights[0])
    assert all(backend.device_of(v) == "fake" for v in slots.values() if v.ndim)


def test_save_on_fake_then_load_to_fake_goes_on_as_the_original(tmp_path):
    x, y = _data("cnn")
    model = _model("cnn", "fake", dropout=0.0)  # (a saved model keeps no dropout generator)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    model.save(tmp_path / "m.nervenet")  # host arrays in the file
    loaded = models.load_model(tmp_path / "m.nervenet").to("fake")
    assert {w.device for w in loaded.weights} == {"fake"}
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
    loaded.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)  # optimizer state too
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    model.save_weights(tmp_path / "w.weights.safetensors")
    host = _model("cnn", "cpu")
    host.load_weights(tmp_path / "w.weights.safetensors")
    np.testing.assert_array_equal(host.predict(x, verbose=0), model.predict(x, verbose=0))
    fresh = _model("cnn", "fake")
    fresh.load_weights(tmp_path / "w.weights.safetensors")  # host values onto the device
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))


def test_to_moves_weights_and_optimizer_state_back_and_forth():
    x, y = _data("mlp")
    model = _model("mlp", "cpu")
    model.fit(x, y, epochs=1, verbose=0)
    weights = list(model.weights)
    model.to("fake")
    assert all(a is b for a, b in zip(weights, model.weights))  # identity kept
    state = model.optimizer.get_state()
    assert all(type(v) is np.ndarray for v in state.values())  # saved state is on the host
    model.to("cpu")
    slots = model.optimizer.slots(model.trainable_weights[0])
    assert all(type(v) is np.ndarray for v in slots.values())
    assert model.device == "cpu" and {w.device for w in model.weights} == {"cpu"}


def test_to_refuses_unbuilt_models_unknown_devices_and_a_missing_gpu(monkeypatch):
    unbuilt = models.Sequential([layers.Dense(2)])
    with pytest.raises(ValueError, match="not built"):
        unbuilt.to("fake")
    model = _model("mlp", "cpu")
    with pytest.raises(ValueError, match="device must be one of"):
        model.to("cuda")
    stub = types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=lambda: False))
    monkeypatch.setitem(sys.modules, "cupy", stub)
    with pytest.raises(RuntimeError, match='device "gpu"'):
        model.to("gpu")
    assert model.device == "cpu" and {w.device for w in model.weights} == {"cpu"}

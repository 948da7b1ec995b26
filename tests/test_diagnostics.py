"""GradientMonitor and the diagnostics: numbers equal hand-computed backpropagation."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import nervenet
from nervenet import diagnostics, layers, models, optimizers
from nervenet.callbacks import GradientMonitor

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def float64():
    nervenet.backend.set_floatx("float64")
    yield
    nervenet.backend.set_floatx("float32")


def _sigmoid_net():
    return models.Sequential([layers.Input(shape=(3,)),
                              layers.Dense(4, activation="sigmoid", name="hidden"),
                              layers.Dense(1, name="out")])


def _manual_gradients(weights, x, y):
    """Backpropagation by hand for out = sigmoid(x W1 + b1) W2 + b2, L = mean((out - y)^2)."""
    w1, b1, w2, b2 = weights
    h = 1 / (1 + np.exp(-(x @ w1 + b1)))
    out = h @ w2 + b2
    d_out = 2 * (out - y) / len(x)
    d_w2, d_b2 = h.T @ d_out, d_out.sum(axis=0)
    d_z = (d_out @ w2.T) * h * (1 - h)
    d_w1, d_b1 = x.T @ d_z, d_z.sum(axis=0)
    return {"hidden": np.sqrt(np.sum(d_w1 ** 2) + np.sum(d_b1 ** 2)),
            "out": np.sqrt(np.sum(d_w2 ** 2) + np.sum(d_b2 ** 2)),
            "grads": (d_w1, d_b1, d_w2, d_b2), "h": h}


def test_monitor_numbers_equal_manual_backprop(float64):
    nervenet.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 1))
    model = _sigmoid_net()
    model.compile(optimizers.SGD(learning_rate=0.1), "mse")
    model(x[:1])
    start = model.get_weights()
    monitor = GradientMonitor(x, y)
    model.fit(x, y, epochs=2, batch_size=20, shuffle=False, verbose=0, callbacks=[monitor])
    # after the fit: gradient norms at the final weights, on the probe batch
    manual = _manual_gradients(model.get_weights(), x, y)
    assert monitor.history["grad_norm/hidden"][-1] == pytest.approx(manual["hidden"], rel=1e-10)
    assert monitor.history["grad_norm/out"][-1] == pytest.approx(manual["out"], rel=1e-10)
    # epoch 1 was one SGD step from `start`: update = lr * gradient at start
    first = _manual_gradients(start, x, y)
    for name, (w, b) in (("hidden", (0, 1)), ("out", (2, 3))):
        update = 0.1 * np.sqrt(np.sum(first["grads"][w] ** 2) + np.sum(first["grads"][b] ** 2))
        size = np.sqrt(np.sum(start[w] ** 2) + np.sum(start[b] ** 2))
        assert monitor.history[f"update_ratio/{name}"][0] == pytest.approx(update / size,
                                                                            rel=1e-8)
    h = _manual_gradients(model.get_weights(), x, y)["h"]
    assert monitor.history["saturated_fraction/hidden"][-1] == np.mean((h < 0.01) | (h > 0.99))
    assert len(monitor.history["grad_norm/hidden"]) == 2 and monitor.epochs == [0, 1]


def test_gradient_norms_function_matches_the_monitor(float64):
    nervenet.utils.set_random_seed(1)
    x, y = np.random.default_rng(1).normal(size=(8, 3)), np.ones((8, 1))
    model = _sigmoid_net()
    model.compile("sgd", "mse")
    model(x[:1])
    norms = diagnostics.gradient_norms(model, x, y)
    manual = _manual_gradients(model.get_weights(), x, y)
    assert norms == pytest.approx({"hidden": manual["hidden"], "out": manual["out"]}, rel=1e-10)


def test_dead_relu_fraction():
    model = models.Sequential([layers.Input(shape=(2,)),
                               layers.Dense(4, activation="relu", name="relu_layer")])
    model(np.zeros((1, 2)))
    kernel = np.array([[1.0, -1.0, 0.0, 2.0], [1.0, -1.0, 0.0, -5.0]])
    model.set_weights([kernel, np.array([0.0, 0.0, -1.0, 0.0])])
    x = np.array([[1.0, 1.0], [2.0, 0.5], [0.5, 0.1]])
    # unit 0 is positive, unit 1 is always negative (dead), unit 2 is -1 (dead), unit 3 mixed
    stats = diagnostics.activation_statistics(model, x)
    assert stats == {"relu_layer": {"dead_fraction": 0.5}}


def test_vanishing_warning_for_a_deep_sigmoid_net():
    nervenet.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32)
    y = (x[:, :1] > 0).astype(np.float32)
    stack = [layers.Input(shape=(8,))]
    stack += [layers.Dense(16, activation="sigmoid") for _ in range(10)]
    model = models.Sequential(stack + [layers.Dense(1, activation="sigmoid")])
    model.compile("sgd", "binary_crossentropy")
    monitor = GradientMonitor(x, y)
    with pytest.warns(RuntimeWarning, match="vanishing gradients"):
        model.fit(x, y, epochs=1, batch_size=64, verbose=0, callbacks=[monitor])
    norms = [monitor.history[f"grad_norm/{layer.name}"][0] for layer in model.layers]
    assert norms[0] < 1e-3 * norms[-1]  # the signal fades towards the input


def test_exploding_warning_and_no_warning_when_healthy(float64):
    x, y = np.ones((4, 3)), np.ones((4, 1)) * 1e6
    model = _sigmoid_net()
    model.compile("sgd", "mse")
    monitor = GradientMonitor(x, y)
    monitor.set_model(model)
    model(x[:1])
    with pytest.warns(RuntimeWarning, match="exploding gradients"):
        monitor.on_epoch_end(0)
    healthy = GradientMonitor(x, np.zeros((4, 1)) + 0.5, vanishing_ratio=1e-6)
    healthy.set_model(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        healthy.on_epoch_end(0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="same number of samples"):
        GradientMonitor(np.zeros((3, 2)), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="exploding_threshold"):
        GradientMonitor(np.zeros((3, 2)), np.zeros((3, 1)), exploding_threshold=0)
    model = _sigmoid_net()
    with pytest.raises(ValueError, match="compiled"):
        diagnostics.gradient_norms(model, np.zeros((2, 3)), np.zeros((2, 1)))


@pytest.mark.slow
def test_vanishing_gradients_example(tmp_path):
    pytest.importorskip("matplotlib")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "vanishing_gradients.py"),
                           "--epochs", "2", "--out", str(tmp_path / "vg.png")],
                          capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "vg.png").read_bytes()[:4] == b"\x89PNG"
    ratios = dict(line.split(": ") for line in done.stdout.splitlines() if ": " in line)
    assert float(ratios["sigmoid first/last"]) < 1e-2
    assert float(ratios["relu+he first/last"]) > 0.1

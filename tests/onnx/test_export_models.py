"""The notes' models exported to ONNX after a little training on their data: the MNIST MLP,
the CNN of ``make demo``, the two-input Wide & Deep network and a model with
BatchNormalization and Dropout. onnxruntime equals ``model.predict`` to 1e-5 at batch sizes 1
and 7 from one file."""

from __future__ import annotations

import numpy as np
import pytest

from nervenet import layers, models, recipes, utils
from nervenet.data.datasets import load_mnist
from tests.onnx.common import check_export, onnx


@pytest.fixture(scope="module")
def mnist():
    (x, y), _ = load_mnist()
    return (x[:512] / 255.0).astype(np.float32), y[:512].astype(np.int64)


def _train(model, x, y, loss="sparse_categorical_crossentropy"):
    model.compile(optimizer="adam", loss=loss)
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    return model


def test_mnist_mlp(mnist, tmp_path):
    utils.set_random_seed(0)
    x, y = mnist
    model = recipes.build_model("mlp", (28, 28), "multiclass", 10, hidden=[300, 100],
                            activation="relu")
    _train(model, x, y)
    check_export(model, x[:7], tmp_path / "mlp.onnx")


def test_make_demo_cnn(mnist, tmp_path):
    utils.set_random_seed(0)
    x, y = mnist
    model = recipes.build_model("cnn", (28, 28), "multiclass", 10)
    _train(model, x[:128], y[:128])
    check_export(model, x[:7], tmp_path / "cnn.onnx")
    ops = [n.op_type for n in onnx.load(str(tmp_path / "cnn.onnx")).graph.node]
    assert ops.count("Transpose") == 2  # into channels-first once, back once before Flatten


def test_wide_and_deep_two_inputs(tmp_path):
    utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x_wide, x_deep = rng.normal(size=(200, 5)), rng.normal(size=(200, 6))
    y = x_wide[:, :1] - 2 * np.tanh(x_deep[:, 1:2])
    input_a = layers.Input(shape=(5,), name="wide_input")
    input_b = layers.Input(shape=(6,), name="deep_input")
    hidden1 = layers.Dense(30, activation="relu")(input_b)
    hidden2 = layers.Dense(30, activation="relu")(hidden1)
    concat = layers.concatenate([input_a, hidden2])
    output = layers.Dense(1, name="output")(concat)
    model = models.Model(inputs=[input_a, input_b], outputs=[output])
    model.compile(optimizer="adam", loss="mse")
    model.fit([x_wide, x_deep], y, epochs=2, batch_size=32, verbose=0)
    feed = [x_wide[:7].astype(np.float32), x_deep[:7].astype(np.float32)]
    check_export(model, feed, tmp_path / "wide_deep.onnx")


def test_batch_norm_and_dropout(mnist, tmp_path):
    utils.set_random_seed(0)
    x, y = mnist
    model = models.Sequential([
        layers.Input(shape=(28, 28, 1)),
        layers.Conv2D(8, 3, use_bias=False), layers.BatchNormalization(),
        layers.Activation("relu"), layers.MaxPooling2D(),
        layers.Flatten(), layers.Dropout(0.3),
        layers.Dense(64), layers.BatchNormalization(), layers.Activation("relu"),
        layers.Dropout(0.3), layers.Dense(10, activation="softmax")])
    _train(model, x[..., None], y)
    bn = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    assert all(np.abs(layer.moving_mean.data).max() > 1e-3 for layer in bn)  # trained stats
    check_export(model, x[:7, ..., None], tmp_path / "bn.onnx")
    ops = [n.op_type for n in onnx.load(str(tmp_path / "bn.onnx")).graph.node]
    assert "BatchNormalization" not in ops and "Sub" not in ops  # both folded away

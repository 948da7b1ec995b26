"""The functional API: the course's Wide & Deep models exactly as in the Keras notes, several
inputs and outputs fed as lists, tuples or dicts, shared layers, nested models, summary."""

from __future__ import annotations

import numpy as np
import pytest

import nervenet
from nervenet import layers, models
from nervenet.layers.core import concatenate


def housing_like(n=120, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 8)).astype(np.float32)
    y = (x[:, :1] - 0.5 * x[:, 1:2] ** 2 + 0.1 * rng.standard_normal((n, 1))).astype(np.float32)
    return x, y


def test_wide_and_deep_as_in_the_keras_notes_computes_the_right_function():
    X_train, y_train = housing_like()
    nervenet.utils.set_random_seed(0)
    input_ = layers.Input(shape=X_train.shape[1:])
    hidden1 = layers.Dense(30, activation="relu")(input_)
    hidden2 = layers.Dense(30, activation="relu")(hidden1)
    concat = layers.Concatenate()([input_, hidden2])
    output = layers.Dense(1)(concat)
    model = models.Model(inputs=[input_], outputs=[output])
    w1, b1, w2, b2, w3, b3 = model.get_weights()
    h2 = np.maximum(np.maximum(X_train @ w1 + b1, 0) @ w2 + b2, 0)
    expected = np.concatenate([X_train, h2], axis=1) @ w3 + b3
    np.testing.assert_allclose(model.predict(X_train), expected, rtol=1e-5, atol=1e-5)
    assert model.count_params() == 8 * 30 + 30 + 30 * 30 + 30 + 38 + 1
    model.compile(loss="mse", optimizer=nervenet.optimizers.SGD(learning_rate=1e-2))
    history = model.fit(X_train, y_train, epochs=20, verbose=0,
                        validation_data=(X_train[:20], y_train[:20]))
    # measured last/first loss, seeds 0-4 (OpenBLAS Haswell and SkylakeX alike): 0.144, 0.102,
    # 0.150, 0.177, 0.152
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert set(history.history) == {"loss", "val_loss"}


def wide_deep_two_outputs():
    nervenet.utils.set_random_seed(1)
    input_A = layers.Input(shape=[5], name="wide_input")
    input_B = layers.Input(shape=[6], name="deep_input")
    hidden1 = layers.Dense(30, activation="relu")(input_B)
    hidden2 = layers.Dense(30, activation="relu")(hidden1)
    concat = concatenate([input_A, hidden2])
    output = layers.Dense(1, name="main_output")(concat)
    aux_output = layers.Dense(1, name="aux_output")(hidden2)
    return models.Model(inputs=[input_A, input_B], outputs=[output, aux_output])


def test_two_inputs_two_outputs_with_loss_weights():
    X, y = housing_like()
    X_A, X_B = X[:, :5], X[:, 2:]
    model = wide_deep_two_outputs()
    model.compile(loss=["mse", "mse"], loss_weights=[0.9, 0.1], optimizer="sgd")
    total, main_loss, aux_loss = model.evaluate((X_A, X_B), (y, y))
    y_main, y_aux = model.predict([X_A, X_B])
    assert main_loss == pytest.approx(float(np.mean((y_main - y) ** 2)), rel=1e-5)
    assert aux_loss == pytest.approx(float(np.mean((y_aux - y) ** 2)), rel=1e-5)
    assert total == pytest.approx(0.9 * main_loss + 0.1 * aux_loss, rel=1e-5)
    by_name = model.evaluate({"wide_input": X_A, "deep_input": X_B},
                             {"main_output": y, "aux_output": y}, return_dict=True)
    assert list(by_name) == ["loss", "main_output_loss", "aux_output_loss"]
    assert by_name["loss"] == pytest.approx(total)
    histories = []
    for x_form, y_form in ((X_A, X_B), (y, y)), ({"deep_input": X_B, "wide_input": X_A},
                                                  {"aux_output": y, "main_output": y}):
        model = wide_deep_two_outputs()
        model.compile(loss="mse", loss_weights={"main_output": 0.9, "aux_output": 0.1},
                      optimizer="sgd", metrics=["mae"])
        nervenet.utils.set_random_seed(7)
        histories.append(model.fit(x_form, y_form, epochs=3, verbose=0).history)
    assert histories[0] == histories[1]
    assert set(histories[0]) == {"loss", "main_output_loss", "aux_output_loss",
                                 "main_output_mae", "aux_output_mae"}
    with pytest.raises(ValueError, match=r"missing \['wide_input'\]"):
        model.predict({"deep_input": X_B})
    with pytest.raises(ValueError, match="2 outputs"):
        model.fit([X_A, X_B], y, verbose=0)


def test_shared_layer_has_one_set_of_weights_and_gets_both_gradients():
    left, right = layers.Input(shape=(3,)), layers.Input(shape=(3,))
    shared = layers.Dense(2, use_bias=False)
    model = models.Model([left, right], layers.Concatenate()([shared(left), shared(right)]))
    assert model.layers == [shared] or model.layers[0] is shared
    assert model.count_params() == 6
    a, b = np.ones((1, 3), np.float32), 2 * np.ones((1, 3), np.float32)
    model.compile(optimizer=nervenet.optimizers.SGD(learning_rate=0.1), loss="mse")
    kernel = shared.kernel.data.copy()
    model.train_on_batch([a, b], np.zeros((1, 4), np.float32))
    # d/dW mean((aW)^2 ++ (bW)^2) over 4 outputs: (2/4) (a^T aW + b^T bW)
    grad = 0.5 * (a.T @ (a @ kernel) + b.T @ (b @ kernel))
    np.testing.assert_allclose(shared.kernel.data, kernel - 0.1 * grad, rtol=1e-5)


def test_nested_model_is_a_layer_and_summary_shows_connections():
    inner_in = layers.Input(shape=(4,))
    inner = models.Model(inner_in, layers.Dense(3, activation="relu")(inner_in), name="inner")
    outer_in = layers.Input(shape=(4,), name="x")
    out = layers.Dense(1, name="head")(inner(outer_in))
    outer = models.Model(outer_in, out, name="outer")
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(outer.predict(x), inner.predict(x) @ outer.get_layer("head")
                               .get_weights()[0] + outer.get_layer("head").get_weights()[1],
                               rtol=1e-5, atol=1e-6)
    lines = []
    outer.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Connected to" in text and "inner (Model)" in text and "x[0][0]" in text
    assert "inner[0][0]" in text and "Total params: 19" in text
    inner.trainable = False
    lines.clear()
    outer.summary(print_fn=lines.append)
    assert "Trainable params: 4" in "\n".join(lines)
    assert "Non-trainable params: 15" in "\n".join(lines)


def test_graph_errors_are_clear():
    a, b = layers.Input(shape=(2,)), layers.Input(shape=(2,))
    out = layers.Concatenate()([a, b])
    with pytest.raises(ValueError, match="graph disconnected"):
        models.Model(inputs=a, outputs=out)
    with pytest.raises(TypeError, match="symbolic tensors"):
        models.Model(inputs=a, outputs=np.zeros(2))
    dense = layers.Dense(1)
    dense(layers.Input(shape=(3,)))
    with pytest.raises(ValueError, match=r"expected input with last dimension 3, got \(None, 4\)"):
        dense(layers.Input(shape=(4,)))

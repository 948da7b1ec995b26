"""Models with several outputs, as the book's Wide & Deep examples: compile with a loss per
output and loss weights, fit on a tuple of targets, per-output losses in evaluate and in the
history under Keras's names, predict returning one array per output."""

from __future__ import annotations

import numpy as np
import pytest

import nervenet
from nervenet import layers, models


class WideAndDeepModel(models.Model):
    def __init__(self, units=30, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.hidden1 = layers.Dense(units, activation=activation)
        self.hidden2 = layers.Dense(units, activation=activation)
        self.main_output = layers.Dense(1)
        self.aux_output = layers.Dense(1)

    def call(self, inputs):
        input_a, input_b = inputs
        hidden2 = self.hidden2(self.hidden1(input_b))
        concat = layers.concatenate([input_a, hidden2])
        return self.main_output(concat), self.aux_output(hidden2)


def _data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 8)).astype(np.float32)
    y = (x[:, :3].sum(1) + 0.5 * x[:, 5] ** 2).astype(np.float32)[:, None]
    return (x[:, :5], x[:, 2:]), y


@pytest.mark.parametrize("loss, loss_weights", [
    (("mse", "mse"), (0.9, 0.1)),
    (["mse", "mse"], [0.9, 0.1]),
    ({"output_1": "mse", "output_2": "mse"}, {"output_1": 0.9, "output_2": 0.1}),
    ("mse", [0.9, 0.1]),
])
def test_subclassed_wide_and_deep_with_two_outputs(loss, loss_weights):
    nervenet.utils.set_random_seed(0)
    model = WideAndDeepModel(name="my_cool_model")
    model.compile(loss=loss, loss_weights=loss_weights, optimizer="adam", metrics=["mae"])
    x, y = _data()
    history = model.fit(x, (y, y), epochs=3, batch_size=32, verbose=0,
                        validation_data=(x, (y, y)))
    assert list(history.history) == [
        "loss", "output_1_loss", "output_2_loss", "output_1_mae", "output_2_mae",
        "val_loss", "val_output_1_loss", "val_output_2_loss", "val_output_1_mae",
        "val_output_2_mae"]
    logs = {k: v[-1] for k, v in history.history.items()}
    np.testing.assert_allclose(
        logs["val_loss"], 0.9 * logs["val_output_1_loss"] + 0.1 * logs["val_output_2_loss"],
        rtol=1e-5)
    results = model.evaluate(x, (y, y), verbose=0)
    total, main_loss, aux_loss = results[:3]
    np.testing.assert_allclose(results, [logs[k] for k in logs if k.startswith("val_")],
                               rtol=1e-5)
    y_pred_main, y_pred_aux = model.predict(x, verbose=0)
    np.testing.assert_allclose(main_loss, np.mean((y_pred_main - y) ** 2), rtol=1e-4)
    np.testing.assert_allclose(aux_loss, np.mean((y_pred_aux - y) ** 2), rtol=1e-4)
    np.testing.assert_allclose(total, 0.9 * main_loss + 0.1 * aux_loss, rtol=1e-5)
    assert isinstance(model.predict(x, verbose=0), tuple)
    as_dict = model.evaluate(x, (y, y), verbose=0, return_dict=True)
    assert list(as_dict)[:3] == ["loss", "output_1_loss", "output_2_loss"]


def test_the_weights_decide_what_is_learned():
    # with all the weight on the auxiliary output, the main head is never trained
    nervenet.utils.set_random_seed(1)
    model = WideAndDeepModel()
    model.compile(loss=("mse", "mse"), loss_weights=(0.0, 1.0), optimizer="adam")
    x, y = _data()
    model(x)
    head = model.main_output.kernel.data.copy()
    model.fit(x, (y, y), epochs=2, verbose=0)
    np.testing.assert_array_equal(model.main_output.kernel.data, head)


def test_wrong_number_of_losses_or_targets_is_named():
    model = WideAndDeepModel()
    model.compile(loss=("mse", "mse", "mse"), optimizer="sgd")
    x, y = _data(10)
    with pytest.raises(ValueError, match="3 entries for a model with 2 output"):
        model.fit(x, (y, y), verbose=0)
    model = WideAndDeepModel()
    model.compile(loss="mse", optimizer="sgd")
    with pytest.raises(ValueError, match="2 outputs"):
        model.fit(x, y, verbose=0)


def test_functional_model_with_two_named_outputs():
    nervenet.utils.set_random_seed(0)
    input_wide = layers.Input(shape=[5])
    input_deep = layers.Input(shape=[6])
    hidden1 = layers.Dense(30, activation="relu")(input_deep)
    hidden2 = layers.Dense(30, activation="relu")(hidden1)
    concat = layers.concatenate([input_wide, hidden2])
    output = layers.Dense(1, name="main_output")(concat)
    aux_output = layers.Dense(1, name="aux_output")(hidden2)
    model = models.Model(inputs=[input_wide, input_deep], outputs=[output, aux_output])
    model.compile(loss=("mse", "mse"), loss_weights=(0.9, 0.1), optimizer="adam")
    x, y = _data()
    history = model.fit(x, (y, y), epochs=2, verbose=0, validation_split=0.2)
    assert list(history.history) == ["loss", "main_output_loss", "aux_output_loss", "val_loss",
                                     "val_main_output_loss", "val_aux_output_loss"]
    assert isinstance(model.predict(x, verbose=0), list)  # outputs=[...] as a list

"""The trainer's parts: the one data object (``DataHandler``), the one batch loop of fit and
evaluate, and the public fit state (``model.fit_state``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import nervenet
from nervenet import callbacks, layers, models
from nervenet.models.data_adapter import DataHandler
from nervenet.models.trainer import FitState


def model_and_data(seed=0, n=20):
    nervenet.utils.set_random_seed(seed)
    model = models.Sequential([layers.Input(shape=(3,)), layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    return model, x, (x[:, 0] > 0).astype(np.int64)


def test_the_data_handler_splits_weights_and_batches_arrays():
    model, x, y = model_and_data()
    data = DataHandler(model, x, y, batch_size=6, validation_split=0.25, shuffle=True,
                       class_weight={0: 1.0, 1: 3.0})
    assert data.samples == 15 and data.steps == 3  # 20 - 5 held out; batches of 6, 6, 3
    np.testing.assert_array_equal(data.x, x[:15])
    np.testing.assert_array_equal(data.sample_weight, np.where(y[:15] == 1, 3.0, 1.0))
    assert data.validation.samples == 5 and data.validation.sample_weight is None
    np.testing.assert_array_equal(data.validation.x, x[15:])
    in_order = [bx for bx, _, _ in data.batches()]
    assert [len(bx) for bx in in_order] == [6, 6, 3]
    np.testing.assert_array_equal(np.concatenate(in_order), x[:15])
    shuffled = list(data.batches(np.random.default_rng(0)))
    order = np.random.default_rng(0).permutation(15)
    np.testing.assert_array_equal(np.concatenate([bx for bx, _, _ in shuffled]), x[order])
    np.testing.assert_array_equal(np.concatenate([bw for _, _, bw in shuffled]),
                                  data.sample_weight[order])


def test_the_data_handler_checks_the_data_against_the_model_before_any_batch():
    model, x, y = model_and_data()
    with pytest.raises(ValueError, match="fit: x of shape"):
        DataHandler(model, x[:, :2], y)
    with pytest.raises(ValueError, match="evaluate: x and y are required"):
        DataHandler(model, x, where="evaluate")
    with pytest.raises(ValueError, match="validation_data must be a tuple"):
        DataHandler(model, x, y, validation_data=[x])
    data = DataHandler(model, x, where="predict", batch_size=None, steps=5)
    assert data.y is None and data.steps == 1 and data.batch_size == 20


def test_a_generator_with_array_validation_data_validates_every_epoch():
    model, x, y = model_and_data()

    def batches():
        while True:
            for start in range(0, 20, 5):
                yield x[start:start + 5], y[start:start + 5]

    history = model.fit(batches(), steps_per_epoch=4, epochs=2, verbose=0,
                        validation_data=(x[:8], y[:8]))
    assert len(history.history["val_loss"]) == 2
    assert history.history["val_loss"][-1] == pytest.approx(
        model.evaluate(x[:8], y[:8], verbose=0)[0], rel=1e-6)


def test_fit_and_evaluate_share_the_batch_loop_and_report_the_same_means():
    model, x, y = model_and_data()
    model.compile(optimizer=nervenet.optimizers.SGD(learning_rate=0.0),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    fitted = model.fit(x, y, batch_size=6, epochs=1, verbose=0).history  # no weight moves
    evaluated = model.evaluate(x, y, batch_size=7, verbose=0, return_dict=True)
    assert fitted["loss"][0] == pytest.approx(evaluated["loss"], rel=1e-6)
    assert fitted["accuracy"][0] == pytest.approx(evaluated["accuracy"], rel=1e-6)


class _Skip(callbacks.Callback):
    """Starts the fit at epoch 2 through the public fit state, as BackupAndRestore does,
    and records what each epoch's state was."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_begin(self, logs=None):
        self.model.fit_state.initial_epoch = 2

    def on_train_batch_end(self, batch, logs=None):
        state = self.model.fit_state
        self.seen.append((state.epoch, state.step))


def test_the_fit_state_is_public_and_a_callback_moves_the_start():
    model, x, y = model_and_data()
    assert model.fit_state == FitState()  # before any fit: no shuffling generator
    skip = _Skip()
    history = model.fit(x, y, batch_size=8, epochs=4, verbose=0, callbacks=[skip])
    assert history.epoch == [2, 3]
    assert skip.seen == [(2, 0), (2, 1), (2, 2), (3, 0), (3, 1), (3, 2)]
    state = model.fit_state
    assert (state.epoch, state.initial_epoch, state.epochs) == (3, 2, 4)
    assert isinstance(state.rng, np.random.Generator)


def test_the_compile_settings_round_trip_through_get_compile_config():
    model, x, y = model_and_data()
    assert models.Sequential([layers.Dense(1)]).get_compile_config() is None  # not compiled
    model.compile(optimizer=nervenet.optimizers.Adam(learning_rate=0.003),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    config = json.loads(json.dumps(model.get_compile_config()))  # plain JSON
    assert config["loss"] == "sparse_categorical_crossentropy"
    assert config["metrics"] == ["accuracy"]
    twin = models.Sequential([layers.Input(shape=(3,)), layers.Dense(2, activation="softmax")])
    twin.compile_from_config(config)
    assert twin.compiled and twin.get_compile_config() == config
    assert isinstance(twin.optimizer, nervenet.optimizers.Adam)
    assert twin.optimizer.get_config() == model.optimizer.get_config()
    twin.set_weights(model.get_weights())
    assert twin.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0))
    model.compile(optimizer="sgd", loss=lambda y_true, y_pred: ((y_pred - y_true) ** 2).mean())
    with pytest.warns(UserWarning, match="Python function"):
        assert model.get_compile_config() is None
    with pytest.raises(ValueError, match="'optimizer' and 'loss'"):
        twin.compile_from_config({"loss": "mse"})

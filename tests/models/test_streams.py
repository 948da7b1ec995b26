"""fit, evaluate and predict on Python generators and Dataset.map pipelines, with
steps_per_epoch, validation_steps and validation_freq, as Keras."""

from __future__ import annotations

import numpy as np
import pytest

import nervenet
from nervenet import callbacks, layers, models
from nervenet.data import Dataset


def model_and_data(seed=0, n=64):
    nervenet.utils.set_random_seed(seed)
    model = models.Sequential([layers.Input(shape=(3,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    return model, x, x @ np.array([[1.0], [-2.0], [0.5]], np.float32)


def batches_of(x, y, batch_size, forever=False):
    while True:
        for start in range(0, len(x), batch_size):
            yield x[start:start + batch_size], y[start:start + batch_size]
        if not forever:
            return


class BatchCounter(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.train, self.test = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.train.append(0)

    def on_train_batch_end(self, batch, logs=None):
        self.train[-1] += 1

    def on_test_begin(self, logs=None):
        self.test.append(0)

    def on_test_batch_end(self, batch, logs=None):
        self.test[-1] += 1


def test_a_generator_trains_like_the_same_batches_given_as_arrays():
    model, x, y = model_and_data()
    twin, _, _ = model_and_data()
    history = model.fit(batches_of(x, y, 16, forever=True), steps_per_epoch=4, epochs=3,
                        verbose=0)
    reference = twin.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    np.testing.assert_allclose(history.history["loss"], reference.history["loss"], rtol=1e-6)
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert model.evaluate(batches_of(x, y, 16), verbose=0) == pytest.approx(
        twin.evaluate(x, y, batch_size=16, verbose=0), rel=1e-6)
    np.testing.assert_allclose(model.predict((bx for bx, _ in batches_of(x, y, 10)),
                                             verbose=0),
                               twin.predict(x, verbose=0), rtol=1e-6)


def test_steps_per_epoch_continues_the_generator_and_warns_when_it_runs_out():
    model, x, y = model_and_data()
    counter = BatchCounter()
    with pytest.warns(UserWarning, match="ran out at epoch 3"):
        history = model.fit(batches_of(x, y, 16), steps_per_epoch=3, epochs=5, verbose=0,
                            callbacks=[counter])
    assert counter.train == [3, 1, 0]  # 4 batches in all: 3, then the last one
    assert len(history.history["loss"]) == 2


def test_a_mapped_dataset_is_read_afresh_every_epoch_with_validation_options():
    model, x, y = model_and_data()
    scale = np.float32(0.5)
    train = Dataset.from_tensor_slices((x, y)).shuffle(64, seed=0).batch(16).map(
        lambda bx, by: (bx * scale, by * scale))
    valid = Dataset.from_tensor_slices((x, y)).batch(8).map(lambda bx, by: (bx, by))
    counter = BatchCounter()
    history = model.fit(train, epochs=4, validation_data=valid, validation_steps=3,
                        validation_freq=2, verbose=0, callbacks=[counter])
    assert counter.train == [4, 4, 4, 4] and counter.test == [3, 3]  # epochs 2 and 4
    assert len(history.history["loss"]) == 4 and len(history.history["val_loss"]) == 2
    counter = BatchCounter()
    model.fit(train, epochs=3, steps_per_epoch=2, validation_data=valid,
              validation_freq=[1, 3], verbose=0, callbacks=[counter])
    assert counter.train == [2, 2, 2] and counter.test == [8, 8]
    mapped = model.evaluate(valid, verbose=0, return_dict=True)
    plain = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert mapped == pytest.approx(plain, rel=1e-6)
    assert model.predict(valid, steps=2, verbose=0).shape == (16, 1)


def test_arrays_with_steps_per_epoch_and_validation_freq():
    model, x, y = model_and_data()
    counter = BatchCounter()
    history = model.fit(x, y, batch_size=8, epochs=3, steps_per_epoch=5, verbose=0,
                        validation_data=(x, y), validation_freq=3, callbacks=[counter])
    assert counter.train == [5, 5, 5] and counter.test == [8]  # validated at epoch 3
    assert len(history.history["val_loss"]) == 1


def test_bad_stream_arguments_are_named():
    model, x, y = model_and_data()
    with pytest.raises(ValueError, match="y cannot be given"):
        model.fit(batches_of(x, y, 16), y, verbose=0)
    with pytest.raises(ValueError, match="must be batched"):
        model.fit(Dataset.from_tensor_slices((x, y)).map(lambda a, b: (a, b)), verbose=0)
    with pytest.raises(ValueError, match="no targets"):
        model.fit((bx for bx, _ in batches_of(x, y, 16)), verbose=0)
    with pytest.raises(ValueError, match="steps_per_epoch must be a positive int"):
        model.fit(batches_of(x, y, 16), steps_per_epoch=0, verbose=0)
    with pytest.raises(ValueError, match="validation_freq must be a positive int"):
        model.fit(x, y, validation_freq=0, verbose=0)
    bad = ((bx, by * np.nan) for bx, by in batches_of(x, y, 16))
    with pytest.raises(ValueError, match="x batch 0: y contains 16 NaN"):
        model.fit(bad, verbose=0)

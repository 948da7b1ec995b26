"""The ``training`` flag reaches every nested layer through the call context, as in Keras:
a layer called without ``training`` follows the enclosing call (fit: True, predict: False)."""

from __future__ import annotations

import numpy as np

import nervenet
from nervenet import layers, models


class RecordingDropout(layers.Dropout):
    """A Dropout that records, per call, the training flag it got and whether it zeroed
    anything."""

    def __init__(self, rate, **kwargs):
        super().__init__(rate, **kwargs)
        self.calls: list[tuple[bool, bool]] = []

    def call(self, inputs, training=False):
        outputs = super().call(inputs, training=training)
        dropped = bool(np.any(outputs.data != inputs.data))
        self.calls.append((bool(training), dropped))
        return outputs


class Block(layers.Layer):
    """A custom layer holding the dropout two levels down: its call passes no flag."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(16, activation="relu")
        self.dropout = RecordingDropout(0.5)

    def call(self, inputs):
        return self.dropout(self.dense(inputs))


class Net(models.Model):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.out = layers.Dense(1)

    def call(self, inputs):  # neither takes nor passes ``training``
        return self.out(self.block(inputs))


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((64, 5)).astype(np.float32)
    return x, x.sum(axis=1, keepdims=True)


def test_nested_dropout_is_active_in_fit_and_inactive_in_predict():
    nervenet.utils.set_random_seed(0)
    model = Net()
    model.compile(optimizer="sgd", loss="mse")
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    dropout = model.block.dropout
    # fit first checks the data on one sample (inference), then trains on 4 batches
    checks = dropout.calls[:-4]
    assert checks and all(not (training or dropped) for training, dropped in checks)
    assert dropout.calls[-4:] == [(True, True)] * 4
    dropout.calls.clear()
    first = model.predict(x, verbose=0)
    np.testing.assert_array_equal(first, model.predict(x, verbose=0))
    assert dropout.calls and not any(t or d for t, d in dropout.calls)
    dropout.calls.clear()
    model.evaluate(x, y, verbose=0)
    assert dropout.calls and not any(t or d for t, d in dropout.calls)


def test_mc_dropout_as_the_book_writes_it():
    nervenet.utils.set_random_seed(1)
    model = Net()
    x, _ = _data()
    samples = np.stack([model(x, training=True) for _ in range(20)])  # Tensors, as the book
    assert not np.allclose(samples[0], samples[1])  # each call draws a new mask
    assert samples.std(axis=0).mean() > 1e-3
    plain = model(x).numpy()  # no flag, no enclosing call: inference
    np.testing.assert_array_equal(plain, model.predict(x, verbose=0))
    np.testing.assert_array_equal(plain, model(x, training=False).numpy())


def test_numpy_reads_tensors_and_arithmetic_with_arrays_still_records():
    t = nervenet.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert np.asarray(t) is t.data and np.stack([t, t]).shape == (2, 2, 3)
    assert np.asarray(t, dtype=np.float32).dtype == np.float32
    product = np.full((2, 3), 2.0) * t  # NumPy defers to Tensor: a recorded op
    assert isinstance(product, nervenet.Tensor)
    product.sum().backward()
    np.testing.assert_array_equal(t.grad, np.full((2, 3), 2.0))


def test_an_explicit_flag_on_an_inner_call_wins_and_does_not_leak():
    seen = []

    class Probe(layers.Layer):
        def call(self, inputs, training=False):
            seen.append(training)
            return inputs

    class Outer(models.Model):
        def __init__(self):
            super().__init__()
            self.frozen = Probe()
            self.free = Probe()

        def call(self, inputs):
            return self.free(self.frozen(inputs, training=False))

    model = Outer()
    model(np.ones((2, 3)), training=True)
    assert seen == [False, True]  # the explicit False held for its call only
    seen.clear()
    model(np.ones((2, 3)))
    assert seen == [False, False]
    assert nervenet.layers.base.current_training() is None  # nothing left behind

"""The rewrites of a captured step (``autograd.rewrite``): max pooling moved before ReLU, and
ReLU in place. Each case checks that the rewrite was (or was not) made, and that the captured
run still equals the eager one bit for bit (``_same_both_ways``): weights, optimizer state,
history and predictions, on data made to hit the edge cases (windows with no positive value,
ties, zeros of both signs).
"""

from __future__ import annotations

import numpy as np
import pytest

from nervenet import layers, models
from nervenet.autograd.ops.activation import ReLU
from tests.models.test_jit import _assert_same, _replayed, _train


def _same_both_ways(build, **kwargs):
    """``test_jit._same_both_ways``, and every weight and prediction equal to the bit (signed
    zeros too, which ``np.array_equal`` does not tell apart)."""
    eager, captured = _train(build, False, **kwargs), _train(build, "auto", **kwargs)
    _assert_same(eager, captured)
    for a, b in zip(_arrays(eager), _arrays(captured)):
        assert a.tobytes() == b.tobytes()
    return captured[0]


def _arrays(run) -> list[np.ndarray]:
    """The weights and predictions of a ``_train`` run."""
    model, _, predictions = run
    return model.get_weights() + (predictions if isinstance(predictions, list) else
                                  [predictions])


def _program(model, kind="train"):
    (entry,) = [e for key, e in model.captured_steps.entries.items() if key[0] == kind]
    return entry.program


def _order(program) -> list[str]:
    return [type(call[0]).__name__ for call in program.calls]


def _in_place(program) -> list[bool]:
    return [call[0].in_place for call in program.calls if type(call[0]) is ReLU]


def _images(n=32, seed=0):
    """Images whose 2x2 windows are often all negative, tie, or hold exact zeros."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 8, 8, 2)).astype(np.float32) - 0.5
    x[:, ::3] = np.round(x[:, ::3])            # ties and zeros (of both signs)
    x[:, :, ::4] = -np.abs(x[:, :, ::4])       # whole windows without a positive value
    return x, rng.integers(0, 3, n)


def _conv_relu_pool(padding):
    """The second pooling reads a 3x3 map: "valid" leaves its last row and column out of
    every window, "same" pads them."""
    return lambda: models.Sequential([
        layers.Input(shape=(8, 8, 2)), layers.Conv2D(4, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(), layers.Conv2D(3, 2), layers.ReLU(),
        layers.MaxPooling2D(padding=padding), layers.Flatten(),
        layers.Dense(8, activation="relu"), layers.Dense(3)])


@pytest.mark.parametrize("optimizer, padding", [("sgd", "valid"), ("adam", "same")])
def test_pooling_moves_before_relu_and_relu_runs_in_place(optimizer, padding):
    x, y = _images()
    model = _same_both_ways(_conv_relu_pool(padding), optimizer=optimizer, x=x, y=y,
                            batch_size=8)
    assert _replayed(model) and _replayed(model, "predict")
    for kind in ("train", "predict"):
        program = _program(model, kind)
        assert _order(program)[:6] == ["Conv2d", "MaxPool2d", "ReLU", "Conv2d", "MaxPool2d",
                                       "ReLU"]
        assert _in_place(program) == [True, True, True]


def test_results_read_by_another_operation_are_not_rewritten():
    x, y = _images()

    def build():
        inputs = layers.Input(shape=(8, 8, 2))
        before = layers.Conv2D(4, 3, padding="same")(inputs)
        after = layers.ReLU()(before)
        pooled = layers.MaxPooling2D()(after)
        # ``before`` and ``after`` are read again: neither the swap nor in place is allowed
        merged = layers.Concatenate()([
            layers.Flatten()(pooled), layers.GlobalAveragePooling2D()(after),
            layers.GlobalMaxPooling2D()(before)])
        return models.Model(inputs, layers.Dense(3)(merged))
    model = _same_both_ways(build, x=x, y=y, batch_size=8)
    program = _program(model)
    assert _order(program)[:3] == ["Conv2d", "ReLU", "MaxPool2d"]
    assert _in_place(program) == [False]


def test_an_output_of_the_model_is_not_overwritten():
    x, y = _images()

    def build():
        inputs = layers.Input(shape=(8, 8, 2))
        logits = layers.Dense(3, name="logits")(layers.Flatten()(inputs))
        return models.Model(inputs, [logits, layers.ReLU(name="rectified")(logits)])
    model = _same_both_ways(build, x=x, y=[y, np.abs(x[:, 0, 0, :1]).repeat(3, axis=1)],
                            loss=["sparse_categorical_crossentropy", "mse"], batch_size=8)
    assert _in_place(_program(model)) == [False]
    logits, rectified = model.predict(x, verbose=0)
    assert np.array_equal(np.maximum(logits, 0), rectified) and (logits < 0).any()


@pytest.mark.parametrize("pooling, kind", [
    (lambda: layers.AveragePooling2D(), "AvgPool2d"),  # does not commute with ReLU
    (lambda: layers.MaxPooling2D(3, strides=1), "MaxPool2d"),  # windows overlap
])
def test_other_poolings_stay_after_relu(pooling, kind):
    x, y = _images()

    def build():
        return models.Sequential([
            layers.Input(shape=(8, 8, 2)), layers.Conv2D(4, 3, activation="relu"), pooling(),
            layers.Flatten(), layers.Dense(3)])
    model = _same_both_ways(build, x=x, y=y, batch_size=8)
    assert _order(_program(model))[:3] == ["Conv2d", "ReLU", kind]
    assert _in_place(_program(model)) == [True]

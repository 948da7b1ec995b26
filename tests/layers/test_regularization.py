"""Dropout, GaussianNoise and GaussianDropout: expectations kept (statistical tests with fixed
seeds), identity at inference, gradients through the mask, reproducible generators."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nervenet
from nervenet import layers, models
from nervenet.layers.regularization import Dropout, GaussianDropout, GaussianNoise
from tests.layers.test_layer_harness import (
    test_config_round_trip_gives_identical_outputs as harness_config,
    test_one_training_step_moves_the_trainable_weights as harness_step,
    test_output_shape_and_weight_counts as harness_shapes,
)
from tests.scripts import load_example

HARNESS = {
    "Dropout": (lambda: Dropout(0.3, seed=1), (4, 3), (4, 3), 0, 0),
    "Dropout-noise-shape": (lambda: Dropout(0.5, noise_shape=(None, 1, 1, None)),
                            (2, 3, 3, 4), (2, 3, 3, 4), 0, 0),
    "GaussianNoise": (lambda: GaussianNoise(0.2), (4, 3), (4, 3), 0, 0),
    "GaussianDropout": (lambda: GaussianDropout(0.4, seed=3), (4, 3), (4, 3), 0, 0),
}


@pytest.mark.parametrize("name", sorted(HARNESS))
def test_layer_harness(name):
    harness_shapes(HARNESS[name])
    harness_step(HARNESS[name])
    harness_config(HARNESS[name])


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_keeps_the_expectation(rate):
    """Each output value is x / (1 - rate) with probability 1 - rate, else 0: mean x and
    variance x^2 rate / (1 - rate). With n = 200,000 values the sample mean lies within 4
    standard errors of x and the drop fraction within 4 standard errors of rate."""
    n = 200_000
    x = np.full((n // 100, 100), 3.0)
    y = Dropout(rate, seed=0, dtype="float64")(x, training=True).data
    standard_error = 3.0 * math.sqrt(rate / (1 - rate) / n)
    assert abs(y.mean() - 3.0) < 4 * standard_error
    dropped = np.mean(y == 0.0)
    assert abs(dropped - rate) < 4 * math.sqrt(rate * (1 - rate) / n)
    np.testing.assert_allclose(np.unique(y), [0.0, 3.0 / (1 - rate)])


def test_dropout_is_the_identity_at_inference():
    x = np.random.default_rng(0).normal(size=(5, 7)).astype(np.float32)
    for layer in (Dropout(0.5), GaussianNoise(1.0), GaussianDropout(0.5)):
        np.testing.assert_array_equal(layer(x).data, x)
        np.testing.assert_array_equal(layer(x, training=False).data, x)
        assert not np.array_equal(layer(x, training=True).data, x)


def test_dropout_gradient_is_the_scaled_mask():
    x = nervenet.Tensor(np.random.default_rng(1).uniform(1, 2, (6, 5)), requires_grad=True)
    y = Dropout(0.4, seed=2, dtype="float64")(x, training=True)
    upstream = np.random.default_rng(2).normal(size=(6, 5))
    (gx,) = nervenet.grad((y * upstream).sum(), [x])
    mask = y.data / x.data  # 0 or 1 / 0.6
    np.testing.assert_allclose(gx.data, upstream * mask, rtol=1e-12)


def test_inverted_dropout_equals_scaling_weights_at_test():
    """The docs' claim: averaged over masks, a Dense layer after inverted dropout computes what
    it computes at test time; a Dense layer after unscaled dropout computes what its weights
    times (1 - rate) compute at test time."""
    rng = np.random.default_rng(3)
    dense = layers.Dense(4, dtype="float64")
    x = rng.normal(size=(1, 6))
    test_output = dense(x).data
    rate, draws = 0.5, 20_000
    layer = Dropout(rate, seed=4, dtype="float64")
    batch = np.repeat(x, draws, axis=0)
    dropped = layer(batch, training=True).data
    averaged = dense(dropped).data.mean(axis=0)
    spread = np.abs(dense.kernel.data).sum(axis=0) * np.abs(x).max() / math.sqrt(draws)
    assert np.all(np.abs(averaged - test_output[0]) < 4 * spread)
    unscaled = dense(dropped * (1 - rate)).data.mean(axis=0)  # the original formulation
    scaled_weights = x @ (dense.kernel.data * (1 - rate)) + dense.bias.data
    assert np.all(np.abs(unscaled - scaled_weights[0]) < 4 * spread)


def test_noise_shape_shares_the_mask_along_broadcast_axes():
    x = np.ones((50, 4, 4, 3), dtype=np.float32)
    y = Dropout(0.5, noise_shape=(None, 1, 1, None), seed=5)(x, training=True).data
    per_map = y.reshape(50, 16, 3)
    assert np.all(per_map == per_map[:, :1, :])  # one value per sample and feature map
    assert set(np.unique(per_map).tolist()) == {0.0, 2.0}
    with pytest.raises(ValueError, match="does not broadcast"):
        Dropout(0.5, noise_shape=(None, 2))(np.ones((3, 4)), training=True)
    with pytest.raises(ValueError, match="one entry per input axis"):
        Dropout(0.5, noise_shape=(None,))(np.ones((3, 4)), training=True)


def test_gaussian_layers_have_the_stated_moments():
    n = 200_000
    noise = GaussianNoise(0.3, seed=6, dtype="float64")(np.full((n, 1), 2.0), training=True).data
    assert abs(noise.mean() - 2.0) < 4 * 0.3 / math.sqrt(n)
    assert abs(noise.std() - 0.3) < 0.003
    rate = 0.2
    factor = GaussianDropout(rate, seed=7, dtype="float64")(np.full((n, 1), 2.0),
                                                            training=True).data / 2.0
    stddev = math.sqrt(rate / (1 - rate))  # the variance of keep / (1 - rate)
    assert abs(factor.mean() - 1.0) < 4 * stddev / math.sqrt(n)
    assert abs(factor.std() - stddev) < 0.01 * stddev


def test_each_layer_has_its_own_reproducible_generator():
    x = np.ones((8, 8), dtype=np.float32)
    a, b = Dropout(0.5, seed=9), Dropout(0.5, seed=9)
    np.testing.assert_array_equal(a(x, training=True).data, b(x, training=True).data)
    first, second = a(x, training=True).data, a(x, training=True).data
    assert not np.array_equal(first, second)  # the generator advances
    nervenet.utils.set_random_seed(10)
    c = GaussianNoise(1.0)
    nervenet.utils.set_random_seed(10)
    d = GaussianNoise(1.0)
    np.testing.assert_array_equal(c(x, training=True).data, d(x, training=True).data)


def test_dropout_is_active_in_fit_only():
    nervenet.utils.set_random_seed(11)
    model = models.Sequential([layers.Input(shape=(3,)), Dropout(0.9, seed=0),
                               layers.Dense(1, kernel_initializer="ones")])
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((64, 3), dtype=np.float32)
    y = np.full((64, 1), 3.0, dtype=np.float32)
    assert model.evaluate(x, y) == pytest.approx(0.0)  # identity: 1 + 1 + 1 = 3
    history = model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    assert history.history["loss"][0] > 1.0  # 90% of inputs dropped, the rest times 10


def test_bad_arguments_are_named():
    for cls in (Dropout, GaussianDropout):
        with pytest.raises(ValueError, match=r"rate must be finite and in \[0, 1\), got 1.0"):
            cls(1.0)
    with pytest.raises(ValueError, match="stddev must be a finite number >= 0"):
        GaussianNoise(-0.1)
    with pytest.raises(TypeError, match="Dropout: seed must be an int >= 0, got str 'a'"):
        Dropout(0.5, seed="a")
    with pytest.raises(ValueError, match="Dropout: seed must be an int >= 0, got -1"):
        Dropout(0.5, seed=-1)
    with pytest.raises(ValueError, match="noise_shape must be a sequence"):
        Dropout(0.5, noise_shape=(0, 1))




@pytest.mark.slow
def test_overfitting_example_regularized_runs_have_a_smaller_gap():
    """examples/overfitting.py on a small budget: the regularized runs end with a smaller
    validation-minus-training loss gap than the unregularized one, from the same seed."""
    example = load_example("overfitting")
    # measured gaps (OpenBLAS Haswell and SkylakeX kernels give the same to 4 digits):
    #   seed   none   l2     dropout batchnorm early_stopping augmentation
    #   0      0.610  0.563  0.481   0.557     0.485 (15 ep.) 0.172
    #   1      0.643  0.591  0.493   0.574     0.468 (13 ep.) 0.201
    #   2      0.576  0.533  0.480   0.602     0.508 (18 ep.) 0.237
    # every run but batchnorm beats none on every seed (by 0.043 at least); batchnorm's gap is
    # larger on seed 2, so only its training is checked here
    results = example.compare(n_train=300, epochs=30, hidden=64, seed=0, n_validation=500)
    gaps = {run: result["gap"] for run, result in results.items()}
    assert results["none"]["train_loss"] < 0.1, gaps  # it does overfit (0.012-0.013 measured)
    for run in ("l2", "dropout", "early_stopping", "augmentation"):
        assert gaps[run] < gaps["none"], gaps
    assert results["batchnorm"]["train_loss"] < 0.1, gaps
    assert results["early_stopping"]["epochs"] < 30
    assert "accuracy" in results["none"]["history"]

"""The one perceptron rule (models/perceptron.py): the update, the net input, and the rule
that the command line and scikit-learn's Perceptron both train with."""

import numpy as np
import pytest

from nervenet import layers
from nervenet.models.perceptron import net_input, perceptron_rule, perceptron_update


def test_update_moves_weights_by_eta_error_x():
    kernel, bias = np.zeros((3, 2)), np.zeros(2)
    x, error = np.array([1.0, -2.0, 0.5]), np.array([1.0, 0.0])
    perceptron_update(kernel, bias, x, error, learning_rate=0.5)
    np.testing.assert_array_equal(kernel, 0.5 * np.outer(x, error))
    np.testing.assert_array_equal(bias, [0.5, 0.0])
    w = np.ones(3)                      # one unit, scikit-learn's layout; no bias
    perceptron_update(w, None, x, -2.0, learning_rate=0.25)
    np.testing.assert_array_equal(w, 1.0 - 0.5 * x)


def test_net_input_is_what_the_step_thresholds():
    rng = np.random.default_rng(0)
    unit = layers.Dense(3, activation="step")
    x = rng.normal(size=(8, 4)).astype(np.float32)
    out = unit(x).data
    net = net_input(unit, x)
    np.testing.assert_allclose(net, x @ unit.kernel.data + unit.bias.data, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(out, (net > 0).astype(out.dtype))


@pytest.mark.parametrize("gate, targets", [("or", [0, 1, 1, 1]), ("nand", [1, 1, 1, 0])])
def test_rule_converges_on_a_separable_gate(gate, targets):
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    unit = layers.Dense(1, activation="step", kernel_initializer="zeros")
    errors = perceptron_rule(unit, x, np.array(targets), learning_rate=0.5, seed=0)
    assert errors[-1] == 0 and len(errors) < 100
    np.testing.assert_array_equal(unit(x).data.ravel(), targets)
    np.testing.assert_array_equal(net_input(unit, x).ravel() > 0, np.array(targets) == 1)

"""TF-Keras 2 spellings of the optimizers: ``lr=`` and ``decay=`` (issue #15)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import nervenet
from nervenet import optimizers
from nervenet.optimizers import schedules
from tests.optimizers.problems import make_problem
from tests.optimizers.test_torch_trajectories import _run_nervenet

CLASSES = [optimizers.SGD, optimizers.Adagrad, optimizers.RMSprop, optimizers.Adam,
           optimizers.AdamW, optimizers.Adamax, optimizers.Nadam]
EXTRA = {optimizers.SGD: {"momentum": 0.9, "nesterov": True},
         optimizers.RMSprop: {"momentum": 0.5, "centered": True}}


def _trajectory(optimizer, steps=6):
    """The weights after each of ``steps`` steps on the shared problem, one row per step."""
    path = _run_nervenet(make_problem(3), optimizer, steps)
    return np.array([np.concatenate([w.ravel(), b.ravel()]) for w, b in path])


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_lr_is_learning_rate_with_a_deprecation_warning(cls):
    with pytest.warns(DeprecationWarning, match="use learning_rate"):
        old = cls(lr=0.05, **EXTRA.get(cls, {}))
    new = cls(learning_rate=0.05, **EXTRA.get(cls, {}))
    assert old.learning_rate == 0.05
    assert old.get_config() == new.get_config()
    np.testing.assert_array_equal(_trajectory(old), _trajectory(new))
    with pytest.raises(TypeError, match="both lr and learning_rate"):
        cls(lr=0.1, learning_rate=0.1)
    with pytest.raises(TypeError, match="both lr and learning_rate"):
        cls(0.1, lr=0.1)
    with pytest.raises(ValueError, match="learning_rate"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        cls(lr=-1.0)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_decay_is_tf_keras_2_inverse_time_decay(cls):
    """``decay`` equals the constant rate replaced by ``lr / (1 + decay * iterations)``."""
    lr, decay = 0.05, 0.3
    decayed = _trajectory(cls(learning_rate=lr, decay=decay, **EXTRA.get(cls, {})))
    by_formula = _trajectory(cls(learning_rate=lambda step: lr / (1 + decay * step),
                                 **EXTRA.get(cls, {})))
    np.testing.assert_allclose(decayed, by_formula, rtol=1e-13, atol=1e-15)
    undecayed = _trajectory(cls(learning_rate=lr, **EXTRA.get(cls, {})))
    np.testing.assert_array_equal(_trajectory(cls(learning_rate=lr, decay=0.0,
                                                  **EXTRA.get(cls, {}))), undecayed)
    assert np.abs(decayed - undecayed).max() > 1e-4           # the decay does something


def test_decay_by_hand_for_sgd():
    w = nervenet.tensor(np.array([1.0]))
    opt = optimizers.SGD(learning_rate=0.5, decay=1.0)
    for _ in range(3):
        opt.apply_gradients([(np.array([1.0]), w)])
    # steps at iterations 0, 1, 2: 0.5/1 + 0.5/2 + 0.5/3
    np.testing.assert_allclose(w.data, [1.0 - 0.5 - 0.25 - 0.5 / 3], rtol=1e-15)
    assert opt.learning_rate == 0.5             # the configured rate, as TF-Keras 2's ``lr``


def test_decay_applies_after_a_schedule():
    schedule = schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    decayed = _trajectory(optimizers.Adam(learning_rate=schedule, decay=0.2))
    by_formula = _trajectory(optimizers.Adam(
        learning_rate=lambda step: 0.1 * 0.5 ** (step / 2) / (1 + 0.2 * step)))
    np.testing.assert_allclose(decayed, by_formula, rtol=1e-13, atol=1e-15)


def test_lr_and_decay_round_trip_through_get_config():
    with pytest.warns(DeprecationWarning):
        opt = optimizers.RMSprop(lr=0.001, rho=0.9, epsilon=1e-08, decay=0.01)
    config = optimizers.serialize(opt)
    assert config["config"]["learning_rate"] == 0.001 and config["config"]["decay"] == 0.01
    again = optimizers.get(json.loads(json.dumps(config)))
    assert again.get_config() == opt.get_config()
    np.testing.assert_array_equal(_trajectory(again), _trajectory(opt))
    with pytest.warns(DeprecationWarning):
        scheduled = optimizers.SGD(lr=schedules.InverseTimeDecay(0.1, 10, 0.5), decay=0.1)
    assert scheduled.learning_rate_schedule is not None
    assert optimizers.get(optimizers.serialize(scheduled)).get_config() == \
        scheduled.get_config()
    # a TF-Keras 2 config (``lr`` key) is read too
    with pytest.warns(DeprecationWarning):
        legacy = optimizers.Adam.from_config({"lr": 0.01, "decay": 0.0})
    assert legacy.learning_rate == 0.01


@pytest.mark.parametrize("value", [-0.1, float("nan"), "0.1"])
def test_bad_decay(value):
    with pytest.raises((ValueError, TypeError), match="decay"):
        optimizers.Adam(decay=value)


def test_the_notes_optimizer_table_runs():
    with pytest.warns(DeprecationWarning):
        table = [optimizers.SGD(lr=0.1, momentum=0.9, nesterov=True),
                 optimizers.Adagrad(lr=0.01, epsilon=1e-6),
                 optimizers.RMSprop(lr=0.001, rho=0.9, epsilon=1e-08, decay=0.0),
                 optimizers.Adam(lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-08, decay=0.0)]
    for optimizer in table:
        assert np.isfinite(_trajectory(optimizer, steps=2)).all()

"""The one argument-check module (nervenet/checks.py) and its rule: TypeError for a wrong type,
ValueError for a wrong value, a message naming the owner, the argument, what was expected and
what came; and the entry points that check through it follow the rule."""

import numpy as np
import pytest

from nervenet import callbacks, ensemble, metrics, optimizers
from nervenet.checks import check_choice, check_int, check_number, check_string
from nervenet.data import toy
from nervenet.data.dataset import Dataset
from nervenet.optimizers import schedules


@pytest.mark.parametrize("value", [2.5, "3", True, None, [1]])
def test_check_int_wrong_type_is_a_type_error(value):
    with pytest.raises(TypeError, match=r"^Owner: count must be a positive int, got \w+ "):
        check_int("Owner", "count", value, low=1)


@pytest.mark.parametrize("value, low, high", [(0, 1, None), (-1, 0, None), (11, 0, 10)])
def test_check_int_out_of_range_is_a_value_error(value, low, high):
    with pytest.raises(ValueError, match=rf"Owner: count must be .*, got {value}$"):
        check_int("Owner", "count", value, low=low, high=high)


def test_check_int_returns_a_python_int_and_passes_none_when_allowed():
    value = check_int("Owner", "count", np.int64(3), low=1)
    assert value == 3 and type(value) is int
    assert check_int("Owner", "count", None, low=1, allow_none=True) is None
    with pytest.raises(ValueError, match=r"an int in \[0, 10\]"):
        check_int("Owner", "count", 12, low=0, high=10)


def test_check_number_type_and_value():
    assert check_number("Adam", "beta_1", np.float32(0.5), 0.0, 1.0, high_open=True) == 0.5
    with pytest.raises(TypeError, match="Adam: beta_1 must be a real number, got str '0.5'"):
        check_number("Adam", "beta_1", "0.5", 0.0, 1.0)
    with pytest.raises(TypeError):
        check_number("Adam", "beta_1", True, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"Adam: beta_1 must be finite and in \[0.0, 1.0\), "
                                         r"got 1.0"):
        check_number("Adam", "beta_1", 1.0, 0.0, 1.0, high_open=True)
    with pytest.raises(ValueError, match="got nan"):
        check_number("Adam", "beta_1", float("nan"))
    assert check_number("Adam", "clipnorm", None, 0.0, allow_none=True) is None


def test_check_choice_and_string():
    assert check_choice("MLP", "solver", "adam", ("sgd", "adam")) == "adam"
    with pytest.raises(ValueError, match="MLP: solver must be one of 'sgd', 'adam', got 'adamm'"):
        check_choice("MLP", "solver", "adamm", ("sgd", "adam"))
    with pytest.raises(TypeError, match="got int 3"):
        check_choice("MLP", "solver", 3, ("sgd", "adam"))
    assert check_choice("P", "class_weight", None, (None, "balanced")) is None
    assert check_string("summary.scalar", "name", "loss") == "loss"
    with pytest.raises(TypeError, match="summary.scalar: name must be a non-empty string"):
        check_string("summary.scalar", "name", 3)
    with pytest.raises(ValueError, match="got ''"):
        check_string("summary.scalar", "name", "")


@pytest.mark.parametrize("build, error", [
    (lambda: schedules.ExponentialDecay(0.1, decay_steps=1.5, decay_rate=0.9), TypeError),
    (lambda: schedules.ExponentialDecay(0.1, decay_steps=0, decay_rate=0.9), ValueError),
    (lambda: optimizers.Adam(learning_rate="0.1"), TypeError),
    (lambda: optimizers.Adam(beta_1=1.5), ValueError),
    (lambda: ensemble.Boosting(lambda: None, n_estimators=2.5), TypeError),
    (lambda: ensemble.Boosting(lambda: None, n_estimators=0), ValueError),
    (lambda: toy.make_moons(n_samples="100"), TypeError),
    (lambda: toy.make_moons(n_samples=1), ValueError),
    (lambda: toy.make_moons(noise=-0.1), ValueError),
    (lambda: callbacks.EarlyStopping(patience=1.5), TypeError),
    (lambda: callbacks.EarlyStopping(patience=-1), ValueError),
    (lambda: metrics.TopKCategoricalAccuracy(k="5"), TypeError),
    (lambda: Dataset.from_tensor_slices(np.zeros(4)).batch(0), ValueError),
    (lambda: Dataset.from_tensor_slices(np.zeros(4)).batch(2.0), TypeError),
])
def test_entry_points_follow_the_rule(build, error):
    with pytest.raises(error):
        build()

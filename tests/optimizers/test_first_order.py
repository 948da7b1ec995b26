"""First-order optimizers without torch: the rules by hand, state, dtypes, bad input."""

from __future__ import annotations

import json
import math
import tracemalloc

import numpy as np
import pytest

import nervenet
from nervenet import optimizers
from nervenet.optimizers import schedules
from tests.optimizers.problems import make_problem, nervenet_gradients

ALL = {
    "sgd": lambda: optimizers.SGD(0.1),
    "sgd-nesterov": lambda: optimizers.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adagrad": lambda: optimizers.Adagrad(0.1),
    "rmsprop-centered": lambda: optimizers.RMSprop(0.01, momentum=0.5, centered=True),
    "adam-amsgrad": lambda: optimizers.Adam(0.01, amsgrad=True, clipnorm=1.0),
    "adamw": lambda: optimizers.AdamW(0.01),
    "adamax": lambda: optimizers.Adamax(0.01, global_clipnorm=1.0),
    "nadam": lambda: optimizers.Nadam(0.01, clipvalue=0.5),
}


def _weights(problem, dtype=np.float64):
    return (nervenet.Tensor(problem["w"].astype(dtype), requires_grad=True, name="w"),
            nervenet.Tensor(problem["b"].astype(dtype), requires_grad=True, name="b"))


def _steps(optimizer, problem, w, b, n):
    for _ in range(n):
        gw, gb = nervenet_gradients(problem, w, b)
        optimizer.apply_gradients([(gw, w), (gb, b)])


# ------------------------------------------------------------------ the rules by hand


def test_sgd_momentum_by_hand():
    w = nervenet.tensor(np.array([1.0, -2.0]))
    opt = optimizers.SGD(0.1, momentum=0.9)
    g1, g2 = np.array([0.5, 1.0]), np.array([-1.0, 2.0])
    opt.apply_gradients([(g1, w)])
    np.testing.assert_allclose(w.data, [1.0 - 0.05, -2.0 - 0.1])
    opt.apply_gradients([(g2, w)])
    v = 0.9 * g1 + g2
    np.testing.assert_allclose(w.data, np.array([0.95, -2.1]) - 0.1 * v)


def test_adam_first_step_is_lr_times_sign():
    """Bias correction makes Adam's first step lr * g / (|g| + eps) = lr * sign(g)."""
    w = nervenet.tensor(np.array([1.0, 1.0, 1.0]))
    optimizers.Adam(0.01, epsilon=1e-12).apply_gradients([(np.array([3.0, -1e-3, 0.0]), w)])
    np.testing.assert_allclose(w.data, [0.99, 1.01, 1.0], rtol=0, atol=1e-10)


def test_adagrad_by_hand():
    w = nervenet.tensor(np.array([1.0]))
    opt = optimizers.Adagrad(0.5, initial_accumulator_value=1.0, epsilon=1e-7)
    opt.apply_gradients([(np.array([2.0]), w)])
    np.testing.assert_allclose(w.data, [1.0 - 0.5 * 2.0 / (math.sqrt(5.0) + 1e-7)])


def test_adamw_decays_weights_without_gradient_signal():
    """With a zero gradient, AdamW's step is the decoupled decay alone: w (1 - lr wd)."""
    w = nervenet.tensor(np.array([2.0, -4.0]))
    optimizers.AdamW(0.1, weight_decay=0.5).apply_gradients([(np.zeros(2), w)])
    np.testing.assert_allclose(w.data, [2.0 * 0.95, -4.0 * 0.95])


def test_clipnorm_is_per_variable_and_global_clipnorm_is_joint():
    g1, g2 = np.array([3.0, 4.0]), np.array([0.0, 1.0])       # norms 5 and 1, joint sqrt(26)
    w1, w2 = nervenet.tensor(np.zeros(2)), nervenet.tensor(np.zeros(2))
    optimizers.SGD(1.0, clipnorm=2.0).apply_gradients([(g1, w1), (g2, w2)])
    np.testing.assert_allclose(w1.data, -g1 * 2.0 / (5.0 + 1e-6))
    np.testing.assert_allclose(w2.data, -g2)                  # norm 1 < 2: untouched
    w1, w2 = nervenet.tensor(np.zeros(2)), nervenet.tensor(np.zeros(2))
    optimizers.SGD(1.0, global_clipnorm=2.0).apply_gradients([(g1, w1), (g2, w2)])
    scale = 2.0 / (math.sqrt(26.0) + 1e-6)
    np.testing.assert_allclose(w1.data, -g1 * scale)
    np.testing.assert_allclose(w2.data, -g2 * scale)


def test_gradients_given_by_the_caller_are_not_modified():
    g = np.array([3.0, 4.0])
    w = nervenet.tensor(np.zeros(2))
    optimizers.Adam(0.1, clipnorm=1.0, weight_decay=0.1).apply_gradients([(g, w)])
    np.testing.assert_array_equal(g, [3.0, 4.0])


def test_tensor_gradients_are_accepted():
    w = nervenet.tensor(np.array([1.0]))
    optimizers.SGD(0.5).apply_gradients([(nervenet.tensor(np.array([2.0])), w)])
    np.testing.assert_allclose(w.data, [0.0])


def test_weights_are_updated_in_place():
    problem = make_problem()
    w, b = _weights(problem)
    buffer = w.data
    _steps(optimizers.Adam(0.01), problem, w, b, 2)
    assert w.data is buffer
    assert not np.allclose(buffer, problem["w"])


# ------------------------------------------------------------------ dtypes


@pytest.mark.parametrize("name", sorted(ALL))
def test_float32_stays_float32_and_follows_float64(name):
    problem = make_problem()
    w32, b32 = _weights(problem, np.float32)
    w64, b64 = _weights(problem)
    opt32, opt64 = ALL[name](), ALL[name]()
    _steps(opt32, problem, w32, b32, 10)
    _steps(opt64, problem, w64, b64, 10)
    assert w32.dtype == np.float32 and b32.dtype == np.float32
    for value in opt32.variables[1:]:
        assert value.dtype in (np.float32, np.int64, np.float64)
        if value.ndim:
            assert value.dtype == np.float32
    np.testing.assert_allclose(w32.data, w64.data, rtol=1e-3, atol=1e-4)


# ------------------------------------------------------------------ state


def test_state_is_lazy_keyed_by_index_and_inspectable():
    problem = make_problem()
    w, b = _weights(problem)
    opt = optimizers.Adam(0.01, amsgrad=True)
    assert len(opt.variables) == 1 and opt.iterations == 0
    _steps(opt, problem, w, b, 3)
    assert opt.iterations == 3
    state = opt.get_state()
    assert sorted(state) == ["0/m", "0/step", "0/v", "0/v_max", "1/m", "1/step", "1/v",
                             "1/v_max", "iterations"]
    assert int(state["iterations"]) == 3 and int(state["0/step"]) == 3
    assert state["0/m"].shape == (4, 3) and state["1/v"].shape == (3,)
    assert len(opt.variables) == 1 + 2 * 4
    assert opt.slots(w)["m"] is opt.variables[2]            # the live array, not a copy


@pytest.mark.parametrize("name", sorted(ALL))
def test_state_round_trip_continues_identically(name):
    problem = make_problem()
    w, b = _weights(problem)
    opt = ALL[name]()
    _steps(opt, problem, w, b, 5)
    # through JSON: every entry is an ndarray, so lists of numbers suffice
    saved = json.dumps({k: v.tolist() for k, v in opt.get_state().items()})
    w2 = nervenet.Tensor(w.data.copy(), requires_grad=True)
    b2 = nervenet.Tensor(b.data.copy(), requires_grad=True)
    restored = ALL[name]()
    restored.set_state({k: np.asarray(v) for k, v in json.loads(saved).items()})
    _steps(opt, problem, w, b, 7)
    _steps(restored, problem, w2, b2, 7)
    np.testing.assert_array_equal(w.data, w2.data)
    np.testing.assert_array_equal(b.data, b2.data)
    assert restored.iterations == opt.iterations == 12


def test_set_state_rejects_mismatched_slots():
    problem = make_problem()
    w, b = _weights(problem)
    opt = optimizers.Adam(0.01)
    _steps(opt, problem, w, b, 1)
    state = opt.get_state()
    other = optimizers.Adam(0.01)
    other.set_state({**state, "0/m": np.zeros((2, 2))})
    with pytest.raises(ValueError, match=r"slot 0/m has shape \(2, 2\)"):
        other.build([w, b])
    fresh = optimizers.Adam(0.01, amsgrad=True)
    fresh.set_state(state)                    # kept until the variables arrive
    with pytest.raises(ValueError, match="needs slots"):
        fresh.build([w])
    amsgrad = optimizers.Adam(0.01, amsgrad=True)
    amsgrad.build([w, b])
    with pytest.raises(ValueError, match="needs slots"):
        amsgrad.set_state(state)
    with pytest.raises(ValueError, match="iterations"):
        other.set_state({"0/m": np.zeros((4, 3))})


def test_none_gradients_are_skipped():
    w, v = nervenet.tensor(np.ones(2)), nervenet.tensor(np.ones(2))
    opt = optimizers.Adam(0.1)
    opt.apply_gradients([(None, w), (np.ones(2), v)])
    np.testing.assert_array_equal(w.data, [1.0, 1.0])
    assert not np.allclose(v.data, 1.0)
    assert int(opt.slots(w)["step"]) == 0 and int(opt.slots(v)["step"]) == 1
    with pytest.raises(ValueError, match="no gradient"):
        opt.apply_gradients([(None, w)])


def test_get_config_round_trip_and_registry():
    opt = optimizers.SGD(schedules.ExponentialDecay(0.1, 10, 0.5), momentum=0.9, nesterov=True,
                         clipnorm=1.0, name="mine")
    config = optimizers.serialize(opt)
    json.dumps(config)
    again = optimizers.get(json.loads(json.dumps(config)))
    assert type(again) is optimizers.SGD
    assert again.get_config() == opt.get_config()
    assert again.learning_rate == pytest.approx(0.1)
    for key, cls in [("sgd", optimizers.SGD), ("Adam", optimizers.Adam),
                     ("rmsprop", optimizers.RMSprop), ("adagrad", optimizers.Adagrad),
                     ("adamw", optimizers.AdamW), ("adamax", optimizers.Adamax),
                     ("nadam", optimizers.Nadam), ("lbfgs", optimizers.LBFGS),
                     ("bfgs", optimizers.BFGS), ("newton", optimizers.Newton),
                     ("conjugate_gradient", optimizers.ConjugateGradient)]:
        assert type(optimizers.get(key)) is cls
        assert type(optimizers.get(optimizers.serialize(optimizers.get(key)))) is cls
    assert optimizers.get(opt) is opt
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamm'; valid optimizer ids are: "
                                         r".*adam, .*sgd"):
        optimizers.get("adamm")
    with pytest.raises(TypeError):
        optimizers.get(3)


def test_keras_defaults():
    assert optimizers.SGD().learning_rate == 0.01
    adam = optimizers.Adam()
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon) == (0.001, 0.9, 0.999,
                                                                             1e-7)
    assert optimizers.AdamW().weight_decay == 0.004
    assert optimizers.Adagrad().initial_accumulator_value == 0.1
    rms = optimizers.RMSprop()
    assert (rms.rho, rms.momentum, rms.centered) == (0.9, 0.0, False)


def test_learning_rate_property_and_setter():
    opt = optimizers.SGD(0.1)
    opt.learning_rate = 0.05                                  # as ReduceLROnPlateau does
    assert opt.learning_rate == 0.05
    with pytest.raises(ValueError, match="learning_rate"):
        opt.learning_rate = -1.0
    scheduled = optimizers.SGD(schedules.PiecewiseConstantDecay([1], [0.1, 0.01]))
    w = nervenet.tensor(np.zeros(1))
    for expected in (0.1, 0.1, 0.01):
        assert scheduled.learning_rate == expected
        scheduled.apply_gradients([(np.ones(1), w)])
    np.testing.assert_allclose(w.data, [-0.21])
    with pytest.raises(TypeError, match="schedule"):
        scheduled.learning_rate = 0.5


# ------------------------------------------------------------------ bad input


CLASSES = [optimizers.SGD, optimizers.Adagrad, optimizers.RMSprop, optimizers.Adam,
           optimizers.AdamW, optimizers.Adamax, optimizers.Nadam]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("value", [-0.1, float("nan"), float("inf")])
def test_bad_learning_rate(cls, value):
    with pytest.raises(ValueError, match=rf"{cls.__name__}: learning_rate .*got {value}"):
        cls(learning_rate=value)


@pytest.mark.parametrize("cls, argument", [
    (optimizers.RMSprop, "rho"), (optimizers.Adam, "beta_1"), (optimizers.Adam, "beta_2"),
    (optimizers.AdamW, "beta_1"), (optimizers.Adamax, "beta_2"), (optimizers.Nadam, "beta_1"),
    (optimizers.SGD, "momentum"), (optimizers.RMSprop, "momentum"),
])
@pytest.mark.parametrize("value", [1.0, 1.5, -0.1, float("nan")])
def test_decay_rates_outside_zero_one(cls, argument, value):
    with pytest.raises(ValueError, match=rf"{argument} must be finite and in \[0.0, 1.0\), "
                                         rf"got {value}"):
        cls(**{argument: value})


def test_other_bad_hyperparameters():
    with pytest.raises(ValueError, match="epsilon"):
        optimizers.Adam(epsilon=0.0)
    with pytest.raises(ValueError, match="weight_decay"):
        optimizers.SGD(weight_decay=-1.0)
    with pytest.raises(ValueError, match="only one of clipnorm"):
        optimizers.SGD(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="clipnorm"):
        optimizers.SGD(clipnorm=0.0)
    with pytest.raises(TypeError, match="learning_rate must be a real number"):
        optimizers.SGD(learning_rate="fast")
    with pytest.raises(ValueError, match="initial_accumulator_value"):
        optimizers.Adagrad(initial_accumulator_value=-0.1)
    with pytest.raises(ValueError, match="no momentum"):
        optimizers.Adagrad(schedules.OneCycle(0.1, 100))


def test_bad_pairs():
    w = nervenet.tensor(np.zeros((2, 3)), name="kernel")
    opt = optimizers.SGD()
    with pytest.raises(ValueError, match=r"variable 0 'kernel' \(shape \(2, 3\)\) has shape "
                                         r"\(3, 2\)"):
        opt.apply_gradients([(np.zeros((3, 2)), w)])
    with pytest.raises(TypeError, match="Tensors"):
        opt.apply_gradients([(np.zeros(3), np.zeros(3))])
    with pytest.raises(TypeError, match="pairs"):
        opt.apply_gradients([np.zeros(3)])
    with pytest.raises(ValueError, match="twice"):
        opt.apply_gradients([(np.zeros((2, 3)), w), (np.zeros((2, 3)), w)])
    with pytest.raises(TypeError, match="floating"):
        opt.apply_gradients([(np.zeros(2), nervenet.Tensor(np.zeros(2, dtype=np.int64)))])


@pytest.mark.parametrize("name", sorted(ALL))
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_gradient_is_refused_and_nothing_changes(name, bad):
    problem = make_problem()
    w, b = _weights(problem)
    opt = ALL[name]()
    _steps(opt, problem, w, b, 2)
    before_w, before_b, before_state = w.data.copy(), b.data.copy(), opt.get_state()
    gw, gb = nervenet_gradients(problem, w, b)
    gb = gb.data.copy()
    gb[1] = bad
    with pytest.raises(FloatingPointError, match=r"gradient of variable 1 'b' \(shape \(3,\)\)"):
        opt.apply_gradients([(gw, w), (gb, b)])
    np.testing.assert_array_equal(w.data, before_w)
    np.testing.assert_array_equal(b.data, before_b)
    after = opt.get_state()
    assert sorted(after) == sorted(before_state)
    for key in after:
        np.testing.assert_array_equal(after[key], before_state[key])


def test_non_finite_update_is_refused_before_any_weight_is_written():
    """A finite gradient whose update overflows (float32) never reaches the weights."""
    w = nervenet.tensor(np.ones(2, dtype=np.float32), name="first")
    v = nervenet.tensor(np.ones(2, dtype=np.float32), name="second")
    opt = optimizers.SGD(learning_rate=1e30)
    with np.errstate(over="ignore"), \
            pytest.raises(FloatingPointError, match="update of variable 1 'second'"):
        opt.apply_gradients([(np.ones(2, dtype=np.float32), w),
                             (np.full(2, 1e10, dtype=np.float32), v)])
    np.testing.assert_array_equal(w.data, [1.0, 1.0])
    np.testing.assert_array_equal(v.data, [1.0, 1.0])
    assert opt.iterations == 0


def test_overflowing_but_finite_gradients_pass_the_fast_check():
    """The dot-product test overflows for |g| ~ 1e20 in float32; the exact test then decides."""
    w = nervenet.tensor(np.zeros(2, dtype=np.float32))
    opt = optimizers.SGD(1e-30)
    with np.errstate(over="ignore"):
        opt.apply_gradients([(np.full(2, 1e20, dtype=np.float32), w)])
    np.testing.assert_allclose(w.data, [-1e-10, -1e-10], rtol=1e-6)


@pytest.mark.parametrize("make", [lambda: optimizers.SGD(0.01),
                                  lambda: optimizers.SGD(0.01, momentum=0.9),
                                  lambda: optimizers.SGD(0.01, momentum=0.9, nesterov=True),
                                  lambda: optimizers.Adam(1e-3)],
                         ids=["sgd", "momentum", "nesterov", "adam"])
def test_a_step_on_a_large_variable_allocates_no_array_of_its_size(make):
    # A variable of DELTA_BUFFER_BYTES or more writes its delta into a buffer kept across
    # steps: a new array of that size each step costs page faults that outweigh the arithmetic.
    side = int(np.sqrt(optimizers.base.DELTA_BUFFER_BYTES / 4)) + 1
    weights = nervenet.Tensor(np.ones((side, side), np.float32), requires_grad=True)
    gradient = np.full((side, side), 0.5, np.float32)
    optimizer = make()
    optimizer.apply_gradients([(gradient, weights)])  # creates the slots and the buffer
    tracemalloc.start()
    try:
        optimizer.apply_gradients([(gradient, weights)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < weights.data.nbytes / 4

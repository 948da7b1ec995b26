"""The overflow bound (``Optimizer.bound_step``, ``bounds.Rounding``): a step it certifies raises
nothing and stays within its bounds, near the largest float32 and float16 too; a step it cannot
certify runs with the slots copied aside, bit for bit the same update."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import nervenet
from nervenet import optimizers
from nervenet.optimizers.base import squared_norm
from nervenet.optimizers.bounds import Rounding

RULES = {
    "sgd": lambda: optimizers.SGD(0.5),
    "momentum": lambda: optimizers.SGD(0.5, momentum=0.9),
    "nesterov": lambda: optimizers.SGD(0.5, momentum=0.9, nesterov=True),
    "adagrad": lambda: optimizers.Adagrad(0.5, epsilon=1e-3),
    "rmsprop": lambda: optimizers.RMSprop(0.5, epsilon=1e-3),
    "rmsprop centered momentum": lambda: optimizers.RMSprop(0.5, momentum=0.5, centered=True,
                                                            epsilon=1e-3),
    "adam": lambda: optimizers.Adam(0.5, epsilon=1e-3),
    "amsgrad": lambda: optimizers.Adam(0.5, epsilon=1e-3, amsgrad=True),
    "adamax": lambda: optimizers.Adamax(0.5, epsilon=1e-3),
    "nadam": lambda: optimizers.Nadam(0.5, epsilon=1e-3),
}
RAISE = {"over": "raise", "invalid": "raise", "divide": "raise"}


def near_overflow(rng, dtype, size, exponent):
    """Random signs, magnitudes ``2**(exponent - x)`` with ``x`` uniform in [0, 1/8 of the
    exponent range of dtype], at most the largest float."""
    top = np.log2(float(np.finfo(dtype).max))
    exponents = np.minimum(exponent - rng.uniform(0, top / 8, size), top)
    return (np.exp2(exponents) * rng.choice([-1.0, 1.0], size)).astype(dtype)


def random_state(rng, make, dtype):
    """A tracked variable of one or three elements, random slots, a gradient and a rate: the
    magnitudes share a random scale, from 1 to the largest float of ``dtype``, so that the
    draws fall on both sides of every rule's overflow boundary."""
    optimizer = make()
    size = int(rng.choice([1, 3]))
    exponent = rng.uniform(0, np.log2(float(np.finfo(dtype).max)) * 1.1)
    var = nervenet.tensor(near_overflow(rng, dtype, size, exponent))
    optimizer.build([var])
    for key, value in optimizer.slots(var).items():
        if key == "step":
            value[...] = rng.integers(0, 5)
        elif key == "mu_product":
            value[...] = rng.uniform(0.0, 0.95)
        else:
            value[...] = near_overflow(rng, dtype, size, exponent)
            if key in optimizer.nonnegative_slots:
                np.abs(value, out=value)
    grad = near_overflow(rng, dtype, size, exponent)
    return optimizer, var, grad, float(np.exp2(rng.uniform(-8, 8)))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("rule", sorted(RULES))
def test_a_certified_rule_raises_nothing_and_stays_within_its_bounds(rule, dtype):
    rng = np.random.default_rng(len(rule))
    certified = 0
    for _ in range(400):
        optimizer, var, grad, lr = random_state(rng, RULES[rule], dtype)
        slots = optimizer.slots(var)
        bounds = {key: float(np.abs(value).max()) for key, value in slots.items()
                  if value.dtype.kind == "f"}
        op = Rounding(np.dtype(dtype))
        largest = float(np.abs(grad.astype(float)).max())
        assert op.root_of_square(squared_norm(grad)) >= largest
        new, delta_bound = optimizer.bound_step(largest, bounds, lr, op)
        if not op.fits:
            continue
        certified += 1
        with np.errstate(**RAISE):
            delta = optimizer.update_step(grad, var, lr)  # raises if the bound missed it
        assert float(np.abs(delta.astype(float)).max()) <= delta_bound
        for key, bound in {**bounds, **new}.items():
            assert float(np.abs(slots[key].astype(float)).max()) <= bound, key
    assert 10 <= certified <= 390  # the draws reach both sides of the boundary


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_w_minus_delta_is_safe_below_half_an_ulp_of_the_largest_float(dtype):
    """``max - delta`` rounds back to ``max`` while ``|delta| < ulp(max) / 2``: a quarter ulp
    is certified, just below half an ulp runs transactionally (the bound's slack) and
    completes; half an ulp overflows and is refused with the weights as they were."""
    largest = np.finfo(dtype).max
    half_ulp = (float(largest) - float(np.nextafter(largest, dtype(0)))) / 2
    assert Rounding(np.dtype(dtype)).half_ulp == half_ulp
    below = float(np.nextafter(dtype(half_ulp), dtype(0)))
    weights = nervenet.tensor(np.array([largest], dtype))
    optimizer = optimizers.SGD(1.0)
    transactional = optimizer._step_transactionally
    optimizer._step_transactionally = lambda *args: pytest.fail("not certified")
    optimizer.apply_gradients([(np.array([-half_ulp / 2], dtype), weights)])
    optimizer._step_transactionally = transactional
    optimizer.apply_gradients([(np.array([-below], dtype), weights)])
    assert weights.data[0] == largest and optimizer.iterations == 2
    with pytest.raises(FloatingPointError, match=r"variable 0 .*w - delta.*step was refused"):
        optimizer.apply_gradients([(np.array([-half_ulp], dtype), weights)])
    assert weights.data[0] == largest and optimizer.iterations == 2


def digest(optimizer, variables) -> str:
    sha = hashlib.sha256()
    for var in variables:
        sha.update(var.data.tobytes())
    for key, value in sorted(optimizer.get_state().items()):
        sha.update(key.encode() + np.asarray(value).tobytes())
    return sha.hexdigest()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("rule", sorted(RULES))
def test_steps_near_the_largest_float_are_all_or_nothing(rule, dtype):
    """Three variables, gradients growing towards the largest float: every step either
    completes with finite weights or is refused with everything as it was."""
    rng = np.random.default_rng(7)
    optimizer = RULES[rule]()
    optimizer.learning_rate = 4.0
    variables = [nervenet.tensor(rng.standard_normal(3).astype(dtype)) for _ in range(3)]
    refused = 0
    top = np.log2(float(np.finfo(dtype).max))
    for exponent in np.linspace(0, top, 80):
        grads = [near_overflow(rng, dtype, 3, exponent) for _ in variables]
        before = digest(optimizer, variables)
        try:
            optimizer.apply_gradients(list(zip(grads, variables)))
        except FloatingPointError as error:
            assert "missed" not in str(error)
            assert digest(optimizer, variables) == before
            refused += 1
        else:
            assert all(np.isfinite(var.data).all() for var in variables)
    assert refused > 0 or rule == "adamax"  # |m| / u stays below 1 / (1 - beta_1): no overflow


def run(make, steps, transactional: bool, seed=0):
    rng = np.random.default_rng(seed)
    optimizer = make()
    if transactional:  # no bound: every step copies its slots aside
        optimizer.bound_step = lambda *args: None
    variables = [nervenet.tensor(rng.standard_normal(s).astype(np.float32))
                 for s in [(4, 3), (3,)]]
    for _ in range(steps):
        optimizer.apply_gradients([(rng.standard_normal(v.shape).astype(np.float32), v)
                                   for v in variables])
    return digest(optimizer, variables)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_the_transactional_step_is_bit_for_bit_the_certified_one(rule):
    assert run(RULES[rule], 5, transactional=True) == run(RULES[rule], 5, transactional=False)


def two_variables(make):
    optimizer = make()
    first = nervenet.tensor(np.full(3, 0.5, np.float32))
    second = nervenet.tensor(np.full(2, 0.5, np.float32))
    optimizer.apply_gradients([(np.full(3, 0.1, np.float32), first),
                               (np.full(2, 0.1, np.float32), second)])
    return optimizer, first, second


@pytest.mark.parametrize("how", ["slots", "variables", "set_state", "update_step"])
def test_slots_written_outside_a_step_are_measured_again(how):
    """The running bounds know only the steps they certified: a slot written through
    ``slots()``, ``variables``, ``set_state`` or a direct ``update_step`` (a captured step)
    is measured again, so a velocity of 3e38 times a rate of 10 is refused, not missed."""
    optimizer, first, second = two_variables(lambda: optimizers.SGD(0.01, momentum=0.9))
    if how == "slots":
        optimizer.slots(second)["velocity"][...] = 3e38
    elif how == "variables":
        optimizer.variables[2][...] = 3e38
    elif how == "set_state":
        optimizer.set_state({**optimizer.get_state(), "1/velocity": np.full(2, 3e38)})
    else:
        optimizer.update_step(np.full(2, 3e38, np.float32), second, 0.0)
    optimizer.learning_rate = 10.0
    before = digest(optimizer, [first, second])
    with pytest.raises(FloatingPointError, match=r"variable 1 .*no weight, slot or iteration"):
        optimizer.apply_gradients([(np.full(3, 0.1, np.float32), first),
                                   (np.full(2, 0.1, np.float32), second)])
    assert digest(optimizer, [first, second]) == before


def test_a_bound_that_misses_an_overflow_says_so():
    """The certificate is trusted: a subclass whose bound_step is wrong gets an error saying
    the earlier slots have advanced, never a silent half step."""
    optimizer, first, second = two_variables(lambda: optimizers.SGD(0.01, momentum=0.9))
    optimizer.bound_step = lambda grad, slots, lr, op: ({}, 0.0)
    optimizer.slots(second)["velocity"][...] = 3e38
    optimizer.learning_rate = 10.0
    weights = first.data.copy(), second.data.copy()
    with pytest.raises(FloatingPointError, match="bound_step.* missed it"):
        optimizer.apply_gradients([(np.full(3, 0.1, np.float32), first),
                                   (np.full(2, 0.1, np.float32), second)])
    np.testing.assert_array_equal(first.data, weights[0])  # no weight written, but
    np.testing.assert_array_equal(second.data, weights[1])
    assert optimizer.slots(first)["velocity"][0] != np.float32(0.1)  # a slot advanced


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_coupled_decay_of_an_infinite_weight_is_refused_before_any_rule():
    """``g + wd * w`` of an infinite weight raises nothing in NumPy; its norm, which the bound
    needs, is NaN: refused there, the earlier variables' moments untouched."""
    optimizer, first, second = two_variables(lambda: optimizers.Adam(0.1, weight_decay=0.1))
    second.data[0] = np.inf
    before = digest(optimizer, [first, second])
    with pytest.raises(FloatingPointError, match="variable 1 .*decayed gradient is NaN"):
        optimizer.apply_gradients([(np.full(3, 0.1, np.float32), first),
                                   (np.full(2, 0.1, np.float32), second)])
    assert digest(optimizer, [first, second]) == before


def test_steps_within_an_envelope_skip_bound_step_until_a_hyperparameter_changes():
    """Slot bounds that a step at twice the gradient and rate provably keeps certify the
    steps within them by comparisons; a changed beta_1 (or rate beyond twice) re-certifies."""
    optimizer, first, second = two_variables(lambda: optimizers.Adam(0.01))
    calls, bound = [], optimizer.bound_step
    optimizer.bound_step = lambda *args: calls.append(args) or bound(*args)

    def step(gradient=0.1):
        optimizer.apply_gradients([(np.full(3, gradient, np.float32), first),
                                   (np.full(2, gradient, np.float32), second)])

    step()
    step(0.19)
    assert calls == []
    optimizer.beta_1 = 0.5
    step()
    assert len(calls) >= 2  # certified, and a new envelope sought
    calls.clear()
    step(0.5)  # beyond twice the gradient of the envelope
    assert calls

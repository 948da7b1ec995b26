"""``Optimizer.apply_own_gradients``, the step a captured training step takes: the same results
as ``apply_gradients``, the same refusal of a gradient that is not finite, and a delta written
over a gradient only where no other gradient shares its memory."""

from __future__ import annotations

import numpy as np
import pytest

import nervenet
from nervenet import optimizers

OPTIMIZERS = [lambda: optimizers.SGD(0.1), lambda: optimizers.SGD(0.1, momentum=0.9),
              lambda: optimizers.SGD(0.1, momentum=0.9, nesterov=True),
              lambda: optimizers.Adam(0.01), lambda: optimizers.RMSprop(0.01)]


def _variables(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return [nervenet.Tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)
            for shape in ((5, 4), (4,), (3, 3))]


def _gradients(step: int, dtype=np.float32):
    rng = np.random.default_rng(100 + step)
    return [rng.standard_normal(shape).astype(dtype) for shape in ((5, 4), (4,), (3, 3))]


def _run(make, own: bool, steps=4, gradients=_gradients):
    optimizer, variables = make(), _variables()
    optimizer.apply_gradients(list(zip(_gradients(-1), variables)))  # tracks them
    for step in range(steps):
        grads = gradients(step)
        if own:
            optimizer.apply_own_gradients(grads, variables)
        else:
            optimizer.apply_gradients(list(zip(grads, variables)))
    return optimizer, variables


@pytest.mark.parametrize("make", OPTIMIZERS)
def test_the_same_steps_as_apply_gradients(make):
    (a, va), (b, vb) = _run(make, own=False), _run(make, own=True)
    assert all(np.array_equal(x.data, y.data) for x, y in zip(va, vb))
    sa, sb = a.get_state(), b.get_state()
    assert sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert a.iterations == b.iterations == 5


def _views(step):
    base = np.arange(12, dtype=np.float32) + step
    return [base[:6], base[6:]]               # two views of one array


def _whole_and_view(step):
    base = np.arange(6, dtype=np.float32) - step
    return [base, base[::-1]]                 # an array, and a view of it


def _one_array_twice(step):
    grad = np.arange(6, dtype=np.float32) * step
    return [grad, grad]


@pytest.mark.parametrize("gradients", [_views, _whole_and_view, _one_array_twice])
def test_gradients_sharing_memory_are_left_intact(gradients):
    """A delta written over a gradient that shares its memory with another would corrupt the
    other's update: those are read, never written."""
    results = []
    for own in (False, True):
        optimizer = optimizers.SGD(0.1)
        pair = [nervenet.Tensor(np.full(6, value, np.float32), requires_grad=True)
                for value in (1.0, 2.0)]
        optimizer.build(pair)
        for step in range(3):
            grads = gradients(step)
            given = [g.copy() for g in grads]
            if own:
                optimizer.apply_own_gradients(grads, pair)
            else:
                optimizer.apply_gradients(list(zip(grads, pair)))
            assert all(map(np.array_equal, grads, given))
        results.append([v.data for v in pair])
    assert all(map(np.array_equal, *results))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_gradient_that_is_not_finite_is_refused_and_changes_nothing(bad):
    optimizer, variables = _run(lambda: optimizers.Adam(0.01), own=True, steps=1)
    before = [v.data.copy() for v in variables]
    state = optimizer.get_state()
    grads = _gradients(7)
    grads[2][1, 1] = bad
    with pytest.raises(FloatingPointError, match="variable 2.*refused"):
        optimizer.apply_own_gradients(grads, variables)
    assert all(np.array_equal(b, v.data) for b, v in zip(before, variables))
    assert all(np.array_equal(state[k], v) for k, v in optimizer.get_state().items())
    assert optimizer.iterations == 2


def test_a_gradient_of_another_dtype_is_cast_as_apply_gradients_does():
    (_, va), (_, vb) = (_run(lambda: optimizers.SGD(0.1), own, gradients=lambda step: [
        g.astype(np.float64) for g in _gradients(step)]) for own in (False, True))
    assert all(v.data.dtype == np.float32 for v in vb)
    assert all(np.array_equal(x.data, y.data) for x, y in zip(va, vb))


def test_plain_sgd_writes_its_delta_over_an_own_gradient():
    """The point of the path: no new array per variable (the gradient holds lr * g after)."""
    optimizer, variables = _run(lambda: optimizers.SGD(0.5), own=True, steps=0)
    grads = _gradients(3)
    given = [g.copy() for g in grads]
    optimizer.apply_own_gradients(grads, variables)
    assert all(np.array_equal(g, np.float32(0.5) * h) for g, h in zip(grads, given))

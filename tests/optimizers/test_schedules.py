"""Learning-rate schedules against their closed forms, and OneCycle against torch's
OneCycleLR."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from nervenet.optimizers import schedules

STEPS = range(0, 120, 7)


def test_exponential_decay():
    s = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.96)
    for t in STEPS:
        assert s(t) == pytest.approx(0.1 * 0.96 ** (t / 10), rel=1e-14)
    stairs = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    assert [stairs(t) for t in (0, 9, 10, 19, 20)] == [0.1, 0.1, 0.05, 0.05, 0.025]


def test_inverse_time_decay_is_power_scheduling():
    s = schedules.InverseTimeDecay(0.1, decay_steps=5, decay_rate=0.5)
    for t in STEPS:
        assert s(t) == pytest.approx(0.1 / (1 + 0.5 * t / 5), rel=1e-14)
    power = schedules.InverseTimeDecay(0.01, decay_steps=20, decay_rate=1.0, power=2.0)
    for t in STEPS:
        assert power(t) == pytest.approx(0.01 / (1 + t / 20) ** 2, rel=1e-14)
    stairs = schedules.InverseTimeDecay(1.0, decay_steps=10, decay_rate=1.0, staircase=True)
    assert [stairs(t) for t in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 1.0 / 3.0]


def test_piecewise_constant_decay_boundaries_are_inclusive_as_keras():
    s = schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    assert [s(t) for t in (0, 10, 11, 20, 21, 1000)] == [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]


def test_cosine_decay_and_warmup():
    s = schedules.CosineDecay(0.2, decay_steps=50, alpha=0.1)
    for t in STEPS:
        cosine = 0.5 * (1 + math.cos(math.pi * min(t, 50) / 50))
        assert s(t) == pytest.approx(0.2 * (0.9 * cosine + 0.1), rel=1e-14)
    assert s(50) == pytest.approx(0.02) and s(500) == pytest.approx(0.02)
    warm = schedules.CosineDecay(0.0, decay_steps=40, warmup_target=0.4, warmup_steps=10)
    assert [warm(t) for t in (0, 5)] == [0.0, 0.2]
    assert warm(10) == pytest.approx(0.4)
    assert warm(30) == pytest.approx(0.4 * 0.5 * (1 + math.cos(math.pi * 20 / 40)))
    assert warm(50) == pytest.approx(0.0, abs=1e-17)


def test_one_cycle_shape():
    s = schedules.OneCycle(1.0, total_steps=100, pct_start=0.45, div_factor=10.0,
                           final_div_factor=100.0)
    rates = np.array([s(t) for t in range(100)])
    momenta = np.array([s.momentum(t) for t in range(100)])
    assert rates[0] == pytest.approx(0.1) and rates.argmax() == 44 and rates.max() == 1.0
    assert np.all(np.diff(rates[:45]) > 0) and np.all(np.diff(rates[44:]) < 0)
    assert rates[88] == pytest.approx(0.1) and rates[99] == pytest.approx(0.001)
    assert momenta[0] == 0.95 and momenta[44] == pytest.approx(0.85) and momenta[99] == 0.95
    # linear in each phase
    np.testing.assert_allclose(np.diff(rates[:45]), 0.9 / 44)
    assert s(150) == s(99)                                  # the final rate is held


@pytest.mark.parametrize("three_phase, anneal, pct", [
    (True, "linear", 0.45), (True, "cos", 0.3), (False, "cos", 0.3), (False, "linear", 0.25),
])
def test_one_cycle_matches_torch(three_phase, anneal, pct):
    torch = pytest.importorskip("torch")
    total = 57
    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([param], lr=0.1, momentum=0.9)
    reference = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=0.3, total_steps=total, pct_start=pct, anneal_strategy=anneal,
        three_phase=three_phase, div_factor=20.0, final_div_factor=50.0,
        base_momentum=0.8, max_momentum=0.9)
    ours = schedules.OneCycle(0.3, total_steps=total, pct_start=pct, anneal_strategy=anneal,
                              three_phase=three_phase, div_factor=20.0, final_div_factor=50.0,
                              base_momentum=0.8, max_momentum=0.9)
    for t in range(total):
        group = optimizer.param_groups[0]
        assert ours(t) == pytest.approx(group["lr"], rel=1e-12, abs=1e-15), t
        assert ours.momentum(t) == pytest.approx(group["momentum"], rel=1e-12), t
        optimizer.step()
        reference.step()


@pytest.mark.parametrize("schedule", [
    schedules.ExponentialDecay(0.1, 10, 0.9, staircase=True),
    schedules.InverseTimeDecay(0.1, 10, 0.5, power=1.5),
    schedules.PiecewiseConstantDecay([3, 9], [0.3, 0.2, 0.1]),
    schedules.CosineDecay(0.1, 30, alpha=0.05, warmup_target=0.2, warmup_steps=4),
    schedules.OneCycle(0.2, 60, anneal_strategy="cos", three_phase=False),
], ids=lambda s: type(s).__name__)
def test_serialize_round_trip(schedule):
    config = json.loads(json.dumps(schedules.serialize(schedule)))
    again = schedules.deserialize(config)
    assert type(again) is type(schedule)
    assert [again(t) for t in range(0, 70, 3)] == [schedule(t) for t in range(0, 70, 3)]


def test_bad_schedules():
    with pytest.raises(ValueError, match="initial_learning_rate"):
        schedules.ExponentialDecay(-0.1, 10, 0.5)
    with pytest.raises(ValueError, match="decay_steps"):
        schedules.ExponentialDecay(0.1, 0, 0.5)
    with pytest.raises(ValueError, match="initial_learning_rate"):
        schedules.InverseTimeDecay(float("nan"), 10, 0.5)
    with pytest.raises(ValueError, match="one more entry"):
        schedules.PiecewiseConstantDecay([10], [0.1])
    with pytest.raises(ValueError, match="increasing"):
        schedules.PiecewiseConstantDecay([10, 5], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="alpha"):
        schedules.CosineDecay(0.1, 10, alpha=2.0)
    with pytest.raises(ValueError, match="pct_start"):
        schedules.OneCycle(0.1, 100, pct_start=0.6)
    with pytest.raises(ValueError, match="base_momentum"):
        schedules.OneCycle(0.1, 100, base_momentum=0.99)
    with pytest.raises(ValueError, match="anneal_strategy"):
        schedules.OneCycle(0.1, 100, anneal_strategy="exp")
    with pytest.raises(ValueError, match="unknown schedule"):
        schedules.deserialize({"class_name": "Nope", "config": {}})
    with pytest.raises(TypeError):
        schedules.serialize(lambda step: 0.1)


def test_custom_callable_schedule_is_checked_at_each_step():
    import nervenet
    from nervenet import optimizers

    opt = optimizers.SGD(lambda step: 0.1 if step < 1 else float("nan"))
    w = nervenet.tensor(np.zeros(1))
    opt.apply_gradients([(np.ones(1), w)])
    with pytest.raises(ValueError, match="gave nan at step 1"):
        opt.apply_gradients([(np.ones(1), w)])
    np.testing.assert_allclose(w.data, [-0.1])

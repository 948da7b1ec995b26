"""25-step trajectories of every first-order optimizer equal torch.optim's (float64, 1e-9).

Keras and torch defaults differ (epsilons, Adagrad's initial accumulator, AdamW's decay), so
every case sets the hyperparameters explicitly on both sides. torch has no per-optimizer
clipping: we emulate ours with torch.nn.utils.clip_grad_norm_ / clip_grad_value_ before each
step (per parameter for ``clipnorm``, over all parameters for ``global_clipnorm``).
"""

from __future__ import annotations

import numpy as np
import pytest

import nervenet
from nervenet import optimizers
from nervenet.optimizers import schedules
from tests.optimizers.problems import make_problem, nervenet_gradients, torch_loss

STEPS = 25

# (id, our optimizer, torch optimizer class name and kwargs, clipping on the torch side)
CASES = [
    ("sgd", lambda: optimizers.SGD(0.1), ("SGD", {"lr": 0.1}), None),
    ("sgd-momentum", lambda: optimizers.SGD(0.05, momentum=0.9),
     ("SGD", {"lr": 0.05, "momentum": 0.9}), None),
    ("sgd-nesterov-decay", lambda: optimizers.SGD(0.05, 0.9, nesterov=True, weight_decay=0.01),
     ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}), None),
    ("sgd-clipnorm", lambda: optimizers.SGD(0.1, momentum=0.5, clipnorm=0.5),
     ("SGD", {"lr": 0.1, "momentum": 0.5}), ("norm", 0.5)),
    ("sgd-global-clipnorm", lambda: optimizers.SGD(0.1, global_clipnorm=0.7),
     ("SGD", {"lr": 0.1}), ("global_norm", 0.7)),
    ("sgd-clipvalue", lambda: optimizers.SGD(0.1, momentum=0.9, clipvalue=0.05),
     ("SGD", {"lr": 0.1, "momentum": 0.9}), ("value", 0.05)),
    ("adagrad", lambda: optimizers.Adagrad(0.1, initial_accumulator_value=0.1, epsilon=1e-10),
     ("Adagrad", {"lr": 0.1, "initial_accumulator_value": 0.1, "eps": 1e-10}), None),
    ("adagrad-zero-start-decay",
     lambda: optimizers.Adagrad(0.1, initial_accumulator_value=0.0, epsilon=1e-8,
                                weight_decay=0.05),
     ("Adagrad", {"lr": 0.1, "eps": 1e-8, "weight_decay": 0.05}), None),
    ("rmsprop", lambda: optimizers.RMSprop(0.01, rho=0.9, epsilon=1e-8),
     ("RMSprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-8}), None),
    ("rmsprop-centered-momentum-decay",
     lambda: optimizers.RMSprop(0.01, rho=0.8, momentum=0.5, epsilon=1e-6, centered=True,
                                weight_decay=0.02),
     ("RMSprop", {"lr": 0.01, "alpha": 0.8, "momentum": 0.5, "eps": 1e-6, "centered": True,
                  "weight_decay": 0.02}), None),
    ("rmsprop-clipnorm", lambda: optimizers.RMSprop(0.01, epsilon=1e-8, clipnorm=0.3),
     ("RMSprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-8}), ("norm", 0.3)),
    ("adam", lambda: optimizers.Adam(0.05, epsilon=1e-8),
     ("Adam", {"lr": 0.05, "eps": 1e-8}), None),
    ("adam-amsgrad-decay",
     lambda: optimizers.Adam(0.05, beta_1=0.8, beta_2=0.99, epsilon=1e-7, amsgrad=True,
                             weight_decay=0.1),
     ("Adam", {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-7, "amsgrad": True,
               "weight_decay": 0.1}), None),
    ("adam-global-clipnorm", lambda: optimizers.Adam(0.05, epsilon=1e-8, global_clipnorm=1.0),
     ("Adam", {"lr": 0.05, "eps": 1e-8}), ("global_norm", 1.0)),
    ("adamw", lambda: optimizers.AdamW(0.05, weight_decay=0.1, epsilon=1e-8),
     ("AdamW", {"lr": 0.05, "weight_decay": 0.1, "eps": 1e-8}), None),
    ("adamw-amsgrad-clipvalue",
     lambda: optimizers.AdamW(0.05, weight_decay=0.3, amsgrad=True, clipvalue=0.2),
     ("AdamW", {"lr": 0.05, "weight_decay": 0.3, "eps": 1e-7, "amsgrad": True}),
     ("value", 0.2)),
    # a large epsilon makes its placement (inside or outside the root, bias-corrected or not)
    # visible far above the tolerance
    ("large-epsilon-adagrad", lambda: optimizers.Adagrad(0.1, epsilon=0.1),
     ("Adagrad", {"lr": 0.1, "initial_accumulator_value": 0.1, "eps": 0.1}), None),
    ("large-epsilon-rmsprop", lambda: optimizers.RMSprop(0.01, epsilon=0.1, centered=True),
     ("RMSprop", {"lr": 0.01, "alpha": 0.9, "eps": 0.1, "centered": True}), None),
    ("large-epsilon-adam", lambda: optimizers.Adam(0.05, epsilon=0.1),
     ("Adam", {"lr": 0.05, "eps": 0.1}), None),
    ("large-epsilon-adamax", lambda: optimizers.Adamax(0.05, epsilon=0.1),
     ("Adamax", {"lr": 0.05, "eps": 0.1}), None),
    ("large-epsilon-nadam", lambda: optimizers.Nadam(0.05, epsilon=0.1),
     ("NAdam", {"lr": 0.05, "eps": 0.1}), None),
    ("adamax", lambda: optimizers.Adamax(0.05, epsilon=1e-8),
     ("Adamax", {"lr": 0.05, "eps": 1e-8}), None),
    ("adamax-decay", lambda: optimizers.Adamax(0.02, beta_1=0.7, beta_2=0.9, weight_decay=0.1),
     ("Adamax", {"lr": 0.02, "betas": (0.7, 0.9), "eps": 1e-7, "weight_decay": 0.1}), None),
    ("nadam", lambda: optimizers.Nadam(0.05, epsilon=1e-8),
     ("NAdam", {"lr": 0.05, "eps": 1e-8}), None),
    ("nadam-decay-clipnorm",
     lambda: optimizers.Nadam(0.05, beta_1=0.8, momentum_decay=0.01, weight_decay=0.05,
                              clipnorm=1.0),
     ("NAdam", {"lr": 0.05, "betas": (0.8, 0.999), "eps": 1e-7, "momentum_decay": 0.01,
                "weight_decay": 0.05}), ("norm", 1.0)),
]


def _clip_torch(torch, params, clip):
    if clip is None:
        return
    kind, value = clip
    if kind == "value":
        torch.nn.utils.clip_grad_value_(params, value)
    elif kind == "norm":
        for p in params:
            torch.nn.utils.clip_grad_norm_([p], value)
    else:
        torch.nn.utils.clip_grad_norm_(params, value)


def _run_torch(torch, problem, make_optimizer, clip=None, make_scheduler=None, steps=STEPS):
    w = torch.tensor(problem["w"], requires_grad=True)
    b = torch.tensor(problem["b"], requires_grad=True)
    optimizer = make_optimizer([w, b])
    scheduler = make_scheduler(optimizer) if make_scheduler else None
    path = []
    for _ in range(steps):
        optimizer.zero_grad()
        torch_loss(torch, problem, w, b).backward()
        _clip_torch(torch, [w, b], clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        path.append((w.detach().numpy().copy(), b.detach().numpy().copy()))
    return path


def _run_nervenet(problem, optimizer, steps=STEPS):
    w = nervenet.Tensor(problem["w"].copy(), requires_grad=True)
    b = nervenet.Tensor(problem["b"].copy(), requires_grad=True)
    path = []
    for _ in range(steps):
        gw, gb = nervenet_gradients(problem, w, b)
        optimizer.apply_gradients([(gw, w), (gb, b)])
        path.append((w.data.copy(), b.data.copy()))
    return path


def _assert_same_path(ours, theirs):
    assert len(ours) == len(theirs)
    for step, ((w, b), (tw, tb)) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(w, tw, rtol=1e-9, atol=1e-9, err_msg=f"w at step {step}")
        np.testing.assert_allclose(b, tb, rtol=1e-9, atol=1e-9, err_msg=f"b at step {step}")


@pytest.mark.parametrize("make_ours, torch_spec, clip",
                         [pytest.param(*case[1:], id=case[0]) for case in CASES])
def test_trajectory_matches_torch(torch64, make_ours, torch_spec, clip):
    torch = torch64
    problem = make_problem()
    name, kwargs = torch_spec
    theirs = _run_torch(torch, problem, lambda p: getattr(torch.optim, name)(p, **kwargs), clip)
    ours = _run_nervenet(problem, make_ours())
    _assert_same_path(ours, theirs)
    # the path really moves, so the comparison is not vacuous
    assert np.abs(ours[-1][0] - problem["w"]).max() > 1e-3


def test_clipping_changes_the_path(torch64):
    """The clipping cases are only meaningful if clipping is active on this problem."""
    problem = make_problem()
    clipped = _run_nervenet(problem, optimizers.SGD(0.1, clipnorm=0.5))
    free = _run_nervenet(problem, optimizers.SGD(0.1))
    assert np.abs(clipped[0][0] - free[0][0]).max() > 1e-3


def test_exponential_decay_matches_exponential_lr(torch64):
    torch = torch64
    problem = make_problem(1)
    theirs = _run_torch(torch, problem,
                        lambda p: torch.optim.SGD(p, lr=0.2, momentum=0.9),
                        make_scheduler=lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9))
    schedule = schedules.ExponentialDecay(0.2, decay_steps=1, decay_rate=0.9)
    ours = _run_nervenet(problem, optimizers.SGD(schedule, momentum=0.9))
    _assert_same_path(ours, theirs)


def test_staircase_decay_matches_step_lr(torch64):
    torch = torch64
    problem = make_problem(2)
    theirs = _run_torch(torch, problem, lambda p: torch.optim.Adam(p, lr=0.05, eps=1e-8),
                        make_scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, 7, 0.5))
    schedule = schedules.ExponentialDecay(0.05, decay_steps=7, decay_rate=0.5, staircase=True)
    ours = _run_nervenet(problem, optimizers.Adam(schedule, epsilon=1e-8))
    _assert_same_path(ours, theirs)


def test_cosine_decay_matches_cosine_annealing(torch64):
    torch = torch64
    problem = make_problem(3)
    theirs = _run_torch(
        torch, problem, lambda p: torch.optim.SGD(p, lr=0.3),
        make_scheduler=lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 20, 0.03))
    schedule = schedules.CosineDecay(0.3, decay_steps=20, alpha=0.1)
    ours = _run_nervenet(problem, optimizers.SGD(schedule), steps=20)
    _assert_same_path(ours, theirs[:20])


def test_piecewise_constant_matches_multistep_lr(torch64):
    torch = torch64
    problem = make_problem(4)
    # Keras's boundary b keeps the old value up to step b inclusive: torch's milestone b + 1.
    theirs = _run_torch(
        torch, problem, lambda p: torch.optim.SGD(p, lr=0.2, momentum=0.5),
        make_scheduler=lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [6, 16], 0.1))
    schedule = schedules.PiecewiseConstantDecay([5, 15], [0.2, 0.02, 0.002])
    ours = _run_nervenet(problem, optimizers.SGD(schedule, momentum=0.5))
    _assert_same_path(ours, theirs)


@pytest.mark.parametrize("three_phase, anneal", [(True, "linear"), (False, "cos")])
@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_one_cycle_with_momentum_cycling_matches_torch(torch64, name, three_phase, anneal):
    """OneCycle drives SGD's momentum / Adam's beta_1 as torch's OneCycleLR does."""
    torch = torch64
    problem = make_problem(5)
    if name == "SGD":
        make_torch = lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)
        ours = optimizers.SGD
        kwargs = {"momentum": 0.9, "nesterov": True}
    else:
        make_torch = lambda p: torch.optim.Adam(p, lr=0.1, eps=1e-8)
        ours = optimizers.Adam
        kwargs = {"epsilon": 1e-8}
    theirs = _run_torch(
        torch, problem, make_torch,
        make_scheduler=lambda o: torch.optim.lr_scheduler.OneCycleLR(
            o, max_lr=0.1, total_steps=STEPS, pct_start=0.3, anneal_strategy=anneal,
            three_phase=three_phase))
    schedule = schedules.OneCycle(0.1, total_steps=STEPS, pct_start=0.3, anneal_strategy=anneal,
                                  three_phase=three_phase)
    _assert_same_path(_run_nervenet(problem, ours(schedule, **kwargs)), theirs)

"""The cost of one optimizer step per million parameters: nervenet vs torch.optim (CPU).

Only the update is timed: no forward, no backward. The gradients are fixed random float32
arrays (the same seed for every system), given once: ``opt.apply_gradients(pairs)`` with a
list of ``(gradient ndarray, Tensor)`` pairs built once for nervenet, ``p.grad`` set once and
``opt.step()`` for torch. Two parameter sets:

    mlp    the MNIST MLP's 784-300-100-10 weights and biases (6 tensors, 266,610 parameters):
           small enough that the per-call overhead counts
    4x1M   4 tensors of 1000 x 1000 (4,000,000 parameters): weights, gradients and Adam's two
           moments (64 MB) overflow the caches, so the cost per parameter dominates

Rules: Adam (learning rate 1e-3, betas 0.9 / 0.999, epsilon 1e-7 for both libraries: nervenet's
default; torch's is 1e-8), SGD (learning rate 0.01) and SGD with momentum 0.9.

Systems, each measured in a fresh process with the same environment and thread count:

    nervenet    nervenet.optimizers.Adam / SGD, ``apply_gradients``
    torch       torch.optim with ``foreach=True`` (one multi-tensor kernel per operation over
                all parameters); the reference of the "vs torch" column
    torch-loop  torch.optim with ``foreach=False``: one kernel per operation and tensor (what
                torch picks by itself for CPU tensors)
    torch-fused torch.optim with ``fused=True`` (one pass over memory per tensor; not run
                unless asked for with ``--systems``)

Each process times every (parameter set, rule) case: a few warm-up steps (the first creates the
optimizer state), then every step alone; a case's figure is the median over its steps, and the
table shows the median over rounds and, for the ratio to torch, the median over rounds of the
ratio within each round (the systems of one round ran back to back). Rounds in which other
processes took more than ``--max-foreign`` of the CPUs are thrown away and run again.

Correctness, in each worker after its timing: from the initial weights, ``CHECK_STEPS`` steps
with a fresh random gradient each (so that a wrong bias correction would show), compared with
torch.optim's ``foreach=False`` rule run on the same gradients in the same process; the table
shows the largest ``max|w - w_torch| / max|w_torch|`` over the tensors, and the worker fails
when it exceeds ``TOLERANCE``.

    python bench/optimizers.py                     # 2 threads, wall clock, 3 rounds (~1 min)
    python bench/optimizers.py --rounds 1          # smoke run
    python bench/optimizers.py --threads 1 --clock cpu --rules adam
    python bench/optimizers.py --systems nervenet torch torch-loop torch-fused
    python bench/optimizers.py --baseline DIR      # add nervenet imported from another checkout
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import _common
import numpy as np

PARAMETER_SETS = {
    "mlp": None,  # _common.mlp_init(): the shapes of the 784-300-100-10 MLP
    "4x1M": [(1000, 1000)] * 4,
}
RULES = {  # name -> (nervenet class and arguments, torch.optim class and the same arguments)
    "adam": (("Adam", {"learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}),
             ("Adam", {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-7})),
    "sgd": (("SGD", {"learning_rate": 0.01}), ("SGD", {"lr": 0.01})),
    "momentum": (("SGD", {"learning_rate": 0.01, "momentum": 0.9}),
                 ("SGD", {"lr": 0.01, "momentum": 0.9})),
}
TORCH_VARIANTS = {"torch": {"foreach": True}, "torch-loop": {"foreach": False},
                  "torch-fused": {"fused": True}}
# Timed steps per case: about 10^8 parameter updates, so each case takes a second at most.
TIMED_UPDATES = 100_000_000
WARMUP_STEPS = 3
CHECK_STEPS = 10
TOLERANCE = 1e-5
GRADIENT_SCALE = 0.01


def _initial_weights(parameter_set: str) -> list[np.ndarray]:
    if PARAMETER_SETS[parameter_set] is None:
        return _common.mlp_init()
    rng = np.random.default_rng(0)
    return [rng.uniform(-0.05, 0.05, size=shape).astype(np.float32)
            for shape in PARAMETER_SETS[parameter_set]]


def _gradients(weights: list[np.ndarray], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [GRADIENT_SCALE * rng.standard_normal(w.shape, dtype=np.float32) for w in weights]


def _nervenet_stepper(rule: str, weights: list[np.ndarray]):
    """(a function that applies one step of ``gradients``, the weights as arrays)."""
    import nervenet
    import nervenet.optimizers

    (class_name, arguments), _ = RULES[rule]
    optimizer = getattr(nervenet.optimizers, class_name)(**arguments)
    variables = [nervenet.Tensor(w.copy()) for w in weights]
    given = {"gradients": None, "pairs": None}

    def step(gradients):
        if given["gradients"] is not gradients:  # build the pairs once per gradient list
            given.update(gradients=gradients, pairs=list(zip(gradients, variables)))
        optimizer.apply_gradients(given["pairs"])

    return step, [v.data for v in variables]


def _torch_stepper(rule: str, weights: list[np.ndarray], variant: dict):
    """(a function that applies one step of ``gradients``, the weights as arrays)."""
    import torch

    _, (class_name, arguments) = RULES[rule]
    params = [torch.tensor(w, requires_grad=True) for w in weights]
    optimizer = getattr(torch.optim, class_name)(params, **arguments, **variant)
    given = {"gradients": None}

    def step(gradients):
        if given["gradients"] is not gradients:  # set p.grad once per gradient list
            for p, g in zip(params, gradients):
                p.grad = torch.from_numpy(g)
            given["gradients"] = gradients
        optimizer.step()

    return step, [p.detach().numpy() for p in params]


def _time_steps(step, gradients, n_steps: int, clock) -> float:
    """The median time of one step, in microseconds."""
    for _ in range(WARMUP_STEPS):
        step(gradients)
    times = []
    for _ in range(n_steps):
        start = clock()
        step(gradients)
        times.append(clock() - start)
    return _common.median(times) * 1e6


def _max_relative_difference(make_stepper, rule: str, weights: list[np.ndarray]) -> float:
    """Run CHECK_STEPS steps of this system and of torch.optim's for-loop rule from the same
    weights on the same gradients; the largest max|w - w_torch| / max|w_torch| over tensors."""
    step, result = make_stepper(rule, weights)
    reference_step, reference = _torch_stepper(rule, weights, {"foreach": False})
    for k in range(CHECK_STEPS):
        gradients = _gradients(weights, seed=100 + k)
        step(gradients)
        reference_step(gradients)
    return max(float(np.max(np.abs(w - r)) / np.max(np.abs(r)))
               for w, r in zip(result, reference))


def worker(system: str, parameter_sets: list[str], rules: list[str], clock) -> dict:
    if system == "nervenet":
        make_stepper = _nervenet_stepper
    else:
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        variant = TORCH_VARIANTS[system]

        def make_stepper(rule, weights):
            return _torch_stepper(rule, weights, variant)

    cases = {}
    snapshot = _common.cpu_snapshot()
    for parameter_set in parameter_sets:
        weights = _initial_weights(parameter_set)
        gradients = _gradients(weights, seed=1)
        n_parameters = sum(w.size for w in weights)
        for rule in rules:
            step, _ = make_stepper(rule, weights)
            n_steps = max(20, TIMED_UPDATES // n_parameters)
            cases[f"{parameter_set} {rule}"] = {
                "us_per_step": _time_steps(step, gradients, n_steps, clock),
                "parameters": n_parameters, "tensors": len(weights), "steps": n_steps}
    foreign = _common.foreign_share(snapshot, _common.cpu_snapshot())
    # After the timing: a second library in this process can no longer disturb it.
    for parameter_set in parameter_sets:
        weights = _initial_weights(parameter_set)
        for rule in rules:
            difference = _max_relative_difference(make_stepper, rule, weights)
            if not difference <= TOLERANCE:
                raise AssertionError(f"{system} {rule} on {parameter_set}: after {CHECK_STEPS} "
                                     f"steps the weights differ from torch.optim's by "
                                     f"{difference:.2e} (relative), over {TOLERANCE:.0e}")
            cases[f"{parameter_set} {rule}"]["max_relative_difference"] = difference
    return {"cases": cases, "foreign": foreign, "blas": _common.blas_description()}


SYSTEMS = ["nervenet", *TORCH_VARIANTS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--systems", nargs="+", default=["nervenet", "torch", "torch-loop"],
                        choices=SYSTEMS)
    parser.add_argument("--params", nargs="+", default=list(PARAMETER_SETS),
                        choices=list(PARAMETER_SETS), help="parameter sets (default: all)")
    parser.add_argument("--rules", nargs="+", default=list(RULES), choices=list(RULES),
                        help="update rules (default: all)")
    _common.add_run_arguments(
        parser, "wall: wall-clock time per step (default); cpu: CPU time of the process per "
                "step, which other processes barely disturb (meaningful with --threads 1: torch "
                "spreads large tensors over its threads, NumPy's elementwise operations use one)")
    parser.add_argument("--baseline", metavar="DIR",
                        help="also run nervenet imported from another checkout DIR (as the "
                             "system 'baseline'), e.g. an older commit")
    parser.add_argument("--worker", choices=SYSTEMS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        clock = time.perf_counter if args.clock == "wall" else time.process_time
        print(json.dumps(worker(args.worker, args.params, args.rules, clock)))
        return
    _common.resolve_max_foreign(args)

    systems = args.systems + (["baseline"] if args.baseline else [])

    def run(system):
        worker_system = "nervenet" if system == "baseline" else system
        root = Path(args.baseline).resolve() if system == "baseline" else _common.ROOT
        return _common.run_worker(
            "optimizers.py", [worker_system, "--params", *args.params, "--rules", *args.rules,
                              "--clock", args.clock],
            args.threads, args.keep_openblas_pins, root)

    results, discarded = _common.measure_interleaved(systems, run, args.rounds,
                                                     args.max_foreign)
    if args.raw:
        with open(args.raw, "w") as out:
            json.dump(results, out, indent=1)
    foreign = max(r["foreign"] for rounds in results.values() for r in rounds)
    print("# Optimizer step alone (no forward/backward), float32, fixed random gradients")
    unit = "us" if args.clock == "wall" else "CPU-us"
    print(f"{_common.today()}; {_common.machine_description()}; {args.threads} thread(s); "
          f"{unit}; median of {args.rounds} interleaved rounds, each system in a fresh process "
          f"(each the median over its steps)")
    print(f"Other processes used at most {foreign:.0%} of the CPUs during a kept measurement; "
          f"{discarded} round(s) over {args.max_foreign:.0%} were discarded and rerun.")
    print("torch = torch.optim with foreach=True; torch-loop = foreach=False (torch's own "
          "default for CPU tensors); torch-fused = fused=True. Adam: lr 1e-3, epsilon 1e-7 for "
          "both; SGD: lr 0.01; momentum: SGD with momentum 0.9.")
    print("max rel. diff: max|w - w_torch| / max|w_torch| after "
          f"{CHECK_STEPS} steps vs torch.optim foreach=False (worst tensor).")
    if args.baseline:
        print(f"baseline: nervenet imported from {Path(args.baseline).resolve()}")
    print()
    print(f"| parameters | rule | system | {unit}/step | min-max over rounds | "
          f"{unit} per 1M parameters | vs torch | max rel. diff |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for parameter_set in args.params:
        for rule in args.rules:
            case = f"{parameter_set} {rule}"
            times = {s: [r["cases"][case]["us_per_step"] for r in results[s]] for s in systems}
            first = results[systems[0]][0]["cases"][case]
            label = f"{parameter_set} ({first['tensors']} tensors, {first['parameters']:,})"
            for system in systems:
                per_step = _common.median(times[system])
                per_million = per_step / (first["parameters"] / 1e6)
                versus = (f"{_common.median_ratio(times[system], times['torch']):.2f}x"
                          if "torch" in times else "-")
                difference = max(r["cases"][case]["max_relative_difference"]
                                 for r in results[system])
                print(f"| {label} | {rule} | {system} | {per_step:,.0f} | "
                      f"{min(times[system]):,.0f}-{max(times[system]):,.0f} | "
                      f"{per_million:,.0f} | {versus} | {difference:.1e} |")


if __name__ == "__main__":
    main()

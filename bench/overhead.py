"""Per-op overhead of the autograd engine: a chain of 100 tiny adds, forward + backward.

The arrays are 1x1, so the arithmetic is free and what is measured is the price of recording
an op in the graph (forward) and of visiting it in ``backward()``. Each system runs in a fresh
process; rounds are interleaved and the table shows medians.

    python bench/overhead.py            # table (about 20 s)
    python bench/overhead.py --rounds 5

Shows microseconds per op: forward (record), backward (per op, including the one-off cost of
the ``backward()`` call spread over the 100 ops) and total.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import _common

CHAIN = 100
REPEATS = 400


def _measure(build, run_backward) -> dict:
    """Median time of building a chain of CHAIN adds and of backpropagating through it."""
    forward_times, backward_times = [], []
    snapshot = None
    for repeat in range(REPEATS + 50):
        if repeat == 50:
            snapshot = _common.cpu_snapshot()
        start = time.perf_counter()
        y = build()
        middle = time.perf_counter()
        run_backward(y)
        end = time.perf_counter()
        if repeat >= 50:  # warm-up
            forward_times.append(middle - start)
            backward_times.append(end - middle)
    foreign = _common.foreign_share(snapshot, _common.cpu_snapshot())
    forward = _common.median(forward_times) / CHAIN * 1e6
    backward = _common.median(backward_times) / CHAIN * 1e6
    return {"forward_us": forward, "backward_us": backward, "total_us": forward + backward,
            "foreign": foreign}


def _measure_chain(x, c) -> dict:
    """The chain ``x + c + c + ...`` and its backward, for tensors of either library (both
    write the gradient of a leaf into ``x.grad``)."""
    def build():
        y = x
        for _ in range(CHAIN):
            y = y + c
        return y

    def run_backward(y):
        x.grad = None
        y.backward()

    result = _measure(build, run_backward)
    assert float(x.grad[0, 0]) == 1.0
    return result


def worker_nervenet() -> dict:
    import numpy as np

    import nervenet

    return _measure_chain(nervenet.Tensor(np.ones((1, 1), dtype=np.float32), requires_grad=True),
                          nervenet.Tensor(np.ones((1, 1), dtype=np.float32)))


def worker_torch() -> dict:
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    return _measure_chain(torch.ones((1, 1), dtype=torch.float32, requires_grad=True),
                          torch.ones((1, 1), dtype=torch.float32))


WORKERS = {"nervenet": worker_nervenet, "torch": worker_torch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    # One core is enough for a single-threaded measurement: allow a neighbour on the other.
    parser.add_argument("--max-foreign", type=float, default=0.5,
                        help="rerun a round when other processes took more than this share of "
                             "the CPUs (default 0.5)")
    parser.add_argument("--baseline", metavar="DIR",
                        help="also run nervenet imported from another checkout DIR (as the "
                             "system 'baseline'), e.g. an older commit")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker]()))
        return

    systems = list(WORKERS) + (["baseline"] if args.baseline else [])

    def run(system):
        if system == "baseline":
            return _common.run_worker("overhead.py", ["nervenet"],
                                      root=Path(args.baseline).resolve())
        return _common.run_worker("overhead.py", [system])

    results, discarded = _common.measure_interleaved(systems, run, args.rounds,
                                                     args.max_foreign)
    foreign = max(r["foreign"] for rounds in results.values() for r in rounds)
    print(f"# Per-op overhead: chain of {CHAIN} 1x1 adds, forward + backward")
    print(f"{_common.today()}; {_common.machine_description()}; {_common.THREADS} threads; "
          f"median of {args.rounds} interleaved rounds, each a fresh process "
          f"(median of {REPEATS} chains)")
    print(f"Other processes used at most {foreign:.0%} of the CPUs during a kept measurement; "
          f"{discarded} round(s) over {args.max_foreign:.0%} were discarded and rerun.")
    if args.baseline:
        print(f"baseline: nervenet imported from {Path(args.baseline).resolve()}")
    print()
    print("| system | forward us/op | backward us/op | total us/op | vs torch |")
    print("|---|---:|---:|---:|---:|")
    torch_totals = [r["total_us"] for r in results["torch"]]
    for name, rounds in results.items():
        forward = _common.median([r["forward_us"] for r in rounds])
        backward = _common.median([r["backward_us"] for r in rounds])
        totals = [r["total_us"] for r in rounds]
        print(f"| {name} | {forward:.2f} | {backward:.2f} | {_common.median(totals):.2f} | "
              f"{_common.median_ratio(totals, torch_totals):.2f}x |")


if __name__ == "__main__":
    main()

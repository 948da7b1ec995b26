"""The regression losses and the hinge: fused ops (what nervenet ships) vs compositions of ops.

``F.mse``, ``F.mae``, ``F.huber`` and ``F.hinge`` are each one Function with a hand-written
backward, although each is a short composition of existing ops (written out below, with the
same formulas). This measures what the composition would cost in a training step of a small
regression network, 8-30-30-1 with ReLU, float32, plain SGD: forward, loss, backward and the
update, CPU time per step of this process (one BLAS thread), the variants interleaved round
after round in one process (they share the engine, so no thread pool competes).

    python bench/losses.py                 # batch 32 and 256, 7 rounds of 2000 steps
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

if __name__ == "__main__":  # one BLAS thread, set before NumPy loads it
    for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_name] = "1"

import numpy as np  # noqa: E402

import nervenet  # noqa: E402
import nervenet.functional as F  # noqa: E402


def composed_mse(y, p):
    d = p - y
    return (d * d).mean()


def composed_mae(y, p):
    return F.abs(p - y).mean()


def composed_huber(y, p, delta=1.0):
    size = F.abs(p - y)
    inside = F.minimum(size, delta)  # q (|e| - q/2): e^2/2 inside, linear beyond
    return (inside * (size - inside * 0.5)).mean()


def composed_hinge(y, p):
    return F.relu(1 - p * y).mean()


LOSSES = {
    "mse": (F.mse, composed_mse), "mae": (F.mae, composed_mae),
    "huber": (F.huber, composed_huber), "hinge": (F.hinge, composed_hinge),
}


def _network(batch: int, rng):
    sizes = (8, 30, 30, 1)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        params.append(nervenet.Tensor(rng.uniform(-0.3, 0.3, (n_in, n_out)).astype(np.float32),
                                      requires_grad=True))
        params.append(nervenet.Tensor(np.zeros(n_out, np.float32), requires_grad=True))
    x = rng.standard_normal((batch, 8)).astype(np.float32)
    y = np.sign(rng.standard_normal((batch, 1))).astype(np.float32)  # labels for the hinge too
    return params, x, y


def _step(params, x, y, loss_fn) -> None:
    w1, b1, w2, b2, w3, b3 = params
    p = F.linear(F.relu(F.linear(F.relu(F.linear(x, w1, b1)), w2, b2)), w3, b3)
    loss_fn(nervenet.Tensor(y), p).backward()
    with nervenet.no_grad():
        for q in params:
            q.data -= 0.001 * q.grad
            q.grad = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    print("| batch | loss | fused us/step | composed us/step | composed / fused |")
    print("|---:|---|---:|---:|---:|")
    for batch in args.batch:
        params, x, y = _network(batch, np.random.default_rng(0))
        variants = {(name, kind): fn for name, fns in LOSSES.items()
                    for kind, fn in zip(("fused", "composed"), fns)}
        times = {key: [] for key in variants}
        for fn in variants.values():  # warm-up
            for _ in range(args.steps // 10):
                _step(params, x, y, fn)
        for _ in range(args.rounds):
            for key, fn in variants.items():
                start = time.process_time()
                for _ in range(args.steps):
                    _step(params, x, y, fn)
                times[key].append((time.process_time() - start) / args.steps * 1e6)
        for name in LOSSES:
            fused = statistics.median(times[name, "fused"])
            composed = statistics.median(times[name, "composed"])
            print(f"| {batch} | {name} | {fused:.1f} | {composed:.1f} | {composed / fused:.2f}x |",
                  flush=True)


if __name__ == "__main__":
    main()

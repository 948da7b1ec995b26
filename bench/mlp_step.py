"""Training speed of the 784-300-100-10 MLP: nervenet vs PyTorch vs hand-written NumPy.

The network of the course's MNIST example: Dense 300 ReLU, Dense 100 ReLU, Dense 10, softmax
cross-entropy from logits, plain SGD (learning rate 0.01), float32, on the 5k MNIST subset of
``shared/data/mnist_5k.npz``. Each system trains from the same initial weights on the same
shuffled batches, in its own fresh process with the same environment and thread count. The
systems are interleaved round after round; the table shows, per system, the median over rounds
of each process's best epoch throughput, and the ratios to torch and to NumPy as the median over
rounds of the ratio within each round (the machine's speed may drift between rounds; the
systems of one round ran back to back). Rounds in which other processes took more than
``--max-foreign`` of the CPUs are thrown away and run again. The final loss of each system is
printed too: they train the same network on the same batches, so it must agree (to float32
rounding).

    python bench/mlp_step.py                 # 2 threads, batch 32 and 256, 3 rounds (~1 min)
    python bench/mlp_step.py --rounds 5 --batch 32
    python bench/mlp_step.py --threads 1 --clock cpu   # samples per CPU-second, 1 thread
    python bench/mlp_step.py --baseline DIR  # add nervenet imported from another checkout

Systems:
    nervenet  a bare loop over nervenet.functional (F.linear, F.relu,
              F.sparse_categorical_cross_entropy(from_logits=True), loss.backward(), in-place
              SGD on p.data under no_grad)
    torch     the same loop in PyTorch eager (torch.nn.functional, loss.backward(), in-place SGD)
    numpy     forward and backward written by hand with NumPy (the floor a framework on NumPy
              can reach: its GEMMs plus the least possible elementwise work)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import _common
import numpy as np

LEARNING_RATE = 0.01
WARMUP_EPOCHS = 1
TIMED_EPOCHS = {32: 8, 256: 16}


def _batches(images, labels, batch_size, epochs):
    """Yield (epoch, x, y) for full batches in the shared shuffled order."""
    for epoch, order in enumerate(_common.batch_order(len(images), epochs)):
        for start in range(0, len(order) - batch_size + 1, batch_size):
            index = order[start:start + batch_size]
            yield epoch, images[index], labels[index]


def _run(step, batch_size: int, clock) -> dict:
    """Run ``step(x, y) -> loss`` over warm-up + timed epochs; the best epoch's throughput."""
    images, labels = _common.load_mnist()
    epochs = WARMUP_EPOCHS + TIMED_EPOCHS.get(batch_size, 8)
    epoch_times = [0.0] * epochs
    epoch_samples = [0] * epochs
    last_losses = []
    snapshot = None
    for epoch, x, y in _batches(images, labels, batch_size, epochs):
        if epoch == WARMUP_EPOCHS and snapshot is None:
            snapshot = _common.cpu_snapshot()
        start = clock()
        loss = step(x, y)
        epoch_times[epoch] += clock() - start
        epoch_samples[epoch] += len(x)
        if epoch == epochs - 1:
            last_losses.append(loss)
    foreign = _common.foreign_share(snapshot, _common.cpu_snapshot())
    rates = [n / t for n, t in zip(epoch_samples[WARMUP_EPOCHS:], epoch_times[WARMUP_EPOCHS:])]
    # The best epoch: on a shared machine, slower epochs measure the neighbours.
    return {"samples_per_s": max(rates), "final_loss": float(np.mean(last_losses)),
            "foreign": foreign, "blas": _common.blas_description()}


def worker_nervenet(batch_size: int, clock) -> dict:
    import nervenet
    import nervenet.functional as F

    params = [nervenet.Tensor(p, requires_grad=True) for p in _common.mlp_init()]
    w1, b1, w2, b2, w3, b3 = params

    def step(x, y):
        h = F.relu(F.linear(x, w1, b1))
        h = F.relu(F.linear(h, w2, b2))
        loss = F.sparse_categorical_cross_entropy(y, F.linear(h, w3, b3), from_logits=True)
        loss.backward()
        with nervenet.no_grad():
            for p in params:
                p.data -= LEARNING_RATE * p.grad
                p.grad = None
        return loss.item()

    return _run(step, batch_size, clock)


def worker_torch(batch_size: int, clock) -> dict:
    import torch
    import torch.nn.functional as TF

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    # torch.nn.Linear keeps its weight as (out, in): transpose the shared (in, out) init.
    params = [torch.tensor(p.T.copy() if p.ndim == 2 else p, requires_grad=True)
              for p in _common.mlp_init()]
    w1, b1, w2, b2, w3, b3 = params

    def step(x, y):
        x, y = torch.from_numpy(x), torch.from_numpy(y)
        h = torch.relu(TF.linear(x, w1, b1))
        h = torch.relu(TF.linear(h, w2, b2))
        loss = TF.cross_entropy(TF.linear(h, w3, b3), y)
        loss.backward()
        with torch.no_grad():
            for p in params:
                p.add_(p.grad, alpha=-LEARNING_RATE)
                p.grad = None
        return loss.item()

    return _run(step, batch_size, clock)


def worker_numpy(batch_size: int, clock) -> dict:
    w1, b1, w2, b2, w3, b3 = _common.mlp_init()
    lr = np.float32(LEARNING_RATE)
    ones = np.ones((1, batch_size), dtype=np.float32)
    rows = np.arange(batch_size)

    def step(x, y):
        # forward: a1 = relu(x W1 + b1), a2 = relu(a1 W2 + b2), z = a2 W3 + b3
        a1 = x @ w1
        a1 += b1
        np.maximum(a1, 0, out=a1)
        a2 = a1 @ w2
        a2 += b2
        np.maximum(a2, 0, out=a2)
        z = a2 @ w3
        z += b3
        # softmax cross-entropy from logits, through log-sum-exp
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        total = e.sum(axis=1, keepdims=True)
        loss = float(np.mean(np.log(total[:, 0]) - z[rows, y]))
        # backward: dz = (softmax - onehot) / n, then the chain rule layer by layer
        dz = e / total
        dz[rows, y] -= 1
        dz *= np.float32(1 / batch_size)
        gw3, gb3 = a2.T @ dz, (ones @ dz)[0]
        da2 = dz @ w3.T
        da2 *= a2 > 0
        gw2, gb2 = a1.T @ da2, (ones @ da2)[0]
        da1 = da2 @ w2.T
        da1 *= a1 > 0
        gw1, gb1 = x.T @ da1, (ones @ da1)[0]
        for p, g in ((w1, gw1), (b1, gb1), (w2, gw2), (b2, gb2), (w3, gw3), (b3, gb3)):
            g *= lr
            p -= g
        return loss

    return _run(step, batch_size, clock)


WORKERS = {"nervenet": worker_nervenet, "torch": worker_torch, "numpy": worker_numpy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--systems", nargs="+", default=list(WORKERS), choices=list(WORKERS))
    parser.add_argument("--threads", type=int, default=_common.THREADS,
                        help=f"threads of every library (default {_common.THREADS})")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall: samples per second (default); cpu: samples per CPU-second "
                             "of the process, which other processes barely disturb (meaningful "
                             "with --threads 1, where no BLAS thread spins)")
    parser.add_argument("--keep-openblas-pins", action="store_true",
                        help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE from the environment")
    parser.add_argument("--max-foreign", type=float, default=None,
                        help="rerun a round when other processes took more than this share of "
                             "the CPUs (default 0.1 with the wall clock, 0.5 with the CPU clock)")
    parser.add_argument("--baseline", metavar="DIR",
                        help="also run nervenet imported from another checkout DIR (as the "
                             "system 'baseline'), e.g. an older commit")
    parser.add_argument("--raw", metavar="PATH", help="also write every round's results (JSON)")
    parser.add_argument("--worker", choices=list(WORKERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        clock = time.perf_counter if args.clock == "wall" else time.process_time
        print(json.dumps(WORKERS[args.worker](args.batch[0], clock)))
        return
    if args.max_foreign is None:
        args.max_foreign = 0.1 if args.clock == "wall" else 0.5

    if args.baseline:
        args.systems.append("baseline")
    results, discarded = {}, 0
    for batch_size in args.batch:
        def run(system, batch_size=batch_size):
            worker = "nervenet" if system == "baseline" else system
            root = Path(args.baseline).resolve() if system == "baseline" else _common.ROOT
            return _common.run_worker(
                "mlp_step.py", [worker, "--batch", str(batch_size), "--clock", args.clock],
                args.threads, args.keep_openblas_pins, root)

        by_system, thrown = _common.measure_interleaved(args.systems, run, args.rounds,
                                                        args.max_foreign)
        discarded += thrown
        results.update({(batch_size, s): r for s, r in by_system.items()})
    if args.raw:
        with open(args.raw, "w") as out:
            json.dump({f"{b} {s}": r for (b, s), r in results.items()}, out, indent=1)
    blas = {s: results[args.batch[0], s][0]["blas"] for s in args.systems}
    foreign = max(r["foreign"] for rounds in results.values() for r in rounds)
    print("# MLP 784-300-100-10 training step, float32, SGD, MNIST 5k")
    unit = "samples/s" if args.clock == "wall" else "samples/CPU-s"
    print(f"{_common.today()}; {_common.machine_description()}; {args.threads} thread(s); "
          f"{unit}; median of {args.rounds} interleaved rounds, each system in a fresh process")
    print(f"Other processes used at most {foreign:.0%} of the CPUs during a kept measurement; "
          f"{discarded} round(s) over {args.max_foreign:.0%} were discarded and rerun.")
    print("BLAS: " + "; ".join(f"{s}: {b}" for s, b in blas.items()))
    if args.baseline:
        print(f"baseline: nervenet imported from {Path(args.baseline).resolve()}")
    print()
    print(f"| batch | system | {unit} | min-max over rounds | vs torch | vs numpy | final loss |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for batch_size in args.batch:
        rates = {s: [r["samples_per_s"] for r in results[batch_size, s]] for s in args.systems}
        medians = {s: _common.median(r) for s, r in rates.items()}
        for system in args.systems:
            # Ratios within each round (the systems ran back to back), then their median: the
            # machine's speed may drift between rounds, the ratios do not.
            versus = [f"{_common.median_ratio(rates[system], rates[base]):.2f}x"
                      if base in rates else "-" for base in ("torch", "numpy")]
            loss = results[batch_size, system][0]["final_loss"]
            print(f"| {batch_size} | {system} | {medians[system]:,.0f} | "
                  f"{min(rates[system]):,.0f}-{max(rates[system]):,.0f} | {versus[0]} | "
                  f"{versus[1]} | {loss:.5f} |")


if __name__ == "__main__":
    main()

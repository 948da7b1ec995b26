"""Data-parallel training speed over MPI: samples/s of ``Model.fit`` on 1 and 2 ranks.

The MNIST MLP (784-300-100-10) and the LeNet-style CNN of cnn.py, float32, plain SGD, global
batch 64, on the 5k MNIST subset (the CNN on its first 1,024 images), are trained by
``Model.fit`` in three set-ups, each in fresh processes with the same data and initial weights:

* 1 process with 1 BLAS thread (the base of the scaling efficiency);
* 1 process with 2 BLAS threads (what the two cores give without MPI);
* ``mpiexec -n 2``, 1 BLAS thread per rank (``nervenet.distributed``: each rank 32 rows of
  each global batch, one Allreduce of the flat gradient buffer per step).

Scaling efficiency = samples/s on 2 ranks / (2 x samples/s of 1 process with 1 thread). The
time spent in ``allreduce`` per step (including waiting for the slower rank) is reported as a
fraction of the step. Each figure is the best epoch after a warm-up epoch, the median over
rounds; the machine's load average is printed beside the table, since other processes on the
machine lower the 2-rank and 2-thread figures first.

    python bench/distributed.py              # 3 rounds
    python bench/distributed.py --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import _common
import numpy as np

BATCH = 64
EPOCHS = {"mlp": 4, "cnn": 3}
SAMPLES = {"mlp": 5000, "cnn": 1024}
LEARNING_RATE = 0.01
SETUPS = [("1 process, 1 thread", 1, 1), ("1 process, 2 threads", 1, 2),
          ("2 ranks, 1 thread each", 2, 1)]


def _model(kind: str):
    from nervenet import layers, losses, models, optimizers

    if kind == "mlp":
        model = models.Sequential([
            layers.Input(shape=(784,)), layers.Dense(300, activation="relu"),
            layers.Dense(100, activation="relu"), layers.Dense(10)])
        model.set_weights(_common.mlp_init())
    else:
        from cnn import _init

        weights = _init()
        model = models.Sequential([
            layers.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
            layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dense(10)])
        model.set_weights([weights["conv1"], np.zeros(32, np.float32), weights["conv2"],
                           np.zeros(64, np.float32), weights["dense1"],
                           np.zeros(128, np.float32), weights["dense2"],
                           np.zeros(10, np.float32)])
    model.compile(optimizer=optimizers.SGD(LEARNING_RATE),
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def worker(kind: str) -> None:
    """Train under whatever world this process is in; rank 0 prints one JSON line."""
    from nervenet import callbacks, distributed, world
    from nervenet.utils import set_random_seed

    distributed.init()
    spent = [0.0]
    allreduce = world.allreduce

    def timed_allreduce(array, op="mean"):
        start = time.perf_counter()
        out = allreduce(array, op)
        spent[0] += time.perf_counter() - start
        return out

    world.allreduce = timed_allreduce
    images, labels = _common.load_mnist()
    images, labels = images[:SAMPLES[kind]], labels[:SAMPLES[kind]]
    if kind == "cnn":
        images = images.reshape(-1, 28, 28, 1)
    set_random_seed(1)
    model = _model(kind)
    starts, epochs = [], []
    timer = callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: starts.append((time.perf_counter(), spent[0])),
        on_epoch_end=lambda epoch, logs: epochs.append(
            (time.perf_counter() - starts[-1][0], spent[0] - starts[-1][1])))
    history = model.fit(images, labels, batch_size=BATCH, epochs=EPOCHS[kind], verbose=0,
                        callbacks=[timer])
    wall, comm = min(epochs[1:])
    if distributed.rank() == 0:
        print(json.dumps({"samples_per_s": len(images) / wall, "allreduce_share": comm / wall,
                          "loss": history.history["loss"][-1]}))


def run(kind: str, ranks: int, threads: int) -> dict:
    env = _common.worker_env(threads)
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", kind]
    if ranks > 1:
        mpiexec = Path(sys.executable).with_name("mpiexec")
        command = [str(mpiexec) if mpiexec.exists() else "mpiexec", "-n", str(ranks), *command]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} on {ranks} rank(s) failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", choices=["mlp", "cnn"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    print(f"{_common.today()}: {_common.machine_description()}")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for kind in ("mlp", "cnn"):
        results = {name: [] for name, _, _ in SETUPS}
        for _ in range(args.rounds):
            for name, ranks, threads in SETUPS:
                results[name].append(run(kind, ranks, threads))
        base = _common.median([r["samples_per_s"] for r in results[SETUPS[0][0]]])
        print(f"\n{kind.upper()}, global batch {BATCH}, {SAMPLES[kind]} samples, "
              f"median of {args.rounds} rounds")
        print("| set-up | samples/s | vs 1 thread | scaling efficiency | allreduce share "
              "of a step | final loss |\n|---|---:|---:|---:|---:|---:|")
        for name, ranks, threads in SETUPS:
            speed = _common.median([r["samples_per_s"] for r in results[name]])
            share = _common.median([r["allreduce_share"] for r in results[name]])
            efficiency = f"{speed / (ranks * threads * base):.0%}" if ranks * threads > 1 \
                else "-"
            comm = f"{share:.1%}" if ranks > 1 else "-"
            print(f"| {name} | {speed:,.0f} | {speed / base:.2f}x | {efficiency} | {comm} | "
                  f"{results[name][-1]['loss']:.4f} |")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

"""Training and inference speed of the 784-300-100-10 MLP: nervenet (Model.fit and a bare loop)
vs PyTorch vs scikit-learn vs hand-written NumPy, with peak memory and import time.

The network of the course's MNIST example: Dense 300 ReLU, Dense 100 ReLU, Dense 10, softmax
cross-entropy from logits, plain SGD (learning rate 0.01), float32, on the 5k MNIST subset of
``shared/data/mnist_5k.npz``. Every system starts from the same initial weights (scikit-learn
draws its own), runs in its own fresh process with the same environment and thread count, and
is timed per epoch over a whole epoch INCLUDING the gathering of each shuffled batch (which
``Model.fit`` and scikit-learn cannot leave out); the table shows, per system, the median over
rounds of each process's best epoch, and the ratios as the median over rounds of the ratio
within each round (the systems of one round ran back to back). Rounds in which other processes
took more than ``--max-foreign`` of the CPUs are thrown away and run again.

    python bench/mlp.py                       # 2 threads, batch 32 and 256, 3 rounds
    python bench/mlp.py --threads 1 --clock cpu
    python bench/mlp.py --systems loop torch numpy     # what bench/mlp_step.py runs
    python bench/mlp.py --baseline DIR        # add fit@base and loop@base: nervenet imported
                                              # from another checkout DIR (an older commit)

Systems:
    fit       nervenet ``Sequential.fit(x, y, batch_size, epochs, verbose=0)`` (shuffling,
              batching, the loss average and the callbacks included), compiled with the
              default ``jit_compile="auto"``: from the third batch of a shape on, the captured
              step is replayed (``nervenet.models.jit``)
    fit_eager the same with ``jit_compile=False``: every step eager (the reference the
              captured step equals bit for bit)
    loop      a bare loop over nervenet.functional (F.linear, F.relu,
              F.sparse_categorical_cross_entropy(from_logits=True), loss.backward(), in-place
              SGD on p.data under no_grad)
    torch     the same loop in PyTorch eager (torch.nn.functional, loss.backward(), in-place
              SGD)
    sklearn   scikit-learn's MLPClassifier(solver="sgd", momentum=0, alpha=0), one epoch per
              ``partial_fit`` on the shuffled data (it makes its own minibatches)
    numpy     forward and backward written by hand with NumPy (the floor a framework on NumPy
              can reach: its GEMMs plus the least possible elementwise work)

Beside training: inference (the 5,000 images in batches of 256: ``Model.predict``, the
functional forward under ``no_grad``, torch under ``no_grad``, ``predict_proba``, the NumPy
forward), the process's peak resident memory and how much of it the training run added to what
the imports and the data took, and the time ``import nervenet`` takes in a fresh process
(with the heavy optional modules it must not pull in).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import _common
import numpy as np

LEARNING_RATE = 0.01
WARMUP_EPOCHS = 1
TIMED_EPOCHS = {32: 6, 256: 12}
PREDICT_BATCH = 256
#: modules ``import nervenet`` must not import (each costs tenths of a second or more)
HEAVY_MODULES = ("matplotlib", "scipy", "sklearn", "torch", "optuna", "tensorboardX")


def _epochs(batch_size: int) -> int:
    return WARMUP_EPOCHS + TIMED_EPOCHS.get(batch_size, 6)


def _rss_mib() -> float:
    """The resident memory of this process now, MiB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _time_epochs(step, images, labels, batch_size: int, clock) -> dict:
    """Run ``step(x, y) -> loss`` on every full batch of the shared shuffled order, epoch after
    epoch, each batch gathered inside the timed region. Returns the best epoch's samples/s and
    the last epoch's mean loss."""
    rates, loss = [], float("nan")
    for epoch, order in enumerate(_common.batch_order(len(images), _epochs(batch_size))):
        windows = [order[start:start + batch_size]
                   for start in range(0, len(order) - batch_size + 1, batch_size)]
        start = clock()
        losses = [step(images[index], labels[index]) for index in windows]
        elapsed = clock() - start
        if epoch >= WARMUP_EPOCHS:
            rates.append(len(windows) * batch_size / elapsed)
        loss = float(np.mean(losses))
    return {"samples_per_s": max(rates), "final_loss": loss}


def _time_predict(predict, images, clock) -> float:
    predict(images)  # warm-up
    best = 0.0
    for _ in range(3):
        start = clock()
        predict(images)
        best = max(best, len(images) / (clock() - start))
    return best


def _model(jit_compile="auto"):
    from nervenet import layers, losses, models, optimizers

    model = models.Sequential([layers.Input(shape=(784,)), layers.Dense(300, activation="relu"),
                               layers.Dense(100, activation="relu"), layers.Dense(10)])
    model.set_weights(_common.mlp_init())
    model.compile(optimizer=optimizers.SGD(LEARNING_RATE),
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True),
                  **_common.compile_options(model, jit_compile))
    return model


def worker_fit(images, labels, batch_size: int, clock, jit_compile="auto") -> dict:
    from nervenet import callbacks
    from nervenet.utils import set_random_seed

    set_random_seed(1)
    model = _model(jit_compile)
    starts, times = [], []
    timer = callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: starts.append(clock()),
        on_epoch_end=lambda epoch, logs: times.append(clock() - starts[-1]))
    history = model.fit(images, labels, batch_size=batch_size, epochs=_epochs(batch_size),
                        callbacks=[timer], verbose=0)
    predict = _time_predict(lambda x: model.predict(x, batch_size=PREDICT_BATCH, verbose=0),
                            images, clock)
    return {"samples_per_s": max(len(images) / t for t in times[WARMUP_EPOCHS:]),
            "final_loss": history.history["loss"][-1], "predict_per_s": predict}


def worker_fit_eager(images, labels, batch_size: int, clock) -> dict:
    return worker_fit(images, labels, batch_size, clock, jit_compile=False)


def worker_loop(images, labels, batch_size: int, clock) -> dict:
    import nervenet
    import nervenet.functional as F

    params = [nervenet.Tensor(p, requires_grad=True) for p in _common.mlp_init()]
    w1, b1, w2, b2, w3, b3 = params

    def forward(x):
        h = F.relu(F.linear(x, w1, b1))
        return F.linear(F.relu(F.linear(h, w2, b2)), w3, b3)

    def step(x, y):
        loss = F.sparse_categorical_cross_entropy(y, forward(x), from_logits=True)
        loss.backward()
        with nervenet.no_grad():
            for p in params:
                p.data -= LEARNING_RATE * p.grad
                p.grad = None
        return loss.item()

    def predict(x):
        with nervenet.no_grad():
            return np.concatenate([forward(x[i:i + PREDICT_BATCH]).data
                                   for i in range(0, len(x), PREDICT_BATCH)])

    result = _time_epochs(step, images, labels, batch_size, clock)
    return {**result, "predict_per_s": _time_predict(predict, images, clock)}


def worker_torch(images, labels, batch_size: int, clock) -> dict:
    import torch
    import torch.nn.functional as TF

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    # torch.nn.Linear keeps its weight as (out, in): transpose the shared (in, out) init.
    params = [torch.tensor(p.T.copy() if p.ndim == 2 else p, requires_grad=True)
              for p in _common.mlp_init()]
    w1, b1, w2, b2, w3, b3 = params

    def forward(x):
        h = torch.relu(TF.linear(x, w1, b1))
        return TF.linear(torch.relu(TF.linear(h, w2, b2)), w3, b3)

    def step(x, y):
        loss = TF.cross_entropy(forward(x), y)
        loss.backward()
        with torch.no_grad():
            for p in params:
                p.add_(p.grad, alpha=-LEARNING_RATE)
                p.grad = None
        return loss.item()

    def predict(x):
        with torch.no_grad():
            return torch.cat([forward(x[i:i + PREDICT_BATCH])
                              for i in range(0, len(x), PREDICT_BATCH)])

    # the batches are gathered from tensors, as a torch user's loop would
    result = _time_epochs(step, torch.from_numpy(images), torch.from_numpy(labels), batch_size,
                          clock)
    return {**result, "predict_per_s": _time_predict(predict, torch.from_numpy(images), clock)}


def worker_sklearn(images, labels, batch_size: int, clock) -> dict:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    # shuffle=True: scikit-learn shuffles the indices and gathers each batch, as fit does
    model = MLPClassifier(hidden_layer_sizes=(300, 100), activation="relu", solver="sgd",
                          learning_rate_init=LEARNING_RATE, momentum=0.0,
                          nesterovs_momentum=False, alpha=0.0, batch_size=batch_size,
                          shuffle=True, random_state=0)
    classes = np.arange(10)
    rates = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for epoch in range(_epochs(batch_size)):
            start = clock()
            model.partial_fit(images, labels, classes=classes)
            if epoch >= WARMUP_EPOCHS:
                rates.append(len(images) / (clock() - start))
    predict = _time_predict(model.predict_proba, images, clock)
    return {"samples_per_s": max(rates), "final_loss": float(model.loss_curve_[-1]),
            "predict_per_s": predict}


def worker_numpy(images, labels, batch_size: int, clock) -> dict:
    w1, b1, w2, b2, w3, b3 = _common.mlp_init()
    lr = np.float32(LEARNING_RATE)
    ones = np.ones((1, batch_size), dtype=np.float32)
    rows = np.arange(batch_size)

    def forward(x):
        """a1 = relu(x W1 + b1), a2 = relu(a1 W2 + b2), z = a2 W3 + b3, in place."""
        a1 = x @ w1
        a1 += b1
        np.maximum(a1, 0, out=a1)
        a2 = a1 @ w2
        a2 += b2
        np.maximum(a2, 0, out=a2)
        z = a2 @ w3
        z += b3
        return a1, a2, z

    def step(x, y):
        a1, a2, z = forward(x)
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

    def predict(x):
        return np.concatenate([forward(x[i:i + PREDICT_BATCH])[2]
                               for i in range(0, len(x), PREDICT_BATCH)])

    result = _time_epochs(step, images, labels, batch_size, clock)
    return {**result, "predict_per_s": _time_predict(predict, images, clock)}


WORKERS = {"fit": worker_fit, "fit_eager": worker_fit_eager, "loop": worker_loop,
           "torch": worker_torch, "sklearn": worker_sklearn, "numpy": worker_numpy}


def _worker(system: str, batch_size: int, clock_name: str) -> dict:
    clock = time.perf_counter if clock_name == "wall" else time.process_time
    images, labels = _common.load_mnist()
    if system in ("fit", "fit_eager", "loop"):
        import nervenet  # noqa: F401  (imported before the memory baseline, as torch is)
    elif system == "torch":
        import torch  # noqa: F401
    elif system == "sklearn":
        import sklearn.neural_network  # noqa: F401
    baseline = _rss_mib()
    snapshot = _common.cpu_snapshot()
    result = WORKERS[system](images, labels, batch_size, clock)
    result["foreign"] = _common.foreign_share(snapshot, _common.cpu_snapshot())
    result["peak_mib"] = _peak_rss_mib()
    result["added_mib"] = _peak_rss_mib() - baseline
    result["blas"] = _common.blas_description()
    return result


def import_time(rounds: int = 5) -> tuple[float, list[str]]:
    """Median seconds of ``import nervenet`` in a fresh process, and which of HEAVY_MODULES it
    imported."""
    code = ("import sys, time; start = time.perf_counter(); import nervenet; "
            "elapsed = time.perf_counter() - start; "
            f"print(elapsed, *[m for m in {HEAVY_MODULES!r} if m in sys.modules])")
    times, heavy = [], []
    for _ in range(rounds):
        done = subprocess.run([sys.executable, "-c", code], env=_common.worker_env(),
                              capture_output=True, text=True, check=True)
        first, *heavy = done.stdout.split()
        times.append(float(first))
    return _common.median(times), heavy


def main(default_systems=tuple(WORKERS), title: str = "MLP 784-300-100-10, float32, SGD, "
         "MNIST 5k: training and inference") -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--systems", nargs="+", default=list(default_systems),
                        choices=list(WORKERS))
    _common.add_run_arguments(
        parser, "wall: samples per second (default); cpu: samples per CPU-second of the "
                "process, which other processes barely disturb (meaningful with --threads 1, "
                "where no BLAS thread spins)")
    parser.add_argument("--baseline", metavar="DIR",
                        help="also run the nervenet systems with nervenet imported from "
                             "another checkout DIR (as fit@base, loop@base)")
    parser.add_argument("--worker", choices=list(WORKERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker, args.batch[0], args.clock)))
        return
    _common.resolve_max_foreign(args)

    if args.baseline:
        args.systems += [f"{s}@base" for s in args.systems if s in ("fit", "fit_eager", "loop")]
    results, discarded = {}, 0
    for batch_size in args.batch:
        def run(system, batch_size=batch_size):
            worker, _, base = system.partition("@")
            root = Path(args.baseline).resolve() if base else _common.ROOT
            return _common.run_worker(
                "mlp.py", [worker, "--batch", str(batch_size), "--clock", args.clock],
                args.threads, args.keep_openblas_pins, root)

        by_system, thrown = _common.measure_interleaved(args.systems, run, args.rounds,
                                                        args.max_foreign)
        discarded += thrown
        results.update({(batch_size, s): r for s, r in by_system.items()})
    if args.raw:
        with open(args.raw, "w") as out:
            json.dump({f"{b} {s}": r for (b, s), r in results.items()}, out, indent=1)
    _print_tables(args, results, discarded, title)


def _print_tables(args, results: dict, discarded: int, title: str) -> None:
    systems = args.systems

    def values(batch_size, system, key):
        return [r[key] for r in results[batch_size, system]]

    def versus(batch_size, system, base, key):
        # Ratios within each round (the systems ran back to back), then their median.
        ratio = _common.median_ratio(values(batch_size, system, key),
                                     values(batch_size, base, key))
        return f"{ratio:.2f}x"

    blas = {s: results[args.batch[0], s][0]["blas"] for s in systems}
    foreign = max(r["foreign"] for rounds in results.values() for r in rounds)
    unit = "samples/s" if args.clock == "wall" else "samples/CPU-s"
    print(f"# {title}")
    print(f"{_common.today()}; {_common.machine_description()}; {args.threads} thread(s); "
          f"{unit}; median of {args.rounds} interleaved rounds, each system in a fresh process")
    print(f"Other processes used at most {foreign:.0%} of the CPUs during a kept measurement; "
          f"{discarded} round(s) over {args.max_foreign:.0%} were discarded and rerun.")
    print("BLAS: " + "; ".join(f"{s}: {b}" for s, b in blas.items()))
    if args.baseline:
        print(f"@base: nervenet imported from {Path(args.baseline).resolve()}")
    bases = [b for b in ("torch", "numpy", "sklearn") if b in systems]
    print()
    print(f"Training ({unit}, each batch gathered inside the timed epoch):")
    print()
    print(f"| batch | system | {unit} | min-max over rounds | "
          + " | ".join(f"vs {b}" for b in bases) + " | final loss |")
    print("|---:|---|---:|---:|" + "---:|" * len(bases) + "---:|")
    for batch_size in args.batch:
        for system in systems:
            rates = values(batch_size, system, "samples_per_s")
            ratios = [versus(batch_size, system, b, "samples_per_s") for b in bases]
            loss = results[batch_size, system][0]["final_loss"]
            print(f"| {batch_size} | {system} | {_common.median(rates):,.0f} | "
                  f"{min(rates):,.0f}-{max(rates):,.0f} | " + " | ".join(ratios)
                  + f" | {loss:.5f} |")
    batch_size = args.batch[-1]
    print()
    print(f"Inference of the 5,000 images in batches of {PREDICT_BATCH} ({unit}), peak resident "
          f"memory of the worker process and what training added to it (batch {batch_size}):")
    print()
    print(f"| system | predict {unit} | vs torch | peak MiB | added by training MiB |")
    print("|---|---:|---:|---:|---:|")
    for system in systems:
        ratio = versus(batch_size, system, "torch", "predict_per_s") if "torch" in systems else "-"
        print(f"| {system} | {_common.median(values(batch_size, system, 'predict_per_s')):,.0f} | "
              f"{ratio} | {_common.median(values(batch_size, system, 'peak_mib')):,.0f} | "
              f"{_common.median(values(batch_size, system, 'added_mib')):,.1f} |")
    seconds, heavy = import_time()
    print()
    print(f"`import nervenet` in a fresh process: {seconds:.3f} s (median of 5); heavy modules "
          f"imported: {', '.join(heavy) if heavy else 'none'} (of {', '.join(HEAVY_MODULES)}).")


if __name__ == "__main__":
    main()

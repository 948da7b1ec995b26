"""Training throughput on an NVIDIA GPU: nervenet through CuPy (``model.to("gpu")``) vs
PyTorch CUDA, in samples per second.

Two networks on MNIST-shaped data (the 5k subset), float32, plain SGD 0.01, softmax
cross-entropy from logits, each batch copied from the host every step (as ``fit`` does):

* MLP 784-300-100-10 (ReLU), batches 256 and 1024;
* the LeNet-style CNN of bench/cnn.py (conv 3x3x32, pool, conv 3x3x64, pool, dense 128,
  dense 10), batches 64 and 256.

    python bench/gpu.py                  # the table (needs CuPy, a CUDA GPU and torch CUDA)
    python bench/gpu.py --rounds 5

Each system runs in a fresh process (one GPU context at a time); rounds are interleaved and the
table shows medians. Without a GPU the script refuses and says why (exit status 2).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import _common
import numpy as np

WORKLOADS = [("mlp", 256), ("mlp", 1024), ("cnn", 64), ("cnn", 256)]
LEARNING_RATE = 0.01
WARMUP_STEPS = 5
MIN_SECONDS = 2.0


def _data(model: str):
    images, labels = _common.load_mnist()
    if model == "cnn":
        images = images.reshape(-1, 28, 28, 1)
    return images, labels


def _time(step, images, labels, batch: int, synchronize) -> tuple[float, float]:
    """(samples per second, last loss) of ``step(x, y)`` over batches cycling the data."""
    n = len(images) // batch * batch
    batches = [(images[i:i + batch], labels[i:i + batch]) for i in range(0, n, batch)]
    for x, y in batches[:WARMUP_STEPS]:
        step(x, y)
    synchronize()
    steps, start = 0, time.perf_counter()
    while True:
        x, y = batches[steps % len(batches)]
        loss = step(x, y)
        steps += 1
        if steps % 10 == 0:
            synchronize()
            elapsed = time.perf_counter() - start
            if elapsed >= MIN_SECONDS:
                return steps * batch / elapsed, float(loss)


def worker_nervenet(model_kind: str, batch: int) -> dict:
    import cupy

    from nervenet import layers, losses, models, optimizers

    if model_kind == "mlp":
        stack = [layers.Input(shape=(784,)), layers.Dense(300, activation="relu"),
                 layers.Dense(100, activation="relu"), layers.Dense(10)]
    else:
        stack = [layers.Input(shape=(28, 28, 1)), layers.Conv2D(32, 3, activation="relu"),
                 layers.MaxPooling2D(2), layers.Conv2D(64, 3, activation="relu"),
                 layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(128, activation="relu"),
                 layers.Dense(10)]
    model = models.Sequential(stack)
    model.compile(optimizer=optimizers.SGD(LEARNING_RATE),
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    model.to("gpu")
    images, labels = _data(model_kind)
    rate, loss = _time(model.train_on_batch, images, labels, batch,
                       cupy.cuda.Device().synchronize)
    return {"samples_per_s": rate, "loss": loss}


def worker_torch(model_kind: str, batch: int) -> dict:
    import torch

    device = torch.device("cuda")
    if model_kind == "mlp":
        net = torch.nn.Sequential(torch.nn.Linear(784, 300), torch.nn.ReLU(),
                                  torch.nn.Linear(300, 100), torch.nn.ReLU(),
                                  torch.nn.Linear(100, 10))
    else:
        net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(32, 64, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(64 * 5 * 5, 128), torch.nn.ReLU(),
            torch.nn.Linear(128, 10))
    net = net.to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE)
    loss_fn = torch.nn.CrossEntropyLoss()
    images, labels = _data(model_kind)
    if model_kind == "cnn":
        images = np.ascontiguousarray(images.transpose(0, 3, 1, 2))  # NCHW

    def step(x, y):
        x = torch.from_numpy(x).to(device)
        y = torch.from_numpy(y).to(device)
        optimizer.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        optimizer.step()
        return loss.detach()

    rate, loss = _time(step, images, labels, batch, torch.cuda.synchronize)
    return {"samples_per_s": rate, "loss": loss}


WORKERS = {"nervenet": worker_nervenet, "torch": worker_torch}


def gpu_missing() -> str | None:
    """Why this machine cannot run the benchmark, or ``None`` when it can."""
    from nervenet import backend

    try:
        backend.check_device("gpu")
    except RuntimeError as error:
        return str(error)
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed (the comparison needs torch with CUDA)"
    if not torch.cuda.is_available():
        return "torch.cuda.is_available() is False (a CPU-only PyTorch build?)"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--worker", nargs=3, metavar=("SYSTEM", "MODEL", "BATCH"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        system, model_kind, batch = args.worker
        print(json.dumps(WORKERS[system](model_kind, int(batch))))
        return 0
    missing = gpu_missing()
    if missing:
        print(f"bench/gpu.py needs a CUDA GPU with CuPy and PyTorch CUDA: {missing}",
              file=sys.stderr)
        return 2
    results = {(system, kind, batch): [] for kind, batch in WORKLOADS for system in WORKERS}
    for _ in range(args.rounds):
        for kind, batch in WORKLOADS:
            for system in WORKERS:
                result = _common.run_worker("gpu.py", [system, kind, str(batch)])
                results[system, kind, batch].append(result)
    print(f"# Training samples/s on the GPU, median of {args.rounds} rounds")
    import torch

    print(f"{_common.today()}; {torch.cuda.get_device_name(0)}; "
          f"{_common.machine_description()}\n")
    print("| model | batch | nervenet (CuPy) | PyTorch CUDA | ratio | last loss (ours, torch) |")
    print("|---|---:|---:|---:|---:|---|")
    for kind, batch in WORKLOADS:
        ours = [r["samples_per_s"] for r in results["nervenet", kind, batch]]
        theirs = [r["samples_per_s"] for r in results["torch", kind, batch]]
        losses = (results["nervenet", kind, batch][-1]["loss"],
                  results["torch", kind, batch][-1]["loss"])
        print(f"| {kind} | {batch} | {_common.median(ours):,.0f} | "
              f"{_common.median(theirs):,.0f} | {_common.median_ratio(ours, theirs):.2f}x | "
              f"{losses[0]:.3f}, {losses[1]:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

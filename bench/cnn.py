"""Training and inference speed of a LeNet-style CNN: nervenet vs PyTorch (CPU).

The network: Conv2D 3x3x32 ReLU -> MaxPool 2 -> Conv2D 3x3x64 ReLU -> MaxPool 2 -> Flatten ->
Dense 128 ReLU -> Dense 10, softmax cross-entropy from logits, plain SGD (learning rate 0.01),
float32, batch 64, on the 5k MNIST subset. nervenet runs its Keras-style API
(``Sequential``, ``compile``, ``train_on_batch``, ``predict``), with its captured steps
(``jit_compile="auto"``, the default) as ``nervenet`` and every step eager
(``jit_compile=False``) as ``eager``; PyTorch runs ``torch.nn`` in
eager mode (``zero_grad``, ``backward``, ``step``; ``no_grad`` and ``eval`` for inference).
Both start from the same initial weights (Glorot-uniform, zero biases) and see the same
batches. Each measurement runs in a fresh process with the same environment and 2 threads
(OpenBLAS pins OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed for every system), the systems
interleaved round after round; the table shows medians over rounds.

    python bench/cnn.py                   # 3 rounds (about 20 s), adds its table to README.md
    python bench/cnn.py --rounds 5 --threads 1 --no-readme
    python bench/cnn.py --threads 1 --clock cpu --baseline DIR --systems nervenet --no-readme
                                          # nervenet against another checkout DIR (nervenet@base)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import _common
import numpy as np

BATCH = 64
WARMUP_STEPS = 5
TIMED_STEPS = 60
PREDICT_SAMPLES = 2048
PREDICT_BATCH = 256
LEARNING_RATE = 0.01


def _data():
    images, labels = _common.load_mnist()
    return images.reshape(-1, 28, 28, 1), labels


def _init(seed: int = 0) -> dict[str, np.ndarray]:
    """Glorot-uniform kernels in Keras's layouts (kh, kw, in, out) and (in, out), zero biases."""
    rng = np.random.default_rng(seed)

    def glorot(shape, fan_in, fan_out):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape).astype(np.float32)

    return {"conv1": glorot((3, 3, 1, 32), 9, 9 * 32), "conv2": glorot((3, 3, 32, 64), 288, 576),
            "dense1": glorot((1600, 128), 1600, 128), "dense2": glorot((128, 10), 128, 10)}


def _batches(n: int, steps: int):
    order = np.concatenate(_common.batch_order(n, 1 + steps * BATCH // n))
    for step in range(steps):
        yield order[step * BATCH:(step + 1) * BATCH]


def _time_training(step, images, labels, clock=time.perf_counter) -> tuple[float, float]:
    """(samples per second of ``clock`` over the timed steps, last loss)."""
    batches = list(_batches(len(images), WARMUP_STEPS + TIMED_STEPS))
    for index in batches[:WARMUP_STEPS]:
        step(images[index], labels[index])
    start = clock()
    for index in batches[WARMUP_STEPS:]:
        loss = step(images[index], labels[index])
    return TIMED_STEPS * BATCH / (clock() - start), float(loss)


def _time_predict(predict, images, clock=time.perf_counter) -> float:
    x = images[:PREDICT_SAMPLES]
    predict(x)  # warm-up
    start = clock()
    predict(x)
    return PREDICT_SAMPLES / (clock() - start)


def worker_nervenet(clock=time.perf_counter, jit_compile="auto") -> dict:
    from nervenet import layers, losses, models, optimizers
    from nervenet.layers.conv import Conv2D
    from nervenet.layers.pooling import MaxPooling2D

    images, labels = _data()
    weights = _init()
    model = models.Sequential([
        layers.Input(shape=(28, 28, 1)),
        Conv2D(32, 3, activation="relu"), MaxPooling2D(2),
        Conv2D(64, 3, activation="relu"), MaxPooling2D(2),
        layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dense(10)])
    model.set_weights([weights["conv1"], np.zeros(32, np.float32), weights["conv2"],
                       np.zeros(64, np.float32), weights["dense1"], np.zeros(128, np.float32),
                       weights["dense2"], np.zeros(10, np.float32)])
    model.compile(optimizer=optimizers.SGD(LEARNING_RATE),
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True),
                  **_common.compile_options(model, jit_compile))
    train, loss = _time_training(model.train_on_batch, images, labels, clock)
    predict = _time_predict(lambda x: model.predict(x, batch_size=PREDICT_BATCH), images, clock)
    return {"train": train, "predict": predict, "loss": loss}


def worker_torch(clock=time.perf_counter) -> dict:
    import os

    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))  # set by the driver
    images, labels = _data()
    weights = _init()
    x_all = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    y_all = torch.from_numpy(labels)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(1600, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(weights["conv1"].transpose(3, 2, 0, 1).copy()))
        model[3].weight.copy_(torch.from_numpy(weights["conv2"].transpose(3, 2, 0, 1).copy()))
        # nervenet flattens (h, w, c), torch (c, h, w): permute the rows of the first dense
        dense1 = weights["dense1"].reshape(5, 5, 64, 128).transpose(2, 0, 1, 3).reshape(1600, 128)
        model[7].weight.copy_(torch.from_numpy(dense1.T.copy()))
        model[9].weight.copy_(torch.from_numpy(weights["dense2"].T.copy()))
        for index in (0, 3, 7, 9):
            model[index].bias.zero_()
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)

    def step(index_x, index_y):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(index_x), index_y)
        loss.backward()
        optimizer.step()
        return loss.item()

    train, loss = _time_training(step, x_all, y_all, clock)  # torch takes index arrays too
    model.eval()

    def predict(x):
        with torch.no_grad():
            return torch.cat([model(x[i:i + PREDICT_BATCH])
                              for i in range(0, len(x), PREDICT_BATCH)])

    return {"train": train, "predict": _time_predict(predict, x_all, clock), "loss": loss}


def worker_nervenet_eager(clock=time.perf_counter) -> dict:
    return worker_nervenet(clock, jit_compile=False)


WORKERS = {"nervenet": worker_nervenet, "eager": worker_nervenet_eager, "torch": worker_torch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-foreign", type=float, default=1.0,
                        help="discard a round where other processes took more than this share "
                             "of the CPUs (default 1.0: keep every round)")
    parser.add_argument("--threads", type=int, default=_common.THREADS,
                        help=f"threads of every system (default {_common.THREADS})")
    parser.add_argument("--no-readme", action="store_true",
                        help="do not add the table to README.md")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall: samples per second (default); cpu: samples per CPU-second "
                             "of the worker process (meaningful with --threads 1)")
    parser.add_argument("--systems", nargs="+", choices=list(WORKERS), default=list(WORKERS))
    parser.add_argument("--baseline", metavar="DIR",
                        help="also run nervenet imported from another checkout DIR "
                             "(as nervenet@base)")
    parser.add_argument("--worker", choices=list(WORKERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    if args.worker:
        before = _common.cpu_snapshot()
        result = WORKERS[args.worker](clock)
        result["foreign"] = _common.foreign_share(before, _common.cpu_snapshot())
        print(json.dumps(result))
        return

    def run(system):
        worker, _, base = system.partition("@")
        root = Path(args.baseline).resolve() if base else _common.ROOT
        result = _common.run_worker("cnn.py", [worker, "--clock", args.clock],
                                    threads=args.threads, root=root)
        print(f"  {system:9s} train {result['train']:7.0f} samples/s   predict "
              f"{result['predict']:7.0f} samples/s   last loss {result['loss']:.4f}   "
              f"others' CPU share {result['foreign']:.2f}", flush=True)
        return result

    systems = args.systems + (["nervenet@base"] if args.baseline else [])
    results, discarded = _common.measure_interleaved(systems, run, args.rounds,
                                                     args.max_foreign)
    _report(args, results, discarded)


def _report(args, results: dict, discarded: int) -> None:
    """Print the table of medians and the ratios (each a median over rounds of the ratio within
    a round); add them to README.md unless told not to."""
    med = {system: {key: _common.median([r[key] for r in rows])
                    for key in ("train", "predict", "foreign")}
           for system, rows in results.items()}
    unit = "samples/s" if args.clock == "wall" else "samples/CPU-s"
    rows = [f"| {system} | {m['train']:.0f} | {m['predict']:.0f} | {m['foreign']:.2f} |"
            for system, m in med.items()]
    table = "\n".join([f"| system | train {unit} | predict {unit} | others' CPU share |",
                       "|---|---:|---:|---:|", *rows])
    ratios = []
    for system, other, label in (("nervenet", "torch", "PyTorch"), ("eager", "torch", "PyTorch"),
                                 ("nervenet", "eager", "eager"),
                                 ("nervenet", "nervenet@base", "nervenet@base")):
        if other in results and system in results:
            train = _common.median_ratio([r["train"] for r in results[system]],
                                         [r["train"] for r in results[other]])
            predict = _common.median_ratio([r["predict"] for r in results[system]],
                                           [r["predict"] for r in results[other]])
            ratios.append(f"{system} / {label}: training {train:.3f}x, inference {predict:.3f}x")
    summary = "; ".join(ratios) + f" (medians of {args.rounds} rounds, {discarded} discarded)"
    print(table)
    print(summary)
    if args.baseline:
        print(f"@base: nervenet imported from {Path(args.baseline).resolve()}")
    if not args.no_readme:
        _add_to_readme(f"{_common.today()}, {_common.machine_description()}, {args.threads} "
                       f"threads, batch {BATCH}:\n\n{table}\n\n{summary}\n")


def _add_to_readme(run: str) -> None:
    """Insert ``run`` at the end of README.md's cnn.py section (at the end of the file when
    the section is missing)."""
    path = _common.ROOT / "bench" / "README.md"
    text = path.read_text()
    start = text.find("## cnn.py")
    end = text.find("\n## ", start + 1) if start >= 0 else -1
    if end < 0:
        path.write_text(text.rstrip("\n") + "\n\n" + run)
    else:
        path.write_text(text[:end].rstrip("\n") + "\n\n" + run + text[end:])


if __name__ == "__main__":
    main()

"""Accuracy of the course's MNIST MLP: nervenet's Model.fit against PyTorch on the same data,
split, initialization and batch order.

784-300-100-10 ReLU/softmax, SGD(0.01), batch 32, 30 epochs on the embedded 5k subset
(4,000 train / 1,000 test). Both sides start from the same weights (nervenet's Glorot-uniform
draw, copied into torch) and see the same shuffled batches each epoch, so the two runs differ
only by floating-point rounding. Each system runs in its own process.

Run: python bench/mnist_mlp_accuracy.py [--epochs 30] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def data():
    from nervenet.data import datasets

    (x_train, y_train), (x_test, y_test) = datasets.load_mnist()
    flat = lambda images: images.reshape(len(images), -1).astype(np.float32) / 255.0
    return flat(x_train), y_train.astype(np.int64), flat(x_test), y_test.astype(np.int64)


def initial_weights_and_orders(seed: int, epochs: int, n: int):
    import nervenet
    from nervenet import layers, models

    nervenet.utils.set_random_seed(seed)
    model = models.Sequential([layers.Input(shape=(784,)), layers.Dense(300, activation="relu"),
                               layers.Dense(100, activation="relu"),
                               layers.Dense(10, activation="softmax")])
    rng = np.random.default_rng(seed + 1000)
    orders = [rng.permutation(n) for _ in range(epochs)]
    return model.get_weights(), orders


def run_nervenet(seed: int, epochs: int) -> float:
    from nervenet import layers, models, optimizers

    x, y, x_test, y_test = data()
    weights, orders = initial_weights_and_orders(seed, epochs, len(x))
    model = models.Sequential([layers.Input(shape=(784,)), layers.Dense(300, activation="relu"),
                               layers.Dense(100, activation="relu"),
                               layers.Dense(10, activation="softmax")])
    model.set_weights(weights)
    model.compile(optimizers.SGD(learning_rate=0.01), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    for order in orders:
        model.fit(x[order], y[order], epochs=1, batch_size=32, shuffle=False, verbose=0)
    return float(model.evaluate(x_test, y_test)[1])


def run_torch(seed: int, epochs: int) -> float:
    import torch

    torch.set_num_threads(2)
    x, y, x_test, y_test = data()
    weights, orders = initial_weights_and_orders(seed, epochs, len(x))
    net = torch.nn.Sequential(torch.nn.Linear(784, 300), torch.nn.ReLU(),
                              torch.nn.Linear(300, 100), torch.nn.ReLU(),
                              torch.nn.Linear(100, 10))
    with torch.no_grad():
        for layer, (kernel, bias) in zip([net[0], net[2], net[4]],
                                         zip(weights[0::2], weights[1::2])):
            layer.weight.copy_(torch.from_numpy(kernel.T.copy()))
            layer.bias.copy_(torch.from_numpy(bias))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for order in orders:
        order = torch.from_numpy(order)
        for start in range(0, len(order), 32):
            batch = order[start:start + 32]
            optimizer.zero_grad()
            loss_fn(net(xt[batch]), yt[batch]).backward()
            optimizer.step()
    with torch.no_grad():
        predicted = net(torch.from_numpy(x_test)).argmax(1).numpy()
    return float((predicted == y_test).mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--system", choices=["nervenet", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.system:  # child process: one system, one seed
        run = run_nervenet if args.system == "nervenet" else run_torch
        print(json.dumps(run(args.seed, args.epochs)))
        return
    print(f"MNIST 5k MLP 784-300-100-10, SGD(0.01), batch 32, {args.epochs} epochs, "
          "test accuracy on 1,000 digits (same init and batch order on both sides)")
    print("| seed | nervenet | PyTorch | difference (points) |")
    print("|---|---|---|---|")
    for seed in args.seeds:
        results = {}
        for system in ("nervenet", "torch"):
            out = subprocess.run([sys.executable, __file__, "--system", system, "--seed",
                                  str(seed), "--epochs", str(args.epochs)],
                                 capture_output=True, text=True, check=True)
            results[system] = json.loads(out.stdout.strip().splitlines()[-1])
        difference = 100 * (results["nervenet"] - results["torch"])
        print(f"| {seed} | {results['nervenet']:.3f} | {results['torch']:.3f} | "
              f"{difference:+.1f} |")


if __name__ == "__main__":
    main()

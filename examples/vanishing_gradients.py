"""Vanishing gradients, seen layer by layer.

A deep MLP (8 hidden layers of 32 units) on two-class spirals, trained three ways:

* sigmoid units with Glorot initialization: the gradient norm shrinks by roughly the
  sigmoid's largest slope, 1/4, per layer, so the first layers barely learn;
* ReLU units with He initialization (variance 2 / fan_in keeps the signal's scale): the
  gradient reaches the first layer at about the strength it has at the last;
* the same ReLU net with batch normalization after each hidden layer (when
  layers.BatchNormalization exists).

GradientMonitor records each layer's gradient norm after every epoch; the picture shows them
per layer (log scale), with the loss curves beside.

Run: python examples/vanishing_gradients.py [--epochs N] [--out vanishing_gradients.png]
"""

from __future__ import annotations

import argparse

import numpy as np

import nervenet
from nervenet import layers, models, optimizers
from nervenet.callbacks import GradientMonitor
from nervenet.data import datasets

DEPTH, WIDTH = 8, 32


def build(kind: str) -> models.Sequential:
    stack = [layers.Input(shape=(2,))]
    for index in range(DEPTH):
        name = f"hidden_{index + 1}"
        if kind == "sigmoid":
            stack.append(layers.Dense(WIDTH, activation="sigmoid", name=name))
        elif kind == "relu+he":
            stack.append(layers.Dense(WIDTH, activation="relu", kernel_initializer="he_normal",
                                      name=name))
        else:  # relu+he+bn: Dense -> BatchNormalization -> ReLU
            stack += [layers.Dense(WIDTH, kernel_initializer="he_normal", name=name),
                      layers.BatchNormalization(), layers.Activation("relu")]
    stack.append(layers.Dense(1, activation="sigmoid", name="output"))
    return models.Sequential(stack)


def run(kind: str, x, y, epochs: int):
    nervenet.utils.set_random_seed(0)
    model = build(kind)
    model.compile(optimizers.SGD(learning_rate=0.1), "binary_crossentropy",
                  metrics=["accuracy"])
    monitor = GradientMonitor(x[:256], y[:256], vanishing_ratio=1e-12)  # we show, not warn
    history = model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=[monitor])
    names = [f"hidden_{i + 1}" for i in range(DEPTH)] + ["output"]
    first_epoch = np.array([monitor.history[f"grad_norm/{n}"][0] for n in names])
    return names, first_epoch, history


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", default="vanishing_gradients.png")
    args = parser.parse_args()
    x, y = datasets.make_spirals(1000, noise=0.05, seed=0)
    y = y.astype(np.float32)[:, None]
    kinds = ["sigmoid", "relu+he"]
    if hasattr(layers, "BatchNormalization"):
        kinds.append("relu+he+bn")
    results = {kind: run(kind, x, y, args.epochs) for kind in kinds}
    for kind, (_names, norms, history) in results.items():
        print(f"{kind}: " + " ".join(f"{n:.1e}" for n in norms))
        print(f"{kind} first/last: {norms[0] / norms[-1]:.3e}")
        print(f"{kind} final loss: {history.history['loss'][-1]:.4f}")
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print("install matplotlib (nervenet[plot]) to draw the picture")
        return
    figure = Figure(figsize=(11, 4.5), layout="constrained")
    left, right = figure.subplots(1, 2)
    for kind, (_names, norms, history) in results.items():
        left.semilogy(range(1, len(norms) + 1), norms, "-o", label=kind)
        right.plot(range(1, len(history.history["loss"]) + 1), history.history["loss"],
                   label=kind)
    names = results[kinds[0]][0]
    left.set_xticks(range(1, len(names) + 1), [n.replace("hidden_", "h") for n in names])
    left.set_xlabel("layer (input -> output)")
    left.set_ylabel("gradient norm after epoch 1")
    left.set_title("gradient norm per layer")
    right.set_xlabel("epoch")
    right.set_ylabel("training loss")
    right.set_title("learning curves")
    for axis in (left, right):
        axis.grid(True, alpha=0.3)
        axis.legend()
    figure.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

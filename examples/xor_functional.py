"""XOR learned by a 2-4-1 network written with nervenet.functional and trained by backprop.

XOR is the classic problem a single neuron cannot solve: no line separates {(0, 1), (1, 0)}
from {(0, 0), (1, 1)}. One hidden layer of four tanh units bends the input space so that a
sigmoid output unit can separate them:

    h = tanh(x W1 + b1)          x: (4, 2)   W1: (2, 4)   b1: (4,)
    p = sigmoid(h W2 + b2)       h: (4, 4)   W2: (4, 1)   b2: (1,)
    L = binary cross-entropy of p against the targets, averaged over the four inputs

Training is plain full-batch gradient descent written out by hand: ``loss.backward()`` fills
``.grad`` of the four parameters, then each takes a step ``p.data -= lr * p.grad`` under
``nervenet.no_grad()`` (the update is not part of the model, so it must not be recorded).

Run it with ``make demo`` or ``python examples/xor_functional.py [--seed S] [--epochs N]``.
"""

from __future__ import annotations

import argparse

import numpy as np

import nervenet
import nervenet.functional as F

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
Y = np.array([[0], [1], [1], [0]], dtype=np.float32)


def init_params(rng: np.random.Generator, sizes=(2, 4, 1)) -> list[nervenet.Tensor]:
    """Glorot-uniform weights, U(-r, r) with r = sqrt(6 / (fan_in + fan_out)), zero biases."""
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(np.float32)
        params.append(nervenet.Tensor(w, requires_grad=True, name=f"W{len(params) // 2 + 1}"))
        b = np.zeros(fan_out, dtype=np.float32)
        params.append(nervenet.Tensor(b, requires_grad=True, name=f"b{len(params) // 2 + 1}"))
    return params


def predict(params: list[nervenet.Tensor], x) -> nervenet.Tensor:
    """The network's output probabilities, shape (n, 1)."""
    w1, b1, w2, b2 = params
    h = F.tanh(F.linear(x, w1, b1))
    return F.sigmoid(F.linear(h, w2, b2))


def train(seed: int = 0, epochs: int = 1000, lr: float = 1.0):
    """Train from seeded initial weights; return the parameters and the loss of every epoch."""
    params = init_params(np.random.default_rng(seed))
    losses = []
    for _ in range(epochs):
        loss = F.binary_cross_entropy(Y, predict(params, X))
        for p in params:
            p.zero_grad()  # .grad accumulates over backward calls: start each step from zero
        loss.backward()
        with nervenet.no_grad():
            for p in params:
                p.data -= lr * p.grad
        losses.append(loss.item())
    return params, losses


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights")
    parser.add_argument("--epochs", type=int, default=1000, help="gradient-descent steps")
    parser.add_argument("--lr", type=float, default=1.0, help="learning rate")
    args = parser.parse_args(argv)

    print(f"XOR: 2-4-1 network (tanh, sigmoid), binary cross-entropy, full-batch gradient "
          f"descent, lr={args.lr}, {args.epochs} epochs, seed {args.seed}")
    params, losses = train(args.seed, args.epochs, args.lr)
    every = max(args.epochs // 5, 1)
    for epoch in sorted({1, *range(every, args.epochs + 1, every)}):
        print(f"  epoch {epoch:5d}  loss {losses[epoch - 1]:.4f}")
    with nervenet.no_grad():
        outputs = predict(params, X).numpy()
    print("x1 x2  target  output")
    for x, y, p in zip(X, Y, outputs):
        print(f" {x[0]:.0f}  {x[1]:.0f}     {y[0]:.0f}     {p[0]:.3f}")
    print(f"loss: first {losses[0]:.4f}, last {losses[-1]:.4f}")


if __name__ == "__main__":
    main()

"""The course's MNIST multilayer perceptron: 784-300-100-10, ReLU, softmax, SGD(0.01),
batch 32, 30 epochs, on the embedded 5,000-digit subset (4,000 train / 1,000 test).

Run: python examples/mnist_mlp.py [--epochs N] [--plot history.png]
"""

from __future__ import annotations

import argparse

import numpy as np

import nervenet
from nervenet import layers, models, optimizers
from nervenet.data import datasets


def build_model() -> models.Sequential:
    return models.Sequential([
        layers.Input(shape=(28, 28)),
        layers.Flatten(),
        layers.Dense(300, activation="relu"),
        layers.Dense(100, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ])


def train(epochs: int = 30, seed: int = 42, verbose: int = 2):
    """Train the MLP; returns (model, history, test accuracy)."""
    nervenet.utils.set_random_seed(seed)
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist()
    x_train = x_train.astype(np.float32) / 255.0
    x_test = x_test.astype(np.float32) / 255.0
    model = build_model()
    model.compile(optimizer=optimizers.SGD(learning_rate=0.01),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=epochs, batch_size=32,
                        validation_data=(x_test, y_test), verbose=verbose)
    test_loss, test_accuracy = model.evaluate(x_test, y_test)
    return model, history, test_accuracy


def plot(history, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 5))
    for key, values in history.history.items():
        axis.plot(range(1, len(values) + 1), values, label=key)
    axis.set_xlabel("epoch")
    axis.grid(True)
    axis.legend()
    figure.savefig(path, dpi=100)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--plot", help="write the learning curves to this PNG")
    args = parser.parse_args()
    model, history, accuracy = train(args.epochs)
    model.summary()
    print(f"test accuracy: {accuracy:.4f}")
    if args.plot:
        plot(history, args.plot)


if __name__ == "__main__":
    main()

"""Overfitting and five ways to fight it, on one over-large MLP and a small slice of MNIST.

The same network (784-512-512-10, ReLU, Adam) is trained from the same seed on only 500
digits, validated on 1,000 others, six times: without regularization, with an L2 penalty on
the weights, with dropout, with batch normalization, with early stopping, and with data
augmentation (small random shifts and rotations). For each run it prints the final accuracy
and loss on the training set and on the validation set (both measured in inference mode, so
dropout and augmentation are off) and the gap between them, validation loss minus training
loss (the data loss alone, without penalties): the unregularized network learns the training
set by heart and its gap is the largest.

Run: python examples/overfitting.py [--epochs N] [--train N] [--validation N] [--hidden N]
     [--plot curves.png]
See docs/regularization.md for the discussion.
"""

from __future__ import annotations

import argparse

import numpy as np

import nervenet
from nervenet import callbacks, layers, models, optimizers, regularizers
from nervenet.data import datasets
from nervenet.layers.augmentation import RandomRotation, RandomTranslation
from nervenet.layers.normalization import BatchNormalization, recompute_population_statistics
from nervenet.layers.regularization import Dropout

#: the regularization strengths of the "l2" and "dropout" runs
L2_FACTOR = 5e-3
DROPOUT_RATE = 0.5
RUNS = ("none", "l2", "dropout", "batchnorm", "early_stopping", "augmentation")


def load(n_train: int = 500, n_validation: int = 1000):
    """A small training slice and a validation set of MNIST images (28, 28, 1) in [0, 1]."""
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist()
    x_train = x_train[:n_train, :, :, None].astype(np.float32) / 255
    x_val = x_test[:n_validation, :, :, None].astype(np.float32) / 255
    return (x_train, y_train[:n_train]), (x_val, y_test[:n_validation])


def build(run: str, hidden: int = 512) -> models.Sequential:
    """The over-large MLP, with the regularization that ``run`` names."""
    stack: list = [layers.Input(shape=(28, 28, 1))]
    if run == "augmentation":
        stack += [RandomTranslation(0.1, 0.1, fill_mode="constant"),
                  RandomRotation(0.03, fill_mode="constant")]
    stack.append(layers.Flatten())
    for _ in range(2):
        if run == "batchnorm":  # Dense (no bias: beta plays its part) -> BN -> ReLU
            stack += [layers.Dense(hidden, use_bias=False), BatchNormalization(),
                      layers.Activation("relu")]
        elif run == "l2":
            stack.append(layers.Dense(hidden, activation="relu",
                                      kernel_regularizer=regularizers.L2(L2_FACTOR)))
        else:
            stack.append(layers.Dense(hidden, activation="relu"))
        if run == "dropout":
            stack.append(Dropout(DROPOUT_RATE))
    stack.append(layers.Dense(10, activation="softmax"))
    return models.Sequential(stack)


def train(run: str, data, epochs: int = 30, hidden: int = 512, seed: int = 0) -> dict:
    """Train one run; returns its history and the final train/validation accuracy and loss."""
    if run not in RUNS:
        raise ValueError(f"run must be one of {RUNS}, got {run!r}")
    (x_train, y_train), (x_val, y_val) = data
    nervenet.utils.set_random_seed(seed)
    model = build(run, hidden)
    model.compile(optimizer=optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    extra = []
    if run == "early_stopping":
        extra = [callbacks.EarlyStopping(monitor="val_loss", patience=2,
                                         restore_best_weights=True)]
    history = model.fit(x_train, y_train, epochs=epochs, batch_size=32,
                        validation_data=(x_val, y_val), callbacks=extra, verbose=0)
    if run == "batchnorm":
        # the course's post-processing: population statistics from the final weights (the
        # moving averages of a short run still remember the first, untrained epochs)
        recompute_population_statistics(model, x_train, batch_size=32)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])  # evaluate the data loss alone, without penalties
    train_loss, train_accuracy = model.evaluate(x_train, y_train)
    val_loss, val_accuracy = model.evaluate(x_val, y_val)
    return {"history": history.history, "epochs": len(history.history["loss"]),
            "train_accuracy": train_accuracy, "val_accuracy": val_accuracy,
            "train_loss": train_loss, "val_loss": val_loss,
            "gap": val_loss - train_loss}


def compare(runs=RUNS, n_train: int = 500, epochs: int = 30, hidden: int = 512,
            seed: int = 0, n_validation: int = 1000) -> dict:
    """Every run on the same data and seed: ``{run: result of train}``."""
    data = load(n_train, n_validation)
    return {run: train(run, data, epochs, hidden, seed) for run in runs}


def report(results: dict) -> str:
    lines = [f"{'run':<15} {'epochs':>6} {'train acc':>9} {'val acc':>8} {'gap':>7} "
             f"{'train loss':>10} {'val loss':>9}"]
    for run, r in results.items():
        lines.append(f"{run:<15} {r['epochs']:>6d} {r['train_accuracy']:>9.3f} "
                     f"{r['val_accuracy']:>8.3f} {r['gap']:>7.3f} {r['train_loss']:>10.3f} "
                     f"{r['val_loss']:>9.3f}")
    return "\n".join(lines)


def plot(results: dict, path: str) -> None:
    """Training (solid) and validation (dashed) accuracy of every run, one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 3, figsize=(12, 6), sharex=True, sharey=True)
    for axis, (run, r) in zip(axes.ravel(), results.items()):
        epochs = range(1, r["epochs"] + 1)
        axis.plot(epochs, r["history"]["accuracy"], label="train")
        axis.plot(epochs, r["history"]["val_accuracy"], "--", label="validation")
        axis.set_title(f"{run}: gap {r['gap']:.3f}")
        axis.grid(True)
    axes[0, 0].legend()
    for axis in axes[1]:
        axis.set_xlabel("epoch")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--train", type=int, default=500, help="training digits")
    parser.add_argument("--validation", type=int, default=1000, help="validation digits")
    parser.add_argument("--hidden", type=int, default=512, help="units per hidden layer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", help="write the learning curves to this PNG")
    args = parser.parse_args()
    results = compare(n_train=args.train, epochs=args.epochs, hidden=args.hidden,
                      seed=args.seed, n_validation=args.validation)
    print(report(results))
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()

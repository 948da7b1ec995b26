"""Unsupervised pretraining: an autoencoder learns MNIST digits without labels, then its
encoder starts a classifier that sees only a few labelled digits.

1. An autoencoder 784-128-32-128-784 (sigmoid output, binary cross-entropy) learns to
   reconstruct all 4,000 training digits; no label is used.
2. Its encoder (``autoencoder.layers[:3]``: Flatten, Dense 128, Dense 32) is reused in a new
   Sequential with a softmax layer on top, and trained on ``--labels`` labelled digits: first
   with the encoder frozen (``trainable = False``: only the softmax layer learns), then,
   re-compiled after unfreezing, fine-tuned end to end with a smaller learning rate.
3. The same classifier trained from scratch on the same few labels is the baseline.

The script prints the three test accuracies; which wins depends on the budgets (how long the
autoencoder trained, how many labels): a frozen encoder can only be as good as the features the
reconstruction task shaped, which is why fine-tuning follows.

Run: python examples/pretraining.py [--labels 200] [--ae-epochs 10] [--epochs 30]
"""

from __future__ import annotations

import argparse

import numpy as np

import nervenet
from nervenet import layers, models, optimizers
from nervenet.data import datasets


def build_autoencoder() -> models.Sequential:
    return models.Sequential([
        layers.Input(shape=(28, 28)),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dense(32, activation="relu"),      # the code
        layers.Dense(128, activation="relu"),
        layers.Dense(784, activation="sigmoid"),
        layers.Reshape((28, 28)),
    ])


def classifier_on(encoder_layers) -> models.Sequential:
    return models.Sequential([layers.Input(shape=(28, 28)), *encoder_layers,
                              layers.Dense(10, activation="softmax")])


def fresh_encoder():
    return [layers.Flatten(), layers.Dense(128, activation="relu"),
            layers.Dense(32, activation="relu")]


def run(labels: int = 200, ae_epochs: int = 10, epochs: int = 30, seed: int = 42,
        verbose: int = 0) -> dict:
    """Pretrain, transfer and compare; returns the test accuracies and a frozen-weight check."""
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist()
    x_train = x_train.astype(np.float32) / 255.0
    x_test = x_test.astype(np.float32) / 255.0
    few = np.random.default_rng(seed).choice(len(x_train), labels, replace=False)

    nervenet.utils.set_random_seed(seed)
    autoencoder = build_autoencoder()
    autoencoder.compile(optimizer=optimizers.Adam(learning_rate=1e-3),
                        loss="binary_crossentropy")
    history = autoencoder.fit(x_train, x_train, epochs=ae_epochs, batch_size=64,
                              verbose=verbose)

    # transfer: the encoder's layers (shared, not copied) under a new softmax layer
    encoder = autoencoder.layers[:3]
    pretrained = classifier_on(encoder)
    for layer in encoder:
        layer.trainable = False
    frozen_before = [w.copy() for layer in encoder for w in layer.get_weights()]
    # only the new softmax layer learns here: it can take a larger step
    pretrained.compile(optimizer=optimizers.Adam(learning_rate=1e-2),
                       loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    pretrained.fit(x_train[few], y_train[few], epochs=epochs, batch_size=32, verbose=verbose)
    frozen_after = [w for layer in encoder for w in layer.get_weights()]
    frozen_unchanged = all(np.array_equal(a, b) for a, b in zip(frozen_before, frozen_after))
    frozen_accuracy = pretrained.evaluate(x_test, y_test)[1]

    for layer in encoder:                      # fine-tune: unfreeze, then compile again
        layer.trainable = True
    pretrained.compile(optimizer=optimizers.Adam(learning_rate=1e-4),
                       loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    pretrained.fit(x_train[few], y_train[few], epochs=max(epochs // 3, 1), batch_size=32,
                   verbose=verbose)
    fine_tuned_accuracy = pretrained.evaluate(x_test, y_test)[1]

    nervenet.utils.set_random_seed(seed)
    scratch = classifier_on(fresh_encoder())
    scratch.compile(optimizer=optimizers.Adam(learning_rate=1e-3),
                    loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    scratch.fit(x_train[few], y_train[few], epochs=epochs + max(epochs // 3, 1), batch_size=32,
                verbose=verbose)
    scratch_accuracy = scratch.evaluate(x_test, y_test)[1]
    return {"reconstruction_loss": history.history["loss"],
            "frozen": frozen_accuracy, "fine_tuned": fine_tuned_accuracy,
            "scratch": scratch_accuracy, "frozen_unchanged": frozen_unchanged}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=200, help="labelled training digits")
    parser.add_argument("--ae-epochs", type=int, default=10, help="autoencoder epochs")
    parser.add_argument("--epochs", type=int, default=30, help="classifier epochs")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    result = run(args.labels, args.ae_epochs, args.epochs, args.seed)
    losses = result["reconstruction_loss"]
    print(f"autoencoder reconstruction loss: first {losses[0]:.4f}, last {losses[-1]:.4f}")
    print(f"encoder weights unchanged while frozen: {result['frozen_unchanged']}")
    print(f"test accuracy with {args.labels} labels:")
    print(f"  pretrained encoder, frozen     {result['frozen']:.3f}")
    print(f"  pretrained encoder, fine-tuned {result['fine_tuned']:.3f}")
    print(f"  from scratch                   {result['scratch']:.3f}")


if __name__ == "__main__":
    main()

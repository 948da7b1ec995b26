"""The XOR problem, twice: with the course's hand-set weights, then learned by backprop.

1. XOR(x1, x2) = AND(NAND(x1, x2), OR(x1, x2)): a hidden layer of two step units (NAND and OR)
   followed by one step unit (AND) computes XOR with fixed weights. No single unit can.
2. The same 2-2-1 shape with sigmoid units (differentiable, so backpropagation applies),
   trained with Model.fit on the four examples.

Run: python examples/xor.py
"""

from __future__ import annotations

import numpy as np

import nervenet
from nervenet import layers, models, optimizers

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
Y = np.array([[0], [1], [1], [0]], dtype=np.float32)


def fixed_weight_network() -> models.Sequential:
    """Hidden unit 1 = NAND (w = [-2, -2], b = 3), hidden unit 2 = OR (w = [2, 2], b = -1),
    output = AND (w = [1, 1], b = -1.5); every unit is a step."""
    model = models.Sequential([layers.Input(shape=(2,)), layers.Dense(2, activation="step"),
                               layers.Dense(1, activation="step")])
    model.set_weights([np.array([[-2.0, 2.0], [-2.0, 2.0]]), np.array([3.0, -1.0]),
                       np.array([[1.0], [1.0]]), np.array([-1.5])])
    return model


def trained_network(epochs: int = 2000, seed: int = 1):
    """A 2-4-1 tanh/sigmoid network trained by backprop (SGD with momentum, full batch)."""
    nervenet.utils.set_random_seed(seed)
    model = models.Sequential([layers.Input(shape=(2,)), layers.Dense(4, activation="tanh"),
                               layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=optimizers.SGD(learning_rate=0.5, momentum=0.9),
                  loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(X, Y, epochs=epochs, batch_size=4, verbose=0)
    return model, history


def main():
    fixed = fixed_weight_network()
    print("Fixed weights (NAND, OR -> AND):", fixed.predict(X).ravel().astype(int).tolist())
    model, history = trained_network()
    outputs = model.predict(X).ravel()
    losses = history.history["loss"]
    print("Learned by backprop:", np.round(outputs, 3).tolist())
    print(f"loss: first {losses[0]:.4f}, last {losses[-1]:.4f}; "
          f"accuracy {history.history['accuracy'][-1]:.2f}")
    return fixed, model, history


if __name__ == "__main__":
    main()

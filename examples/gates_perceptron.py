"""Logic gates with a single perceptron, trained by Rosenblatt's rule.

AND, OR and NAND are linearly separable: the perceptron rule finds a separating line in a few
epochs. XOR is not: no line separates {(0,1), (1,0)} from {(0,0), (1,1)}, and the rule keeps
making mistakes until it gives up after ``epochs`` passes (see examples/xor.py for the fix: a
hidden layer).

Run: python examples/gates_perceptron.py
"""

from __future__ import annotations

import numpy as np

from nervenet import layers
from nervenet.models.perceptron import perceptron_rule

INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
GATES = {
    "AND": np.array([0, 0, 0, 1]),
    "OR": np.array([0, 1, 1, 1]),
    "NAND": np.array([1, 1, 1, 0]),
    "XOR": np.array([0, 1, 1, 0]),
}


def train_gate(targets: np.ndarray, epochs: int = 20, seed: int = 0):
    """Train one step unit on a gate's truth table; return (unit, errors per epoch)."""
    unit = layers.Dense(1, activation="step", kernel_initializer="zeros")
    errors = perceptron_rule(unit, INPUTS, targets, learning_rate=1.0, epochs=epochs, seed=seed)
    return unit, errors


def main() -> dict[str, bool]:
    learned = {}
    for name, targets in GATES.items():
        unit, errors = train_gate(targets)
        outputs = unit(INPUTS).data.ravel().astype(int)
        learned[name] = bool(np.array_equal(outputs, targets))
        w = unit.kernel.data.ravel()
        b = unit.bias.data[0]
        status = f"learned in {len(errors)} epochs" if learned[name] else (
            f"NOT learned after {len(errors)} epochs (errors in the last: {errors[-1]})")
        print(f"{name:>4}: w = {w.tolist()}, b = {b:+.1f} -> outputs {outputs.tolist()}  "
              f"{status}")
    return learned


if __name__ == "__main__":
    main()

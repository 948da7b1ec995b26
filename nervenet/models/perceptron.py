"""Rosenblatt's perceptron learning rule, for a model whose last layer is a step unit.

The step function's derivative is zero wherever it exists, so backpropagation gives no signal
through it. A perceptron is therefore trained by its own rule (Rosenblatt, 1958): for each
sample, predict ``y_hat = step(w . x + b)`` and move the weights by the error,

    w <- w + eta * (y - y_hat) * x
    b <- b + eta * (y - y_hat)

which changes nothing when the prediction is right. If the classes are linearly separable the
rule converges in a finite number of updates (the perceptron convergence theorem); for XOR it
never does, which is why hidden layers (and differentiable activations) are needed.

The rule is written once, here: ``perceptron_update`` is the update itself (scikit-learn's
``nervenet.sklearn.Perceptron`` calls it too), ``net_input`` the ``w . x + b`` the step
thresholds (the command line answers by it), and ``perceptron_rule`` trains a step layer.
"""

from __future__ import annotations

import numpy as np

from nervenet import backend
from nervenet.autograd import no_grad
from nervenet.autograd.ops.matmul import linear
from nervenet.layers.core import Dense


def perceptron_update(kernel: np.ndarray, bias: np.ndarray | None, x: np.ndarray, error,
                      learning_rate: float) -> None:
    """Rosenblatt's rule for one sample, in place: ``w <- w + eta * error * x`` and
    ``b <- b + eta * error``.

    Args:
        kernel: the weights, (n_features, units) or (n_features,) for one unit.
        bias: the bias, (units,) or (1,); ``None``: no bias.
        x: the sample, (n_features,).
        error: ``y - y_hat`` per unit, (units,) or a number (zero where the prediction is
            right; scikit-learn's form passes ``y * sample_weight`` on a mistake).
        learning_rate: eta.
    """
    step = learning_rate * np.asarray(error)
    kernel += np.multiply.outer(x, step)
    if bias is not None:
        bias += step


def net_input(layer: Dense, x) -> np.ndarray:
    """A step layer's net input ``x @ kernel + bias`` (what the step thresholds), an array."""
    with no_grad():
        return linear(np.asarray(x, dtype=layer.dtype), layer.kernel, layer.bias).data


def perceptron_rule(layer: Dense, x, y, learning_rate: float = 1.0, epochs: int = 100,
                    shuffle: bool = True, seed=None) -> list[int]:
    """Train a ``Dense(units, activation="step")`` layer with the perceptron rule.

    Args:
        layer: the step layer (its kernel and bias are updated in place).
        x: inputs of shape (n_samples, n_features).
        y: targets of shape (n_samples,) or (n_samples, units), with the step's two values
            (0/1 for the default step, -1/1 for a bipolar one).
        learning_rate: eta (default 1.0).
        epochs: the maximum number of passes over the data (default 100).
        shuffle: visit the samples in a new random order each epoch (default ``True``).
        seed: an int or Generator for the order (default: the global seed).

    Returns:
        The number of misclassified samples seen during each epoch; training stops after the
        first epoch with none.

    Example:
        >>> from nervenet import layers
        >>> unit = layers.Dense(1, activation="step", kernel_initializer="zeros")
        >>> x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
        >>> errors = perceptron_rule(unit, x, np.array([0, 0, 0, 1]), seed=0)  # AND
        >>> errors[-1], unit(x).data.ravel().tolist()
        (0, [0.0, 0.0, 0.0, 1.0])
    """
    x, y = _checked(layer, x, y, learning_rate)
    rng = backend.make_rng(seed)
    history = []
    for _ in range(epochs):
        errors = 0
        order = rng.permutation(len(x)) if shuffle else np.arange(len(x))
        for i in order:
            with no_grad():
                prediction = layer(x[i:i + 1]).data[0]
            error = y[i] - prediction
            if np.any(error != 0):
                errors += 1
                perceptron_update(layer.kernel.data, None if layer.bias is None
                                  else layer.bias.data, x[i], error, learning_rate)
        history.append(errors)
        if errors == 0:
            break
    return history


def _checked(layer: Dense, x, y, learning_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``y`` as (n, features) and (n, units) arrays of the layer's dtype, checked; the
    layer is built."""
    if not isinstance(layer, Dense):
        raise TypeError(f"perceptron_rule: layer must be a Dense layer, got "
                        f"{type(layer).__name__}")
    if not learning_rate > 0:
        raise ValueError(f"perceptron_rule: learning_rate must be > 0, got {learning_rate}")
    x = np.asarray(x, dtype=layer.dtype)
    if x.ndim != 2:
        raise ValueError(f"perceptron_rule: x must have shape (n_samples, n_features), got "
                         f"{x.shape}")
    y = np.asarray(y, dtype=layer.dtype).reshape(len(x), -1)
    if not np.all(np.isfinite(x)):
        raise ValueError("perceptron_rule: x contains NaN or Inf")
    with no_grad():
        layer(x[:1])  # builds the layer (and checks the feature count)
    if y.shape[1] != layer.units:
        raise ValueError(f"perceptron_rule: y has {y.shape[1]} column(s) but the layer has "
                         f"{layer.units} unit(s)")
    return x, y

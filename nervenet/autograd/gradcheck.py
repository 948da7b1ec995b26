"""Finite-difference checks of analytic gradients, for tests and for users writing new ops.

For a function f and a random upstream gradient v, backpropagation gives
``d(sum(v * f(x)))/dx``; central differences estimate the same number element by element:

    (sum(v * f(x + eps e_i)) - sum(v * f(x - eps e_i))) / (2 eps)

A random v (not all ones) catches a backward that forgets to multiply by the upstream
gradient, and a zero v must give exactly zero gradients.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from nervenet.autograd.engine import grad
from nervenet.autograd.function import enable_grad, no_grad
from nervenet.autograd.tensor import Tensor


class GradcheckError(AssertionError):
    """Analytic and numerical gradients disagree."""


def _prepare(inputs) -> list[Tensor]:
    if isinstance(inputs, (Tensor, np.ndarray)) or not isinstance(inputs, Sequence):
        inputs = [inputs]
    prepared = []
    for x in inputs:
        data = x.data if isinstance(x, Tensor) else np.asarray(x)
        if data.dtype.kind == "f":
            prepared.append(Tensor(data.astype(np.float64), requires_grad=True))
        else:
            prepared.append(Tensor(data))  # labels, indices, masks: not differentiated
    return prepared


def _as_outputs(result) -> list[Tensor]:
    return [result] if isinstance(result, Tensor) else [y for y in result if y is not None]


def _weighted_sum(fn, inputs, upstream) -> float:
    with no_grad():
        outputs = _as_outputs(fn(*inputs))
    return sum(float(np.sum(v * y.data)) for v, y in zip(upstream, outputs))


def _numerical_grad(fn, inputs, upstream, index: int, eps: float) -> np.ndarray:
    x = inputs[index].data
    numeric = np.zeros_like(x)
    flat, numeric_flat = x.reshape(-1), numeric.reshape(-1)
    for i in range(flat.size):
        original = flat[i]
        flat[i] = original + eps
        plus = _weighted_sum(fn, inputs, upstream)
        flat[i] = original - eps
        minus = _weighted_sum(fn, inputs, upstream)
        flat[i] = original
        numeric_flat[i] = (plus - minus) / (2 * eps)
    return numeric


def gradcheck(fn: Callable, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              seed: int = 0) -> bool:
    """Check backpropagated gradients of ``fn`` against central finite differences.

    Args:
        fn: a function of Tensors returning a Tensor or a tuple of Tensors.
        inputs: a Tensor/array or a sequence of them. Floating inputs are copied to float64 and
            differentiated; integer or boolean inputs (labels, masks) are passed unchanged.
        eps: the finite-difference step (default 1e-6).
        atol: absolute tolerance (default 1e-5).
        rtol: relative tolerance, against the numerical value (default 1e-3).
        seed: seed of the random upstream gradient (default 0).

    Returns:
        True when every element satisfies ``|analytic - numeric| <= atol + rtol * |numeric|``.

    Raises:
        GradcheckError: naming the input, the worst element and both values.

    Example:
        >>> import nervenet
        >>> nervenet.gradcheck(lambda x: x * x, [nervenet.tensor([1.0, 2.0])])
        True
    """
    inputs = _prepare(inputs)
    differentiable = [i for i, x in enumerate(inputs) if x.requires_grad]
    if not differentiable:
        raise ValueError("gradcheck: no floating input to differentiate")
    outputs = _as_outputs(fn(*inputs))
    rng = np.random.default_rng(seed)
    upstream = [rng.standard_normal(y.shape) for y in outputs]
    targets = [inputs[i] for i in differentiable]

    # Outputs that do not depend on any input (no graph) have zero gradient.
    linked = [(y, v) for y, v in zip(outputs, upstream) if y.requires_grad]
    if linked:
        _check_zero_upstream([y for y, _ in linked], targets, differentiable)
        analytic = grad([y for y, _ in linked], targets, [Tensor(v) for _, v in linked],
                        allow_unused=True)
    else:
        analytic = [None] * len(targets)
    for position, g in zip(differentiable, analytic):
        x = inputs[position]
        got = np.zeros_like(x.data) if g is None else g.data
        _compare(position, x, got, _numerical_grad(fn, inputs, upstream, position, eps),
                 atol, rtol)
    return True


def _check_zero_upstream(outputs: list, targets: list, positions: list[int]) -> None:
    """A zero upstream gradient must give zero gradients (no constant terms in backward)."""
    zero_grads = grad(outputs, targets, [np.zeros(y.shape) for y in outputs],
                      retain_graph=True, allow_unused=True)
    for position, g in zip(positions, zero_grads):
        if g is not None and np.any(g.data != 0):
            raise GradcheckError(
                f"gradcheck: input {position}: a zero upstream gradient gave a non-zero "
                f"gradient (max |g| = {np.abs(g.data).max():.3g})")


def _compare(position: int, x: Tensor, got: np.ndarray, numeric: np.ndarray, atol: float,
             rtol: float) -> None:
    """Raise GradcheckError naming the worst element where ``got`` and ``numeric`` differ."""
    if got.shape != x.shape:
        raise GradcheckError(
            f"gradcheck: input {position}: gradient has shape {got.shape}, input {x.shape}")
    if got.dtype != x.dtype:
        raise GradcheckError(
            f"gradcheck: input {position}: gradient dtype {got.dtype}, input {x.dtype}")
    excess = np.abs(got - numeric) - (atol + rtol * np.abs(numeric))
    if np.any(excess > 0) or not np.all(np.isfinite(got)):
        worst = np.unravel_index(np.nanargmax(np.where(np.isfinite(got), excess, np.inf)),
                                 x.shape) if x.ndim else ()
        raise GradcheckError(
            f"gradcheck: input {position} (shape {x.shape}): analytic and numerical gradients "
            f"differ; worst element {tuple(int(i) for i in worst)}: analytic "
            f"{got[worst]!r}, numerical {numeric[worst]!r} (atol={atol}, rtol={rtol})")


def gradgradcheck(fn: Callable, inputs, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, seed: int = 0) -> bool:
    """Check second derivatives: gradcheck of the (create_graph) gradient of ``fn``.

    The gradient ``x -> d(sum(v * fn(x)))/dx`` for a fixed random ``v`` is computed with
    ``create_graph=True`` and then checked against finite differences like any function,
    which exercises every op's backward as a differentiable function (double backward).

    Args and Returns: as ``gradcheck``.
    """
    inputs = _prepare(inputs)
    rng = np.random.default_rng(seed + 1)
    with no_grad():
        upstream = [rng.standard_normal(y.shape) for y in _as_outputs(fn(*inputs))]

    def first_derivative(*xs):
        with enable_grad():  # the numerical pass calls this under no_grad
            targets = [x for x in xs if x.requires_grad]
            outputs = _as_outputs(fn(*xs))
            grads = grad(outputs, targets, [Tensor(v) for v in upstream], create_graph=True,
                         allow_unused=True)
        return tuple(g for g in grads if g is not None)

    return gradcheck(first_derivative, inputs, eps=eps, atol=atol, rtol=rtol, seed=seed)

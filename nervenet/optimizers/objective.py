"""The loss of a model as a function of one flat vector: what second-order methods work on.

``FlatObjective(loss_fn, params)`` concatenates every parameter into one float64 vector ``x``
and gives ``f(x)``, ``grad f(x)`` and the exact Hessian, writing ``x`` back into the parameter
tensors (in their own dtype) before each evaluation of ``loss_fn``.

The Hessian comes from double backward: ``nervenet.grad(loss, params, create_graph=True)``
gives the gradient as a differentiable graph, and differentiating each of its entries again
gives one row of H (n backward passes for n parameters: small models only).
"""

from __future__ import annotations

import math

import numpy as np

from nervenet.autograd.engine import grad as autograd_grad
from nervenet.autograd.function import enable_grad
from nervenet.autograd.tensor import Tensor


class FlatObjective:
    """``loss_fn`` seen as a function of one flat float64 vector ``x`` of all parameters."""

    def __init__(self, loss_fn, params, owner: str):
        if not callable(loss_fn):
            raise TypeError(f"{owner}.minimize: loss_fn must be callable, got "
                            f"{type(loss_fn).__name__}")
        params = [params] if isinstance(params, Tensor) else list(params)
        if not params:
            raise ValueError(f"{owner}.minimize: params is empty")
        for i, p in enumerate(params):
            if not isinstance(p, Tensor) or not p.requires_grad or p.creator is not None:
                raise ValueError(f"{owner}.minimize: params[{i}] must be a leaf Tensor with "
                                 "requires_grad=True")
        self.owner, self.loss_fn, self.params = owner, loss_fn, params
        sizes = [p.size for p in params]
        self.slices = [slice(a, b) for a, b in zip(np.cumsum([0] + sizes), np.cumsum(sizes))]
        self.nfev = 0
        self.epsilon = float(np.finfo(np.float64).eps)

    def noise(self, value: float) -> float:
        """The rounding error to expect in a loss value: a hundred ulps of its dtype."""
        return 100.0 * self.epsilon * abs(value)

    def get(self) -> np.ndarray:
        return np.concatenate([p.data.reshape(-1) for p in self.params]).astype(np.float64)

    def set(self, x: np.ndarray) -> None:
        for p, part in zip(self.params, self.slices):
            np.copyto(p.data, x[part].reshape(p.shape), casting="same_kind")

    def _flatten(self, grads) -> np.ndarray:
        return np.concatenate([np.zeros(p.size) if g is None else g.data.reshape(-1)
                               for p, g in zip(self.params, grads)]).astype(np.float64)

    def _loss(self) -> Tensor:
        with enable_grad():
            loss = self.loss_fn()
        self.nfev += 1
        if not isinstance(loss, Tensor) or loss.size != 1:
            raise TypeError(f"{self.owner}.minimize: loss_fn must return a one-element Tensor, "
                            f"got {type(loss).__name__} {getattr(loss, 'shape', '')}")
        if loss.dtype.kind == "f":
            self.epsilon = float(np.finfo(loss.dtype).eps)
        return loss

    def _check_grad(self, g: np.ndarray) -> None:
        if not np.isfinite(g).all():
            raise FloatingPointError(f"{self.owner}.minimize: the gradient of loss_fn contains "
                                     "NaN or inf at a finite loss")

    def value_and_grad(self, x: np.ndarray):
        """``(f(x), grad f(x))``; the gradient is None when the loss is not finite."""
        self.set(x)
        loss = self._loss()
        value = loss.item()
        if not math.isfinite(value):
            return value, None
        if not loss.requires_grad:
            return value, np.zeros(x.size)
        g = self._flatten(autograd_grad(loss, self.params, allow_unused=True))
        self._check_grad(g)
        return value, g

    def hessian(self, x: np.ndarray) -> np.ndarray:
        """The exact Hessian at ``x``: row i is the gradient of ``grad_i f`` (double backward)."""
        self.set(x)
        loss = self._loss()
        n = x.size
        hessian = np.zeros((n, n))
        if not loss.requires_grad:
            return hessian
        grads = autograd_grad(loss, self.params, create_graph=True, allow_unused=True)
        for g, part in zip(grads, self.slices):
            if g is None or not g.requires_grad:      # constant gradient: these rows are 0
                continue
            for k in range(g.size):
                seed = np.zeros(g.shape, dtype=g.dtype)
                seed.reshape(-1)[k] = 1
                rows = autograd_grad([g], self.params, grad_outputs=[seed], retain_graph=True,
                                     allow_unused=True)
                hessian[part.start + k] = self._flatten(rows)
        # Symmetric in exact arithmetic; average away the rounding.
        return 0.5 * (hessian + hessian.T)

"""Problems shared by the optimizer tests: a small nonlinear loss written twice, once with
nervenet's autograd and once with torch's, so that trajectories can be compared step by step."""

from __future__ import annotations

import numpy as np

import nervenet
import nervenet.functional as F


def make_problem(seed: int = 0):
    """Fixed data and starting weights of a two-parameter logistic-like loss with a quartic
    term (gradients of varied size and sign, so clipping and adaptivity both matter)."""
    rng = np.random.default_rng(seed)
    return {
        "x": rng.standard_normal((8, 4)),
        "y": (rng.random((8, 3)) > 0.5).astype(np.float64),
        "w": rng.standard_normal((4, 3)),
        "b": rng.standard_normal(3),
    }


def nervenet_loss(problem, w, b):
    """mean(softplus(z) - y z) * 5 + 0.1 sum(w^4),  z = x w + b."""
    z = F.matmul(problem["x"], w) + b
    softplus = F.log(1.0 + F.exp(z))
    return ((softplus - problem["y"] * z).mean()) * 5.0 + 0.1 * (w ** 4).sum()


def torch_loss(torch, problem, w, b):
    x = torch.tensor(problem["x"])
    y = torch.tensor(problem["y"])
    z = x @ w + b
    return (torch.log(1.0 + torch.exp(z)) - y * z).mean() * 5.0 + 0.1 * (w ** 4).sum()


def nervenet_gradients(problem, w, b):
    loss = nervenet_loss(problem, w, b)
    return nervenet.grad(loss, [w, b])

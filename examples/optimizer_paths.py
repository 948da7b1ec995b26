"""Paths of nervenet's optimizers on two 2-D loss surfaces: Rosenbrock's valley and a saddle.

Run ``python examples/optimizer_paths.py`` to print how far each optimizer got and write
``docs/images/optimizer_paths.png`` (needs matplotlib: ``pip install nervenet[plot]``).

Every first-order optimizer takes the same number of steps, each with the gradient computed by
nervenet's autograd; the second-order methods run ``minimize`` to convergence and the
callback records each iterate.
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np

import nervenet
from nervenet import optimizers


def rosenbrock(p):
    """(1 - x)^2 + 100 (y - x^2)^2: a curved, narrow valley; minimum 0 at (1, 1)."""
    return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2


def saddle(p):
    """x^2 - y^2 + y^4 / 4: a saddle at the origin, minima -1 at (0, +-sqrt(2))."""
    return p[0] ** 2 - p[1] ** 2 + 0.25 * p[1] ** 4


SURFACES = {
    "Rosenbrock": {"loss": rosenbrock, "start": (-1.2, 1.0), "steps": 1500,
                   "box": ((-1.6, 1.5), (-0.4, 1.6)), "minima": [(1.0, 1.0)]},
    "saddle": {"loss": saddle, "start": (1.5, 1e-3), "steps": 150,
               "box": ((-1.7, 1.7), (-2.0, 2.0)),
               "minima": [(0.0, 2 ** 0.5), (0.0, -(2 ** 0.5))]},
}

# Learning rates chosen by hand for each surface: the largest that stays stable, roughly.
FIRST_ORDER = {
    "SGD": lambda s: optimizers.SGD(1e-3 if s == "Rosenbrock" else 0.02),
    "Momentum": lambda s: optimizers.SGD(2e-4 if s == "Rosenbrock" else 0.02, momentum=0.9),
    "Nesterov": lambda s: optimizers.SGD(2e-4 if s == "Rosenbrock" else 0.02, momentum=0.9,
                                         nesterov=True),
    "Adagrad": lambda s: optimizers.Adagrad(0.5 if s == "Rosenbrock" else 0.3),
    "RMSprop": lambda s: optimizers.RMSprop(0.01 if s == "Rosenbrock" else 0.02),
    "Adam": lambda s: optimizers.Adam(0.05 if s == "Rosenbrock" else 0.05),
}

SECOND_ORDER = {
    "Newton": lambda: optimizers.Newton(),
    "CG (Polak-Ribiere)": lambda: optimizers.ConjugateGradient(),
    "BFGS": lambda: optimizers.BFGS(),
    "L-BFGS": lambda: optimizers.LBFGS(),
}


def first_order_path(optimizer, loss, start, steps):
    """The iterates of ``steps`` optimizer steps from ``start``."""
    point = nervenet.Tensor(np.array(start, dtype=np.float64), requires_grad=True)
    path = [point.data.copy()]
    for _ in range(steps):
        (gradient,) = nervenet.grad(loss(point), [point])
        optimizer.apply_gradients([(gradient, point)])
        path.append(point.data.copy())
    return np.array(path)


def second_order_path(optimizer, loss, start):
    """The iterates of ``optimizer.minimize`` from ``start``."""
    point = nervenet.Tensor(np.array(start, dtype=np.float64), requires_grad=True)
    path = [point.data.copy()]
    optimizer.minimize(lambda: loss(point), [point],
                       callback=lambda nit, value: path.append(point.data.copy()))
    return np.array(path)


def compute_paths(steps_scale: float = 1.0):
    """``{surface: {method: path array (k, 2)}}`` for every surface and method."""
    paths = {}
    for surface, spec in SURFACES.items():
        steps = max(1, int(spec["steps"] * steps_scale))
        paths[surface] = {
            name: first_order_path(make(surface), spec["loss"], spec["start"], steps)
            for name, make in FIRST_ORDER.items()
        }
        paths[surface].update({
            name: second_order_path(make(), spec["loss"], spec["start"])
            for name, make in SECOND_ORDER.items()
        })
    return paths


def summarize(paths) -> str:
    lines = [f"{'surface':<12}{'method':<20}{'steps':>7}{'final loss':>14}   final point"]
    for surface, per_method in paths.items():
        loss = SURFACES[surface]["loss"]
        for name, path in per_method.items():
            x, y = path[-1]
            lines.append(f"{surface:<12}{name:<20}{len(path) - 1:>7}"
                         f"{float(loss(path[-1])):>14.3e}   ({x:+.4f}, {y:+.4f})")
    return "\n".join(lines)


def main(output: str = "docs/images/optimizer_paths.png") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = compute_paths()
    print(summarize(paths))
    figure, axes = plt.subplots(2, 2, figsize=(13, 11))
    colors = plt.get_cmap("tab10").colors
    for row, (surface, per_method) in zip(axes, paths.items()):
        spec = SURFACES[surface]
        (x0, x1), (y0, y1) = spec["box"]
        xs, ys = np.meshgrid(np.linspace(x0, x1, 240), np.linspace(y0, y1, 240))
        zs = spec["loss"](np.stack([xs, ys]))
        if surface == "Rosenbrock":
            zs = np.log10(zs + 1e-3)     # the valley floor is invisible on a linear scale
        for axis, family in zip(row, (FIRST_ORDER, SECOND_ORDER)):
            axis.contour(xs, ys, zs, levels=25, cmap="Greys", linewidths=0.6)
            for color, name in zip(colors, family):
                path = per_method[name]
                marker = None if family is FIRST_ORDER else "o"
                axis.plot(path[:, 0], path[:, 1], color=color, marker=marker, markersize=3,
                          linewidth=1.5, label=f"{name} ({len(path) - 1} steps)")
            axis.plot(*spec["start"], "k^", markersize=9, label="start")
            for minimum in spec["minima"]:
                axis.plot(*minimum, "k*", markersize=13)
            axis.set_xlim(x0, x1)
            axis.set_ylim(y0, y1)
            what = (f"first order, {spec['steps']} steps" if family is FIRST_ORDER
                    else "second order, minimize to convergence")
            axis.set_title(f"{surface}: {what}", fontsize=11)
            axis.legend(fontsize=8, loc="lower right" if surface == "Rosenbrock" else "upper left")
    figure.tight_layout()
    pathlib.Path(output).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=80)
    print(f"wrote {output}")


if __name__ == "__main__":
    main(*sys.argv[1:])

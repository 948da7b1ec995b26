"""The playground's data: TensorFlow Playground's six 2-D datasets, the XOR truth table, and
the input features computed from (x1, x2).

The four classification sets and the two regression planes follow TF Playground's generators
(points in [-6, 6]^2); classification labels are 0/1 (a sigmoid output with binary
cross-entropy), regression targets lie in [-1, 1] (a linear output with squared error).
``xor_gate`` is the course's truth table: the four corners of [0, 1]^2, each repeated with
Gaussian jitter, for the perceptron and the hand-set XOR network.
"""

from __future__ import annotations

import numpy as np

CLASSIFICATION = ("circle", "xor", "gauss", "spiral", "xor_gate")
REGRESSION = ("reg_plane", "reg_gauss")
DATASETS = CLASSIFICATION + REGRESSION

FEATURES = {
    "x1": lambda x1, x2: x1,
    "x2": lambda x1, x2: x2,
    "x1sq": lambda x1, x2: x1 * x1,
    "x2sq": lambda x1, x2: x2 * x2,
    "x1x2": lambda x1, x2: x1 * x2,
    "sinx1": lambda x1, x2: np.sin(x1),
    "sinx2": lambda x1, x2: np.sin(x2),
}


def domain(name: str) -> tuple[float, float]:
    """The square shown in the heatmap: [-6, 6] (TF Playground), [-0.5, 1.5] for the gates."""
    return (-0.5, 1.5) if name == "xor_gate" else (-6.0, 6.0)


def _circle(n, noise, rng):
    radius = 5.0
    r = np.concatenate([rng.uniform(0, radius * 0.5, n // 2),
                        rng.uniform(radius * 0.7, radius, n - n // 2)])
    angle = rng.uniform(0, 2 * np.pi, n)
    x = np.column_stack([r * np.sin(angle), r * np.cos(angle)])
    shifted = x + rng.uniform(-radius, radius, (n, 2)) * noise
    # the label is taken after the noise, as TF Playground does: noise moves points across
    y = (np.hypot(shifted[:, 0], shifted[:, 1]) < radius * 0.5).astype(float)
    return x, y


def _xor(n, noise, rng):
    x = rng.uniform(-5, 5, (n, 2))
    x += np.where(x > 0, 0.3, -0.3)  # a gap around the axes
    shifted = x + rng.uniform(-5, 5, (n, 2)) * noise
    return x, (shifted[:, 0] * shifted[:, 1] >= 0).astype(float)


def _gauss(n, noise, rng):
    variance = 0.5 + 3.5 * noise / 0.5  # TF: noise 0..0.5 maps to variance 0.5..4
    half = n // 2
    x = np.concatenate([rng.normal(2, np.sqrt(variance), (half, 2)),
                        rng.normal(-2, np.sqrt(variance), (n - half, 2))])
    return x, np.concatenate([np.ones(half), np.zeros(n - half)])


def _spiral(n, noise, rng):
    parts, labels = [], []
    for label, delta, count in ((1.0, 0.0, n // 2), (0.0, np.pi, n - n // 2)):
        i = np.arange(count)
        r = i / count * 5
        t = 1.75 * i / count * 2 * np.pi + delta
        parts.append(np.column_stack([r * np.sin(t), r * np.cos(t)])
                     + rng.uniform(-1, 1, (count, 2)) * noise)
        labels.append(np.full(count, label))
    return np.concatenate(parts), np.concatenate(labels)


def _xor_gate(n, noise, rng):
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    index = np.arange(n) % 4
    x = corners[index] + rng.normal(0, 0.25, (n, 2)) * noise
    return x, np.array([0.0, 1.0, 1.0, 0.0])[index]


def _reg_plane(n, noise, rng):
    x = rng.uniform(-6, 6, (n, 2))
    shifted = x + rng.uniform(-6, 6, (n, 2)) * noise
    return x, (shifted[:, 0] + shifted[:, 1]) / 10  # [-10, 10] scaled to [-1, 1]


_GAUSSIANS = [(-4, 2.5, 1), (0, 2.5, -1), (4, 2.5, 1), (-4, -2.5, -1), (0, -2.5, 1),
              (4, -2.5, -1)]


def _reg_gauss(n, noise, rng):
    x = rng.uniform(-6, 6, (n, 2))
    shifted = x + rng.uniform(-6, 6, (n, 2)) * noise
    # each bump's label falls linearly from +-1 at its centre to 0 at distance 2; the largest
    # in magnitude wins
    bumps = np.stack([sign * np.clip(1 - np.hypot(shifted[:, 0] - cx, shifted[:, 1] - cy) / 2,
                                     0, 1) for cx, cy, sign in _GAUSSIANS])
    pick = np.abs(bumps).argmax(axis=0)
    return x, bumps[pick, np.arange(n)]


_GENERATORS = {"circle": _circle, "xor": _xor, "gauss": _gauss, "spiral": _spiral,
               "xor_gate": _xor_gate, "reg_plane": _reg_plane, "reg_gauss": _reg_gauss}


def generate(name: str, n_samples: int, noise: float, seed: int):
    """Points ``x`` (n, 2) float32 and targets ``y`` (n,) float32 of a playground dataset.

    Args:
        name: one of ``DATASETS``.
        n_samples: how many points.
        noise: 0 to 0.5, as TF Playground's slider (0-50 %) divided by 100.
        seed: the seed of the points.
    """
    if name not in _GENERATORS:
        raise ValueError(f"dataset must be one of {list(DATASETS)}, got {name!r}")
    x, y = _GENERATORS[name](int(n_samples), float(noise), np.random.default_rng(seed))
    return x.astype(np.float32), y.astype(np.float32)


def split(n_samples: int, train_fraction: float, seed: int):
    """Indices of the training and test points: a seeded shuffle cut at ``train_fraction``."""
    order = np.random.default_rng(seed + 1).permutation(n_samples)
    cut = min(n_samples - 1, max(1, int(round(n_samples * train_fraction))))
    return order[:cut], order[cut:]


def features(x: np.ndarray, names) -> np.ndarray:
    """The network's inputs: the chosen features of each point, in ``FEATURES`` order."""
    x1, x2 = x[:, 0], x[:, 1]
    return np.column_stack([FEATURES[name](x1, x2) for name in names]).astype(np.float32)


def grid(name: str, resolution: int) -> np.ndarray:
    """The (resolution^2, 2) points of the heatmap, row by row from the top (x2 high)."""
    low, high = domain(name)
    ticks = np.linspace(low, high, resolution)
    x1, x2 = np.meshgrid(ticks, ticks[::-1])
    return np.column_stack([x1.ravel(), x2.ravel()]).astype(np.float32)

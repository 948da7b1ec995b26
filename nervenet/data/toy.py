"""Small synthetic datasets: logic gates and 2-D point clouds for decision-boundary pictures.

Each generator takes an explicit ``seed`` (an int or a ``numpy.random.Generator``; ``None``
draws from nervenet's global generator, which ``set_random_seed`` reseeds) and returns
``(x, y)``: x float32 of shape (n_samples, 2), y int64 labels of shape (n_samples,).
``nervenet.data.datasets`` re-exports them.
"""

from __future__ import annotations

import numpy as np

from nervenet import backend
from nervenet.checks import check_int, check_number

_GATE_INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
GATES = {
    "and": [0, 0, 0, 1],
    "or": [0, 1, 1, 1],
    "nand": [1, 1, 1, 0],
    "nor": [1, 0, 0, 0],
    "xor": [0, 1, 1, 0],
    "xnor": [1, 0, 0, 1],
}


def logic_gates(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The truth table of a two-input logic gate.

    Args:
        name: ``"and"``, ``"or"``, ``"nand"``, ``"nor"``, ``"xor"`` or ``"xnor"``.

    Returns:
        ``(x, y)``: x float32 (4, 2) with the rows 00, 01, 10, 11; y float32 (4,) of 0/1.
        AND, OR, NAND and NOR are linearly separable (one perceptron learns them); XOR and
        XNOR are not.

    Example:
        >>> x, y = logic_gates("nand")
        >>> y.tolist()
        [1.0, 1.0, 1.0, 0.0]
    """
    if not isinstance(name, str) or name.lower() not in GATES:
        raise ValueError(f"logic_gates: name must be one of {sorted(GATES)}, got {name!r}")
    return _GATE_INPUTS.copy(), np.array(GATES[name.lower()], dtype=np.float32)


def xor() -> tuple[np.ndarray, np.ndarray]:
    """XOR's truth table, ``logic_gates("xor")``.

    Example:
        >>> x, y = xor()
        >>> x.tolist(), y.tolist()
        ([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], [0.0, 1.0, 1.0, 0.0])
    """
    return logic_gates("xor")


def _finish(x, y, noise, rng, shuffle=True):
    if noise:
        x = x + rng.normal(scale=noise, size=x.shape)
    if shuffle:
        order = rng.permutation(len(x))
        x, y = x[order], y[order]
    return x.astype(np.float32), y.astype(np.int64)


def make_moons(n_samples: int = 100, noise: float = 0.0, seed=None):
    """Two interleaving half circles (as scikit-learn's ``make_moons``).

    The upper moon (label 0) is ``(cos t, sin t)``, the lower (label 1) is
    ``(1 - cos t, 0.5 - sin t)`` for t in [0, pi]; then Gaussian noise of std ``noise``, and the
    samples are shuffled.

    Args:
        n_samples: total number of points (default 100), split as evenly as possible.
        noise: standard deviation of the added Gaussian noise (default 0.0).
        seed: an int or Generator (default ``None``: nervenet's global generator).

    Example:
        >>> x, y = make_moons(6, seed=0)
        >>> x.shape, sorted(y.tolist())
        ((6, 2), [0, 0, 0, 1, 1, 1])
    """
    n = check_int("make_moons", "n_samples", n_samples, low=2)
    noise = check_number("make_moons", "noise", noise, low=0.0)
    rng = backend.make_rng(seed)
    n_out, n_in = n // 2 + n % 2, n // 2
    t_out, t_in = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n_in)
    x = np.concatenate([np.column_stack([np.cos(t_out), np.sin(t_out)]),
                        np.column_stack([1 - np.cos(t_in), 0.5 - np.sin(t_in)])])
    y = np.concatenate([np.zeros(n_out), np.ones(n_in)])
    return _finish(x, y, noise, rng)


def make_circles(n_samples: int = 100, noise: float = 0.0, factor: float = 0.8, seed=None):
    """A small circle (label 1, radius ``factor``) inside a unit circle (label 0).

    Args:
        n_samples: total number of points (default 100).
        noise: standard deviation of the added Gaussian noise (default 0.0).
        factor: radius of the inner circle, in (0, 1) (default 0.8, as scikit-learn).
        seed: an int or Generator (default ``None``).

    Example:
        >>> x, y = make_circles(8, factor=0.5, seed=0)
        >>> np.round(np.hypot(x[:, 0], x[:, 1]), 3)[np.argsort(y, kind="stable")].tolist()
        [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5]
    """
    n = check_int("make_circles", "n_samples", n_samples, low=2)
    noise = check_number("make_circles", "noise", noise, low=0.0)
    if not 0 < factor < 1:
        raise ValueError(f"make_circles: factor must be in (0, 1), got {factor!r}")
    rng = backend.make_rng(seed)
    n_out, n_in = n // 2 + n % 2, n // 2
    t_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    x = np.concatenate([np.column_stack([np.cos(t_out), np.sin(t_out)]),
                        factor * np.column_stack([np.cos(t_in), np.sin(t_in)])])
    y = np.concatenate([np.zeros(n_out), np.ones(n_in)])
    return _finish(x, y, noise, rng)


def make_spirals(n_samples: int = 100, n_classes: int = 2, noise: float = 0.0,
                 turns: float = 1.0, seed=None):
    """Interleaved spiral arms, one per class (the classic hard case for a linear model).

    Arm k holds points at radius r in [0, 1] and angle
    ``theta = 2 pi (turns r + k / n_classes)``, i.e. ``(r sin theta, r cos theta)``.

    Args:
        n_samples: total number of points (default 100), split evenly among the arms.
        n_classes: number of arms (default 2).
        noise: standard deviation of the added Gaussian noise (default 0.0).
        turns: how many turns each arm makes (default 1.0).
        seed: an int or Generator (default ``None``).

    Example:
        >>> x, y = make_spirals(30, n_classes=3, seed=0)
        >>> x.shape, np.bincount(y).tolist()
        ((30, 2), [10, 10, 10])
    """
    n = check_int("make_spirals", "n_samples", n_samples, low=2)
    noise = check_number("make_spirals", "noise", noise, low=0.0)
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"make_spirals: n_classes must be an int >= 2, got {n_classes!r}")
    rng = backend.make_rng(seed)
    counts = [n // n_classes + (k < n % n_classes) for k in range(n_classes)]
    xs, ys = [], []
    for k, count in enumerate(counts):
        r = np.linspace(0.0, 1.0, count)
        theta = 2 * np.pi * (turns * r + k / n_classes)
        xs.append(np.column_stack([r * np.sin(theta), r * np.cos(theta)]))
        ys.append(np.full(count, k))
    return _finish(np.concatenate(xs), np.concatenate(ys), noise, rng)


def make_blobs(n_samples: int = 100, centers=3, n_features: int = 2, cluster_std: float = 1.0,
               center_box: tuple[float, float] = (-10.0, 10.0), seed=None):
    """Isotropic Gaussian clusters (as scikit-learn's ``make_blobs``).

    Args:
        n_samples: total number of points (default 100), split evenly among the clusters.
        centers: the number of clusters (drawn uniformly in ``center_box``) or an array of
            centers of shape (n_centers, n_features) (default 3).
        n_features: dimension of the points when ``centers`` is a number (default 2).
        cluster_std: standard deviation of each cluster (default 1.0).
        center_box: bounds for random centers (default (-10, 10)).
        seed: an int or Generator (default ``None``).

    Returns:
        ``(x, y)``, y the index of each point's cluster.

    Example:
        >>> x, y = make_blobs(40, centers=[[0, 0], [10, 10]], cluster_std=0.1, seed=0)
        >>> bool(np.abs(x[y == 1].mean(axis=0) - 10).max() < 0.1)
        True
    """
    n = check_int("make_blobs", "n_samples", n_samples, low=1)
    rng = backend.make_rng(seed)
    if isinstance(centers, (int, np.integer)) and not isinstance(centers, bool):
        if centers < 1:
            raise ValueError(f"make_blobs: centers must be >= 1, got {centers}")
        centers = rng.uniform(center_box[0], center_box[1], size=(int(centers), n_features))
    centers = np.asarray(centers, dtype=np.float64)
    if centers.ndim != 2:
        raise ValueError(f"make_blobs: centers must be a count or an array (n_centers, "
                         f"n_features), got shape {centers.shape}")
    if not cluster_std >= 0:
        raise ValueError(f"make_blobs: cluster_std must be >= 0, got {cluster_std!r}")
    k = len(centers)
    counts = [n // k + (i < n % k) for i in range(k)]
    x = np.concatenate([c + rng.normal(scale=cluster_std, size=(m, centers.shape[1]))
                        for c, m in zip(centers, counts)])
    y = np.repeat(np.arange(k), counts)
    return _finish(x, y, 0.0, rng)

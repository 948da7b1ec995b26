"""The train/test split of the Keras loaders that split one table (``test_split``, ``seed``)."""

from __future__ import annotations

import numpy as np


def split(owner: str, x: np.ndarray, y: np.ndarray, test_split: float, seed: int):
    """Shuffle ``(x, y)`` with ``seed`` and keep the last ``test_split`` fraction for testing.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``.
    """
    if isinstance(test_split, bool) or not isinstance(test_split, (int, float)) \
            or not 0.0 <= test_split < 1.0:
        raise ValueError(f"{owner}.load_data: test_split must be a number in [0, 1), got "
                         f"{test_split!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"{owner}.load_data: seed must be a non-negative int, got {seed!r}")
    order = np.random.default_rng(seed).permutation(len(x))
    n_train = len(x) - int(round(test_split * len(x)))
    train, test = order[:n_train], order[n_train:]
    return (x[train], y[train]), (x[test], y[test])

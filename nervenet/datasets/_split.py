"""The train/test split of the Keras loaders that split one table (``test_split``, ``seed``)."""

from __future__ import annotations

import numpy as np

from nervenet.checks import check_int, check_number


def split(owner: str, x: np.ndarray, y: np.ndarray, test_split: float, seed: int):
    """Shuffle ``(x, y)`` with ``seed`` and keep the last ``test_split`` fraction for testing.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``.
    """
    test_split = check_number(f"{owner}.load_data", "test_split", test_split, 0.0, 1.0,
                              high_open=True)
    seed = check_int(f"{owner}.load_data", "seed", seed, low=0)
    order = np.random.default_rng(seed).permutation(len(x))
    n_train = len(x) - int(round(test_split * len(x)))
    train, test = order[:n_train], order[n_train:]
    return (x[train], y[train]), (x[test], y[test])

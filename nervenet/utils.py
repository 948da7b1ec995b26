"""Small utilities shared by the whole package."""

from __future__ import annotations

import random

import numpy as np

from nervenet import backend


def set_random_seed(seed: int) -> None:
    """Seed every source of randomness nervenet uses, so that the same seed gives the same run.

    Args:
        seed: a non-negative integer.

    Example:
        >>> import nervenet
        >>> nervenet.utils.set_random_seed(0)
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"set_random_seed: seed must be a non-negative int, got {seed!r}")
    backend.seed(seed)
    random.seed(seed)


def to_categorical(y, num_classes: int | None = None, dtype=np.float32) -> np.ndarray:
    """Integer class labels 0..K-1 to one-hot rows (as ``keras.utils.to_categorical``).

    Args:
        y: integer labels of any shape; a trailing axis of size 1 (labels shaped (n, 1)) is
            dropped first, as Keras does, so the result is (n, K).
        num_classes: K (default ``None``: ``max(y) + 1``).
        dtype: the output dtype (default float32).

    Example:
        >>> import nervenet
        >>> nervenet.utils.to_categorical([0, 2], num_classes=3).tolist()
        [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    y = np.asarray(y)
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y[..., 0]
    if y.dtype.kind == "f" and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise TypeError(f"to_categorical: y must hold integer labels, got dtype {y.dtype}")
    if y.size and y.min() < 0:
        raise ValueError(f"to_categorical: labels must be >= 0, got {int(y.min())}")
    k = int(y.max()) + 1 if num_classes is None else int(num_classes)
    if y.size and y.max() >= k:
        raise ValueError(f"to_categorical: label {int(y.max())} is out of range for "
                         f"num_classes={k}")
    encoded = np.zeros(y.shape + (k,), dtype=dtype)
    np.put_along_axis(encoded, y[..., None], 1, axis=-1)
    return encoded

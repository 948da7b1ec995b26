"""Small utilities shared by the whole package."""

from __future__ import annotations

import random

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

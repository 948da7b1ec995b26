"""California housing as ``keras.datasets.california_housing.load_data()`` returns it."""

from __future__ import annotations

from nervenet.data import datasets
from nervenet.datasets._split import split

#: the eight feature columns (scikit-learn's, as ``nervenet.data.datasets``)
FEATURE_NAMES = list(datasets.CALIFORNIA_FEATURES)


def load_data(test_split: float = 0.2, seed: int = 113):
    """``(x_train, y_train), (x_test, y_test)`` from the shipped 20,640 census block groups.

    NOTE: Keras's file holds the eight raw census columns and the value in dollars; this one
    holds scikit-learn's eight features (``FEATURE_NAMES``: MedInc, HouseAge, AveRooms, ...)
    and the median house value in 100,000 dollars, as ``data.datasets.load_california_housing``.

    Args:
        test_split: the fraction kept for testing (default 0.2, Keras's).
        seed: the seed of the shuffle before the split (default 113, Keras's).

    Example:
        >>> import nervenet as keras
        >>> (x_train, y_train), (x_test, y_test) = keras.datasets.california_housing.load_data()
        >>> x_train.shape, x_test.shape
        ((16512, 8), (4128, 8))
    """
    x, y, _ = datasets.load_california_housing()
    return split("california_housing", x, y, test_split, seed)

"""Fisher's iris data in the shape of a Keras loader (Keras has none; the course uses it)."""

from __future__ import annotations

from nervenet.data import datasets
from nervenet.datasets._split import split

FEATURE_NAMES = list(datasets.IRIS_FEATURES)
CLASS_NAMES = list(datasets.IRIS_CLASSES)


def load_data(test_split: float = 0.2, seed: int = 113):
    """``(x_train, y_train), (x_test, y_test)``: float64 measurements (n, 4) in centimetres and
    int64 species labels (0 setosa, 1 versicolor, 2 virginica), shuffled with ``seed``.

    Example:
        >>> import nervenet as keras
        >>> (x_train, y_train), (x_test, y_test) = keras.datasets.iris.load_data()
        >>> x_train.shape, x_test.shape
        ((120, 4), (30, 4))
    """
    x, y, _, _ = datasets.load_iris()
    return split("iris", x, y, test_split, seed)

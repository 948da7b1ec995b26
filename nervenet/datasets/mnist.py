"""MNIST digits as ``keras.datasets.mnist.load_data()`` returns them."""

from __future__ import annotations

from nervenet.data import datasets


def load_data(subset: str = "5k"):
    """``(x_train, y_train), (x_test, y_test)``: uint8 images (n, 28, 28), uint8 labels (n,).

    Args:
        subset: ``"5k"`` (default), the 4,000 / 1,000 digits shipped with the package (no
            network); ``"full"``, the 60,000 / 10,000 digits Keras's ``load_data()`` returns,
            downloaded once into the verified cache.

    Example:
        >>> import nervenet as keras
        >>> (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
        >>> x_train.shape, x_train.dtype, y_test.shape
        ((4000, 28, 28), dtype('uint8'), (1000,))
    """
    return datasets.load_mnist(subset=subset)

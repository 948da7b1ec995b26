"""Fashion-MNIST as ``keras.datasets.fashion_mnist.load_data()`` returns it."""

from __future__ import annotations

from nervenet.data import datasets

#: the garment of each label, as in Keras's documentation
CLASS_NAMES = list(datasets.FASHION_MNIST_CLASSES)


def load_data():
    """``(x_train, y_train), (x_test, y_test)``: 60,000 / 10,000 uint8 images (n, 28, 28) and
    uint8 labels, downloaded once into the verified cache (30 MB); ``CLASS_NAMES[label]``."""
    return datasets.load_fashion_mnist()

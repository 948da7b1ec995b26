"""Keras's dataset namespace: ``nervenet.datasets.mnist.load_data()`` and friends.

Each module has the ``load_data()`` of its Keras namesake and returns
``(x_train, y_train), (x_test, y_test)``; the data come from ``nervenet.data.datasets`` (the
shipped files, or the verified download cache), which stays the place for everything else.

* ``mnist``: the shipped 5,000-digit subset by default (``subset="full"`` downloads the
  60,000 / 10,000 digits Keras returns);
* ``fashion_mnist``: downloaded once, as Keras;
* ``california_housing``: the shipped census file, split as Keras (``test_split``, ``seed``);
* ``iris``: the shipped iris file, split the same way (Keras has no iris; the course uses it).
"""

from nervenet.datasets import california_housing, fashion_mnist, iris, mnist

__all__ = ["california_housing", "fashion_mnist", "iris", "mnist"]

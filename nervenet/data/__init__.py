"""Data: datasets (shipped, generated, downloaded), preprocessing and input pipelines.

* ``nervenet.data.datasets``: ``load_mnist``, ``load_fashion_mnist``, ``load_iris``,
  ``load_digits``, ``load_california_housing``, ``xor``, ``logic_gates``, ``make_moons``, ...
* ``nervenet.data.preprocessing``: ``minmax_scale``, ``standardize``, ``one_hot``,
  ``to_categorical``.
* ``nervenet.data.Dataset``: ``Dataset.from_tensor_slices((x, y)).shuffle(n, seed).batch(32)``.
* ``nervenet.data.augment``: flips, affine transforms, crops and colour changes on arrays.
* ``nervenet.data.idx``: the IDX format; ``nervenet.data.download``: the verified cache.
"""

from nervenet.data import augment, datasets, download, idx, preprocessing
from nervenet.data.dataset import Dataset

__all__ = ["Dataset", "augment", "datasets", "download", "idx", "preprocessing"]

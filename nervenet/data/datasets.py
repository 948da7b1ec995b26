"""Datasets shipped inside the package (no network needed).

* ``load_mnist(subset="5k")``: 5,000 MNIST digits (500 per class), split 4,000 / 1,000 with a
  fixed seed, as the course's exercises use them.
* ``load_california_housing()``: the 1990 California census block groups with
  scikit-learn's eight derived features.

Each file's SHA-256 is checked when it is read, so a damaged install fails loudly.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np

FILES = Path(__file__).parent / "files"

SHA256 = {
    "mnist_5k.npz": "246e0c30eeea57c8d0037d3f38c8e00651ec204cc61b8022563e9aeeb9d756f4",
    "california_housing.csv": "8a3727f4cf54ac1a327f69b1d5b4db54c5834ea81c6e4efc0d163300022a685e",
}

#: the seed of the train/test split of the 5k MNIST subset (fixed: every run sees the same split)
MNIST_SPLIT_SEED = 0


def _verified_path(name: str) -> Path:
    path = FILES / name
    if not path.exists():
        raise FileNotFoundError(f"dataset file {path} is missing from the installation")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SHA256[name]:
        raise ValueError(f"dataset file {path} is damaged: SHA-256 {digest}, expected "
                         f"{SHA256[name]}")
    return path


def load_mnist(subset: str = "5k", test_size: int = 1000):
    """The embedded MNIST subset as ``(x_train, y_train), (x_test, y_test)``.

    Args:
        subset: ``"5k"``, the 5,000-digit subset shipped with the package (the only one
            available without a download).
        test_size: how many of the 5,000 digits form the test set (default 1000).

    Returns:
        Images as uint8 arrays of shape (n, 28, 28), labels as uint8 arrays of shape (n,).
        The split is a seeded permutation, identical in every run.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = load_mnist()
        >>> x_train.shape, x_test.shape
        ((4000, 28, 28), (1000, 28, 28))
    """
    if subset != "5k":
        raise ValueError(f"load_mnist: subset must be '5k' (the embedded subset), got "
                         f"{subset!r}")
    with np.load(_verified_path("mnist_5k.npz"), allow_pickle=False) as archive:
        images, labels = archive["images"], archive["labels"]
    if not 0 < test_size < len(images):
        raise ValueError(f"load_mnist: test_size must be in (0, {len(images)}), got {test_size}")
    order = np.random.default_rng(MNIST_SPLIT_SEED).permutation(len(images))
    train, test = order[:-test_size], order[-test_size:]
    return (images[train], labels[train]), (images[test], labels[test])


CALIFORNIA_FEATURES = ["MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population", "AveOccup",
                       "Latitude", "Longitude"]


def load_california_housing():
    """California housing with scikit-learn's eight features.

    Returns:
        ``(x, y, feature_names)``: x of shape (20640, 8) float64 with MedInc, HouseAge,
        AveRooms = rooms / households, AveBedrms = bedrooms / households, Population,
        AveOccup = population / households, Latitude, Longitude; y the median house value in
        units of 100,000 dollars. The 207 missing ``total_bedrooms`` values are filled with the
        column's median (as in "Hands-On Machine Learning").
    """
    with open(_verified_path("california_housing.csv"), newline="") as handle:
        rows = list(csv.DictReader(handle))

    def column(name: str) -> np.ndarray:
        return np.array([float(r[name]) if r[name] != "" else np.nan for r in rows])

    bedrooms = column("total_bedrooms")
    bedrooms[np.isnan(bedrooms)] = np.nanmedian(bedrooms)
    households = column("households")
    x = np.column_stack([
        column("median_income"), column("housing_median_age"),
        column("total_rooms") / households, bedrooms / households, column("population"),
        column("population") / households, column("latitude"), column("longitude"),
    ])
    y = column("median_house_value") / 100_000
    return x, y, list(CALIFORNIA_FEATURES)

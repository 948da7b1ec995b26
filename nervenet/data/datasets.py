"""Datasets: shipped with the package, generated, or downloaded once into the cache.

Shipped (no network needed; each file's SHA-256 is checked when it is read):

* ``load_mnist(subset="5k")``: 5,000 MNIST digits (500 per class), split 4,000 / 1,000 with a
  fixed seed, as the course's exercises use them.
* ``load_iris()``: Fisher's 150 irises, 4 measurements, 3 species.
* ``load_california_housing()``: the 1990 California census block groups with
  scikit-learn's eight derived features (``load_california_housing_raw()``: the raw columns).

Generated (``nervenet.data.toy``): ``xor()``, ``logic_gates(name)``, ``make_moons``,
``make_circles``, ``make_spirals``, ``make_blobs``.

Downloaded on first use into ``~/.cache/nervenet`` (``$NERVENET_HOME``) by
``nervenet.data.download.fetch``, verified by SHA-256: ``load_mnist(subset="full")`` and
``load_fashion_mnist()``. ``load_digits()`` comes from scikit-learn when it is installed.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np

from nervenet.data import download
from nervenet.data.idx import read_idx
from nervenet.data.toy import (  # noqa: F401  (re-exported: datasets is where users look)
    logic_gates,
    make_blobs,
    make_circles,
    make_moons,
    make_spirals,
    xor,
)

FILES = Path(__file__).parent / "files"

SHA256 = {
    "mnist_5k.npz": "246e0c30eeea57c8d0037d3f38c8e00651ec204cc61b8022563e9aeeb9d756f4",
    "california_housing.csv": "8a3727f4cf54ac1a327f69b1d5b4db54c5834ea81c6e4efc0d163300022a685e",
    "iris.csv": "9cc1c345c71bcc9b486b74cbf6063fa66f4bb5e0f603a4b3c3471ec2e5e8e355",
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


#: the four IDX files of a full set: (x_train, y_train, x_test, y_test)
IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

#: mirrors (https only) and the published SHA-256 of each file, as TensorFlow Datasets and
#: torchvision pin them
REMOTE = {
    "mnist": {
        "mirrors": ["https://storage.googleapis.com/cvdf-datasets/mnist/",
                    "https://ossci-datasets.s3.amazonaws.com/mnist/"],
        "sha256": {
            "train-images-idx3-ubyte.gz":
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz":
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz":
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz":
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
    },
    "fashion_mnist": {
        "mirrors": ["https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
                    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/"
                    "data/fashion/"],
        "sha256": {
            "train-images-idx3-ubyte.gz":
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train-labels-idx1-ubyte.gz":
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "t10k-images-idx3-ubyte.gz":
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "t10k-labels-idx1-ubyte.gz":
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
    },
}

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot"]


def load_idx_dataset(name: str):
    """Download (once) and read the four IDX files of ``REMOTE[name]``.

    Returns:
        ``(x_train, y_train), (x_test, y_test)`` as uint8 arrays.
    """
    if name not in REMOTE:
        raise ValueError(f"load_idx_dataset: name must be one of {sorted(REMOTE)}, got "
                         f"{name!r}")
    spec = REMOTE[name]
    arrays = []
    for filename in IDX_FILES:
        urls = [mirror + filename for mirror in spec["mirrors"]]
        path = download.fetch(filename, urls, spec["sha256"][filename], subdir=name)
        arrays.append(read_idx(path))
    x_train, y_train, x_test, y_test = arrays
    for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{name}: the {split} files hold images {x.shape} and labels "
                             f"{y.shape}; expected (n, rows, cols) and (n,)")
    return (x_train, y_train), (x_test, y_test)


def load_mnist(subset: str = "5k", test_size: int = 1000):
    """MNIST handwritten digits as ``(x_train, y_train), (x_test, y_test)``.

    Args:
        subset: ``"5k"`` (default), the 5,000-digit subset shipped with the package, split
            4,000 / 1,000 by a fixed seed; or ``"full"``, the 60,000 / 10,000 digits of LeCun,
            Cortes and Burges, downloaded once into the cache (about 11 MB).
        test_size: for ``"5k"``, how many digits form the test set (default 1000).

    Returns:
        Images as uint8 arrays of shape (n, 28, 28), labels as uint8 arrays of shape (n,).

    Example:
        >>> (x_train, y_train), (x_test, y_test) = load_mnist()
        >>> x_train.shape, x_test.shape
        ((4000, 28, 28), (1000, 28, 28))
    """
    if subset == "full":
        return load_idx_dataset("mnist")
    if subset != "5k":
        raise ValueError(f"load_mnist: subset must be '5k' (the embedded subset) or 'full' "
                         f"(downloaded), got {subset!r}")
    with np.load(_verified_path("mnist_5k.npz"), allow_pickle=False) as archive:
        images, labels = archive["images"], archive["labels"]
    if not 0 < test_size < len(images):
        raise ValueError(f"load_mnist: test_size must be in (0, {len(images)}), got {test_size}")
    order = np.random.default_rng(MNIST_SPLIT_SEED).permutation(len(images))
    train, test = order[:-test_size], order[-test_size:]
    return (images[train], labels[train]), (images[test], labels[test])


def load_fashion_mnist():
    """Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017), downloaded once into the cache (30 MB).

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: 60,000 / 10,000 uint8 images (n, 28, 28)
        and uint8 labels; ``FASHION_MNIST_CLASSES[label]`` names the garment.
    """
    return load_idx_dataset("fashion_mnist")


IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
IRIS_CLASSES = ["setosa", "versicolor", "virginica"]


def load_iris():
    """Fisher's iris data (150 flowers, 50 per species), as scikit-learn ships it.

    Returns:
        ``(x, y, feature_names, class_names)``: x float64 (150, 4) in centimetres (sepal
        length, sepal width, petal length, petal width), y int64 (150,) with 0 setosa,
        1 versicolor, 2 virginica.

    Example:
        >>> x, y, features, classes = load_iris()
        >>> x.shape, np.bincount(y).tolist(), classes[0]
        ((150, 4), [50, 50, 50], 'setosa')
    """
    with open(_verified_path("iris.csv"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    x = np.array([[float(row[name]) for name in IRIS_FEATURES] for row in rows])
    y = np.array([IRIS_CLASSES.index(row["species"]) for row in rows], dtype=np.int64)
    return x, y, list(IRIS_FEATURES), list(IRIS_CLASSES)


def load_digits():
    """scikit-learn's 8x8 handwritten digits (1,797 images, 16 grey levels).

    Returns:
        ``(x, y)``: x float64 (1797, 8, 8) with values 0..16, y int64 (1797,).

    Raises:
        ImportError: when scikit-learn is not installed (``pip install scikit-learn``; it is
            in the ``tune`` extra).
    """
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise ImportError("load_digits needs scikit-learn: pip install scikit-learn "
                          "(or nervenet[tune])") from None
    bunch = sklearn_digits()
    return bunch.images.astype(np.float64), bunch.target.astype(np.int64)


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


CALIFORNIA_RAW_COLUMNS = ["longitude", "latitude", "housing_median_age", "total_rooms",
                          "total_bedrooms", "population", "households", "median_income",
                          "median_house_value", "ocean_proximity"]


def load_california_housing_raw() -> dict[str, np.ndarray]:
    """The raw columns of the California housing file, before any feature engineering.

    Returns:
        A dict from column name (``CALIFORNIA_RAW_COLUMNS``, in file order) to an array of
        20,640 values: float64 for the nine numeric columns (``total_bedrooms`` has 207 NaN
        where the census value is missing; ``median_house_value`` in dollars), and a string
        array for the nominal ``ocean_proximity`` ("<1H OCEAN", "INLAND", "ISLAND",
        "NEAR BAY", "NEAR OCEAN"; encode it with ``preprocessing.one_hot``).

    Example:
        >>> columns = load_california_housing_raw()
        >>> int(np.isnan(columns["total_bedrooms"]).sum())
        207
        >>> sorted(set(columns["ocean_proximity"].tolist()))[:2]
        ['<1H OCEAN', 'INLAND']
    """
    with open(_verified_path("california_housing.csv"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = {}
    for name in CALIFORNIA_RAW_COLUMNS:
        if name == "ocean_proximity":
            columns[name] = np.array([row[name] for row in rows])
        else:
            columns[name] = np.array([float(row[name]) if row[name] != "" else np.nan
                                      for row in rows])
    return columns

"""Shipped and generated datasets: shapes, labels, the numbers that define them."""

from __future__ import annotations

import numpy as np
import pytest

from nervenet.data import datasets


@pytest.mark.parametrize("name, truth", [("and", [0, 0, 0, 1]), ("or", [0, 1, 1, 1]),
                                         ("nand", [1, 1, 1, 0]), ("xor", [0, 1, 1, 0])])
def test_logic_gates(name, truth):
    x, y = datasets.logic_gates(name)
    assert x.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert y.tolist() == truth
    np.testing.assert_array_equal(y, [int(row @ [1, 1] == 2) if name == "and" else y_ for row, y_
                                      in zip(x, y)])


def test_xor_is_the_xor_gate_and_bad_names_are_listed():
    x, y = datasets.xor()
    assert y.tolist() == [float(a != b) for a, b in x.tolist()]
    with pytest.raises(ValueError, match=r"one of \['and', 'nand', 'nor', 'or', 'xnor', 'xor'\]"):
        datasets.logic_gates("implies")


def test_moons_lie_on_their_half_circles():
    x, y = datasets.make_moons(200, seed=0)
    upper, lower = x[y == 0].astype(np.float64), x[y == 1].astype(np.float64)
    assert len(upper) == len(lower) == 100
    np.testing.assert_allclose(np.hypot(*upper.T), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1, lower[:, 1] - 0.5), 1.0, atol=1e-6)
    assert upper[:, 1].min() >= -1e-7 and lower[:, 1].max() <= 0.5 + 1e-7
    noisy, y_noisy = datasets.make_moons(200, noise=0.1, seed=0)
    assert 0.05 < np.abs(np.hypot(*noisy[y_noisy == 0].T) - 1).mean() < 0.12


def test_generators_are_seeded_and_shuffled():
    a, ya = datasets.make_moons(50, noise=0.1, seed=3)
    b, yb = datasets.make_moons(50, noise=0.1, seed=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ya, yb)
    assert not np.all(np.diff(ya) >= 0)  # not sorted by label
    assert a.dtype == np.float32 and ya.dtype == np.int64


def test_circles_spirals_blobs():
    x, y = datasets.make_circles(100, factor=0.3, seed=0)
    radius = np.hypot(*x.T)
    np.testing.assert_allclose(radius[y == 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(radius[y == 1], 0.3, atol=1e-6)

    x, y = datasets.make_spirals(300, n_classes=3, seed=0)
    assert np.bincount(y).tolist() == [100, 100, 100]
    assert np.hypot(*x.T).max() == pytest.approx(1.0, abs=1e-6)
    # the arms are rotations of each other by 2 pi / 3: same radii
    radii = [np.sort(np.hypot(*x[y == k].T)) for k in range(3)]
    np.testing.assert_allclose(radii[0], radii[2], atol=1e-6)

    x, y = datasets.make_blobs(300, centers=[[0, 0], [5, 5], [-5, 5]], cluster_std=0.5, seed=0)
    for k, center in enumerate([[0, 0], [5, 5], [-5, 5]]):
        np.testing.assert_allclose(x[y == k].mean(axis=0), center, atol=0.15)
        assert x[y == k].std(axis=0) == pytest.approx([0.5, 0.5], abs=0.1)
    with pytest.raises(ValueError, match="n_samples"):
        datasets.make_moons(0)
    with pytest.raises(ValueError, match="factor"):
        datasets.make_circles(10, factor=1.5)


def test_iris():
    x, y, features, classes = datasets.load_iris()
    assert x.shape == (150, 4) and features[2] == "petal_length"
    assert classes == ["setosa", "versicolor", "virginica"]
    # Fisher's first flower and the class means of petal length (cm)
    assert x[0].tolist() == [5.1, 3.5, 1.4, 0.2]
    np.testing.assert_allclose([x[y == k, 2].mean() for k in range(3)], [1.462, 4.260, 5.552])


def test_iris_equals_scikit_learn():
    sklearn = pytest.importorskip("sklearn.datasets")
    x, y, _, _ = datasets.load_iris()
    reference = sklearn.load_iris()
    np.testing.assert_array_equal(x, reference.data)
    np.testing.assert_array_equal(y, reference.target)


def test_digits_from_scikit_learn():
    pytest.importorskip("sklearn")
    x, y = datasets.load_digits()
    assert x.shape == (1797, 8, 8) and x.max() == 16 and y.shape == (1797,)


def test_mnist_subset_and_bad_subset():
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist(subset="5k")
    assert x_train.shape == (4000, 28, 28) and y_test.shape == (1000,)
    with pytest.raises(ValueError, match="'5k'.*'full'"):
        datasets.load_mnist(subset="10k")


def test_california_raw_columns_give_the_engineered_features():
    raw = datasets.load_california_housing_raw()
    assert list(raw) == datasets.CALIFORNIA_RAW_COLUMNS
    assert all(len(column) == 20640 for column in raw.values())
    x, y, names = datasets.load_california_housing()
    np.testing.assert_allclose(x[:, names.index("AveRooms")],
                               raw["total_rooms"] / raw["households"])
    np.testing.assert_allclose(y, raw["median_house_value"] / 100_000)
    assert sorted(set(raw["ocean_proximity"].tolist())) == [
        "<1H OCEAN", "INLAND", "ISLAND", "NEAR BAY", "NEAR OCEAN"]

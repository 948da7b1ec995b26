"""minmax_scale, standardize, one_hot and to_categorical, against scikit-learn where installed."""

from __future__ import annotations

import numpy as np
import pytest

from nervenet.data.preprocessing import minmax_scale, one_hot, standardize, to_categorical


@pytest.fixture
def x():
    return np.random.default_rng(0).normal(3.0, 2.0, size=(50, 4))


def test_minmax_scale_formula(x):
    scaled = minmax_scale(x, feature_range=(-1.0, 1.0))
    np.testing.assert_allclose(scaled.min(axis=0), -1.0)
    np.testing.assert_allclose(scaled.max(axis=0), 1.0)
    lo, hi = x.min(axis=0), x.max(axis=0)
    np.testing.assert_allclose(scaled, -1 + 2 * (x - lo) / (hi - lo))


def test_scaling_with_reference_uses_the_training_statistics(x):
    train, test = x[:40], x[40:]
    np.testing.assert_allclose(minmax_scale(test, reference=train),
                               (test - train.min(0)) / (train.max(0) - train.min(0)))
    np.testing.assert_allclose(standardize(test, reference=train),
                               (test - train.mean(0)) / train.std(0))
    with pytest.raises(ValueError, match="sample shape"):
        standardize(test, reference=train[:, :3])


def test_standardize_gives_zero_mean_unit_std(x):
    z = standardize(x)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1.0)
    np.testing.assert_allclose(standardize(x, ddof=1).std(axis=0, ddof=1), 1.0)


def test_against_scikit_learn(x):
    sklearn = pytest.importorskip("sklearn.preprocessing")
    np.testing.assert_allclose(standardize(x), sklearn.StandardScaler().fit_transform(x))
    np.testing.assert_allclose(minmax_scale(x), sklearn.minmax_scale(x))
    labels = np.array(["M", "F", "F", "X"])
    np.testing.assert_array_equal(
        one_hot(labels), sklearn.OneHotEncoder().fit_transform(labels[:, None]).toarray())


def test_constant_feature_and_dtypes():
    data = np.array([[1.0, 5.0], [2.0, 5.0]], dtype=np.float32)
    assert minmax_scale(data).tolist() == [[0.0, 0.0], [1.0, 0.0]]
    assert standardize(data).tolist() == [[-1.0, 0.0], [1.0, 0.0]]
    assert minmax_scale(data).dtype == np.float32
    assert standardize(np.array([[1], [3]])).dtype == np.float64  # integers become float64


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="NaN"):
        standardize(np.array([[1.0], [np.nan]]))
    with pytest.raises(TypeError, match="numeric"):
        minmax_scale(np.array([["a"]]))
    with pytest.raises(ValueError, match="lo < hi"):
        minmax_scale(np.ones((2, 2)), feature_range=(1, 0))


def test_one_hot_nominal_columns():
    sex = ["F", "M", "F"]
    constitution = ["normal", "strong", "slim"]
    assert one_hot(sex).tolist() == [[1, 0], [0, 1], [1, 0]]
    encoded = one_hot(constitution, categories=["slim", "normal", "strong"])
    assert encoded.tolist() == [[0, 1, 0], [0, 0, 1], [1, 0, 0]]
    assert encoded.dtype == np.float32
    with pytest.raises(ValueError, match="'fat' is not one of the categories"):
        one_hot(["fat"], categories=["slim", "normal"])
    with pytest.raises(ValueError, match="1-D"):
        one_hot(np.zeros((2, 2)))


def test_to_categorical():
    assert to_categorical([1, 0, 2]).tolist() == [[0, 1, 0], [1, 0, 0], [0, 0, 1]]
    assert to_categorical(np.array([[1], [0]]), 2).shape == (2, 2)          # as Keras
    assert to_categorical(np.array([[1, 0]]), 2).shape == (1, 2, 2)
    with pytest.raises(ValueError, match="out of range"):
        to_categorical([3], num_classes=3)
    with pytest.raises(TypeError, match="integer labels"):
        to_categorical([0.5])

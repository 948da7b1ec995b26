"""Ensembles: voting arithmetic, bagging's bootstrap and its gain on MNIST, and SAMME's weights
(recomputed by hand, and against scikit-learn's AdaBoostClassifier with the same stumps)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nervenet
from nervenet import layers, models
from nervenet.data import datasets
from nervenet.ensemble import Bagging, Boosting, VotingEnsemble, predicted_classes


class Fixed:
    """A member that returns fixed outputs (for voting arithmetic)."""

    def __init__(self, outputs):
        self.outputs = np.asarray(outputs, dtype=np.float64)

    def predict(self, x):
        return self.outputs[:len(x)]


def test_soft_and_hard_voting():
    a = Fixed([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5]])
    b = Fixed([[0.4, 0.5, 0.1], [0.1, 0.6, 0.3]])
    c = Fixed([[0.3, 0.6, 0.1], [0.0, 0.4, 0.6]])
    x = np.zeros((2, 1))
    soft = VotingEnsemble([a, b, c]).predict(x)
    np.testing.assert_allclose(soft, (a.outputs + b.outputs + c.outputs) / 3)
    np.testing.assert_array_equal(VotingEnsemble([a, b, c]).predict_classes(x), [0, 2])
    hard = VotingEnsemble([a, b, c], voting="hard").predict(x)
    np.testing.assert_allclose(hard, [[1 / 3, 2 / 3, 0], [0, 1 / 3, 2 / 3]])
    weighted = VotingEnsemble([a, b, c], voting="hard", weights=[3, 1, 1]).predict(x)
    np.testing.assert_allclose(weighted, [[0.6, 0.4, 0], [0, 0.2, 0.8]])
    binary = VotingEnsemble([Fixed([[0.7], [0.2]]), Fixed([[0.6], [0.9]]),
                             Fixed([[0.1], [0.8]])], voting="hard")
    np.testing.assert_array_equal(binary.predict_classes(x), [1, 1])
    assert binary.score(x, [1, 0]) == 0.5


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="voting must be one of"):
        VotingEnsemble([Fixed([[1.0]])], voting="mean")
    with pytest.raises(ValueError, match="weights must be 1 finite non-negative"):
        VotingEnsemble([Fixed([[1.0]])], weights=[-1.0])
    with pytest.raises(ValueError, match="n_estimators must be a positive int"):
        Bagging(lambda: None, n_estimators=0)
    with pytest.raises(ValueError, match="max_samples must be a fraction"):
        Bagging(lambda: None, max_samples=1.5)
    with pytest.raises(TypeError, match="build_fn must be a callable"):
        Boosting("mlp")
    with pytest.raises(ValueError, match="call fit"):
        Bagging(lambda: None).predict(np.zeros((1, 1)))
    with pytest.raises(ValueError, match="labels must lie in"):
        Boosting(lambda: None, n_classes=2).fit(np.zeros((3, 1)), [0, 1, 2])


class Recorder:
    """Records what fit received; predicts the training labels."""

    def fit(self, x, y, sample_weight=None, **kwargs):
        self.x, self.y, self.kwargs = x, y, kwargs

    def predict(self, x):
        return np.eye(3)[self.y[:len(x)]]


def test_bagging_draws_bootstrap_samples_with_replacement():
    x = np.arange(200).reshape(-1, 1)
    y = np.arange(200) % 3
    bagging = Bagging(Recorder, n_estimators=4, max_samples=0.5, seed=0).fit(x, y, epochs=2)
    assert len(bagging.estimators_) == 4
    for member, indices in zip(bagging.estimators_, bagging.bootstrap_indices_):
        assert len(indices) == 100
        np.testing.assert_array_equal(member.x[:, 0], indices)  # the rows of those indices
        np.testing.assert_array_equal(member.y, y[indices])
        assert member.kwargs == {"epochs": 2}
    # with replacement: the expected share of distinct samples in n draws is 1 - (1-1/n)^n
    full = Bagging(Recorder, n_estimators=20, seed=1).fit(x, y)
    distinct = np.mean([len(np.unique(i)) / 200 for i in full.bootstrap_indices_])
    assert abs(distinct - (1 - (1 - 1 / 200) ** 200)) < 0.02  # about 0.632
    again = Bagging(Recorder, n_estimators=4, max_samples=0.5, seed=0).fit(x, y)
    for first, second in zip(bagging.bootstrap_indices_, again.bootstrap_indices_):
        np.testing.assert_array_equal(first, second)


def _mnist(n_train=1500):
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist()
    x_train = x_train[:n_train].reshape(n_train, -1).astype(np.float32) / 255
    x_test = x_test.reshape(len(x_test), -1).astype(np.float32) / 255
    return x_train, y_train[:n_train], x_test, y_test


def _small_mlp():
    model = models.Sequential([layers.Input(shape=(784,)), layers.Dense(32, activation="relu"),
                               layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def test_bagging_five_mlps_beats_the_average_member_on_mnist():
    nervenet.utils.set_random_seed(0)
    x_train, y_train, x_test, y_test = _mnist()
    bagging = Bagging(_small_mlp, n_estimators=5, seed=0)
    bagging.fit(x_train, y_train, epochs=4, batch_size=64, verbose=0)
    members = [np.mean(predicted_classes(m.predict(x_test)) == y_test)
               for m in bagging.estimators_]
    ensemble = bagging.score(x_test, y_test)
    # measured, seeds 0-2 (OpenBLAS Haswell and SkylakeX alike): ensemble 0.851, 0.849, 0.842
    # against a mean member of 0.832, 0.829, 0.821
    assert ensemble > np.mean(members) + 0.01, (ensemble, members)
    assert ensemble > 0.8


def test_boosting_weights_follow_samme():
    """Each member's sample weights are the previous ones times exp(alpha [wrong]), normalized,
    with err and alpha recomputed here from the members' own predictions."""
    nervenet.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 2)).astype(np.float32)
    radius = np.hypot(x[:, 0], x[:, 1])
    y = np.digitize(radius, [0.8, 1.4])  # three rings

    def build():  # a weak learner: a small MLP trained for 3 epochs
        model = models.Sequential([layers.Input(shape=(2,)), layers.Dense(16, activation="relu"),
                                   layers.Dense(3, activation="softmax")])
        model.compile(optimizer=nervenet.optimizers.Adam(0.05),
                      loss="sparse_categorical_crossentropy")
        return model

    boosting = Boosting(build, n_estimators=4, learning_rate=0.7)
    boosting.fit(x, y, epochs=3, batch_size=32, verbose=0)
    assert len(boosting.estimators_) == 4
    weights = np.full(300, 1 / 300)
    for m, member in enumerate(boosting.estimators_):
        np.testing.assert_allclose(boosting.sample_weights_[m], weights, rtol=1e-12)
        wrong = predicted_classes(member.predict(x)) != y
        error = np.sum(weights[wrong]) / np.sum(weights)
        alpha = 0.7 * (math.log((1 - error) / error) + math.log(3 - 1))
        assert boosting.estimator_errors_[m] == pytest.approx(error, rel=1e-12)
        assert boosting.estimator_weights_[m] == pytest.approx(alpha, rel=1e-12)
        weights = weights * np.exp(alpha * wrong)
        weights = weights / weights.sum()
    votes = np.zeros((300, 3))
    for member, alpha in zip(boosting.estimators_, boosting.estimator_weights_):
        votes[np.arange(300), predicted_classes(member.predict(x))] += alpha
    np.testing.assert_array_equal(boosting.predict_classes(x), votes.argmax(axis=1))


def test_boosting_equals_scikit_learn_adaboost_samme_with_stumps():
    tree = pytest.importorskip("sklearn.tree")
    ensemble = pytest.importorskip("sklearn.ensemble")
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] + 0.5 * x[:, 1] ** 2 - x[:, 2] > 0.3).astype(np.int64) + (x[:, 1] > 1)

    class Stump:
        def fit(self, x, y, sample_weight):
            self.tree = tree.DecisionTreeClassifier(max_depth=1, random_state=0)
            self.tree.fit(x, y, sample_weight=sample_weight)

        def predict(self, x):
            return self.tree.predict_proba(x)

    ours = Boosting(Stump, n_estimators=8, learning_rate=0.5).fit(x, y)
    theirs = ensemble.AdaBoostClassifier(
        tree.DecisionTreeClassifier(max_depth=1, random_state=0), n_estimators=8,
        learning_rate=0.5, random_state=0).fit(x, y)  # SAMME (scikit-learn's only algorithm)
    np.testing.assert_allclose(ours.estimator_errors_, theirs.estimator_errors_, rtol=1e-10)
    np.testing.assert_allclose(ours.estimator_weights_, theirs.estimator_weights_, rtol=1e-10)
    np.testing.assert_array_equal(ours.predict_classes(x), theirs.predict(x))


def test_boosting_stops_on_a_perfect_member_and_rejects_a_useless_first_one():
    x = np.arange(6.0).reshape(-1, 1)
    y = np.array([0, 0, 0, 1, 1, 1])

    class Perfect:
        def fit(self, x, y, sample_weight):
            pass

        def predict(self, x):
            return (x > 2.5).astype(float)

    boosting = Boosting(Perfect, n_estimators=5).fit(x, y)
    assert len(boosting.estimators_) == 1 and boosting.estimator_errors_ == [0.0]

    class Inverted(Perfect):
        def predict(self, x):
            return (x < 2.5).astype(float)

    with pytest.raises(ValueError, match="no better than chance"):
        Boosting(Inverted).fit(x, y)

"""AUC, F1Score and the top-k accuracies against scikit-learn and Keras's formulas, and metric
log names as Keras writes them (issue #15)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import nervenet
from nervenet import layers, metrics

sklearn_metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the oracle")


@pytest.fixture
def binary():
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.4).astype(np.float64)
    scores = np.clip(0.35 * y + 0.65 * rng.random(400), 0, 1)
    return y, scores


def _every_midpoint(scores):
    values = np.unique(scores)
    return (values[:-1] + values[1:]) / 2


def test_roc_auc_with_every_threshold_equals_scikit_learn(binary):
    y, scores = binary
    auc = metrics.AUC(thresholds=_every_midpoint(scores))
    for part in np.array_split(np.arange(len(y)), 3):          # accumulated over batches
        auc.update_state(y[part], scores[part])
    assert auc.result() == pytest.approx(sklearn_metrics.roc_auc_score(y, scores), abs=1e-12)


def test_roc_auc_with_keras_default_thresholds_is_close(binary):
    y, scores = binary
    exact = sklearn_metrics.roc_auc_score(y, scores)
    assert metrics.AUC()(y, scores) == pytest.approx(exact, abs=3e-3)
    # minoring and majoring bound the trapezoid from below and above
    low = metrics.AUC(summation_method="minoring")(y, scores)
    high = metrics.AUC(summation_method="majoring")(y, scores)
    assert low <= metrics.AUC()(y, scores) <= high and high - low < 0.02
    # from_logits: the same ranking gives the same curve
    logits = np.log(scores + 1e-3) - np.log1p(1e-3 - scores)
    assert metrics.AUC(from_logits=True)(y, logits) == pytest.approx(
        metrics.AUC()(y, 1 / (1 + np.exp(-logits))), abs=1e-12)


def test_pr_auc_follows_keras_interpolation(binary):
    y, scores = binary
    ap = sklearn_metrics.average_precision_score(y, scores)
    pr = metrics.AUC(curve="PR", thresholds=_every_midpoint(scores))(y, scores)
    assert pr == pytest.approx(ap, abs=0.02)
    # Keras's interpolation by hand, thresholds (-eps, 0.5, 1 + eps): (tp, fp, fn) are
    # (3, 3, 0), (2, 1, 1), (0, 0, 3), so p = tp + fp is 6, 3, 0. Piece 1: slope dtp/dp = 1/3,
    # intercept b = 2 - 3/3 = 1, area slope (dtp + b log(6/3)) / (tp + fn) = (1 + log 2)/9;
    # piece 2: slope 2/3, b = 0, p = 0 above (no log term), area (2/3) * 2 / 3.
    y_small = np.array([1, 1, 1, 0, 0, 0])
    s_small = np.array([0.9, 0.8, 0.2, 0.7, 0.3, 0.1])
    expected = (1 + np.log(2)) / 9 + (2 / 3) * 2 / 3
    got = metrics.AUC(curve="PR", thresholds=[0.5])(y_small, s_small)
    assert got == pytest.approx(expected, rel=1e-12)


def test_multi_label_auc_is_the_mean_of_the_label_aucs():
    rng = np.random.default_rng(1)
    y = (rng.random((300, 3)) < 0.5).astype(float)
    scores = np.clip(0.3 * y + 0.7 * rng.random((300, 3)), 0, 1)
    thresholds = _every_midpoint(scores)
    per_label = [sklearn_metrics.roc_auc_score(y[:, j], scores[:, j]) for j in range(3)]
    got = metrics.AUC(thresholds=thresholds, multi_label=True)(y, scores)
    assert got == pytest.approx(np.mean(per_label), abs=1e-12)
    weighted = metrics.AUC(thresholds=thresholds, multi_label=True, label_weights=[1, 0, 3])
    assert weighted(y, scores) == pytest.approx((per_label[0] + 3 * per_label[2]) / 4,
                                                abs=1e-12)
    flat = metrics.AUC(thresholds=thresholds)(y, scores)
    assert flat == pytest.approx(sklearn_metrics.roc_auc_score(y.ravel(), scores.ravel()),
                                 abs=1e-12)


def test_auc_sample_weight_equals_repeated_samples(binary):
    y, scores = binary
    repeats = np.random.default_rng(2).integers(1, 4, len(y))
    weighted = metrics.AUC()
    weighted.update_state(y, scores, sample_weight=repeats)
    repeated = metrics.AUC()(np.repeat(y, repeats), np.repeat(scores, repeats))
    assert weighted.result() == pytest.approx(repeated, abs=1e-12)


def test_auc_bad_arguments_and_config():
    with pytest.raises(ValueError, match="curve"):
        metrics.AUC(curve="DET")
    with pytest.raises(ValueError, match="num_thresholds"):
        metrics.AUC(num_thresholds=1)
    with pytest.raises(ValueError, match="thresholds must lie"):
        metrics.AUC(thresholds=[1.5])
    with pytest.raises(ValueError, match="same shape"):
        metrics.AUC()(np.ones(3), np.ones((3, 2)))
    auc = metrics.AUC(num_thresholds=50, curve="PR", multi_label=True, label_weights=[1, 2])
    again = metrics.registry.from_config(json.loads(json.dumps(metrics.registry.serialize(auc))))
    assert again.get_config() == auc.get_config()


@pytest.mark.parametrize("average", [None, "micro", "macro", "weighted"])
def test_f1_score_equals_scikit_learn(average):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 300)
    scores = rng.random((300, 4)) + 0.6 * np.eye(4)[labels]
    metric = metrics.F1Score(average=average)
    metric.update_state(np.eye(4)[labels[:100]], scores[:100])
    metric.update_state(np.eye(4)[labels[100:]], scores[100:])
    expected = sklearn_metrics.f1_score(labels, scores.argmax(1), average=average)
    np.testing.assert_allclose(metric.result(), expected, atol=1e-6)


def test_f1_score_with_a_threshold_is_multi_label_f1():
    rng = np.random.default_rng(4)
    y = (rng.random((200, 3)) < 0.4).astype(float)
    scores = np.clip(0.4 * y + 0.6 * rng.random((200, 3)), 0, 1)
    got = metrics.F1Score(average="macro", threshold=0.5)(y, scores)
    expected = sklearn_metrics.f1_score(y, scores > 0.5, average="macro")
    assert got == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="average"):
        metrics.F1Score(average="samples")


def test_top_k_accuracy_equals_scikit_learn_and_counts_ties_in():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 6, 250)
    scores = rng.random((250, 6))
    for k in (1, 2, 5):
        expected = sklearn_metrics.top_k_accuracy_score(labels, scores, k=k, labels=range(6))
        assert metrics.TopKCategoricalAccuracy(k=k)(np.eye(6)[labels], scores) == \
            pytest.approx(expected, abs=1e-12)
        assert metrics.SparseTopKCategoricalAccuracy(k=k)(labels, scores) == \
            pytest.approx(expected, abs=1e-12)
    tied = np.array([[0.5, 0.5, 0.5, 0.1]])                   # label 2 tied with the 1st
    assert metrics.SparseTopKCategoricalAccuracy(k=1)([2], tied) == 1.0
    assert metrics.SparseTopKCategoricalAccuracy(k=1)([3], tied) == 0.0
    with pytest.raises(ValueError, match="k must be"):
        metrics.TopKCategoricalAccuracy(k=0)
    assert metrics.get("TopKCategoricalAccuracy").k == 5


@pytest.mark.parametrize("given, logged", [
    ("RootMeanSquaredError", "root_mean_squared_error"),
    ("MeanAbsoluteError", "mean_absolute_error"),
    ("mae", "mae"),
    ("AUC", "auc"),
    ("TopKCategoricalAccuracy", "top_k_categorical_accuracy"),
    ("accuracy", "accuracy"),
])
def test_metric_names_are_logged_as_keras(given, logged):
    assert metrics.get(given, "mse", (None, 1)).name == logged


def test_fit_logs_class_name_metrics_under_keras_names():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5]) > 0).astype(np.float32)
    model = nervenet.Sequential([layers.Input((3,)), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy",
                  metrics=["RootMeanSquaredError", "AUC", "BinaryAccuracy"])
    history = model.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0)
    assert list(history.history) == [
        "loss", "root_mean_squared_error", "auc", "binary_accuracy",
        "val_loss", "val_root_mean_squared_error", "val_auc", "val_binary_accuracy"]
    assert 0.0 <= history.history["val_auc"][-1] <= 1.0

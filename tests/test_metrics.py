"""Metrics: values on hand-computed cases, running state, accuracy chosen by the loss."""

from __future__ import annotations

import numpy as np
import pytest

from nervenet import metrics


def test_accuracy_is_chosen_by_the_loss_as_keras():
    assert isinstance(metrics.get("accuracy", "sparse_categorical_crossentropy"),
                      metrics.SparseCategoricalAccuracy)
    assert isinstance(metrics.get("accuracy", "categorical_crossentropy"),
                      metrics.CategoricalAccuracy)
    assert isinstance(metrics.get("accuracy", "binary_crossentropy"), metrics.BinaryAccuracy)
    assert isinstance(metrics.get("acc", "mse", (None, 1)), metrics.BinaryAccuracy)
    assert metrics.get("accuracy", "binary_crossentropy").name == "accuracy"


def test_accuracies_on_known_cases():
    probabilities = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert metrics.SparseCategoricalAccuracy()([1, 1, 1], probabilities) == pytest.approx(2 / 3)
    onehot = np.eye(2)[[1, 0, 0]]
    assert metrics.CategoricalAccuracy()(onehot, probabilities) == pytest.approx(2 / 3)
    assert metrics.BinaryAccuracy()([1, 0, 1], [0.6, 0.4, 0.2]) == pytest.approx(2 / 3)


def test_running_state_weights_batches_by_size():
    metric = metrics.MeanAbsoluteError()
    metric.update_state([0.0, 0.0], [1.0, 3.0])       # errors 1, 3
    metric.update_state([0.0], [5.0])                  # error 5
    assert metric.result() == pytest.approx(3.0)
    metric.reset_state()
    assert metric.result() == 0.0


def test_sample_weights():
    metric = metrics.MeanSquaredError()
    metric.update_state([[0.0], [0.0]], [[1.0], [3.0]], sample_weight=[3.0, 1.0])
    assert metric.result() == pytest.approx((3 * 1 + 1 * 9) / 4)


def test_rmse_is_the_root_of_the_overall_mse():
    metric = metrics.RootMeanSquaredError()
    metric.update_state([0.0, 0.0], [1.0, 1.0])
    metric.update_state([0.0, 0.0], [3.0, 3.0])
    assert metric.result() == pytest.approx(np.sqrt(5.0))


def test_precision_and_recall():
    y_true = np.array([1, 1, 0, 0, 1])
    y_pred = np.array([0.9, 0.2, 0.7, 0.1, 0.8])  # TP=2, FP=1, FN=1
    assert metrics.Precision()(y_true, y_pred) == pytest.approx(2 / 3)
    assert metrics.Recall()(y_true, y_pred) == pytest.approx(2 / 3)


def test_unknown_metric_lists_valid_ids():
    with pytest.raises(ValueError, match="unknown metric 'f1'; valid metric ids are: .*mae"):
        metrics.get("f1")


def test_targets_without_the_unit_axis_match_outputs_with_it():
    y_pred = np.array([[0.9], [0.2], [0.7]])
    assert metrics.BinaryAccuracy()(np.array([1, 0, 0]), y_pred) == pytest.approx(2 / 3)
    assert metrics.MeanAbsoluteError()(np.array([1.0, 0.0, 1.0]), y_pred) == pytest.approx(
        (0.1 + 0.2 + 0.3) / 3)

"""MLPClassifier and MLPRegressor: scikit-learn's formulas, the course's housing result, bad
input."""

import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from nervenet.data.datasets import load_california_housing  # noqa: E402
from nervenet.sklearn import MLPClassifier, MLPRegressor  # noqa: E402


def _one_gd_step(library_cls, x, y, coefs, intercepts, **params):
    """Set the weights, then train one epoch of full-batch plain gradient descent."""
    model = library_cls(solver="sgd", momentum=0.0, shuffle=False, batch_size=len(x),
                        max_iter=1, warm_start=True, random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
        model.coefs_ = [c.copy() for c in coefs]
        model.intercepts_ = [b.copy() for b in intercepts]
        model.fit(x, y)
    return model


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_one_step_equals_scikit_learn(task):
    # Same start, one full-batch step with L2: the loss and every updated weight must agree,
    # which checks the data loss, the penalty and their gradients term by term.
    from sklearn import neural_network

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    if task == "regression":
        y, ours_cls, ref_cls = x @ [1.0, -2.0, 0.5], MLPRegressor, neural_network.MLPRegressor
    else:
        classes = 2 if task == "binary" else 3
        y = rng.integers(classes, size=40)
        ours_cls, ref_cls = MLPClassifier, neural_network.MLPClassifier
    outputs = 1 if task != "multiclass" else 3
    coefs = [rng.normal(size=(3, 5)) * 0.5, rng.normal(size=(5, outputs)) * 0.5]
    intercepts = [rng.normal(size=5) * 0.1, rng.normal(size=outputs) * 0.1]
    params = dict(hidden_layer_sizes=(5,), activation="tanh", alpha=0.3,
                  learning_rate_init=0.1)
    ours = _one_gd_step(ours_cls, x, y, coefs, intercepts, **params)
    ref = _one_gd_step(ref_cls, x, y, coefs, intercepts, **params)
    np.testing.assert_allclose(ours.loss_, ref.loss_, rtol=1e-5)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_california_housing_matches_scikit_learn():
    # The course's setting (bench/housing.py times it). The validation MSE of one fit depends
    # on the seed and on the BLAS kernel more than on the library: a few validation rows have
    # extreme features and the network's extrapolation on them moves the mean. scikit-learn's
    # MLPRegressor gives 0.282, 12.46, 0.259 at seeds 0, 1, 2 (0.2554 at random_state=42, the
    # course's number). Ours, seeds 0, 1, 2: 0.254, 0.300, 0.302 with OpenBLAS's SkylakeX kernel
    # (the default on this AVX-512 machine) and 0.287, 0.264, 0.512 with the Haswell/Zen kernel;
    # over seeds 0-7 the medians are 0.297 and 0.282, with one seed in eight near 0.5 on either
    # kernel. So one seed proves nothing and a median of three is within 5% of a tight bound.
    # We assert what holds on both kernels with a margin: the best of seeds 0-2 is below 0.28
    # (scikit-learn's best there is 0.259) and their median below 0.33 (scikit-learn's 0.282
    # plus 15%); a network that learned nothing scores about 1.3, the variance of the target.
    x, y, _ = load_california_housing()
    x_train_full, _, y_train_full, _ = train_test_split(x, y, random_state=42)
    x_train, x_valid, y_train, y_valid = train_test_split(x_train_full, y_train_full,
                                                          random_state=42)
    errors = []
    for seed in (0, 1, 2):
        mlp = MLPRegressor(hidden_layer_sizes=(50, 50, 50), random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipeline = make_pipeline(StandardScaler(), mlp).fit(x_train, y_train)
        errors.append(np.mean((pipeline.predict(x_valid) - y_valid) ** 2))
        assert len(mlp.loss_curve_) == mlp.n_iter_ <= 200
        assert mlp.best_loss_ == min(mlp.loss_curve_)
    assert min(errors) < 0.28, errors
    assert np.median(errors) < 0.33, errors


def test_attributes_and_solvers():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 4))
    y = np.where(x[:, 0] + x[:, 1] > 0, "a", np.where(x[:, 2] > 0, "b", "c"))
    for solver in ("adam", "sgd", "lbfgs"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = MLPClassifier((10,), solver=solver, max_iter=300, random_state=0,
                                  learning_rate_init=0.05).fit(x, y)
        assert model.score(x, y) > 0.9, solver   # measured: 1.0 for random_state 0-4
        assert model.classes_.tolist() == ["a", "b", "c"]
        assert [c.shape for c in model.coefs_] == [(4, 10), (10, 3)]
        assert model.n_layers_ == 3 and model.out_activation_ == "softmax"
        np.testing.assert_allclose(model.predict_proba(x).sum(axis=1), 1.0, rtol=1e-6)


def test_early_stopping_keeps_the_best_validation_weights():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 3))
    y = x @ [1.0, 2.0, -1.0] + 0.1 * rng.normal(size=300)
    model = MLPRegressor((16,), early_stopping=True, n_iter_no_change=3, max_iter=500,
                         learning_rate_init=0.01, random_state=0).fit(x, y)
    assert model.n_iter_ < 500
    assert model.best_validation_score_ == max(model.validation_scores_)
    # measured, random_state 0-4 (OpenBLAS Haswell and SkylakeX alike): 0.991, 0.959, 0.989,
    # 0.989, 0.995
    assert model.best_validation_score_ > 0.95
    assert model.best_loss_ is None


def test_adaptive_learning_rate_divides_by_five():
    from sklearn.neural_network import MLPRegressor as Reference

    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 2))
    y = x.sum(axis=1)
    params = dict(hidden_layer_sizes=(4,), solver="sgd", learning_rate="adaptive",
                  learning_rate_init=0.01, tol=10.0, n_iter_no_change=1, max_iter=100,
                  random_state=0)
    model = MLPRegressor(**params).fit(x, y)
    # tol=10 makes every epoch after the first "flat": the count exceeds n_iter_no_change=1
    # every 2 epochs, which divides the rate by 5 until it is <= 1e-6 (0.01 / 5^6 = 6.4e-7),
    # then training stops: 1 + 2 * 7 epochs, as scikit-learn.
    assert model.n_iter_ == 15 == Reference(**params).fit(x, y).n_iter_


def test_bad_input():
    x, y = np.ones((10, 2)), np.arange(10.0)
    with pytest.raises(ValueError, match="solver must be one of"):
        MLPRegressor(solver="newton-cg").fit(x, y)
    with pytest.raises(ValueError, match="activation must be one of"):
        MLPRegressor(activation="softsign").fit(x, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        MLPRegressor(hidden_layer_sizes=(4, 0)).fit(x, y)
    with pytest.raises(ValueError, match="learning_rate_init"):
        MLPRegressor(learning_rate_init=-1.0).fit(x, y)
    bad = y.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="y contains NaN"):
        MLPRegressor().fit(x, bad)
    bad[3] = np.inf
    with pytest.raises(ValueError, match="y contains infinity"):
        MLPRegressor().fit(x, bad)
    with pytest.raises(ValueError, match="sample_weight"):
        MLPRegressor().fit(x, y, sample_weight=np.ones(3))

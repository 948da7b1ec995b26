"""Perceptron (the course's iris example), the model wrappers in scikit-learn's tools, and the
doctests of docs/sklearn.md and docs/tuning.md."""

import doctest
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import load_iris  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from nervenet import layers, models  # noqa: E402
from nervenet.sklearn import NeuralNetClassifier, NeuralNetRegressor, Perceptron  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_perceptron_separates_setosa_like_the_course():
    iris = load_iris()
    x, y = iris.data[:, 2:4], iris.target == 0
    model = Perceptron(random_state=42).fit(x, y)
    assert model.score(x, y) == 1.0                    # linearly separable: no mistakes left
    assert model.predict([[2, 0.5], [3, 1]]).tolist() == [True, False]
    margins = np.where(y, 1, -1) * model.decision_function(x)
    assert margins.min() > 0
    assert model.coef_.shape == (1, 2) and model.intercept_.shape == (1,)


def test_perceptron_rule_by_hand():
    # Without shuffling, the first epoch on two points: the score 0 of the first sample is a
    # mistake (y s <= 0), so w = 0 + 1 * (+1) * [1, 2]; the second is then right.
    x = np.array([[1.0, 2.0], [-1.0, -1.0]])
    model = Perceptron(shuffle=False, max_iter=1, tol=None).fit(x, [1, 0])
    np.testing.assert_array_equal(model.coef_, [[1.0, 2.0]])
    np.testing.assert_array_equal(model.intercept_, [1.0])


def test_perceptron_one_vs_rest_and_options():
    iris = load_iris()
    x = StandardScaler().fit_transform(iris.data)
    model = Perceptron(random_state=0).fit(x, iris.target)
    assert model.coef_.shape == (3, 4)
    # measured, random_state 0-4 (OpenBLAS Haswell and SkylakeX alike): 0.88, 0.84, 0.847,
    # 0.753, 0.933; versicolor is not linearly separable, so one seed may end under 0.8
    scores = [model.score(x, iris.target)] + [
        Perceptron(random_state=seed).fit(x, iris.target).score(x, iris.target)
        for seed in range(1, 5)]
    assert np.median(scores) > 0.8 and min(scores) > 0.7, scores
    for options in ({"penalty": "l2", "alpha": 1e-3}, {"penalty": "l1", "alpha": 1e-3},
                    {"penalty": "elasticnet"}, {"class_weight": "balanced"},
                    {"early_stopping": True}):
        assert Perceptron(random_state=0, **options).fit(x, iris.target).score(
            x, iris.target) > 0.7, options
    with pytest.raises(ValueError, match="penalty must be one of"):
        Perceptron(penalty="l3").fit(x, iris.target)
    with pytest.raises(ValueError, match="eta0"):
        Perceptron(eta0=0).fit(x, iris.target)
    with pytest.raises(ValueError, match="at least 2 classes"):
        Perceptron().fit(x, np.zeros(len(x)))


def build_classifier(units=8, meta=None):
    return models.Sequential([layers.Input(shape=(meta["n_features_in_"],)),
                              layers.Dense(units, activation="tanh"),
                              layers.Dense(meta["n_classes_"], activation="softmax")])


def test_wrapper_in_grid_search_and_pipeline():
    iris = load_iris()
    net = NeuralNetClassifier(build_classifier, model__units=4, optimizer="adam",
                              optimizer__learning_rate=0.05, epochs=30, batch_size=16,
                              random_state=0)
    pipeline = make_pipeline(StandardScaler(), net)
    search = GridSearchCV(pipeline, {"neuralnetclassifier__model__units": [2, 16]}, cv=3)
    search.fit(iris.data, iris.target)
    assert search.best_score_ > 0.85      # measured, random_state 0-2: 0.967, 0.973, 0.973
    assert search.best_estimator_[-1].model_.layers[0].units in (2, 16)
    names = np.array(["setosa", "versicolor", "virginica"])[iris.target]
    fitted = make_pipeline(StandardScaler(), net).fit(iris.data, names)
    assert set(fitted.predict(iris.data)) <= set(names)
    np.testing.assert_allclose(fitted.predict_proba(iris.data).sum(axis=1), 1, rtol=1e-5)
    # same random_state, same model
    again = make_pipeline(StandardScaler(), net).fit(iris.data, names)
    np.testing.assert_array_equal(again.predict_proba(iris.data),
                                  fitted.predict_proba(iris.data))


def test_regressor_wrapper_and_bad_input():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = x @ [1.0, -1.0, 0.5]

    def build(meta):
        return models.Sequential([layers.Input(shape=(meta["n_features_in_"],)),
                                  layers.Dense(meta["n_outputs_"])])

    net = NeuralNetRegressor(build, optimizer="sgd", optimizer__learning_rate=0.1, epochs=20,
                             random_state=0)
    assert cross_val_score(net, x, y, cv=2).min() > 0.99
    with pytest.raises(TypeError, match="routed arguments start with"):
        NeuralNetRegressor(build, units=3)
    with pytest.raises(TypeError, match="must return a nervenet Model"):
        NeuralNetRegressor(lambda: 3).fit(x, y)
    bad = y.copy()
    bad[0] = np.nan
    with pytest.raises(ValueError, match="y contains NaN"):
        net.fit(x, bad)


@pytest.mark.parametrize("name", ["sklearn.md", "tuning.md"])
def test_documentation_examples_run(name):
    text = (ROOT / "docs" / name).read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if ">>>" in b]
    assert blocks
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(
        optionflags=doctest.NORMALIZE_WHITESPACE)
    namespace: dict = {}
    for block in blocks:
        test = parser.get_doctest(block, namespace, name, name, 0)   # (copies the namespace)
        runner.run(test, clear_globs=False)
        namespace = test.globs
    assert runner.summarize(verbose=False).failed == 0

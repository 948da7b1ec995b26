"""The scikit-learn wrappers as scikeras (and the old Keras wrappers) are written (issue #15):
fit arguments forwarded, unprefixed model-function arguments, ``lr``, ``fit__``/``predict__``
routing, validation labels encoded like the training ones."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="the wrappers are scikit-learn estimators")

from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import RandomizedSearchCV  # noqa: E402

from nervenet import callbacks, layers, models, optimizers  # noqa: E402
from nervenet.sklearn import NeuralNetClassifier, NeuralNetRegressor  # noqa: E402


def _regression(n=160):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 8)).astype(np.float32)
    return x, x[:, 0] - 0.5 * x[:, 1]


def build_model(n_hidden=1, n_neurons=30, learning_rate=3e-3, input_shape=(8,)):
    """The book's chapter-10 building function (Keras 2's wrapper passed these unprefixed)."""
    model = models.Sequential([layers.Input(shape=input_shape)])
    for _ in range(n_hidden):
        model.add(layers.Dense(n_neurons, activation="relu"))
    model.add(layers.Dense(1))
    model.compile(loss="mse", optimizer=optimizers.SGD(learning_rate=learning_rate))
    return model


def test_fit_forwards_fit_arguments_as_keras_does():
    x, y = _regression()
    reg = NeuralNetRegressor(build_model, epochs=50, random_state=0)
    stop = callbacks.EarlyStopping(patience=1, min_delta=10.0)         # stops at once
    reg.fit(x, y, epochs=7, validation_data=(x[:40], y[:40]), callbacks=[stop])
    assert len(reg.history_["loss"]) == 2 and "val_loss" in reg.history_
    assert stop.stopped_epoch == 1
    reg.fit(x, y)                                          # the estimator's own epochs again
    assert len(reg.history_["loss"]) == 50


def test_book_style_search_over_unprefixed_model_arguments():
    x, y = _regression()
    reg = NeuralNetRegressor(build_model, epochs=5, random_state=0)
    search = RandomizedSearchCV(reg, {"n_hidden": [0, 1, 2], "n_neurons": [4, 8],
                                      "learning_rate": [3e-3, 1e-2]},
                                n_iter=3, cv=2, random_state=0)
    search.fit(x, y, epochs=3)
    assert set(search.best_params_) == {"n_hidden", "n_neurons", "learning_rate"}
    best = search.best_estimator_
    hidden = [layer for layer in best.model_.layers if layer.count_params()][:-1]
    assert len(hidden) == best.n_hidden
    assert best.model_.optimizer.learning_rate == best.learning_rate
    assert clone(reg).get_params()["epochs"] == 5
    with pytest.raises(TypeError, match="must name a parameter of the model function"):
        reg.set_params(n_layers=3)


def test_lr_and_routes_reach_the_optimizer_fit_and_predict():
    x, y = _regression()

    def build(meta):
        return models.Sequential([layers.Input(shape=(meta["n_features_in_"],)),
                                  layers.Dense(1)])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)       # the optimizer's lr warning
        reg = NeuralNetRegressor(build, optimizer="sgd", lr=0.07, fit__shuffle=False,
                                 predict__batch_size=7, epochs=2).fit(x, y)
    assert reg.model_.optimizer.learning_rate == 0.07
    assert reg.get_params()["lr"] == 0.07 and reg.get_params()["fit__shuffle"] is False
    assert reg.predict(x).shape == (len(x),)
    learning_rate = NeuralNetRegressor(build, optimizer="adam", optimizer__learning_rate=0.2,
                                       epochs=1).fit(x, y)
    assert learning_rate.model_.optimizer.learning_rate == 0.2
    with pytest.warns(DeprecationWarning, match="use model"):
        old = NeuralNetRegressor(build_fn=build, epochs=1)
    assert old.fit(x, y).model_.count_params() == 9


def test_classifier_validation_data_labels_are_encoded_like_the_training_ones():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((120, 4)).astype(np.float32)
    y = np.where(x[:, 0] > 0, "yes", "no")

    def build(meta):
        return models.Sequential([layers.Input(shape=(4,)),
                                  layers.Dense(meta["n_classes_"], activation="softmax")])

    clf = NeuralNetClassifier(build, optimizer="adam", epochs=3, random_state=0)
    clf.fit(x, y, validation_data=(x[:30], y[:30]))
    assert len(clf.history_["val_loss"]) == 3
    assert set(clf.predict(x)) <= {"yes", "no"}
    with pytest.raises(ValueError, match=r"labels \['maybe'\] not seen"):
        clf.fit(x, y, validation_data=(x[:2], np.array(["maybe", "yes"])))

"""scikit-learn estimators around any nervenet model-building function (as scikeras does).

``NeuralNetClassifier(model=build_fn, ...)`` calls ``build_fn(**model_kwargs)`` at ``fit``,
compiles the model it returns (unless it is compiled already) and trains it with
``Model.fit``. Arguments are routed by prefix, scikeras-style, so a grid search can tune
anything:

* ``model__units=32`` goes to the building function (``build_fn(units=32)``); a parameter
  named ``meta`` of the function receives ``{"n_features_in_", "n_outputs_", "classes_",
  "n_classes_"}``, which lets it size its input and output layers;
* an argument without a prefix that names a parameter of the building function goes to it
  too (``NeuralNetRegressor(build_model, n_hidden=2)``, and a search may tune ``n_hidden``
  without a prefix), as scikeras and the old Keras wrappers do;
* ``optimizer__learning_rate=0.01`` goes to the optimizer named by ``optimizer``; ``lr`` or
  ``learning_rate`` without a prefix, when the building function takes neither, too;
* ``fit__validation_split=0.1`` goes to ``Model.fit`` and ``predict__batch_size=256`` to
  ``Model.predict``; arguments given to ``fit`` itself (``net.fit(X, y, epochs=100,
  callbacks=[...], validation_data=...)``) go to ``Model.fit`` and override the others.

Example:
    >>> from sklearn.model_selection import GridSearchCV
    >>> from nervenet import layers, models
    >>> def build(units=8, meta=None):
    ...     return models.Sequential([layers.Input(shape=(meta["n_features_in_"],)),
    ...                               layers.Dense(units, activation="tanh"),
    ...                               layers.Dense(meta["n_classes_"], activation="softmax")])
    >>> net = NeuralNetClassifier(build, model__units=8, optimizer="adam",
    ...                           optimizer__learning_rate=0.05, epochs=5, random_state=0)
    >>> net.get_params()["model__units"]
    8
    >>> search = GridSearchCV(net, {"model__units": [4, 8]}, cv=2)
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from nervenet import backend, optimizers, utils
from nervenet.models.model import Model

ROUTES = ("model__", "optimizer__", "fit__", "predict__")
#: unprefixed names that set the optimizer's learning rate when the model function takes none
LEARNING_RATE_NAMES = ("lr", "learning_rate")


def _function_parameters(model) -> set[str]:
    """The parameter names of a model-building function (none for a Model or other value)."""
    if isinstance(model, Model) or not callable(model):
        return set()
    try:
        return set(inspect.signature(model).parameters) - {"meta"}
    except (TypeError, ValueError):
        return set()


class _NeuralNet(BaseEstimator):
    """The shared wrapper; ``NeuralNetClassifier`` and ``NeuralNetRegressor`` pick the loss
    and how outputs become predictions."""

    def __init__(self, model=None, *, optimizer="rmsprop", loss=None, metrics=None, epochs=1,
                 batch_size=32, validation_split=0.0, shuffle=True, callbacks=None, verbose=0,
                 random_state=None, build_fn=None, **kwargs):
        self.model = model
        self.optimizer = optimizer
        self.loss = loss
        self.metrics = metrics
        self.epochs = epochs
        self.batch_size = batch_size
        self.validation_split = validation_split
        self.shuffle = shuffle
        self.callbacks = callbacks
        self.verbose = verbose
        self.random_state = random_state
        self.build_fn = build_fn
        if build_fn is not None:
            warnings.warn(f"{type(self).__name__}: build_fn is the old Keras wrappers' name, "
                          "use model", DeprecationWarning, stacklevel=2)
        for key, value in kwargs.items():
            self._check_extra(key)
            setattr(self, key, value)

    def _model_function(self):
        return self.model if self.model is not None else self.build_fn

    def _check_extra(self, key: str) -> None:
        if key.startswith(ROUTES) or key in LEARNING_RATE_NAMES or key in _function_parameters(
                self._model_function()):
            return
        raise TypeError(f"{type(self).__name__}: unexpected argument {key!r}; routed "
                        f"arguments start with one of {list(ROUTES)}, and an argument "
                        "without a prefix must name a parameter of the model function")

    def _extras(self) -> dict:
        """The arguments beyond the constructor's own: routed ones, the model function's, lr."""
        names = _function_parameters(self._model_function())
        return {k: v for k, v in vars(self).items() if k.startswith(ROUTES)
                or k in LEARNING_RATE_NAMES or (k in names and not k.endswith("_"))}

    # scikit-learn's clone() and set_params() see the extra arguments through these two.
    def get_params(self, deep: bool = True) -> dict:
        params = super().get_params(deep=deep)
        params.update({k: v for k, v in self._extras().items() if k not in params})
        return params

    def set_params(self, **params):
        own = set(super().get_params(deep=False))
        extra = {k: v for k, v in params.items() if k not in own and "__" not in k.strip("_")
                 or k.startswith(ROUTES)}
        for key, value in extra.items():
            self._check_extra(key)
            setattr(self, key, value)
        return super().set_params(**{k: v for k, v in params.items() if k not in extra})

    def _routed(self, prefix: str) -> dict:
        return {k[len(prefix):]: v for k, v in vars(self).items() if k.startswith(prefix)}

    # ------------------------------------------------------------------ fit
    def _build(self, meta: dict, X: np.ndarray) -> Model:
        owner = type(self).__name__
        function = self._model_function()
        names = _function_parameters(function)
        if isinstance(function, Model):
            model = function
        elif callable(function):
            kwargs = {k: v for k, v in self._extras().items() if k in names}
            kwargs.update(self._routed("model__"))
            if "meta" in inspect.signature(function).parameters:
                kwargs["meta"] = meta
            model = function(**kwargs)
        else:
            raise TypeError(f"{owner}: model must be a nervenet Model or a function that builds "
                            f"one, got {type(function).__name__}")
        if not isinstance(model, Model):
            raise TypeError(f"{owner}: the model function must return a nervenet Model, got "
                            f"{type(model).__name__}")
        if not model.compiled:
            optimizer = self.optimizer
            options = self._routed("optimizer__")
            for name in LEARNING_RATE_NAMES:           # lr= for the optimizer, as Keras 2
                if name not in names and name in vars(self):
                    options.setdefault(name, getattr(self, name))
            if isinstance(optimizer, str):
                optimizer = type(optimizers.get(optimizer))(**options)
            elif options:
                raise ValueError(f"{owner}: optimizer__ arguments need optimizer to be a string "
                                 f"id, got {type(optimizer).__name__}")
            loss = self.loss
            if loss is None:                          # the output's width picks the loss
                loss = self._default_loss(model.predict_on_batch(X[:1]).shape[-1])
            model.compile(optimizer=optimizer, loss=loss, metrics=self.metrics)
        return model

    def fit(self, X, y, sample_weight=None, **fit_kwargs):
        """Build (and compile) the model, then train it on ``X``, ``y``.

        Args:
            X: the inputs, shape (n_samples, n_features).
            y: labels (classifier) or targets (regressor).
            sample_weight: per-sample weights (default ``None``).
            **fit_kwargs: arguments of ``Model.fit`` (``epochs``, ``callbacks``,
                ``validation_data``, ...); they override the estimator's own and its
                ``fit__`` ones for this fit, as scikeras.

        Returns:
            self.
        """
        if self.random_state is not None:
            utils.set_random_seed(int(self.random_state))
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=not self._is_classifier,
                             dtype=(np.float64, np.float32))
        X = X.astype(backend.floatx(), copy=False)
        target, meta = self._encode_targets(y)
        meta["n_features_in_"] = X.shape[1]
        self.model_ = self._build(meta, X)
        arguments = {"epochs": self.epochs, "batch_size": self.batch_size,
                     "validation_split": self.validation_split, "shuffle": self.shuffle,
                     "callbacks": self.callbacks, "verbose": self.verbose,
                     "sample_weight": sample_weight}
        arguments.update(self._routed("fit__"))
        arguments.update(fit_kwargs)
        if "validation_data" in arguments:
            arguments["validation_data"] = self._validation(arguments["validation_data"])
        self.history_ = self.model_.fit(X, target, **arguments).history
        return self

    def _validation(self, data):
        """``validation_data`` given to ``fit``: its targets encoded as the training ones."""
        if not isinstance(data, (list, tuple)) or len(data) not in (2, 3):
            return data
        x_val = np.asarray(data[0], dtype=backend.floatx())
        y_val = self._encode_validation(data[1])
        return (x_val, y_val, *data[2:])

    def _outputs(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        options = {"batch_size": None, "verbose": 0, **self._routed("predict__")}
        return self.model_.predict(X.astype(backend.floatx(), copy=False), **options)


class NeuralNetRegressor(RegressorMixin, _NeuralNet):
    """A scikit-learn regressor around a nervenet model-building function.

    Args:
        model: a function returning a nervenet Model (called at every ``fit``, with the
            ``model__`` arguments and, if it takes one, ``meta``), or a Model (trained in
            place: clones then share it, so prefer a function).
        optimizer: an optimizer id or object, used when the model is not compiled (default
            ``"rmsprop"``, as Keras); ``optimizer__name=value`` sets its arguments.
        loss: the loss id or object (default ``"mse"``).
        metrics: compiled metrics (default ``None``).
        epochs, batch_size, validation_split, shuffle, callbacks, verbose: ``Model.fit``'s
            (defaults 1, 32, 0.0, ``True``, ``None``, 0).
        random_state: an int seeds ``nervenet.utils.set_random_seed`` before building and
            training, so that fits are reproducible (default ``None``).
        **kwargs: routed arguments, ``model__*`` and ``optimizer__*``.

    Attributes:
        model_: the trained Model. history_: ``History.history`` of the fit.
        n_features_in_, n_outputs_.
    """

    _is_classifier = False

    def _encode_targets(self, y):
        y = np.asarray(y, dtype=backend.floatx())
        target = y.reshape(len(y), -1)
        self.n_outputs_ = target.shape[1]
        return target, {"n_outputs_": self.n_outputs_, "classes_": None, "n_classes_": None}

    def _default_loss(self, output_units: int) -> str:
        return "mse"

    def _encode_validation(self, y) -> np.ndarray:
        y = np.asarray(y, dtype=backend.floatx())
        return y.reshape(len(y), -1)

    def predict(self, X) -> np.ndarray:
        """The model's outputs, shape (n,) for one output."""
        out = self._outputs(X)
        out = out.reshape(len(out), -1)
        return out.ravel() if out.shape[1] == 1 else out


class NeuralNetClassifier(ClassifierMixin, _NeuralNet):
    """A scikit-learn classifier around a nervenet model-building function.

    The model must output class probabilities: one sigmoid unit for two classes, or one
    softmax unit per class. Labels (any values) are encoded as 0..k-1; the default loss is
    ``"binary_crossentropy"`` for a one-unit output and ``"sparse_categorical_crossentropy"``
    otherwise. The other arguments are ``NeuralNetRegressor``'s.

    Attributes:
        classes_, n_classes_, model_, history_, n_features_in_.
    """

    _is_classifier = True

    def _encode_targets(self, y):
        check_classification_targets(y)
        if np.ndim(y) != 1:
            raise ValueError(f"{type(self).__name__}: y must be 1-D class labels, got shape "
                             f"{np.shape(y)}")
        self._encoder = LabelEncoder().fit(y)
        self.classes_ = self._encoder.classes_
        self.n_classes_ = len(self.classes_)
        target = self._encoder.transform(y)
        return target, {"n_outputs_": 1, "classes_": self.classes_,
                        "n_classes_": self.n_classes_}

    def _default_loss(self, output_units: int) -> str:
        return "binary_crossentropy" if output_units == 1 else "sparse_categorical_crossentropy"

    def _encode_validation(self, y) -> np.ndarray:
        y = np.asarray(y)
        unknown = sorted(set(np.unique(y).tolist()) - set(self.classes_.tolist()))
        if unknown:
            raise ValueError(f"{type(self).__name__}: validation_data has labels {unknown} "
                             f"not seen in y (classes {self.classes_.tolist()})")
        return self._encoder.transform(y)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n, n_classes)."""
        p = self._outputs(X)
        p = p.reshape(len(p), -1)
        if p.shape[1] == 1:
            p = np.column_stack([1.0 - p[:, 0], p[:, 0]])
        return p

    def predict(self, X) -> np.ndarray:
        """The class with the highest probability."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

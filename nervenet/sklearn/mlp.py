"""scikit-learn's multi-layer perceptrons, trained by nervenet: MLPClassifier and MLPRegressor.

The parameters, their defaults and their meaning are scikit-learn's (``hidden_layer_sizes``,
``solver``, ``alpha``, ``learning_rate``, ``early_stopping``, ...), and so are the learned
attributes (``coefs_``, ``intercepts_``, ``loss_curve_``, ``n_iter_``, ``classes_``,
``best_validation_score_``). The training is nervenet's: the forward pass is
``nervenet.functional`` (``linear`` and the activation), the gradients come from nervenet's
autograd, and the updates from ``nervenet.optimizers`` (``SGD``, ``Adam``, ``LBFGS``).

What is minimized is scikit-learn's loss, term by term:

* regression: ``0.5 * mean((y - z)^2)`` over every element;
* binary and multi-label classification: ``sum over outputs of mean over samples of
  BCE(y, sigmoid(z))``; multi-class: ``mean over samples of CE(y, softmax(z))``;
* plus ``0.5 * alpha * sum ||W||^2 / n`` over the kernels (not the intercepts), ``n`` the
  batch size (the sum of the batch's sample weights when they are given).

Differences from scikit-learn, all small and on purpose:

* training runs in ``nervenet.backend.floatx()`` (float32 unless changed); predictions are
  computed in the dtype of ``X`` (float64 for float64 data, so a row's prediction does not
  depend on which other rows are in the batch);
* Adam adds ``epsilon`` to the bias-corrected root (torch's and the paper's form), scikit-learn
  to the uncorrected one: the steps differ only while ``1 - beta_2^t`` is far from 1;
* SGD's velocity accumulates gradients, not ``learning_rate * gradient`` (torch's form), which
  is the same trajectory for a constant rate and slightly different while
  ``learning_rate="invscaling"`` or ``"adaptive"`` changes the rate;
* ``solver="lbfgs"`` is nervenet's LBFGS (strong-Wolfe line search, stop when the largest
  gradient entry is at most ``tol``, at most ``max_iter`` iterations and about ``max_fun``
  loss evaluations), not SciPy's L-BFGS-B; it also records ``loss_curve_``.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

import nervenet.functional as F
from nervenet import backend, losses, optimizers
from nervenet.autograd import Tensor, grad, no_grad
from nervenet.checks import check_choice, check_int, check_number
from nervenet.sklearn._common import (
    NoImprovement,
    check_sample_weight,
    make_generator,
)

ACTIVATIONS = {"identity": None, "logistic": F.sigmoid, "tanh": F.tanh, "relu": F.relu}
SOLVERS = ("lbfgs", "sgd", "adam")
LEARNING_RATES = ("constant", "invscaling", "adaptive")


class _Network:
    """The weights of an MLP: nervenet Tensors that are views into one flat buffer.

    Layout: every kernel (layer by layer), then every bias. The optimizer updates the flat
    buffer as one variable: one Adam step over one vector instead of one per array (at batch
    200 the per-array overhead was a third of the step), and the kernels, the only weights the
    L2 penalty applies to, are one prefix of it.
    """

    def __init__(self, layer_units: list[int], dtype):
        shapes = list(zip(layer_units[:-1], layer_units[1:]))
        self.n_kernel = sum(a * b for a, b in shapes)
        self.flat = np.zeros(self.n_kernel + sum(b for _, b in shapes), dtype=dtype)
        self.kernels, self.biases = [], []
        k, b = 0, self.n_kernel
        for fan_in, fan_out in shapes:
            view = self.flat[k:k + fan_in * fan_out].reshape(fan_in, fan_out)
            self.kernels.append(Tensor(view, requires_grad=True))
            self.biases.append(Tensor(self.flat[b:b + fan_out], requires_grad=True))
            k, b = k + fan_in * fan_out, b + fan_out
        self.params = self.kernels + self.biases
        self.variable = Tensor(self.flat)             # what the optimizer updates

    def glorot_init(self, rng: np.random.Generator, factor: float) -> None:
        """scikit-learn's initialization: kernel and bias uniform in +-sqrt(factor / (fan_in +
        fan_out)), factor 2 for the logistic activation and 6 otherwise (Glorot & Bengio)."""
        for kernel, bias in zip(self.kernels, self.biases):
            fan_in, fan_out = kernel.shape
            bound = np.sqrt(factor / (fan_in + fan_out))
            kernel.data[...] = rng.uniform(-bound, bound, (fan_in, fan_out))
            bias.data[...] = rng.uniform(-bound, bound, fan_out)

    def forward(self, x, activation) -> Tensor:
        """The output layer's pre-activation ``z`` (the losses take logits)."""
        h = x
        last = len(self.kernels) - 1
        for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
            h = F.linear(h, kernel, bias)
            if i < last and activation is not None:
                h = activation(h)
        return h

    def flat_grad(self, loss: Tensor) -> np.ndarray:
        return np.concatenate([g.data.reshape(-1) for g in grad(loss, self.params)])


class _BaseMLP(BaseEstimator):
    """What MLPClassifier and MLPRegressor share (see the module docstring)."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun

    # ------------------------------------------------------------------ checks
    def _hidden_sizes(self) -> list[int]:
        owner = type(self).__name__
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        return [check_int(owner, "hidden_layer_sizes entries", s, 1) for s in sizes]

    def _check_params(self) -> None:
        owner = type(self).__name__
        check_choice(owner, "activation", self.activation, ACTIVATIONS)
        check_choice(owner, "solver", self.solver, SOLVERS)
        check_choice(owner, "learning_rate", self.learning_rate, LEARNING_RATES)
        check_number(owner, "alpha", self.alpha, 0.0)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            check_int(owner, "batch_size ('auto' or)", self.batch_size, 1)
        check_number(owner, "learning_rate_init", self.learning_rate_init, 0.0, low_open=True)
        check_number(owner, "power_t", self.power_t, 0.0)
        check_int(owner, "max_iter", self.max_iter, 1)
        check_number(owner, "tol", self.tol, 0.0)
        check_number(owner, "momentum", self.momentum, 0.0, 1.0, high_open=True)
        check_number(owner, "validation_fraction", self.validation_fraction, 0.0, 1.0,
                   low_open=True, high_open=True)
        check_number(owner, "beta_1", self.beta_1, 0.0, 1.0, high_open=True)
        check_number(owner, "beta_2", self.beta_2, 0.0, 1.0, high_open=True)
        check_number(owner, "epsilon", self.epsilon, 0.0, low_open=True)
        check_int(owner, "n_iter_no_change", self.n_iter_no_change, 1)
        check_int(owner, "max_fun", self.max_fun, 1)

    # ------------------------------------------------------------------ the loss
    def _data_loss(self, z: Tensor, y: np.ndarray, sample_weight) -> Tensor:
        """scikit-learn's data loss (see the module docstring) of logits ``z``; with sample
        weights, their weighted mean ``sum w_i l_i / sum w_i`` (nervenet's Loss objects
        compute ``sum w_i l_i / n``, so the weights are rescaled to sum to n)."""
        if sample_weight is not None:
            total = float(sample_weight.sum())
            sample_weight = sample_weight * (len(sample_weight) / total) if total > 0 else (
                sample_weight)
        if self.out_activation_ == "identity":
            return losses.MeanSquaredError()(y, z, sample_weight) * 0.5
        if self.out_activation_ == "softmax":
            return losses.CategoricalCrossentropy(from_logits=True)(y, z, sample_weight)
        loss = losses.BinaryCrossentropy(from_logits=True)(y, z, sample_weight)
        return loss * float(y.shape[1]) if y.shape[1] > 1 else loss

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, sample_weight=None):
        """Fit the network to ``X`` (n_samples, n_features) and ``y``.

        Args:
            X: the inputs.
            y: class labels (classifier) or targets of shape (n,) or (n, n_outputs).
            sample_weight: per-sample weights (default ``None``).

        Returns:
            self.
        """
        self._check_params()
        hidden = self._hidden_sizes()
        X, Y = self._validate_input(X, y)
        dtype = backend.floatx()
        X = X.astype(dtype, copy=False)
        Y = np.asarray(Y, dtype=dtype)
        weights = check_sample_weight(type(self).__name__, sample_weight, len(X), dtype)
        rng = make_generator(self.random_state)
        layer_units = [X.shape[1], *hidden, Y.shape[1]]
        network = _Network(layer_units, dtype)
        shapes = [(a, b) for a, b in zip(layer_units[:-1], layer_units[1:])]
        if self.warm_start and [c.shape for c in getattr(self, "coefs_", [])] == shapes:
            for tensor, value in zip(network.params, self.coefs_ + self.intercepts_):
                tensor.data[...] = value
        else:
            network.glorot_init(rng, 2.0 if self.activation == "logistic" else 6.0)
        self.n_outputs_ = Y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()
        if self.solver == "lbfgs":
            self._fit_lbfgs(network, X, Y, weights)
        else:
            self._fit_stochastic(network, X, Y, weights, rng)
        self.coefs_ = [k.data for k in network.kernels]
        self.intercepts_ = [b.data for b in network.biases]
        return self

    def _step_loss(self, network: _Network, x, y, w) -> tuple[float, np.ndarray]:
        """The loss of one batch and its gradient as one flat vector (the L2 term added
        analytically: its gradient is ``alpha / n * W``)."""
        loss = self._data_loss(network.forward(x, ACTIVATIONS[self.activation]), y, w)
        gradient = network.flat_grad(loss)
        value = float(loss.data)
        if self.alpha:
            kernels = network.flat[:network.n_kernel]
            coefficient = self.alpha / (len(x) if w is None else float(w.sum()) or 1.0)
            gradient[:network.n_kernel] += coefficient * kernels
            value += 0.5 * coefficient * float(kernels @ kernels)
        return value, gradient

    def _make_optimizer(self):
        if self.solver == "sgd":
            return optimizers.SGD(learning_rate=self.learning_rate_init, momentum=self.momentum,
                                  nesterov=self.nesterovs_momentum)
        return optimizers.Adam(learning_rate=self.learning_rate_init, beta_1=self.beta_1,
                               beta_2=self.beta_2, epsilon=self.epsilon)

    def _fit_stochastic(self, network: _Network, X, Y, weights, rng) -> None:
        owner = type(self).__name__
        early = self.early_stopping
        if early:
            X, X_val, Y, Y_val, weights, w_val = self._split_validation(X, Y, weights, rng)
        n = len(X)
        batch_size = min(200, n) if self.batch_size == "auto" else self.batch_size
        if batch_size > n:
            warnings.warn(f"{owner}: batch_size {batch_size} is larger than the {n} samples; "
                          f"it is clipped to {n}", stacklevel=3)
            batch_size = n
        optimizer = self._make_optimizer()
        optimizer.build([network.variable])
        stopping = NoImprovement(self.tol, self.n_iter_no_change, "max" if early else "min")
        self.loss_curve_, self.t_, self.n_iter_ = [], 0, 0
        self.validation_scores_ = [] if early else None
        self.best_validation_score_ = self.best_loss_ = None
        best_flat = network.flat.copy()
        for _ in range(self.max_iter):
            self.loss_ = self._epoch(network, optimizer, X, Y, weights, rng, batch_size)
            self.n_iter_ += 1
            self.t_ += n
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
            if early:
                score = self._validation_score(network, X_val, Y_val, w_val)
                self.validation_scores_.append(score)
                if self.verbose:
                    print(f"Validation score: {score:f}")
                stop = stopping.update(score)
                if stopping.is_best:
                    best_flat = network.flat.copy()
                self.best_validation_score_ = stopping.best_value()
            else:
                stop = stopping.update(self.loss_)
                self.best_loss_ = stopping.best_value()
            if self.solver == "sgd" and self.learning_rate == "invscaling":
                optimizer.learning_rate = self.learning_rate_init / (self.t_ + 1) ** self.power_t
            if stop:
                if (self.solver == "sgd" and self.learning_rate == "adaptive"
                        and optimizer.learning_rate > 1e-6):
                    optimizer.learning_rate = optimizer.learning_rate / 5.0
                    stopping.count = 0
                    continue
                break
        else:
            warnings.warn(f"{owner}: stochastic optimizer reached max_iter={self.max_iter} "
                          "before the loss stopped improving", ConvergenceWarning, stacklevel=3)
        if early:
            network.flat[...] = best_flat

    def _epoch(self, network: _Network, optimizer, X, Y, weights, rng, batch_size: int) -> float:
        """One pass over the samples (shuffled when ``shuffle``) in minibatches; the mean loss."""
        n = len(X)
        order = rng.permutation(n) if self.shuffle else slice(None)
        xs, ys = X[order], Y[order]
        ws = None if weights is None else weights[order]
        total = 0.0
        for start in range(0, n, batch_size):
            window = slice(start, start + batch_size)
            value, gradient = self._step_loss(network, xs[window], ys[window],
                                              None if ws is None else ws[window])
            if not np.isfinite(value):
                raise FloatingPointError(
                    f"{type(self).__name__}: the loss became {value} in iteration "
                    f"{self.n_iter_ + 1}; lower learning_rate_init or scale the inputs")
            optimizer.apply_gradients([(gradient, network.variable)])
            total += value * len(xs[window])
        return total / n

    def _split_validation(self, X, Y, weights, rng):
        stratify = Y if self._is_classifier and Y.shape[1] == 1 else None
        seed = int(rng.integers(2**31 - 1))
        arrays = (X, Y) if weights is None else (X, Y, weights)
        parts = train_test_split(*arrays, random_state=seed, test_size=self.validation_fraction,
                                 stratify=stratify)
        if len(parts[1]) < 2:
            raise ValueError(f"{type(self).__name__}: the validation set has {len(parts[1])} "
                             "sample(s); increase validation_fraction or give more data")
        if weights is None:
            return parts[0], parts[1], parts[2], parts[3], None, None
        return tuple(parts)

    def _fit_lbfgs(self, network: _Network, X, Y, weights) -> None:
        activation = ACTIVATIONS[self.activation]
        total_weight = len(X) if weights is None else float(weights.sum()) or 1.0
        calls = 0

        def loss_fn():
            nonlocal calls
            calls += 1
            loss = self._data_loss(network.forward(X, activation), Y, weights)
            if self.alpha:
                penalty = F.sum(network.kernels[0] * network.kernels[0])
                for kernel in network.kernels[1:]:
                    penalty = penalty + F.sum(kernel * kernel)
                loss = loss + penalty * (0.5 * self.alpha / total_weight)
            return loss

        optimizer = optimizers.LBFGS(max_iter=self.max_iter, tol=self.tol)
        result = optimizer.minimize(loss_fn, network.params,
                                    callback=lambda nit, f: calls >= self.max_fun)
        self.n_iter_ = result.nit
        self.loss_ = result.fun
        self.loss_curve_ = list(result.history[1:])
        self.best_loss_ = min(result.history)
        self.validation_scores_ = self.best_validation_score_ = None
        self.t_ = len(X) * result.nit
        if not result.converged and (result.nit >= self.max_iter or calls >= self.max_fun):
            warnings.warn(f"{type(self).__name__}: lbfgs stopped before convergence: "
                          f"{result.message}", ConvergenceWarning, stacklevel=3)

    # ------------------------------------------------------------------ predict
    def _logits(self, X) -> tuple[np.ndarray, np.dtype]:
        check_is_fitted(self, "coefs_")
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        dtype, h = X.dtype, X
        activation = ACTIVATIONS[self.activation]
        with no_grad():   # in X's dtype: float64 rows do not depend on the batch's other rows
            for i, (kernel, bias) in enumerate(zip(self.coefs_, self.intercepts_)):
                h = F.linear(h, kernel.astype(dtype, copy=False), bias.astype(dtype, copy=False))
                if i < len(self.coefs_) - 1 and activation is not None:
                    h = activation(h)
        return h.data, dtype


class MLPRegressor(RegressorMixin, _BaseMLP):
    """A multi-layer perceptron regressor with scikit-learn's interface, trained by nervenet.

    Minimizes ``0.5 * mean((y - y_hat)^2) + 0.5 * alpha * ||W||^2 / n`` with SGD, Adam or
    LBFGS. Parameters and attributes are scikit-learn's ``MLPRegressor``'s (see
    ``nervenet/sklearn/mlp.py`` for the few differences in the arithmetic).

    Args:
        hidden_layer_sizes: units per hidden layer (default ``(100,)``).
        activation: ``"identity"``, ``"logistic"``, ``"tanh"`` or ``"relu"`` (default).
        solver: ``"lbfgs"``, ``"sgd"`` or ``"adam"`` (default).
        alpha: the L2 coefficient (default 0.0001).
        batch_size: samples per step, ``"auto"`` = min(200, n) (default).
        learning_rate: SGD's schedule: ``"constant"`` (default), ``"invscaling"``
            (``lr = learning_rate_init / (t + 1)^power_t``, t the samples seen, set after every
            epoch) or ``"adaptive"`` (divide by 5 when ``n_iter_no_change + 1`` epochs fail to
            improve by ``tol``; stop once it is at most 1e-6).
        learning_rate_init: the (initial) learning rate of SGD and Adam (default 0.001).
        power_t: the exponent of ``"invscaling"`` (default 0.5).
        max_iter: the most epochs (LBFGS: iterations) (default 200).
        shuffle: reshuffle the samples every epoch (default ``True``).
        random_state: an int, a Generator, a RandomState or ``None`` (default).
        tol: the least improvement of the loss (or validation score) per epoch (default 1e-4).
        verbose: print the loss after every epoch (default ``False``).
        warm_start: start from the previous fit's weights when the shapes agree (default
            ``False``).
        momentum: SGD's momentum in [0, 1) (default 0.9).
        nesterovs_momentum: Nesterov's momentum for SGD (default ``True``).
        early_stopping: hold out ``validation_fraction`` of the data, stop when its R^2 score
            stops improving, and keep the best weights (default ``False``).
        validation_fraction: the held-out share for early stopping (default 0.1).
        beta_1, beta_2, epsilon: Adam's (defaults 0.9, 0.999, 1e-8).
        n_iter_no_change: flat epochs tolerated (default 10).
        max_fun: LBFGS's budget of loss evaluations (default 15000).

    Attributes:
        coefs_, intercepts_: the kernels (n_in, n_out) and biases of every layer.
        loss_, loss_curve_, best_loss_: the final, per-epoch and best training loss.
        validation_scores_, best_validation_score_: with early stopping, the R^2 scores.
        n_iter_, t_, n_layers_, n_outputs_, out_activation_, n_features_in_.

    Example:
        >>> import numpy as np
        >>> x = np.linspace(-1, 1, 64).reshape(-1, 1)
        >>> model = MLPRegressor((16,), solver="lbfgs", random_state=0).fit(x, x.ravel() ** 2)
        >>> bool(model.score(x, x.ravel() ** 2) > 0.99)
        True
    """

    _is_classifier = False

    def _validate_input(self, X, y):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             dtype=(np.float64, np.float32))
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y.reshape(len(y), -1)

    def _output_activation(self) -> str:
        return "identity"

    def _validation_score(self, network, X, Y, weights) -> float:
        with no_grad():
            prediction = network.forward(X, ACTIVATIONS[self.activation]).data
        if not np.all(np.isfinite(prediction)):
            return float("nan")
        return float(r2_score(Y, prediction, sample_weight=weights))

    def predict(self, X) -> np.ndarray:
        """The predicted targets, shape (n,) for one output, else (n, n_outputs)."""
        z, dtype = self._logits(X)
        z = z.astype(dtype, copy=False)
        return z.ravel() if self.n_outputs_ == 1 else z


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A multi-layer perceptron classifier with scikit-learn's interface, trained by nervenet.

    Binary and multi-label problems get sigmoid outputs and binary cross-entropy, multi-class
    problems a softmax and cross-entropy (both from logits, stably). The parameters are
    ``MLPRegressor``'s (the early-stopping score is the accuracy); ``classes_`` holds the
    labels.

    Example:
        >>> import numpy as np
        >>> x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 8, dtype=float)
        >>> y = np.array(["no", "yes", "yes", "no"] * 8)                  # XOR
        >>> model = MLPClassifier((8,), activation="tanh", solver="lbfgs", random_state=1)
        >>> model.fit(x, y).predict([[0, 1], [1, 1]]).tolist()
        ['yes', 'no']
    """

    _is_classifier = True

    def _validate_input(self, X, y):
        X, y = validate_data(self, X, y, multi_output=True, dtype=(np.float64, np.float32))
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.warm_start and hasattr(self, "classes_"):
            if set(unique_labels(y)) != set(self.classes_):
                raise ValueError(f"{type(self).__name__}: warm_start needs the classes of the "
                                 f"previous fit {self.classes_.tolist()}, y has "
                                 f"{unique_labels(y).tolist()}")
        else:
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        return X, self._label_binarizer.transform(y)

    def _output_activation(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _probabilities(self, z: np.ndarray) -> np.ndarray:
        if self.out_activation_ == "softmax":
            z = np.exp(z - z.max(axis=1, keepdims=True))
            return z / z.sum(axis=1, keepdims=True)
        return 0.5 * (1.0 + np.tanh(0.5 * z))          # the logistic sigmoid, overflow-free

    def _validation_score(self, network, X, Y, weights) -> float:
        with no_grad():
            z = network.forward(X, ACTIVATIONS[self.activation]).data
        if self.out_activation_ == "softmax":
            right = z.argmax(axis=1) == Y.argmax(axis=1)
        else:
            right = np.all((z > 0) == (Y > 0.5), axis=1)
        return float(np.average(right, weights=weights))

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n, n_classes) (multi-label: one per label)."""
        z, dtype = self._logits(X)
        p = self._probabilities(z).astype(dtype, copy=False)
        if self.n_outputs_ == 1 and self._label_binarizer.y_type_ == "binary":
            return np.column_stack([1.0 - p[:, 0], p[:, 0]])
        return p

    def predict_log_proba(self, X) -> np.ndarray:
        """The logarithm of ``predict_proba``."""
        return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """The predicted class labels."""
        z, _ = self._logits(X)
        p = self._probabilities(z)
        return self._label_binarizer.inverse_transform(p[:, 0] if self.n_outputs_ == 1 else p)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

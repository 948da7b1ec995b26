"""Model: a Layer that can be trained (compile / fit / evaluate / predict), as Keras's.

Subclass it and define ``call`` (the subclassing API), or use ``Sequential``.

One training step (``train_step``) is the whole of backpropagation training:

    y_pred = model(x, training=True)                 # forward pass, graph recorded
    loss   = loss_fn(y, y_pred) + penalties          # data loss + regularization
    grads  = d loss / d weights                      # backward pass (nervenet.grad)
    optimizer.apply_gradients(zip(grads, weights))   # update, then constraints
"""

from __future__ import annotations

import math

import numpy as np

from nervenet import backend, losses, metrics, optimizers
from nervenet.autograd import Tensor, grad, no_grad
from nervenet.callbacks import CallbackList, History, ProgbarLogger
from nervenet.layers.base import Layer
from nervenet.layers.core import InputLayer
from nervenet.models import data_adapter
from nervenet.models.summary import print_summary


class Model(Layer):
    """A trainable network of layers.

    Args:
        name: the model's name (default: the snake_case class name).

    Example (subclassing):
        >>> from nervenet import layers
        >>> class TwoLayer(Model):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.hidden = layers.Dense(8, activation="relu")
        ...         self.out = layers.Dense(1)
        ...     def call(self, inputs, training=False):
        ...         return self.out(self.hidden(inputs))
        >>> model = TwoLayer()
        >>> model(np.zeros((2, 3))).shape
        (2, 1)
    """

    def __init__(self, name: str | None = None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.optimizer = None
        self.loss = None
        self.compiled_metrics: list[metrics.Metric] = []
        self.metric_ids = None
        self.stop_training = False
        self.history: History | None = None
        self.compiled = False

    # -------------------------------------------------------------------- structure
    @property
    def layers(self) -> list[Layer]:
        """The model's layers, in order (the Input layer is not listed, as Keras)."""
        return [layer for layer in self.sublayers if not isinstance(layer, InputLayer)]

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """Return a layer by ``name`` or by ``index`` in ``layers``."""
        if (name is None) == (index is None):
            raise ValueError("get_layer: give exactly one of name and index")
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"get_layer: index {index} is out of range for a model with "
                                 f"{len(self.layers)} layers")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"get_layer: no layer named {name!r}; the layers are "
                         f"{[layer.name for layer in self.layers]}")

    def summary(self, print_fn=None, line_length: int = 80) -> None:
        """Print a table of the layers with output shapes and parameter counts."""
        print_summary(self, print_fn=print_fn, line_length=line_length)

    # ------------------------------------------------------------------------ compile
    def compile(self, optimizer="rmsprop", loss=None, metrics=None) -> None:
        """Choose how the model learns.

        Args:
            optimizer: an optimizer id (``"sgd"``, ``"adam"``, ...) or object (default
                ``"rmsprop"``, as Keras).
            loss: a loss id (``"mse"``, ``"sparse_categorical_crossentropy"``, ...), a Loss
                object or a function ``fn(y_true, y_pred) -> scalar Tensor``.
            metrics: a list of metric ids or objects; ``"accuracy"`` picks the accuracy that
                fits the loss, as Keras does (default ``None``).
        """
        if loss is None:
            raise ValueError("compile: loss is required (e.g. loss='mse')")
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss)
        if metrics is None:
            metrics = []
        if isinstance(metrics, (str, dict)) or not isinstance(metrics, (list, tuple)):
            metrics = [metrics]
        self.metric_ids = list(metrics)
        self.compiled_metrics = []  # resolved at the first fit/evaluate, when shapes are known
        self.compiled = True

    def _loss_name(self) -> str | None:
        return getattr(self.loss, "name", None)

    def _resolve_metrics(self, output_shape) -> None:
        if self.metric_ids is None or self.compiled_metrics:
            return
        self.compiled_metrics = [metrics.get(m, self._loss_name(), output_shape)
                                 for m in self.metric_ids]

    def _require_compiled(self, method: str) -> None:
        if not self.compiled:
            raise ValueError(f"{method}: the model must be compiled first: call "
                             "model.compile(optimizer=..., loss=...)")

    # --------------------------------------------------------------------- one step
    def compute_loss(self, y, y_pred, sample_weight=None) -> Tensor:
        """The data loss plus every regularization penalty (what the optimizer minimizes).

        Targets of shape (N,) for outputs of shape (N, 1) get the missing axis, as Keras."""
        if isinstance(y, np.ndarray) and y.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
            y = y[..., None]
        total = self.loss(y, y_pred, sample_weight) if sample_weight is not None else (
            self.loss(y, y_pred))
        for penalty in self.regularization_losses():
            total = total + penalty
        for layer in self._layers_with_activity_loss():
            for penalty in layer.losses:
                total = total + penalty
        return total

    def _layers_with_activity_loss(self) -> list[Layer]:
        return [layer for layer in _all_layers(self) if layer.activity_regularizer is not None]

    def train_step(self, x, y, sample_weight=None) -> tuple[float, np.ndarray]:
        """Forward, backward and update on one batch; returns (loss, predictions).

        A batch whose loss is NaN or infinite changes no weight (fit then stops: quietly with
        the TerminateOnNaN callback, with a FloatingPointError otherwise).
        """
        y_pred = self(x, training=True)
        loss = self.compute_loss(y, y_pred, sample_weight)
        if not np.isfinite(loss.data):
            return float(loss.data), y_pred.data
        weights = self.trainable_weights
        gradients = grad(loss, weights, allow_unused=True)
        self.optimizer.apply_gradients(
            [(g.data, w) for g, w in zip(gradients, weights) if g is not None])
        self.apply_constraints()
        return float(loss.data), y_pred.data

    # -------------------------------------------------------------------------- fit
    def fit(self, x=None, y=None, epochs: int = 1, batch_size: int | None = 32,
            validation_data=None, validation_split: float = 0.0, shuffle: bool = True,
            callbacks=None, verbose: int = 1, class_weight=None, sample_weight=None,
            initial_epoch: int = 0) -> History:
        """Train for ``epochs`` passes over the data.

        Args:
            x: input array (or list/dict of arrays for several inputs).
            y: targets.
            epochs: number of epochs (default 1).
            batch_size: samples per gradient step (default 32).
            validation_data: ``(x_val, y_val)`` or ``(x_val, y_val, sample_weight_val)``
                evaluated at the end of each epoch (default ``None``).
            validation_split: fraction of the data, taken from the end, held out for
                validation (default 0.0).
            shuffle: reshuffle the training samples every epoch (default ``True``).
            callbacks: list of Callback objects (default ``None``).
            verbose: 0 silent, 1 progress bar, 2 one line per epoch (default 1).
            class_weight: ``{class: weight}`` multiplying each sample's loss (default ``None``).
            sample_weight: per-sample loss weights (default ``None``).
            initial_epoch: epoch to start from, when resuming (default 0).

        Returns:
            The History; ``history.history`` maps "loss", the metric names and their "val_"
            versions to per-epoch lists.

        Second-order optimizers (Newton, ConjugateGradient, BFGS, LBFGS) train full-batch:
        each epoch runs one ``optimizer.minimize`` call on the whole training set.
        """
        self._require_compiled("fit")
        x, y, sample_weight, validation = self._prepare_fit(
            x, y, sample_weight, class_weight, validation_data, validation_split)
        epochs, batch_size = _check_positive_int(epochs, "epochs"), batch_size
        n = data_adapter.num_samples(x)
        full_batch = hasattr(self.optimizer, "minimize")  # second-order: whole-set steps
        batch_size = n if full_batch or batch_size is None else _check_positive_int(
            batch_size, "batch_size")
        steps = math.ceil(n / batch_size)
        self.history = History()
        user_callbacks = list(callbacks or [])
        extra = [ProgbarLogger(verbose)] if verbose in (1, 2) else []
        callback_list = CallbackList(
            user_callbacks + extra + [self.history], model=self,
            params={"epochs": epochs, "steps": steps, "verbose": verbose, "samples": n})
        rng = backend.make_rng()
        self.stop_training = False
        callback_list.call("on_train_begin", {})
        for epoch in range(initial_epoch, epochs):
            callback_list.call("on_epoch_begin", epoch, {})
            for metric in self.compiled_metrics:
                metric.reset_state()
            if shuffle and not full_batch:
                order = rng.permutation(n)
                epoch_x, epoch_y = data_adapter.take(x, order), data_adapter.take(y, order)
                epoch_w = data_adapter.take(sample_weight, order)
            else:
                epoch_x, epoch_y, epoch_w = x, y, sample_weight
            if full_batch:
                logs = self._fit_full_batch(epoch_x, epoch_y, epoch_w, callback_list)
            else:
                logs = self._fit_epoch(epoch_x, epoch_y, epoch_w, batch_size, steps,
                                       callback_list)
            if validation is not None:
                val_logs = self._evaluate_arrays(*validation, batch_size=batch_size)
                logs.update({f"val_{k}": v for k, v in val_logs.items()})
            callback_list.call("on_epoch_end", epoch, logs)
            if self.stop_training:
                break
        callback_list.call("on_train_end", {})
        return self.history

    def _fit_epoch(self, x, y, sample_weight, batch_size, steps, callback_list) -> dict:
        total_loss = 0.0
        seen = 0
        batch_hooks = callback_list.wants("on_train_batch_end") or callback_list.wants(
            "on_train_batch_begin")
        logs: dict = {}
        for step in range(steps):
            window = slice(step * batch_size, (step + 1) * batch_size)
            batch_x, batch_y = data_adapter.take(x, window), data_adapter.take(y, window)
            batch_w = data_adapter.take(sample_weight, window)
            if batch_hooks:
                callback_list.call("on_train_batch_begin", step, {})
            loss, y_pred = self.train_step(batch_x, batch_y, batch_w)
            count = len(y_pred)
            total_loss += loss * count
            seen += count
            for metric in self.compiled_metrics:
                metric.update_state(batch_y, y_pred, batch_w)
            if batch_hooks:
                logs = self._logs(total_loss / seen)
                logs["loss"] = loss if not np.isfinite(loss) else logs["loss"]
                callback_list.call("on_train_batch_end", step, logs)
            if self.stop_training:
                break
            if not np.isfinite(loss):
                raise FloatingPointError(
                    f"the loss of batch {step} is {loss}; no weight was changed by that batch. "
                    "Lower the learning rate or check the data; add "
                    "callbacks.TerminateOnNaN() to stop training quietly instead")
        return self._logs(total_loss / max(seen, 1))

    def _fit_full_batch(self, x, y, sample_weight, callback_list) -> dict:
        weights = self.trainable_weights

        def loss_fn():
            return self.compute_loss(y, self(x, training=True), sample_weight)

        callback_list.call("on_train_batch_begin", 0, {})
        result = self.optimizer.minimize(loss_fn, weights)
        self.apply_constraints()
        with no_grad():
            y_pred = self(x, training=False).data
        for metric in self.compiled_metrics:
            metric.update_state(y, y_pred, sample_weight)
        logs = self._logs(float(result.fun))
        callback_list.call("on_train_batch_end", 0, logs)
        return logs

    def _logs(self, loss: float) -> dict:
        logs = {"loss": loss}
        for metric in self.compiled_metrics:
            logs[metric.name] = metric.result()
        return logs

    def _prepare_fit(self, x, y, sample_weight, class_weight, validation_data,
                     validation_split):
        if x is None or y is None:
            raise ValueError("fit: x and y are required")
        x = data_adapter.to_arrays(x, "x")
        y = data_adapter.to_array(y, "y")
        if sample_weight is not None:
            sample_weight = data_adapter.to_array(sample_weight, "sample_weight")
        data_adapter.check_lengths(x=x, y=y, sample_weight=sample_weight)
        validation = None
        if validation_data is not None:
            validation = self._prepare_validation(validation_data)
        elif validation_split:
            (x, y, sample_weight), validation = data_adapter.split_validation(
                x, y, sample_weight, validation_split)
        if class_weight is not None:
            weights = data_adapter.class_weights_to_sample_weights(y, class_weight)
            sample_weight = weights if sample_weight is None else sample_weight * weights
        self._check_data_against_model(x, y, "fit")
        if validation is not None:
            self._check_data_against_model(validation[0], validation[1], "validation_data")
        return x, y, sample_weight, validation

    def _prepare_validation(self, validation_data):
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be a tuple (x_val, y_val) or "
                             "(x_val, y_val, sample_weight_val)")
        x_val = data_adapter.to_arrays(validation_data[0], "validation_data x")
        y_val = data_adapter.to_array(validation_data[1], "validation_data y")
        w_val = None
        if len(validation_data) == 3 and validation_data[2] is not None:
            w_val = data_adapter.to_array(validation_data[2], "validation_data sample_weight")
        data_adapter.check_lengths(x_val=x_val, y_val=y_val, sample_weight_val=w_val)
        return x_val, y_val, w_val

    def _check_data_against_model(self, x, y, where: str) -> None:
        """Run one sample through the model (building it) and check the targets against the
        output, so that bad data fails before any weight changes."""
        try:
            with no_grad():
                output = self(data_adapter.take(x, slice(0, 1)), training=False)
        except ValueError as error:
            shapes = [a.shape for a in data_adapter.flatten(x)]
            described = shapes[0] if len(shapes) == 1 else shapes
            raise ValueError(f"{where}: x of shape {described} does not fit the model: "
                             f"{error}") from None
        output_shape = (None,) + output.shape[1:]
        if hasattr(self.loss, "validate_targets"):
            try:
                self.loss.validate_targets(y, output_shape)
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from None
        self._resolve_metrics(output_shape)

    # ------------------------------------------------------------ evaluate / predict
    def evaluate(self, x=None, y=None, batch_size: int | None = 32, verbose: int = 0,
                 sample_weight=None, return_dict: bool = False):
        """The loss (and metrics) on ``x, y``, in inference mode.

        Returns:
            The loss as a float when there are no metrics, else ``[loss, metric, ...]``
            (or a dict with ``return_dict=True``).
        """
        self._require_compiled("evaluate")
        if x is None or y is None:
            raise ValueError("evaluate: x and y are required")
        x = data_adapter.to_arrays(x, "x")
        y = data_adapter.to_array(y, "y")
        if sample_weight is not None:
            sample_weight = data_adapter.to_array(sample_weight, "sample_weight")
        data_adapter.check_lengths(x=x, y=y, sample_weight=sample_weight)
        self._check_data_against_model(x, y, "evaluate")
        logs = self._evaluate_arrays(x, y, sample_weight, batch_size=batch_size)
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def _evaluate_arrays(self, x, y, sample_weight=None, batch_size=None) -> dict:
        n = data_adapter.num_samples(x)
        batch_size = n if batch_size is None else batch_size
        for metric in self.compiled_metrics:
            metric.reset_state()
        total, weight_total = 0.0, 0
        with no_grad():
            for start in range(0, n, batch_size):
                window = slice(start, start + batch_size)
                batch_x, batch_y = data_adapter.take(x, window), data_adapter.take(y, window)
                batch_w = data_adapter.take(sample_weight, window)
                y_pred = self(batch_x, training=False)
                loss = self.compute_loss(batch_y, y_pred, batch_w)
                count = len(y_pred.data)
                total += float(loss.data) * count
                weight_total += count
                for metric in self.compiled_metrics:
                    metric.update_state(batch_y, y_pred.data, batch_w)
        return self._logs(total / weight_total)

    def predict(self, x, batch_size: int | None = 32, verbose: int = 0) -> np.ndarray:
        """The model's outputs for ``x``, in inference mode, as an ndarray."""
        x = data_adapter.to_arrays(x, "x")
        n = data_adapter.num_samples(x)
        batch_size = n if batch_size is None else _check_positive_int(batch_size, "batch_size")
        outputs = []
        with no_grad():
            for start in range(0, n, batch_size):
                outputs.append(self(data_adapter.take(x, slice(start, start + batch_size)),
                                    training=False).data)
        return np.concatenate(outputs) if outputs else np.zeros((0,))

    def predict_on_batch(self, x) -> np.ndarray:
        """The outputs for one batch (no batching, inference mode)."""
        with no_grad():
            return self(data_adapter.to_arrays(x, "x"), training=False).data

    def train_on_batch(self, x, y, sample_weight=None) -> float:
        """One training step on one batch; returns the loss."""
        self._require_compiled("train_on_batch")
        x = data_adapter.to_arrays(x, "x")
        y = data_adapter.to_array(y, "y")
        data_adapter.check_lengths(x=x, y=y, sample_weight=sample_weight)
        return self.train_step(x, y, sample_weight)[0]

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable}


def _all_layers(layer: Layer) -> list[Layer]:
    found = []
    for sub in layer.sublayers:
        found.append(sub)
        found.extend(_all_layers(sub))
    return found


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)

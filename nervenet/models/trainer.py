"""Trainer: how a Model learns (compile, the train step, fit, evaluate, predict), as Keras 3's
``keras/src/trainers/trainer.py``. ``Model`` inherits it and keeps the layer side (the graph,
the structure, saving).

One training step (``train_step``) is the whole of backpropagation training:

    y_pred = model(x, training=True)                 # forward pass, graph recorded
    loss   = loss_fn(y, y_pred) + penalties          # data loss + regularization
    grads  = d loss / d weights                      # backward pass (nervenet.grad)
    optimizer.apply_gradients(zip(grads, weights))   # update, then constraints

``fit`` runs it over the batches of each epoch; ``evaluate`` and ``predict`` run the model in
inference mode.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from nervenet import backend, metrics, nest, optimizers, world
from nervenet.autograd import Tensor, grad, no_grad
from nervenet.callbacks import CallbackList, History, ProgbarLogger
from nervenet.data.dataset import Dataset
from nervenet.distributed import data_parallel
from nervenet.layers.base import Layer, nested_layers, state_transaction
from nervenet.models import data_adapter, jit
from nervenet.models.compile_utils import OutputLosses, OutputMetrics, output_loss


class Trainer:
    """The training side of ``Model``: compile settings, the train step and the loops of
    ``fit``, ``evaluate`` and ``predict``. A mixin: it runs the model through ``self(...)``
    and reads what the model side defines: ``output_names``, ``has_fixed_outputs()``,
    ``standardize_inputs(x)``, ``trainable_weights`` and ``dtype``."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.optimizer = None
        self.loss = None
        self.compiled_metrics: list[metrics.Metric] = []
        self.metric_ids = None
        self.compile_arguments: dict | None = None
        self.stop_training = False
        self.history: History | None = None
        self.compiled = False
        self._output_losses: OutputLosses | None = None
        self._output_metrics: OutputMetrics | None = None
        self._metric_entries: list[tuple] = []  # (metric, output index or None, log name)
        self._fit_rng: np.random.Generator | None = None  # the running fit's shuffling
        self._initial_epoch = 0
        #: the running data-parallel fit (``nervenet.distributed``), ``None`` in one process
        self.data_parallel: data_parallel.DataParallel | None = None
        self.jit_compile = False
        #: the captured training and inference steps (``jit_compile``), ``None``: eager
        self.captured_steps: jit.CapturedSteps | None = None
        #: where the weights live and each batch goes (``Model.to``): "cpu", "gpu" or "fake"
        self.device = "cpu"

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                jit_compile="auto") -> None:
        """Choose how the model learns.

        Args:
            optimizer: an optimizer id (``"sgd"``, ``"adam"``, ...) or object (default
                ``"rmsprop"``, as Keras).
            loss: a loss id (``"mse"``, ``"sparse_categorical_crossentropy"``, ...), a Loss
                object or a function ``fn(y_true, y_pred) -> scalar Tensor``. With several
                outputs: one loss for all, a list (one per output) or a dict by output name.
            metrics: a list of metric ids or objects; ``"accuracy"`` picks the accuracy that
                fits the loss, as Keras does (default ``None``). With several outputs the list
                applies to each output; a list of lists or a dict by output name choose per
                output.
            loss_weights: with several outputs, the weight of each output's loss in the total
                (a list or a dict by output name; default ``None``: all 1.0).
            jit_compile: ``"auto"`` (default) captures the training and inference steps and
                replays them without the framework's bookkeeping, bit for bit equal to eager,
                falling back to eager (one log line says why) where a step cannot be captured;
                ``True`` raises there instead; ``False`` always runs eagerly (see
                ``nervenet.models.jit``).

        A new ``compile`` starts a new optimizer state: compile again after changing
        ``trainable`` (fine-tuning) so that the optimizer sees the new set of weights.
        """
        names = self.output_names
        if not self.has_fixed_outputs() and self.output_shape is None:  # as many as losses
            count = next((len(v) for v in (loss, loss_weights)
                          if isinstance(v, (list, tuple, dict))), 1)
            names = [f"output_{index + 1}" for index in range(count)]
        output_losses = OutputLosses(loss, loss_weights, names)
        output_metrics = OutputMetrics(metrics, names)
        self.optimizer = optimizers.get(optimizer)
        self.jit_compile = jit.check_mode(jit_compile)
        self._set_outputs(output_losses, output_metrics)
        self.compile_arguments = {"loss": loss, "loss_weights": loss_weights,
                                  "metrics": metrics}
        self.metric_ids = list(metrics) if isinstance(metrics, (list, tuple)) else (
            [] if metrics is None else [metrics])
        self.compiled = True
        self.captured_steps = None if jit_compile is False else jit.CapturedSteps(
            self, jit_compile, Trainer)

    def _set_outputs(self, output_losses: OutputLosses, output_metrics: OutputMetrics) -> None:
        self._output_losses, self._output_metrics = output_losses, output_metrics
        self.loss = output_losses.losses[0] if not output_losses.multi else output_losses.losses
        self.compiled_metrics = []  # resolved at the first fit/evaluate, when shapes are known
        self._metric_entries = []

    def _settle_outputs(self, x) -> None:
        """A subclassed model shows how many outputs it has when called: run it on one sample
        if it never ran, and spread the compiled losses and metrics over its real outputs."""
        if self.has_fixed_outputs():
            return
        if self.output_shape is None:
            self._run_one_sample(x, "x")
        names = self.output_names
        if names != self._output_losses.output_names:
            arguments = self.compile_arguments
            self._set_outputs(OutputLosses(arguments["loss"], arguments["loss_weights"], names),
                              OutputMetrics(arguments["metrics"], names))

    def _resolve_metrics(self, output_shapes: list[tuple]) -> None:
        if self._output_metrics is None or self._metric_entries:
            return
        self._output_metrics.resolve(self._output_losses.losses, output_shapes)
        multi = self._output_losses.multi
        self._metric_entries = [(metric, index if multi else None, name)
                                for index, metric, name in self._output_metrics.entries]
        self.compiled_metrics = [metric for metric, _, _ in self._metric_entries]

    def _require_compiled(self, method: str) -> None:
        if not self.compiled:
            raise ValueError(f"{method}: the model must be compiled first: call "
                             "model.compile(optimizer=..., loss=...)")

    # --------------------------------------------------------------------- one step
    def compute_loss(self, y, y_pred, sample_weight=None) -> Tensor:
        """The data loss plus every regularization penalty (what the optimizer minimizes).

        Targets of shape (N,) for outputs of shape (N, 1) get the missing axis, as Keras.
        With several outputs, ``y`` and ``y_pred`` are lists and the data loss is
        ``sum_k loss_weight_k * loss_k``."""
        losses = self._output_losses
        if losses.multi:
            total = losses(y, y_pred, sample_weight)
        else:
            total = output_loss(self.loss, y, y_pred, sample_weight)
            if losses.weights[0] != 1.0:
                total = total * losses.weights[0]
        penalties = self.regularization_losses() + [
            penalty for layer in self._layers_with_activity_loss() for penalty in layer.losses]
        self.last_regularization_loss = None
        if penalties:
            penalty = penalties[0]
            for term in penalties[1:]:
                penalty = penalty + term
            self.last_regularization_loss = float(penalty.data)  # logged apart by fit
            total = total + penalty
        return total

    def _layers_with_activity_loss(self) -> list[Layer]:
        return [layer for layer in nested_layers(self) if layer.activity_regularizer is not None]

    def train_step(self, x, y, sample_weight=None) -> tuple[float, np.ndarray]:
        """Forward, backward and update on one batch; returns (loss, predictions).

        A step is all or nothing: a batch whose loss is NaN or infinite, or a refused update,
        changes no weight, no BatchNormalization statistic, no optimizer state and no layer's
        random generator (fit then stops: quietly with the TerminateOnNaN callback, with a
        FloatingPointError otherwise).
        """
        x, y, sample_weight = self._on_device(x, y, sample_weight)
        with state_transaction(self) as step:
            y_pred = self(x, training=True)
            loss = self.compute_loss(y, y_pred, sample_weight)
            predictions = data_adapter.output_arrays(y_pred)  # on the host, for the metrics
            value = float(loss.data)
            if not math.isfinite(value) and self.data_parallel is None:
                return value, predictions
            weights = self.trainable_weights
            gradients = grad(loss, weights, allow_unused=True)
            if self.data_parallel is not None:  # this rank's slice -> the global batch's step
                value, gradients = self.data_parallel.reduce(value, gradients, weights,
                                                             self._output_losses.last)
                if not math.isfinite(value):
                    return value, predictions
            self.optimizer.apply_gradients(
                [(g.data, w) for g, w in zip(gradients, weights) if g is not None])
            step.commit()
        self.apply_constraints()
        return value, predictions

    def test_step(self, x, y, sample_weight=None) -> tuple[float, object]:
        """The loss and the outputs (arrays) of one batch in inference mode (evaluate's step);
        ``compute_loss`` leaves each output's loss in the logs' place as in training."""
        x, y, sample_weight = self._on_device(x, y, sample_weight)
        with no_grad():
            y_pred = self(x, training=False)
            loss = self.compute_loss(y, y_pred, sample_weight)
        return float(loss.data), data_adapter.output_arrays(y_pred)

    def predict_step(self, x):
        """The outputs (NumPy arrays) of one batch in inference mode (predict's step, as
        Keras's), computed on the model's device."""
        (x,) = self._on_device(x)
        with no_grad():
            return data_adapter.output_arrays(self(x, training=False))

    # -------------------------------------------------------------------------- fit
    def fit(self, x=None, y=None, epochs: int = 1, batch_size: int | None = 32,
            validation_data=None, validation_split: float = 0.0, shuffle: bool = True,
            callbacks=None, verbose: int | str = "auto", class_weight=None,
            sample_weight=None, initial_epoch: int = 0, steps_per_epoch: int | None = None,
            validation_steps: int | None = None, validation_freq=1) -> History:
        """Train for ``epochs`` passes over the data.

        Args:
            x: input array (or a list, tuple or dict by input name of arrays, for several
                inputs), a ``nervenet.data.Dataset`` of ``(x, y)`` whose batch size and
                shuffling fit then uses, or batches of ``(x, y[, sample_weight])`` from a
                Python generator or a Dataset with ``map`` stages (as Keras).
            y: targets (for several outputs: a list, tuple or dict by output name).
            epochs: number of epochs (default 1).
            batch_size: samples per gradient step (default 32).
            validation_data: ``(x_val, y_val)``, ``(x_val, y_val, sample_weight_val)``, or a
                generator or Dataset of such batches, evaluated at the end of each epoch
                (default ``None``).
            validation_split: fraction of the data, taken from the end, held out for
                validation (default 0.0).
            shuffle: reshuffle the training samples every epoch (default ``True``).
            callbacks: list of Callback objects (default ``None``).
            verbose: 0 silent, 1 progress bar, 2 one line per epoch, ``"auto"`` (default) 1.
            class_weight: ``{class: weight}`` multiplying each sample's loss (default ``None``).
            sample_weight: per-sample loss weights (default ``None``).
            initial_epoch: epoch to start from, when resuming (default 0).
            steps_per_epoch: batches per epoch (default ``None``: one pass over the data; for
                a generator, until it ends). A generator goes on where the last epoch stopped.
            validation_steps: batches of validation data per validation (default ``None``:
                all).
            validation_freq: validate every ``validation_freq`` epochs, or at the epochs
                (counted from 1) in a list (default 1: every epoch).

        Returns:
            The History; ``history.history`` maps "loss", the metric names and their "val_"
            versions to per-epoch lists.

        Second-order optimizers (Newton, ConjugateGradient, BFGS, LBFGS) train full-batch:
        each epoch runs one ``optimizer.minimize`` call on the whole training set.
        """
        self._require_compiled("fit")
        if isinstance(x, Dataset) and not data_adapter.is_stream(x):
            x, y, sample_weight, batch_size, shuffle = data_adapter.unpack_dataset(
                x, y, batch_size, shuffle)
        epochs = _check_positive_int(epochs, "epochs")
        steps_per_epoch = _check_optional_steps(steps_per_epoch, "steps_per_epoch")
        validation_steps = _check_optional_steps(validation_steps, "validation_steps")
        validate_at = _validation_epochs(validation_freq)
        full_batch = hasattr(self.optimizer, "minimize")  # second-order: whole-set steps
        if data_adapter.is_stream(x):
            _refuse_with_stream("fit", y=y, sample_weight=sample_weight,
                                class_weight=class_weight, validation_split=validation_split,
                                full_batch=full_batch)
            stream = data_adapter.Stream(x, "x")
            n, steps, validation = None, _min_steps(steps_per_epoch, stream.steps), None

            def training_batches(rng):
                return self._stream_batches(stream, steps_per_epoch, "fit")
        else:
            x, y, sample_weight, validation = self._prepare_fit(
                x, y, sample_weight, class_weight,
                None if data_adapter.is_stream(validation_data) else validation_data,
                validation_split)
            n = data_adapter.num_samples(x)
            batch_size = n if full_batch or batch_size is None else _check_positive_int(
                batch_size, "batch_size")
            steps = _min_steps(steps_per_epoch, math.ceil(n / batch_size))

            def training_batches(rng):
                order = world.broadcast(rng.permutation(n)) if shuffle else None  # rank 0's
                return data_adapter.array_batches(x, y, sample_weight, batch_size, order, steps)
        self.data_parallel = data_parallel.DataParallel.start(
            self, *((x, y, sample_weight) if n is not None else (None, None, None)), batch_size)
        validation_batches = self._validation_batches(validation_data, validation, batch_size,
                                                      validation_steps)
        self.history = History()
        callback_list = self._callback_list(callbacks, verbose, {
            "epochs": epochs, "steps": steps, "samples": n}, last=[self.history])
        rng = backend.make_rng()
        # BackupAndRestore saves and restores the shuffling generator and may move the start
        self._fit_rng = rng
        self._initial_epoch = _check_positive_int(initial_epoch, "initial_epoch", minimum=0)
        self.stop_training = False
        callback_list.call("on_train_begin", {})
        for epoch in range(self._initial_epoch, epochs):
            callback_list.call("on_epoch_begin", epoch, {})
            for metric in self.compiled_metrics:
                metric.reset_state()
            if full_batch:
                logs = self._fit_full_batch(x, y, sample_weight, callback_list)
            else:
                logs = self._fit_epoch(training_batches(rng), callback_list)
                if logs is None:
                    warnings.warn(f"fit: the training data ran out at epoch {epoch + 1}: a "
                                  "generator is not restarted; give steps_per_epoch (its "
                                  "batches divided by the epochs), or a Dataset, which is read "
                                  "afresh every epoch", UserWarning, stacklevel=2)
                    break
            if validation_batches is not None and validate_at(epoch + 1):
                val_logs = self._evaluate_batches(validation_batches(), callback_list)
                logs.update({f"val_{k}": v for k, v in val_logs.items()})
            callback_list.call("on_epoch_end", epoch, logs)
            if self.stop_training:
                break
        callback_list.call("on_train_end", {})
        if self.data_parallel is not None:
            self.data_parallel = self.data_parallel.finish()
        return self.history

    def _validation_batches(self, validation_data, validation, batch_size, steps):
        """A function giving each validation's batches: from the arrays ``validation`` (already
        checked), or from a generator or Dataset given as ``validation_data``."""
        if data_adapter.is_stream(validation_data):
            stream = data_adapter.Stream(validation_data, "validation_data")
            return lambda: self._stream_batches(stream, steps, "validation_data")
        if validation is None:
            return None
        validation = data_parallel.shard(*validation)  # this rank's rows
        size = batch_size or data_adapter.num_samples(validation[0])
        return lambda: data_adapter.array_batches(*validation, size, None, steps)

    def _stream_batches(self, stream, steps: int | None, where: str):
        """The batches of ``stream``, each checked and converted as arrays are; the first of
        each pass is also checked against the model (which it builds)."""
        for index, (x, y, sample_weight) in enumerate(stream.batches(steps)):
            if where != "predict" and y is None:
                raise ValueError(f"{where}: the batches must be (x, y) or (x, y, "
                                 f"sample_weight) tuples; batch {index} has no targets")
            if where == "predict":
                yield self._standardize_x(x, f"{stream.argument} batch {index}"), None, None
                continue
            x, y, sample_weight = self._standardize(x, y, sample_weight,
                                                    f"{stream.argument} batch {index}: ")
            if index == 0:
                self._check_data_against_model(x, y, where)
            yield x, y, sample_weight

    def _fit_epoch(self, batches, callback_list) -> dict | None:
        """One epoch of minibatch steps over ``batches`` of ``(x, y, sample_weight)``;
        ``None`` when there was no batch (a generator that ran out)."""
        total_loss = 0.0
        seen = 0
        batch_hooks = callback_list.wants("on_train_batch_end") or callback_list.wants(
            "on_train_batch_begin")
        multi = self._output_losses.multi
        output_totals = [0.0] * len(self._output_losses.last)
        penalty_total = None  # the regularization part of the loss, when there is one
        logs: dict = {}
        for step, (batch_x, batch_y, batch_w) in enumerate(batches):
            if batch_hooks:
                callback_list.call("on_train_batch_begin", step, {})
            loss, y_pred = (self.data_parallel or self.captured_steps or self).train_step(
                batch_x, batch_y, batch_w)
            count = data_adapter.num_samples(batch_x)
            total_loss += loss * count
            seen += count
            if self.last_regularization_loss is not None:
                penalty_total = (penalty_total or 0.0) + self.last_regularization_loss * count
            if multi:
                for index, value in enumerate(self._output_losses.last):
                    output_totals[index] += float(value) * count
            for metric, index, _ in self._metric_entries:
                if index is None:
                    metric.update_state(batch_y, y_pred, batch_w)
                else:
                    metric.update_state(batch_y[index], y_pred[index], batch_w)
            if batch_hooks:
                logs = self._logs(total_loss / seen, [t / seen for t in output_totals],
                                  None if penalty_total is None else penalty_total / seen)
                logs["loss"] = loss if not math.isfinite(loss) else logs["loss"]
                callback_list.call("on_train_batch_end", step, logs)
            if self.stop_training:
                break
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"the loss of batch {step} is {loss}; no weight was changed by that batch. "
                    "Lower the learning rate or check the data; add "
                    "callbacks.TerminateOnNaN() to stop training quietly instead")
        if seen == 0:
            return None
        return self._logs(total_loss / seen, [t / seen for t in output_totals],
                          None if penalty_total is None else penalty_total / seen)

    def _callback_list(self, callbacks, verbose, params: dict, last=()) -> CallbackList:
        """The user's callbacks, then the progress bar (``verbose`` 1 or 2; ``"auto"`` is 1,
        as Keras), then ``last``, all given this model and ``params``."""
        if verbose == "auto":
            verbose = 1
        if isinstance(verbose, bool) or verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
        progress = [ProgbarLogger(verbose)] if verbose else []
        return CallbackList(data_parallel.on_this_rank(list(callbacks or []) + progress)
                            + list(last), model=self, params={**params, "verbose": verbose})

    def _fit_full_batch(self, x, y, sample_weight, callback_list) -> dict:
        weights = self.trainable_weights
        host_y = y
        x, y, sample_weight = self._on_device(x, y, sample_weight)

        def loss_fn():
            return self.compute_loss(y, self(x, training=True), sample_weight)

        callback_list.call("on_train_batch_begin", 0, {})
        result = self.optimizer.minimize(loss_fn, weights)
        self.apply_constraints()
        with no_grad():
            y_pred = self(x, training=False)
            self.compute_loss(y, y_pred, sample_weight)  # the per-output losses, for the logs
        self._update_metrics(host_y, data_adapter.output_arrays(y_pred),
                             None if sample_weight is None else backend.to_numpy(sample_weight))
        logs = self._logs(float(result.fun), [float(v) for v in self._output_losses.last])
        callback_list.call("on_train_batch_end", 0, logs)
        return logs

    def _update_metrics(self, y, y_pred, sample_weight) -> None:
        """Update the metrics with the outputs ``y_pred`` (host arrays) of a batch."""
        for metric, index, _ in self._metric_entries:
            if index is None:
                metric.update_state(y, y_pred, sample_weight)
            else:
                metric.update_state(y[index], y_pred[index], sample_weight)

    def _on_device(self, *values):
        """``values`` (arrays, or lists, tuples and dicts of them; ``None`` stays) on the
        model's device: each batch is moved there before the model sees it."""
        if self.device == "cpu":
            return values

        def move(leaf):
            return leaf if leaf is None else backend.to_device(backend.as_array(leaf),
                                                                self.device)
        return tuple(nest.map_structure(move, value) for value in values)

    def _logs(self, loss: float, output_losses: list[float] | None = None,
              regularization_loss: float | None = None) -> dict:
        """The epoch's logs: ``loss`` (including any weight penalty, as Keras), the per-output
        losses, ``regularization_loss`` (the penalty part alone) and the metrics."""
        logs = {"loss": loss}
        if regularization_loss is not None:
            logs["regularization_loss"] = regularization_loss
        if self._output_losses.multi:
            names = [f"{n}_loss" for n in self._output_losses.output_names]
            for name, value, fn in zip(names, output_losses, self._output_losses.losses):
                if fn is not None:
                    logs[name] = value
        for metric, _, name in self._metric_entries:
            logs[name] = metric.result()
        return logs

    def _prepare_fit(self, x, y, sample_weight, class_weight, validation_data,
                     validation_split):
        if x is None or y is None:
            raise ValueError("fit: x and y are required")
        x, y, sample_weight = self._standardize(x, y, sample_weight, "")
        validation = None
        if validation_data is not None:
            validation = self._prepare_validation(validation_data)
        elif validation_split:
            (x, y, sample_weight), validation = data_adapter.split_validation(
                x, y, sample_weight, validation_split)
        if class_weight is not None:
            if self._output_losses.multi:
                raise ValueError("fit: class_weight is for single-output models; give "
                                 "sample_weight instead")
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
        w_val = validation_data[2] if len(validation_data) == 3 else None
        return self._standardize(validation_data[0], validation_data[1], w_val,
                                 "validation_data ")

    def _standardize(self, x, y, sample_weight, prefix: str):
        """Check and convert fit/evaluate data: arrays, inputs in the model's order (a dict is
        matched by input name), one target array per output (likewise)."""
        x = self._standardize_x(x, f"{prefix}x")
        self._settle_outputs(x)
        y = self._standardize_y(y, f"{prefix}y")
        data_adapter.check_representable(y, self.dtype, f"{prefix}y")
        if sample_weight is not None:
            sample_weight = data_adapter.to_array(sample_weight, f"{prefix}sample_weight")
        data_adapter.check_lengths(x=x, y=y, sample_weight=sample_weight)
        return x, y, sample_weight

    def _standardize_x(self, x, argument: str):
        x = data_adapter.to_arrays(x, argument)
        data_adapter.check_representable(x, self.dtype, argument)
        return self.standardize_inputs(x)

    def _standardize_y(self, y, argument: str):
        names = self.output_names
        if isinstance(y, dict):
            unknown = [k for k in y if k not in names]
            missing = [n for n in names if n not in y]
            if unknown or missing:
                raise ValueError(f"{argument}: the model's outputs are named {names}; missing "
                                 f"{missing}, unexpected {unknown}")
            y = [y[name] for name in names]
        if len(names) == 1:
            if isinstance(y, (list, tuple)) and len(y) == 1 and isinstance(
                    y[0], (np.ndarray, Tensor)):
                y = y[0]
            return data_adapter.to_array(y, argument)
        if not isinstance(y, (list, tuple)) or len(y) != len(names):
            raise ValueError(f"{argument}: the model has {len(names)} outputs {names}; give one "
                             "target array per output (a list, tuple or dict by output name)")
        return [data_adapter.to_array(v, f"{argument}[{i}]") for i, v in enumerate(y)]

    def _check_data_against_model(self, x, y, where: str) -> None:
        """Run one sample through the model (building it) and check the targets against the
        output, so that bad data fails before any weight changes."""
        output = self._run_one_sample(x, where)
        outputs = output if isinstance(output, (list, tuple)) else [output]
        output_shapes = [(None,) + tuple(o.shape[1:]) for o in outputs]
        targets = y if self._output_losses.multi else [y]
        for name, loss, target, shape in zip(self.output_names, self._output_losses.losses,
                                             targets, output_shapes):
            if hasattr(loss, "validate_targets"):
                try:
                    loss.validate_targets(target, shape)
                except ValueError as error:
                    where_output = f" (output {name!r})" if self._output_losses.multi else ""
                    raise ValueError(f"{where}{where_output}: {error}") from None
        self._resolve_metrics(output_shapes)

    def _run_one_sample(self, x, where: str):
        """The model's output for the first sample of ``x`` (inference), or a ValueError
        saying that x does not fit the model."""
        try:
            with no_grad():
                return self(*self._on_device(data_adapter.take(x, slice(0, 1))), training=False)
        except ValueError as error:
            shapes = [a.shape for a in data_adapter.flatten(x)]
            described = shapes[0] if len(shapes) == 1 else shapes
            raise ValueError(f"{where}: x of shape {described} does not fit the model: "
                             f"{error}") from None

    # ------------------------------------------------------------ evaluate / predict
    def evaluate(self, x=None, y=None, batch_size: int | None = 32, verbose: int | str = "auto",
                 sample_weight=None, steps: int | None = None, callbacks=None,
                 return_dict: bool = False):
        """The loss (and metrics) on ``x, y``, in inference mode.

        ``verbose`` shows a progress bar as fit's (``"auto"``, the default, is 1; 0 is
        silent); ``callbacks`` get the ``on_test_*`` hooks (each batch's logs hold the running
        loss and metrics). ``x`` may also be a generator or Dataset of ``(x, y)`` batches
        (``y`` then ``None``); ``steps`` caps the number of batches (default ``None``: all).

        Returns:
            The loss as a float when there is nothing else to report, else
            ``[loss, <output>_loss..., metric, ...]`` in the order of the fit logs (or a dict
            with ``return_dict=True``).
        """
        self._require_compiled("evaluate")
        if batch_size is not None:
            batch_size = _check_positive_int(batch_size, "evaluate: batch_size")
        batches, steps, n = self._inference_batches(x, y, sample_weight, batch_size, steps,
                                                    "evaluate")
        callback_list = self._callback_list(callbacks, verbose, {"steps": steps, "samples": n})
        logs = self._evaluate_batches(batches, callback_list)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def _inference_batches(self, x, y, sample_weight, batch_size, steps, where: str):
        """``(batches, steps, samples)`` for evaluate (``where="evaluate"``) or predict: from
        a generator or Dataset, or from arrays, checked and batched here."""
        steps = _check_optional_steps(steps, "steps")
        if isinstance(x, Dataset) or data_adapter.is_stream(x):
            _refuse_with_stream(where, y=y, sample_weight=sample_weight)
            stream = data_adapter.Stream(x, "x")
            return (self._stream_batches(stream, steps, where), _min_steps(steps, stream.steps),
                    None)
        if where == "predict":
            x = self._standardize_x(x, "x")
        else:
            if x is None or y is None:
                raise ValueError("evaluate: x and y are required")
            x, y, sample_weight = self._standardize(x, y, sample_weight, "")
            self._check_data_against_model(x, y, "evaluate")
        total = data_adapter.num_samples(x)
        x, y, sample_weight = data_parallel.shard(x, y, sample_weight)  # this rank's rows
        n = data_adapter.num_samples(x)
        batch_size = max(n, 1) if batch_size is None else _check_positive_int(batch_size,
                                                                              "batch_size")
        steps = _min_steps(steps, max(math.ceil(n / batch_size), 1))
        return (data_adapter.array_batches(x, y, sample_weight, batch_size, None, steps), steps,
                total)

    def _evaluate_batches(self, batches, callback_list: CallbackList | None = None) -> dict:
        """The loss and metrics over ``batches`` of ``(x, y, sample_weight)``, calling the
        ``on_test_*`` hooks of ``callback_list``."""
        callback_list = callback_list or CallbackList([])
        batch_hooks = callback_list.wants("on_test_batch_end") or callback_list.wants(
            "on_test_batch_begin")
        callback_list.call("on_test_begin", {})
        for metric in self.compiled_metrics:
            metric.reset_state()
        total, weight_total = 0.0, 0
        output_totals = [0.0] * len(self._output_losses.last)
        with no_grad():
            for step, (batch_x, batch_y, batch_w) in enumerate(batches):
                if batch_hooks:
                    callback_list.call("on_test_batch_begin", step, {})
                loss, y_pred = (self.captured_steps or self).test_step(batch_x, batch_y,
                                                                       batch_w)
                count = data_adapter.num_samples(batch_x)
                total += loss * count
                weight_total += count
                for index, value in enumerate(self._output_losses.last):
                    output_totals[index] += float(value) * count
                self._update_metrics(batch_y, y_pred, batch_w)
                if batch_hooks:
                    callback_list.call("on_test_batch_end", step, self._logs(
                        total / weight_total, [t / weight_total for t in output_totals]))
        if weight_total == 0:
            raise ValueError("evaluate: the data gave no batch (an exhausted generator?)")
        logs = self._logs(total / weight_total, [t / weight_total for t in output_totals])
        logs = data_parallel.combine_logs(logs, weight_total)  # over all ranks' rows
        callback_list.call("on_test_end", logs)
        return logs

    def predict(self, x, batch_size: int | None = 32, verbose: int | str = "auto",
                steps: int | None = None, callbacks=None):
        """The model's outputs for ``x``, in inference mode: an ndarray, or one ndarray per
        output for a model with several (a list, or a tuple when its call returns one).

        ``verbose`` shows a progress bar (``"auto"``, the default, is 1; 0 is silent);
        ``callbacks`` get the ``on_predict_*`` hooks (each batch's logs hold its
        ``"outputs"``). ``x`` may also be a generator or Dataset of batches (of ``x``, or
        tuples whose first entry is ``x``); ``steps`` caps the number of batches."""
        batches, steps, n = self._inference_batches(x, None, None, batch_size, steps, "predict")
        callback_list = self._callback_list(callbacks, verbose, {"steps": steps, "samples": n})
        callback_list.call("on_predict_begin", {})
        outputs = []
        with no_grad():  # no sample: one empty batch, so that the output has its shape
            for step, (batch_x, _, _) in enumerate(batches):
                callback_list.call("on_predict_batch_begin", step, {})
                outputs.append((self.captured_steps or self).predict_step(batch_x))
                callback_list.call("on_predict_batch_end", step, {"outputs": outputs[-1]})
        callback_list.call("on_predict_end", {})
        if not outputs:
            raise ValueError("predict: the data gave no batch (an exhausted generator?)")
        if isinstance(outputs[0], (list, tuple)):  # a tuple stays a tuple, as the call gave
            result = type(outputs[0])(np.concatenate(parts) for parts in zip(*outputs))
        else:
            result = np.concatenate(outputs)
        return result if n is None else data_parallel.gather(result, n)  # all ranks' rows

    def predict_on_batch(self, x):
        """The outputs for one batch (no batching, inference mode)."""
        return (self.captured_steps or self).predict_step(self._standardize_x(x, "x"))

    def train_on_batch(self, x, y, sample_weight=None) -> float:
        """One training step on one batch; returns the loss."""
        self._require_compiled("train_on_batch")
        x, y, sample_weight = self._standardize(x, y, sample_weight, "")
        return (self.captured_steps or self).train_step(x, y, sample_weight)[0]


def _check_optional_steps(value, name: str) -> int | None:
    return None if value is None else _check_positive_int(value, name)


def _min_steps(limit: int | None, available: int | None) -> int | None:
    """The batches one pass runs: ``limit`` (steps_per_epoch, steps) capped by what the data
    has (``None``: unknown, a generator)."""
    if limit is None or available is None:
        return available if limit is None else limit
    return min(limit, available)


def _validation_epochs(validation_freq):
    """``validation_freq`` as a test of the epoch number (from 1): every n-th epoch for an
    int, the listed epochs for a list, tuple or set (as Keras 2)."""
    if isinstance(validation_freq, (list, tuple, set, range)):
        epochs = {_check_positive_int(e, "validation_freq entries") for e in validation_freq}
        return lambda epoch: epoch in epochs
    every = _check_positive_int(validation_freq, "validation_freq")
    return lambda epoch: epoch % every == 0


def _refuse_with_stream(method: str, full_batch: bool = False, **given) -> None:
    """Batches from a generator or Dataset carry their targets and weights: nothing else may
    come with them (and second-order optimizers need the whole set as arrays)."""
    extra = [name for name, value in given.items() if value is not None and not (
        isinstance(value, (int, float)) and value == 0)]  # validation_split=0.0 is no value
    if extra:
        raise ValueError(f"{method}: x is a generator or Dataset yielding (x, y[, "
                         f"sample_weight]) batches, so {', '.join(extra)} cannot be given")
    if full_batch:
        raise ValueError(f"{method}: second-order optimizers train on the whole set at once; "
                         "give x and y as arrays")


def _check_positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        kind = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return int(value)

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
from dataclasses import dataclass

import numpy as np

from nervenet import backend, metrics, nest, optimizers, world
from nervenet.autograd import Tensor, grad, no_grad
from nervenet.callbacks import CallbackList, History, ProgbarLogger
from nervenet.distributed import data_parallel
from nervenet.layers.base import Layer, nested_layers, state_transaction
from nervenet.models import compile_utils, data_adapter, jit
from nervenet.models.compile_utils import OutputLosses, OutputMetrics, output_loss
from nervenet.models.data_adapter import DataHandler, check_optional_steps, check_positive_int


@dataclass
class FitState:
    """Where a ``fit`` is: ``model.fit_state``, the state that callbacks move and checkpoints
    save, so that a resumed run equals one never stopped.

    Attributes:
        epoch: the epoch running now (0-based; after ``fit``, the last one that ran).
        step: the batch running now within the epoch (0-based).
        initial_epoch: the epoch ``fit`` starts from (its ``initial_epoch`` argument); a
            callback may move it in ``on_train_begin`` (``BackupAndRestore`` restoring a
            backup), before the first epoch runs.
        epochs: the epochs ``fit`` was asked for.
        rng: the generator ``fit`` shuffles the samples with (``None`` before the first
            ``fit``); a checkpoint saves and restores its state.
    """

    epoch: int = 0
    step: int = 0
    initial_epoch: int = 0
    epochs: int = 0
    rng: np.random.Generator | None = None


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
        self.compile_arguments: dict | None = None
        self.stop_training = False
        self.history: History | None = None
        self.compiled = False
        self._output_losses: OutputLosses | None = None
        self._output_metrics: OutputMetrics | None = None
        self._metric_entries: list[tuple] = []  # (metric, output index or None, log name)
        #: where the running (or last) fit is: epoch, step, start, shuffling generator
        self.fit_state = FitState()
        #: the weight penalty in the last computed loss (``None``: no penalty), logged by fit
        self.last_regularization_loss: float | None = None
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
        self.compiled = True
        self.captured_steps = None if jit_compile is False else jit.CapturedSteps(
            self, jit_compile, Trainer)

    def get_compile_config(self) -> dict | None:
        """The ``compile(...)`` arguments as JSON, as Keras's ``get_compile_config``: the
        optimizer's config, the losses, loss weights and metrics by registered name. ``None``
        when the model is not compiled, or when a loss or metric is a Python function or an
        unregistered class (warned: a model file cannot name it; the rest is still saved)."""
        if not self.compiled:
            return None
        try:
            return compile_utils.compile_config(self.optimizer, **self.compile_arguments,
                                                jit_compile=self.jit_compile)
        except (ValueError, TypeError) as error:
            warnings.warn(f"the compile settings of {self.name!r} are not saved: {error}; "
                          "compile the loaded model yourself", stacklevel=4)
            return None

    def compile_from_config(self, config: dict) -> None:
        """Compile with the settings ``get_compile_config`` gave (registered names only, so
        nothing in a model file runs code), as Keras's ``compile_from_config``."""
        self.compile(**compile_utils.compile_arguments(config))

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
        if self._metric_entries:  # resolved already
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
        epochs = check_positive_int(epochs, "epochs")
        steps_per_epoch = check_optional_steps(steps_per_epoch, "steps_per_epoch")
        validation_steps = check_optional_steps(validation_steps, "validation_steps")
        validate_at = _validation_epochs(validation_freq)
        data = DataHandler(self, x, y, sample_weight, batch_size=batch_size,
                           steps=steps_per_epoch, shuffle=shuffle, class_weight=class_weight,
                           validation_split=validation_split, validation_data=validation_data,
                           validation_steps=validation_steps,
                           full_batch=hasattr(self.optimizer, "minimize"),  # second-order
                           shard=data_parallel.shard, agree=world.broadcast)
        callback_list = self._begin_fit(data, epochs, initial_epoch, callbacks, verbose)
        for epoch in range(self.fit_state.initial_epoch, epochs):
            if not self._fit_epoch(epoch, data, validate_at, callback_list):
                break
        callback_list.call("on_train_end", {})
        if self.data_parallel is not None:
            self.data_parallel = self.data_parallel.finish()
        return self.history

    def _begin_fit(self, data: DataHandler, epochs: int, initial_epoch: int, callbacks,
                   verbose) -> CallbackList:
        """Start a fit: the data-parallel run (several ranks), the History, the callbacks,
        a new ``fit_state``; then ``on_train_begin``, where ``BackupAndRestore`` may restore a
        backup and move ``fit_state.initial_epoch``."""
        self.data_parallel = data_parallel.DataParallel.start(
            self, data.x, data.y, data.sample_weight, data.batch_size)
        self.history = History()
        callback_list = self._callback_list(callbacks, verbose, {
            "epochs": epochs, "steps": data.steps, "samples": data.samples}, last=[self.history])
        self.fit_state = FitState(
            initial_epoch=check_positive_int(initial_epoch, "initial_epoch", minimum=0),
            epochs=epochs, rng=backend.make_rng())
        self.stop_training = False
        callback_list.call("on_train_begin", {})
        return callback_list

    def _fit_epoch(self, epoch: int, data: DataHandler, validate_at, callback_list) -> bool:
        """One epoch: minibatch steps over ``data``'s batches (shuffled with the fit's
        generator), or one full-batch step, then the validation when ``validate_at`` the
        epoch. Returns whether the fit goes on (not stopped, and the data did not run out)."""
        self.fit_state.epoch, self.fit_state.step = epoch, 0
        callback_list.call("on_epoch_begin", epoch, {})
        for metric in self.compiled_metrics:
            metric.reset_state()
        if data.full_batch:
            logs = self._fit_full_batch(data.x, data.y, data.sample_weight, callback_list)
        else:
            runner = self.data_parallel or self.captured_steps or self
            logs = self._run_batches(data.batches(self.fit_state.rng), runner.train_step,
                                     callback_list, training=True)[0]
        if logs is None:
            warnings.warn(f"fit: the training data ran out at epoch {epoch + 1}: a generator "
                          "is not restarted; give steps_per_epoch (its batches divided by the "
                          "epochs), or a Dataset, which is read afresh every epoch",
                          UserWarning, stacklevel=3)
            return False
        if data.validation is not None and validate_at(epoch + 1):
            val_logs = self._evaluate(data.validation, callback_list)
            logs.update({f"val_{k}": v for k, v in val_logs.items()})
        callback_list.call("on_epoch_end", epoch, logs)
        return not self.stop_training

    def _run_batches(self, batches, step, callback_list: CallbackList, training: bool):
        """The one batch loop of ``fit`` (``step`` is ``train_step``, ``training``) and
        ``evaluate`` (``test_step``): ``step`` on each ``(x, y, sample_weight)`` batch, the
        running means of the loss over the samples, the metrics, and the
        ``on_train_batch_*`` or ``on_test_batch_*`` hooks with the running logs.

        Returns:
            ``(logs, samples seen)``; the logs are ``None`` when there was no batch.

        Raises:
            FloatingPointError: a training batch's loss is NaN or infinite (its step changed
                nothing) and no callback stopped the training.
        """
        begin, end = ("on_train_batch_begin", "on_train_batch_end") if training else (
            "on_test_batch_begin", "on_test_batch_end")
        batch_hooks = callback_list.wants(end) or callback_list.wants(begin)
        means = _RunningMeans(self._output_losses, with_penalty=training)
        for index, (batch_x, batch_y, batch_w) in enumerate(batches):
            if batch_hooks:
                callback_list.call(begin, index, {})
            if training:
                self.fit_state.step = index
            loss, y_pred = step(batch_x, batch_y, batch_w)
            means.add(loss, data_adapter.num_samples(batch_x), self.last_regularization_loss)
            self._update_metrics(batch_y, y_pred, batch_w)
            if batch_hooks:
                logs = self._logs(*means.result())
                if training and not math.isfinite(loss):
                    logs["loss"] = loss
                callback_list.call(end, index, logs)
            if training and (self.stop_training or not math.isfinite(loss)):
                if self.stop_training:
                    break
                raise FloatingPointError(
                    f"the loss of batch {index} is {loss}; no weight was changed by that "
                    "batch. Lower the learning rate or check the data; add "
                    "callbacks.TerminateOnNaN() to stop training quietly instead")
        if means.seen == 0:
            return None, 0
        return self._logs(*means.result()), means.seen

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
            batch_size = check_positive_int(batch_size, "evaluate: batch_size")
        data = DataHandler(self, x, y, sample_weight, where="evaluate", batch_size=batch_size,
                           steps=check_optional_steps(steps, "steps"), shard=data_parallel.shard)
        callback_list = self._callback_list(callbacks, verbose, {"steps": data.steps,
                                                                 "samples": data.samples})
        logs = self._evaluate(data, callback_list)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def _evaluate(self, data: DataHandler, callback_list: CallbackList) -> dict:
        """The loss and metrics over ``data``'s batches (evaluate, and fit's validation),
        calling the ``on_test_*`` hooks of ``callback_list``; over all ranks' rows."""
        callback_list.call("on_test_begin", {})
        for metric in self.compiled_metrics:
            metric.reset_state()
        with no_grad():  # (a captured inference step records in the mode it is called in)
            logs, seen = self._run_batches(data.batches(),
                                           (self.captured_steps or self).test_step,
                                           callback_list, training=False)
        if logs is None:
            raise ValueError("evaluate: the data gave no batch (an exhausted generator?)")
        logs = data_parallel.combine_logs(logs, seen)  # over all ranks' rows
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
        data = DataHandler(self, x, where="predict", batch_size=batch_size,
                           steps=check_optional_steps(steps, "steps"), shard=data_parallel.shard)
        callback_list = self._callback_list(callbacks, verbose, {"steps": data.steps,
                                                                 "samples": data.samples})
        callback_list.call("on_predict_begin", {})
        outputs = []
        with no_grad():  # no sample: one empty batch, so that the output has its shape
            for index, (batch_x, _, _) in enumerate(data.batches()):
                callback_list.call("on_predict_batch_begin", index, {})
                outputs.append((self.captured_steps or self).predict_step(batch_x))
                callback_list.call("on_predict_batch_end", index, {"outputs": outputs[-1]})
        callback_list.call("on_predict_end", {})
        if not outputs:
            raise ValueError("predict: the data gave no batch (an exhausted generator?)")
        if isinstance(outputs[0], (list, tuple)):  # a tuple stays a tuple, as the call gave
            result = type(outputs[0])(np.concatenate(parts) for parts in zip(*outputs))
        else:
            result = np.concatenate(outputs)
        if data.samples is None:
            return result
        return data_parallel.gather(result, data.samples)  # all ranks' rows

    def predict_on_batch(self, x):
        """The outputs for one batch (no batching, inference mode)."""
        return (self.captured_steps or self).predict_step(data_adapter.standardize_x(self, x,
                                                                                     "x"))

    def train_on_batch(self, x, y, sample_weight=None) -> float:
        """One training step on one batch; returns the loss."""
        self._require_compiled("train_on_batch")
        x, y, sample_weight = data_adapter.standardize(self, x, y, sample_weight)
        return (self.captured_steps or self).train_step(x, y, sample_weight)[0]


class _RunningMeans:
    """The running means over the samples of one pass: the loss, each output's loss (a model
    with several) and, in fit, the weight penalty (when there is one)."""

    __slots__ = ("losses", "multi", "with_penalty", "seen", "loss", "outputs", "penalty")

    def __init__(self, losses: OutputLosses, with_penalty: bool):
        self.losses, self.multi, self.with_penalty = losses, losses.multi, with_penalty
        self.seen, self.loss, self.penalty = 0, 0.0, None
        self.outputs = [0.0] * len(losses.last)

    def add(self, loss: float, count: int, penalty: float | None) -> None:
        self.loss += loss * count
        self.seen += count
        if self.with_penalty and penalty is not None:
            self.penalty = (self.penalty or 0.0) + penalty * count
        if self.multi:
            for index, value in enumerate(self.losses.last):
                self.outputs[index] += float(value) * count

    def result(self) -> tuple[float, list[float], float | None]:
        """``(loss, output losses, penalty)``, the means so far."""
        seen = self.seen
        return (self.loss / seen, [total / seen for total in self.outputs],
                None if self.penalty is None else self.penalty / seen)


def _validation_epochs(validation_freq):
    """``validation_freq`` as a test of the epoch number (from 1): every n-th epoch for an
    int, the listed epochs for a list, tuple or set (as Keras 2)."""
    if isinstance(validation_freq, (list, tuple, set, range)):
        epochs = {check_positive_int(e, "validation_freq entries") for e in validation_freq}
        return lambda epoch: epoch in epochs
    every = check_positive_int(validation_freq, "validation_freq")
    return lambda epoch: epoch % every == 0

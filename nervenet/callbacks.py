"""Callbacks: code that runs at fixed points of ``fit``/``evaluate``/``predict`` (as Keras).

Hooks: ``on_train_begin/end(logs)``, ``on_epoch_begin/end(epoch, logs)``,
``on_train_batch_begin/end(batch, logs)``, ``on_test_begin/end``, ``on_test_batch_begin/end``,
``on_predict_begin/end``, ``on_predict_batch_begin/end``. ``self.model`` is the model being
trained; setting ``self.model.stop_training = True`` stops after the current epoch.

``fit`` wraps the user's callbacks with a ``History`` (always, last) and a ``ProgbarLogger``
(when ``verbose`` is 1 or 2).

Here: ``Callback``, ``CallbackList``, ``History``, ``ProgbarLogger``, ``TerminateOnNaN``,
``LambdaCallback``, ``CSVLogger``, ``LearningRateScheduler``; ``MonitorCallback``, the one
base that knows min/max mode and ``min_delta``, and on it ``EarlyStopping``,
``ReduceLROnPlateau`` and ``ModelCheckpoint``; ``BackupAndRestore`` (resume an interrupted
``fit`` exactly); ``TensorBoard`` (needs tensorboardX).
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
import warnings

import numpy as np

from nervenet import backend, diagnostics, summary
from nervenet.checks import check_int
from nervenet.progbar import Progbar
from nervenet.saving import checkpoint


class Callback:
    """Base class: override the hooks you need."""

    def __init__(self):
        self.model = None
        self.params: dict = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def on_train_begin(self, logs=None): ...

    def on_train_end(self, logs=None): ...

    def on_epoch_begin(self, epoch, logs=None): ...

    def on_epoch_end(self, epoch, logs=None): ...

    def on_train_batch_begin(self, batch, logs=None): ...

    def on_train_batch_end(self, batch, logs=None): ...

    def on_test_begin(self, logs=None): ...

    def on_test_end(self, logs=None): ...

    def on_test_batch_begin(self, batch, logs=None): ...

    def on_test_batch_end(self, batch, logs=None): ...

    def on_predict_begin(self, logs=None): ...

    def on_predict_end(self, logs=None): ...

    def on_predict_batch_begin(self, batch, logs=None): ...

    def on_predict_batch_end(self, batch, logs=None): ...

    def on_batch_begin(self, batch, logs=None):
        """TF-Keras 2's name of ``on_train_batch_begin``: called at the same point."""

    def on_batch_end(self, batch, logs=None):
        """TF-Keras 2's name of ``on_train_batch_end``: called at the same point."""


_HOOKS = [name for name in vars(Callback) if name.startswith("on_")]
#: TF-Keras 2's hook names, run where the new ones are
_KERAS2_HOOKS = {"on_batch_begin": "on_train_batch_begin", "on_batch_end": "on_train_batch_end"}


class CallbackList:
    """Calls a hook on every callback, in order. Hooks a callback does not override are
    skipped without a call (batch hooks run every step, so this keeps fit cheap)."""

    def __init__(self, callbacks, model=None, params=None):
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(f"callbacks must be Callback instances, got "
                                f"{type(callback).__name__}")
            if model is not None:
                callback.set_model(model)
            if params is not None:
                callback.set_params(params)
        self._active = {
            hook: [getattr(c, hook) for c in self.callbacks
                   if hook in vars(c) or getattr(type(c), hook) is not getattr(Callback, hook)]
            for hook in _HOOKS
        }
        for old, new in _KERAS2_HOOKS.items():
            self._active[new] += self._active.pop(old)

    def call(self, hook: str, *args) -> None:
        for method in self._active[hook]:
            method(*args)

    def wants(self, hook: str) -> bool:
        return bool(self._active[hook])


class History(Callback):
    """Records the logs of every epoch: ``history.history["loss"]`` is the list of losses.

    ``fit`` returns it. ``history.epoch`` lists the epoch indices.
    """

    def __init__(self):
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


class ProgbarLogger(Callback):
    """Prints progress as Keras does, for ``fit``, ``evaluate`` and ``predict``.

    ``verbose=1``: on a terminal, a bar redrawn in place (at most every ``interval`` seconds)
    with the step count, ETA, time per step and the running loss and metrics, fitted to the
    terminal's width (see ``nervenet.progbar``); elsewhere (a file, a pipe) one line per epoch.
    ``verbose=2``: one line per epoch. ``evaluate`` and ``predict`` get their own bar when they
    run outside ``fit``.

    Args:
        verbose: 1 or 2 (default 1).
        stream: where to write (default ``sys.stdout``).
        interval: minimum seconds between two redraws of the bar (default 0.05).
    """

    def __init__(self, verbose: int = 1, stream=None, interval: float = 0.05):
        super().__init__()
        if verbose not in (1, 2):
            raise ValueError(f"ProgbarLogger: verbose must be 1 or 2, got {verbose!r}")
        self.verbose = verbose
        self.stream = stream
        self.interval = interval
        self._bar: Progbar | None = None
        self._in_fit = False

    def _new_bar(self, prefix: str = "") -> Progbar:
        stream = self.stream or sys.stdout
        columns = None if self.verbose == 2 else -1  # -1: ask the stream
        return Progbar(self.params.get("steps"), stream=stream, interval=self.interval,
                       prefix=prefix, columns=columns)

    def on_train_begin(self, logs=None):
        self._in_fit = True

    def on_train_end(self, logs=None):
        self._in_fit = False

    def on_epoch_begin(self, epoch, logs=None):
        self._bar = self._new_bar(f"Epoch {epoch + 1}/{self.params.get('epochs')}")
        if self._bar.columns is not None:
            self._bar._write(self._bar.prefix + "\n")

    def on_train_batch_end(self, batch, logs=None):
        if self._bar is not None:
            self._bar.update(batch + 1, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self._bar is not None:
            self._bar.finish(logs)
            self._bar = None

    def _begin(self, logs=None):
        if not self._in_fit:
            self._bar = self._new_bar()

    def _batch_end(self, batch, logs=None):
        if not self._in_fit and self._bar is not None:
            self._bar.update(batch + 1, {k: v for k, v in (logs or {}).items()
                                         if k != "outputs"})

    def _end(self, logs=None):
        if not self._in_fit and self._bar is not None:
            self._bar.finish({k: v for k, v in (logs or {}).items() if k != "outputs"})
            self._bar = None

    on_test_begin = on_predict_begin = _begin
    on_test_batch_end = on_predict_batch_end = _batch_end
    on_test_end = on_predict_end = _end


class TerminateOnNaN(Callback):
    """Stops training as soon as a batch loss is NaN or infinite."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            print(f"Batch {batch}: invalid loss {loss}, terminating training")
            self.model.stop_training = True


class LambdaCallback(Callback):
    """A callback made of plain functions, as Keras's: ``LambdaCallback(on_epoch_end=lambda
    epoch, logs: print(epoch, logs["loss"]))``. Any hook name may be given as a keyword.

    Example:
        >>> seen = []
        >>> callback = LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
        >>> callback.on_epoch_end(0, {}); seen
        [0]
    """

    def __init__(self, **hooks):
        super().__init__()
        for name, function in hooks.items():
            if name not in _HOOKS:
                raise ValueError(f"LambdaCallback: unknown hook {name!r}; the hooks are "
                                 f"{_HOOKS}")
            if function is not None:
                if not callable(function):
                    raise TypeError(f"LambdaCallback: {name} must be callable, got "
                                    f"{type(function).__name__}")
                setattr(self, name, function)


class CSVLogger(Callback):
    """Writes one CSV row per epoch: ``epoch`` and every log value (columns sorted by name).

    Args:
        filename: the CSV file.
        separator: the column separator (default ``","``).
        append: add to an existing file instead of replacing it (default ``False``).
    """

    def __init__(self, filename, separator: str = ",", append: bool = False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.separator = separator
        self.append = append
        self._file = None
        self._writer = None
        self._keys: list[str] | None = None

    def on_train_begin(self, logs=None):
        exists = self.append and os.path.exists(self.filename) and os.path.getsize(
            self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="")  # noqa: SIM115
        self._keys = None
        self._header_written = exists

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._keys is None:
            self._keys = sorted(logs)
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch", *self._keys],
                                          delimiter=self.separator)
            if not self._header_written:
                self._writer.writeheader()
        row = {"epoch": epoch}
        row.update({key: logs.get(key, "NA") for key in self._keys})
        self._writer.writerow(row)
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None


def _set_learning_rate(model, value: float, who: str) -> None:
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "learning_rate"):
        raise ValueError(f"{who}: the model's optimizer has no learning_rate to change")
    if getattr(optimizer, "learning_rate_schedule", None) is not None:
        raise ValueError(f"{who}: the optimizer's learning rate is a schedule "
                         f"({type(optimizer.learning_rate_schedule).__name__}); use a constant "
                         "learning rate with this callback")
    optimizer.learning_rate = float(value)


class LearningRateScheduler(Callback):
    """Sets the learning rate at the start of every epoch: ``lr = schedule(epoch, lr)`` (or
    ``schedule(epoch)``), as Keras's.

    Args:
        schedule: a function of the epoch index (from 0) and the current learning rate.
        verbose: print each change (default 0).
    """

    def __init__(self, schedule, verbose: int = 0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be callable, got "
                            f"{type(schedule).__name__}")
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        current = float(self.model.optimizer.learning_rate)
        try:
            value = self.schedule(epoch, current)
        except TypeError:  # a schedule of the epoch only
            value = self.schedule(epoch)
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or (
                not math.isfinite(value)) or value < 0:
            raise ValueError(f"LearningRateScheduler: the schedule returned {value!r} at epoch "
                             f"{epoch}; expected a finite non-negative float")
        _set_learning_rate(self.model, value, "LearningRateScheduler")
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {value}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class MonitorCallback(Callback):
    """The base of every callback that watches one logged quantity (EarlyStopping,
    ReduceLROnPlateau, ModelCheckpoint): which way is better, and by how much a change must
    beat the reference to count as an improvement.

    Improvement: ``current < reference - min_delta`` in "min" mode, ``current > reference +
    min_delta`` in "max" mode. "auto" means "max" for accuracies, AUC, precision, recall and
    F-scores (a name containing ``acc``, ``auc``, ``precision``, ``recall`` or ``f1``) and
    "min" otherwise, as Keras decides.

    Args:
        monitor: the log key to watch (default ``"val_loss"``).
        mode: ``"auto"``, ``"min"`` or ``"max"`` (default ``"auto"``).
        min_delta: the smallest change that counts as an improvement (default 0).
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", min_delta: float = 0.0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{type(self).__name__}: mode must be 'auto', 'min' or 'max', got "
                             f"{mode!r}")
        if not isinstance(min_delta, (int, float)) or not math.isfinite(min_delta):
            raise ValueError(f"{type(self).__name__}: min_delta must be a finite number, got "
                             f"{min_delta!r}")
        self.monitor = monitor
        if mode == "auto":
            name = monitor.removeprefix("val_")
            mode = "max" if any(k in name for k in ("acc", "auc", "precision", "recall",
                                                      "f1")) else "min"
        self.mode = mode
        self.min_delta = abs(float(min_delta))
        self._warned = False

    @property
    def worst(self) -> float:
        """The starting reference: +inf in "min" mode, -inf in "max" mode."""
        return math.inf if self.mode == "min" else -math.inf

    def is_improvement(self, current: float, reference: float) -> bool:
        if self.mode == "min":
            return current < reference - self.min_delta
        return current > reference + self.min_delta

    def get_monitor_value(self, logs) -> float | None:
        value = (logs or {}).get(self.monitor)
        if value is None and not self._warned:
            self._warned = True
            warnings.warn(f"{type(self).__name__}: the logs have no {self.monitor!r}; available "
                          f"keys: {sorted(logs or {})} (val_ keys need validation data)",
                          stacklevel=3)
        return None if value is None else float(value)


class EarlyStopping(MonitorCallback):
    """Stops training when the monitored quantity has stopped improving, as Keras's.

    Args:
        monitor: the log key (default ``"val_loss"``).
        min_delta: the smallest change that counts as an improvement (default 0).
        patience: epochs without improvement before stopping (default 0).
        verbose: print when stopping (default 0).
        mode: ``"auto"``, ``"min"`` or ``"max"`` (default ``"auto"``).
        baseline: training stops unless the quantity beats this within ``patience`` epochs
            (default ``None``).
        restore_best_weights: at the end, set the weights of the best epoch (default
            ``False``: keep the last).
        start_from_epoch: epochs to train before watching (warm-up; default 0).

    Attributes:
        stopped_epoch: the epoch at which it stopped training (0: it did not).
        best, best_epoch: the best value seen and its epoch.
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0):
        super().__init__(monitor, mode, min_delta)
        self.patience = check_int("EarlyStopping", "patience", patience, low=0)
        start_from_epoch = check_int("EarlyStopping", "start_from_epoch", start_from_epoch, low=0)
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = self.worst
        self.best_epoch = 0
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()  # the first epoch watched
        self.wait += 1
        if self.is_improvement(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self.is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ReduceLROnPlateau(MonitorCallback):
    """Multiplies the learning rate by ``factor`` when the monitored quantity has not improved
    for ``patience`` epochs, as Keras's.

    Args:
        monitor: the log key (default ``"val_loss"``).
        factor: the multiplier, in (0, 1) (default 0.1).
        patience: epochs without improvement before reducing (default 10).
        verbose: print each reduction (default 0).
        mode: ``"auto"``, ``"min"`` or ``"max"`` (default ``"auto"``).
        min_delta: the smallest change that counts as an improvement (default 1e-4).
        cooldown: epochs to wait after a reduction before watching again (default 0).
        min_lr: the learning rate never goes below this (default 0).
        epsilon: TF-Keras 2's name of ``min_delta``, accepted with a DeprecationWarning.
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0, *, epsilon: float | None = None):
        if epsilon is not None:
            warnings.warn("ReduceLROnPlateau: the argument epsilon is deprecated, use "
                          "min_delta", DeprecationWarning, stacklevel=2)
            min_delta = epsilon
        super().__init__(monitor, mode, min_delta)
        if not 0.0 < factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor!r}")
        self.factor = float(factor)
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.min_lr = float(min_lr)

    def on_train_begin(self, logs=None):
        self.best = self.worst
        self.wait = 0
        self.cooldown_counter = 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        lr = float(self.model.optimizer.learning_rate)
        logs["learning_rate"] = lr
        current = self.get_monitor_value(logs)
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif self.cooldown_counter == 0:
            self.wait += 1
            if self.wait >= self.patience and lr > self.min_lr:
                new_lr = max(lr * self.factor, self.min_lr)
                _set_learning_rate(self.model, new_lr, "ReduceLROnPlateau")
                if self.verbose:
                    print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                          f"{new_lr}.")
                self.cooldown_counter = self.cooldown
                self.wait = 0


class ModelCheckpoint(MonitorCallback):
    """Saves the model (or its weights) at the end of epochs, as Keras's.

    Args:
        filepath: where to save; may hold ``{epoch}`` (from 1) and log keys, formatted as
            ``str.format`` does: ``"ckpt-{epoch:02d}-{val_loss:.2f}.nervenet"``. Keras-style
            names (``"my_checkpoints"``) are accepted; ``load_weights``/``load_model`` of the
            same name reads the file back.
        monitor: the log key for ``save_best_only`` (default ``"val_loss"``).
        verbose: print each save (default 0).
        save_best_only: save only when the monitored quantity improves (default ``False``).
        save_weights_only: ``model.save_weights`` instead of ``model.save`` (default
            ``False``).
        mode: ``"auto"``, ``"min"`` or ``"max"`` (default ``"auto"``).
        save_freq: ``"epoch"`` (default: at the end of every epoch) or an int N: every N
            training batches (counted over the whole run; the logs are then the running
            values of the epoch so far, as Keras's).
        initial_value_threshold: the value to beat first with ``save_best_only`` (default
            ``None``).
        options: TensorFlow's ``tf.train.CheckpointOptions``; accepted, warns when set.
        period: TF-Keras 2's epochs between saves, accepted with a DeprecationWarning
            (``save_freq`` counts batches instead).

    Every save is atomic: an interrupted run leaves the previous checkpoint intact.
    """

    def __init__(self, filepath, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False,
                 mode: str = "auto", save_freq="epoch",
                 initial_value_threshold: float | None = None, options=None, *,
                 period: int | None = None):
        super().__init__(monitor, mode, 0.0)
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(
                save_freq, int) or save_freq < 1):
            raise ValueError(f"ModelCheckpoint: save_freq must be 'epoch' or a positive int "
                             f"(batches), got {save_freq!r}")
        if period is not None:
            check_int("ModelCheckpoint", "period", period, low=1)
            warnings.warn("ModelCheckpoint: the argument period is deprecated, use save_freq",
                          DeprecationWarning, stacklevel=2)
        if options is not None:
            _no_effect("ModelCheckpoint", "options", options,
                       "tf.train.CheckpointOptions configure TensorFlow's checkpoint writer")
        self.save_freq = save_freq
        self.period = 1 if period is None else period
        self.options = options
        self._batches_seen = 0
        self._epoch = 0
        self.filepath = os.fspath(filepath)
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.best = self.worst if initial_value_threshold is None else float(
            initial_value_threshold)

    def on_train_begin(self, logs=None):
        self._batches_seen = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches_seen += 1
        if self._batches_seen % self.save_freq == 0:
            self._save(self._epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch" and (epoch + 1) % self.period == 0:
            self._save(epoch, logs)

    def _save(self, epoch: int, logs) -> None:
        logs = logs or {}
        try:
            path = self.filepath.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(f"ModelCheckpoint: cannot format filepath {self.filepath!r} with "
                             f"epoch and the logs {sorted(logs)}: {error!r}") from None
        if self.save_best_only:
            current = self.get_monitor_value(logs)
            if current is None or not self.is_improvement(current, self.best):
                return
            if self.verbose:
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to "
                      f"{current:.5f}, saving model to {path}")
            self.best = current
        elif self.verbose:
            print(f"Epoch {epoch + 1}: saving model to {path}")
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class BackupAndRestore(Callback):
    """Back up the training state at the end of every epoch and, when ``fit`` starts and a
    backup exists, restore it and go on from the next epoch, as Keras 3's.

    The backup (``<backup_dir>/checkpoint.nervenet``, one file written atomically) holds the
    weights, the optimizer state, the epoch and step, and the state of every random generator
    training uses (fit's shuffling, the process-wide one, each layer's own), so that a run
    killed at any moment and started again with the same code gives bit-identical weights to a
    run never stopped. Build and compile the model as for the first run (same seed) and pass
    the same callback; nothing else changes.

    Args:
        backup_dir: the directory for the backup (created if needed).
        save_freq: ``"epoch"`` (the only choice here; default).
        double_checkpoint: keep the previous backup too (``checkpoint_previous.nervenet``) and
            restore it when the latest cannot be read (default ``False``), as Keras 3's.
        delete_checkpoint: delete the backup when ``fit`` ends normally (default ``True``).
        save_before_preemption: TensorFlow's preemption handling of managed clusters;
            accepted, warns when set (no effect here).

    Example:
        >>> import numpy as np, nervenet, tempfile
        >>> from nervenet import layers, models
        >>> model = models.Sequential([layers.Input(shape=(2,)), layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> backup = BackupAndRestore(tempfile.mkdtemp())
        >>> history = model.fit(np.zeros((8, 2)), np.zeros((8, 1)), epochs=2, verbose=0,
        ...                     callbacks=[backup])
        >>> history.epoch
        [0, 1]
    """

    FILENAME = "checkpoint.nervenet"
    PREVIOUS = "checkpoint_previous.nervenet"

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint: bool = False,
                 delete_checkpoint: bool = True, save_before_preemption: bool = False):
        super().__init__()
        if save_before_preemption:
            _no_effect("BackupAndRestore", "save_before_preemption", save_before_preemption,
                       "it reacts to TensorFlow's cluster preemption notices")
        self.double_checkpoint = bool(double_checkpoint)
        self.save_before_preemption = bool(save_before_preemption)
        if not isinstance(backup_dir, (str, os.PathLike)) or not os.fspath(backup_dir):
            raise ValueError(f"BackupAndRestore: backup_dir must be a directory path, got "
                             f"{backup_dir!r}")
        if save_freq != "epoch":
            raise ValueError(f"BackupAndRestore: save_freq must be 'epoch' (backups at epoch "
                             f"ends are what resumes exactly), got {save_freq!r}")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.delete_checkpoint = bool(delete_checkpoint)

    @property
    def path(self) -> str:
        """The backup file."""
        return os.path.join(self.backup_dir, self.FILENAME)

    @property
    def previous_path(self) -> str:
        """The backup before the latest (``double_checkpoint``)."""
        return os.path.join(self.backup_dir, self.PREVIOUS)

    def on_train_begin(self, logs=None):
        if os.path.exists(self.path):
            try:
                state = checkpoint.restore_checkpoint(self.model, self.path)
            except (OSError, ValueError) as error:
                if not (self.double_checkpoint and os.path.exists(self.previous_path)):
                    raise
                warnings.warn(f"BackupAndRestore: the latest backup {self.path} cannot be "
                              f"read ({error}); restoring the previous one", stacklevel=2)
                state = checkpoint.restore_checkpoint(self.model, self.previous_path)
            self.model.fit_state.initial_epoch = state["epoch"]

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint and os.path.exists(self.path):
            os.replace(self.path, self.previous_path)
        checkpoint.save_checkpoint(self.model, self.path, epoch + 1)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint:
            for path in (self.path, self.previous_path):
                if os.path.exists(path):
                    os.remove(path)


def _no_effect(owner: str, argument: str, value, why: str) -> None:
    """Warn that a Keras argument given a non-default value does nothing here, and why."""
    warnings.warn(f"{owner}: {argument}={value!r} has no effect in nervenet ({why})",
                  UserWarning, stacklevel=3)


class TensorBoard(Callback):
    """Writes TensorBoard event files through ``nervenet.summary`` (tensorboardX: ``pip install
    nervenet[tensorboard]``), in Keras's layout: ``log_dir/train`` and ``log_dir/validation``.

    Per epoch: every log value as the scalar ``epoch_<name>`` (``val_`` values in the
    validation run). With ``update_freq="batch"`` or an int N, also every (N-th) training batch
    the running values as ``batch_<name>``, the step counting batches over the whole run.
    Every ``histogram_freq`` epochs: a histogram of every weight (by path, ``dense/kernel``),
    and with ``write_images`` each weight as a grey image (``<path>/image``, scaled to [0, 1],
    reshaped to 2-D). At the start, with ``write_graph``: the model's summary table and its
    JSON config as text (the "graph").

    Args:
        log_dir: the directory (default ``"logs"``).
        histogram_freq: epochs between weight histograms; 0 for none (default 0).
        write_graph: write the model description (default ``True``).
        write_images: write the weights as images with the histograms (default ``False``).
        write_steps_per_second: log ``steps_per_second`` of each epoch (default ``False``).
        update_freq: ``"epoch"`` (default), ``"batch"`` or an int (every N batches).
        profile_batch: TensorFlow's profiler; accepted, warns when set (no effect here).
        embeddings_freq, embeddings_metadata: the embedding projector of TensorFlow's
            Embedding layers; accepted, warn when set (no effect here).
        **kwargs: TF-Keras 2's removed ``write_grads``, ``batch_size``,
            ``embeddings_layer_names`` and ``embeddings_data``: accepted with a warning.
    """

    _LEGACY = ("write_grads", "batch_size", "embeddings_layer_names", "embeddings_data")

    def __init__(self, log_dir="logs", histogram_freq: int = 0, write_graph: bool = True,
                 write_images: bool = False, write_steps_per_second: bool = False,
                 update_freq="epoch", profile_batch=0, embeddings_freq: int = 0,
                 embeddings_metadata=None, **kwargs):
        super().__init__()
        summary._tensorboardx()               # the clear ImportError now, not at the first epoch
        check_int("TensorBoard", "histogram_freq", histogram_freq, low=0)
        check_int("TensorBoard", "embeddings_freq", embeddings_freq, low=0)
        if update_freq not in ("epoch", "batch") and (
                isinstance(update_freq, bool) or not isinstance(update_freq, int)
                or update_freq < 1):
            raise ValueError(f"TensorBoard: update_freq must be 'epoch', 'batch' or a positive "
                             f"int, got {update_freq!r}")
        unknown = sorted(set(kwargs) - set(self._LEGACY))
        if unknown:
            raise TypeError(f"TensorBoard: unexpected arguments {unknown}")
        for name, value in kwargs.items():
            _no_effect("TensorBoard", name, value, "a TF-Keras 2 argument Keras removed")
        if profile_batch not in (0, None, (0, 0), [0, 0]):
            _no_effect("TensorBoard", "profile_batch", profile_batch,
                       "it starts TensorFlow's profiler")
        if embeddings_freq or embeddings_metadata is not None:
            _no_effect("TensorBoard", "embeddings_freq/embeddings_metadata",
                       (embeddings_freq, embeddings_metadata),
                       "the projector shows TensorFlow Embedding layers, which nervenet has not")
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = histogram_freq
        self.write_graph = write_graph
        self.write_images = bool(write_images)
        self.write_steps_per_second = bool(write_steps_per_second)
        self.update_freq = 1 if update_freq == "batch" else update_freq
        self.profile_batch = profile_batch
        self.embeddings_freq = embeddings_freq
        self.embeddings_metadata = embeddings_metadata
        self._writers: dict = {}
        self._global_train_batch = 0

    def _writer(self, run: str) -> summary.FileWriter:
        if run not in self._writers:
            self._writers[run] = summary.create_file_writer(os.path.join(self.log_dir, run))
        return self._writers[run]

    def on_train_begin(self, logs=None):
        self._global_train_batch = 0
        if self.write_graph:
            lines: list[str] = []
            if self.model.built:
                self.model.summary(print_fn=lines.append)
            text = "\n".join("    " + line for line in lines)  # markdown code block
            try:
                config = json.dumps(self.model.get_config(), indent=1)
                text += "\n\n" + "\n".join("    " + line for line in config.splitlines())
            except (NotImplementedError, ValueError, TypeError):
                pass  # a subclassed model: the summary only
            self._writer("train").text("model", text, 0)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()
        self._epoch_steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self._global_train_batch += 1
        self._epoch_steps = batch + 1
        if self.update_freq == "epoch" or self._global_train_batch % self.update_freq:
            return
        for key, value in (logs or {}).items():
            if np.ndim(value) == 0:
                self._writer("train").scalar(f"batch_{key}", value, self._global_train_batch)

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if self.write_steps_per_second:
            elapsed = time.perf_counter() - getattr(self, "_epoch_start", time.perf_counter())
            steps = self._epoch_steps or self.params.get("steps") or 1
            logs["steps_per_second"] = steps / elapsed if elapsed > 0 else 0.0
        for key, value in logs.items():
            if np.ndim(value) != 0:
                continue                        # per-class arrays (F1Score(average=None))
            if key.startswith("val_"):
                self._writer("validation").scalar(f"epoch_{key[4:]}", value, epoch)
            else:
                self._writer("train").scalar(f"epoch_{key}", value, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            for path, weight in self.model.named_weights().items():
                values = weight.numpy()  # on the host (from a device: a copy)
                self._writer("train").histogram(path, values, epoch)
                if self.write_images:
                    self._writer("train").image(f"{path}/image", _weight_image(values), epoch)
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


def _weight_image(weight: np.ndarray) -> np.ndarray:
    """A weight as one grey image (1, h, w, 1) with values in [0, 1]: a vector is one row, a
    matrix itself, a convolution kernel (kh, kw, in, out) the (kh * kw * in, out) matrix."""
    matrix = weight.reshape(1, -1) if weight.ndim < 2 else weight.reshape(-1, weight.shape[-1])
    matrix = np.asarray(matrix, dtype=np.float64)
    low, high = matrix.min(), matrix.max()
    scaled = (matrix - low) / (high - low) if high > low else np.zeros_like(matrix)
    return scaled[None, :, :, None]


class GradientMonitor(Callback):
    """Records per-layer gradient statistics after every epoch and warns when gradients vanish
    or explode.

    After each epoch, ``history`` gains one value per key ``"grad_norm/<layer>"``,
    ``"update_ratio/<layer>"`` and, for Sequential models, ``"dead_fraction/<layer>"`` or
    ``"saturated_fraction/<layer>"`` (see ``nervenet.diagnostics`` for the definitions).

    Args:
        x, y: the probe batch the gradients are computed on (a few hundred samples suffice).
        sample_weight: optional loss weights of the probe (default ``None``).
        vanishing_threshold: warn when a layer's gradient norm is below this (default 1e-7)...
        vanishing_ratio: ...or below this fraction of the largest layer's norm (default 1e-3).
        exploding_threshold: warn when a norm exceeds this or is not finite (default 1e3).
        saturation: the saturation threshold (default 0.99).
        verbose: 1 prints one line per epoch with the norms (default 0).

    Example:
        >>> from nervenet import layers, models
        >>> x, y = np.random.default_rng(0).normal(size=(16, 3)), np.zeros((16, 1))
        >>> model = models.Sequential([layers.Input(shape=(3,)),
        ...                            layers.Dense(4, "tanh", name="hidden"),
        ...                            layers.Dense(1, name="out")])
        >>> model.compile("sgd", "mse")
        >>> monitor = GradientMonitor(x, y)
        >>> _ = model.fit(x, y, epochs=2, verbose=0, callbacks=[monitor])
        >>> for key in sorted(monitor.history):
        ...     print(key, len(monitor.history[key]))
        grad_norm/hidden 2
        grad_norm/out 2
        saturated_fraction/hidden 2
        update_ratio/hidden 2
        update_ratio/out 2
    """

    def __init__(self, x, y, sample_weight=None, vanishing_threshold: float = 1e-7,
                 vanishing_ratio: float = 1e-3, exploding_threshold: float = 1e3,
                 saturation: float = 0.99, verbose: int = 0):
        super().__init__()
        self.x = np.asarray(getattr(x, "data", x))
        self.y = np.asarray(getattr(y, "data", y))
        if len(self.x) != len(self.y):
            raise ValueError(f"GradientMonitor: x and y must have the same number of samples, "
                             f"got {len(self.x)} and {len(self.y)}")
        self.sample_weight = sample_weight
        for name, value in (("vanishing_threshold", vanishing_threshold),
                            ("vanishing_ratio", vanishing_ratio),
                            ("exploding_threshold", exploding_threshold)):
            if not value > 0:
                raise ValueError(f"GradientMonitor: {name} must be > 0, got {value!r}")
        self.vanishing_threshold = vanishing_threshold
        self.vanishing_ratio = vanishing_ratio
        self.exploding_threshold = exploding_threshold
        self.saturation = saturation
        self.verbose = verbose
        self.history: dict[str, list[float]] = {}
        self.epochs: list[int] = []
        self._before = None

    def on_train_begin(self, logs=None):
        self.history, self.epochs = {}, []

    def _snapshot(self) -> dict[str, list[np.ndarray]]:
        return {name: [backend.host_copy(w.data) for w in group]  # once an epoch
                for name, group in diagnostics.layer_weights(self.model)}

    def on_train_batch_begin(self, batch, logs=None):
        if batch == self.params.get("steps", 1) - 1:  # the last step of the epoch
            self._before = self._snapshot()

    def on_train_batch_end(self, batch, logs=None):
        if self._before is None or batch != self.params.get("steps", 1) - 1:
            return
        self._ratios = {}
        for name, group in diagnostics.layer_weights(self.model):
            before = self._before[name]
            change = np.sqrt(sum(np.sum(np.square(w.numpy() - b, dtype=np.float64))
                                 for w, b in zip(group, before)))
            size = np.sqrt(sum(np.sum(np.square(b, dtype=np.float64)) for b in before))
            self._ratios[name] = float(change / size) if size > 0 else float("inf")
        self._before = None

    def _record(self, key: str, value: float) -> None:
        self.history.setdefault(key, []).append(value)

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(epoch)
        norms = diagnostics.gradient_norms(self.model, self.x, self.y, self.sample_weight)
        for name, value in norms.items():
            self._record(f"grad_norm/{name}", value)
        for name, value in getattr(self, "_ratios", {}).items():
            self._record(f"update_ratio/{name}", value)
        self._ratios = {}
        if hasattr(self.model, "add"):
            for name, stats in diagnostics.activation_statistics(self.model, self.x,
                                                     self.saturation).items():
                for key, value in stats.items():
                    self._record(f"{key}/{name}", value)
        if self.verbose:
            print(f"GradientMonitor epoch {epoch + 1}: " + ", ".join(
                f"{name} {value:.3e}" for name, value in norms.items()))
        self._warn(epoch, norms)

    def _warn(self, epoch: int, norms: dict[str, float]) -> None:
        if not norms:
            return
        for name, value in norms.items():
            if not np.isfinite(value) or value > self.exploding_threshold:
                warnings.warn(f"epoch {epoch + 1}: exploding gradients: the gradient norm of "
                              f"layer {name!r} is {value:.3e}; lower the learning rate, clip "
                              "gradients (clipnorm) or normalize the inputs",
                              RuntimeWarning, stacklevel=2)
                return
        largest = max(norms, key=norms.get)
        top = norms[largest] or 1.0  # all zero: every ratio reads 0
        for name, value in norms.items():
            if value < self.vanishing_threshold or value < self.vanishing_ratio * top:
                warnings.warn(f"epoch {epoch + 1}: vanishing gradients: the gradient norm of "
                              f"layer {name!r} is {value:.3e}, {value / top:.1e} of "
                              f"layer {largest!r}'s; try ReLU with He initialization or "
                              "batch normalization", RuntimeWarning, stacklevel=2)
                return

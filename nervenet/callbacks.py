"""Callbacks: code that runs at fixed points of ``fit``/``evaluate``/``predict`` (as Keras).

Hooks: ``on_train_begin/end(logs)``, ``on_epoch_begin/end(epoch, logs)``,
``on_train_batch_begin/end(batch, logs)``, ``on_test_begin/end``, ``on_test_batch_begin/end``,
``on_predict_begin/end``, ``on_predict_batch_begin/end``. ``self.model`` is the model being
trained; setting ``self.model.stop_training = True`` stops after the current epoch.

``fit`` wraps the user's callbacks with a ``History`` (always, last) and a ``ProgbarLogger``
(when ``verbose`` is 1 or 2).
"""

from __future__ import annotations

import sys
import time

import numpy as np


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


_HOOKS = [name for name in vars(Callback) if name.startswith("on_")]


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
                   if getattr(type(c), hook) is not getattr(Callback, hook)]
            for hook in _HOOKS
        }

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


def _format_logs(logs: dict) -> str:
    return " - ".join(f"{key}: {value:.4f}" for key, value in logs.items())


def _format_time(seconds: float) -> str:
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{seconds:.0f}s"


class ProgbarLogger(Callback):
    """Prints progress as Keras does.

    ``verbose=1``: a bar per epoch, redrawn at most every ``interval`` seconds, with the step
    count, ETA, the running loss and metrics, and the time per step; ``verbose=2``: one line per
    epoch.

    Args:
        verbose: 1 or 2 (default 1).
        stream: where to write (default ``sys.stdout``).
        interval: minimum seconds between redraws of the bar (default 0.05).
    """

    def __init__(self, verbose: int = 1, stream=None, interval: float = 0.05):
        super().__init__()
        if verbose not in (1, 2):
            raise ValueError(f"ProgbarLogger: verbose must be 1 or 2, got {verbose!r}")
        self.verbose = verbose
        self.stream = stream
        self.interval = interval

    def _write(self, text: str) -> None:
        stream = self.stream or sys.stdout
        stream.write(text)
        stream.flush()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = self.last_draw = time.perf_counter()
        self.steps = self.params.get("steps")
        if self.verbose == 1:
            self._write(f"Epoch {epoch + 1}/{self.params.get('epochs')}\n")

    def on_train_batch_end(self, batch, logs=None):
        if self.verbose != 1:
            return
        now = time.perf_counter()
        done = batch + 1
        if now - self.last_draw < self.interval and done != self.steps:
            return
        self.last_draw = now
        self._write("\r" + self._bar(done, now, logs or {}))

    def _bar(self, done: int, now: float, logs: dict) -> str:
        elapsed = now - self.epoch_start
        per_step = elapsed / done
        if self.steps:
            width = 30
            filled = int(width * done / self.steps)
            bar = "=" * max(filled - 1, 0) + (">" if filled < width else "=") + "." * (
                width - filled)
            eta = per_step * (self.steps - done)
            head = f"{done}/{self.steps} [{bar}] - ETA: {_format_time(eta)}"
        else:
            head = f"{done}"
        return f"{head} - {_format_logs(logs)} - {per_step * 1e3:.0f}ms/step"

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self.epoch_start
        steps = self.steps or 1
        line = (f"{_format_time(elapsed)} {elapsed / steps * 1e3:.0f}ms/step - "
                f"{_format_logs(logs or {})}")
        if self.verbose == 1:
            self._write(f"\r{self.steps}/{self.steps} - {line}\n")
        else:
            self._write(f"Epoch {epoch + 1}/{self.params.get('epochs')} - {line}\n")


class TerminateOnNaN(Callback):
    """Stops training as soon as a batch loss is NaN or infinite."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            print(f"Batch {batch}: invalid loss {loss}, terminating training")
            self.model.stop_training = True

"""The Horovod-shaped API, for people who know Horovod's Keras one (Sergeev & Del Balso, 2018):
``DistributedOptimizer`` averages gradients over ranks; ``BroadcastGlobalVariables``,
``MetricAverage`` and ``LearningRateWarmup`` are its callbacks.

``Model.fit`` under an initialized world already reduces gradients, starts every rank from
rank 0's weights and logs global values (``data_parallel.py``); these are for custom training
loops, for resuming with optimizer state loaded on one rank, and for the warm-up that large
global batches need.
"""

from __future__ import annotations

import json

import numpy as np

from nervenet import optimizers, world
from nervenet.callbacks import Callback, _set_learning_rate


class _Averaging:
    """Mixed into an optimizer's class by ``DistributedOptimizer``."""

    #: average the gradients over ranks in ``apply_gradients`` (fit under an initialized world
    #: turns it off while it runs: it reduces them itself, weighted by slice sizes)
    average_gradients = True

    def apply_gradients(self, grads_and_vars) -> None:
        pairs = list(grads_and_vars)
        if self.average_gradients and world.size() > 1:
            pairs = average_gradients(pairs)
        super().apply_gradients(pairs)


def average_gradients(pairs: list) -> list:
    """``(gradient, variable)`` pairs with each gradient replaced by its mean over ranks, sent
    as one flat buffer (a ``None`` gradient counts as zeros on that rank)."""
    variables = [v for _, v in pairs]
    sizes = [v.data.size for v in variables]
    flat = np.zeros(sum(sizes), dtype=np.result_type(*[v.data.dtype for v in variables]))
    offset = 0
    for (g, _), size in zip(pairs, sizes):
        if g is not None:
            flat[offset:offset + size] = np.asarray(getattr(g, "data", g)).reshape(-1)
        offset += size
    world.allreduce(flat, op="mean")
    out, offset = [], 0
    for v, size in zip(variables, sizes):
        out.append((flat[offset:offset + size].reshape(v.data.shape), v))
        offset += size
    return out


_CLASSES: dict[type, type] = {}


def DistributedOptimizer(optimizer):  # noqa: N802  (Horovod's name for a class factory)
    """A copy of ``optimizer`` whose ``apply_gradients`` first averages each gradient over all
    ranks: ``g = (1/p) sum_r g_r`` (Horovod's ``DistributedOptimizer``).

    The copy's class is a subclass of the original with the *same name*, and it has the same
    config (``optimizers.serialize`` gives ``{"class_name": "Adam", ...}``), so a model saved
    with it loads without MPI. Its state starts fresh, as Horovod's.

    Args:
        optimizer: an optimizer or an optimizer id (``"adam"``).

    Example (one process, where it is the optimizer itself):
        >>> opt = DistributedOptimizer(optimizers.SGD(0.1))
        >>> type(opt).__name__, opt.get_config()["learning_rate"]
        ('SGD', 0.1)
    """
    optimizer = optimizers.get(optimizer)
    if hasattr(optimizer, "minimize"):
        raise ValueError(f"DistributedOptimizer: {type(optimizer).__name__} is a full-batch "
                         "second-order optimizer; wrap a first-order one (SGD, Adam, ...)")
    base = type(optimizer)
    if isinstance(optimizer, _Averaging):
        return optimizer
    cls = _CLASSES.get(base)
    if cls is None:
        cls = _CLASSES[base] = type(base.__name__, (_Averaging, base),
                                    {"__module__": base.__module__,
                                     "__qualname__": base.__qualname__})
    return cls.from_config(optimizer.get_config())


class BroadcastGlobalVariables(Callback):
    """At the start of training, copy the model's weights and the optimizer's state from rank
    ``root_rank`` to every rank (Horovod's ``BroadcastGlobalVariablesCallback``): every rank
    starts from the same point even when only one loaded a checkpoint.

    Args:
        root_rank: the rank whose values are kept (default 0).
    """

    def __init__(self, root_rank: int = 0):
        super().__init__()
        if isinstance(root_rank, bool) or not isinstance(root_rank, (int, np.integer)) \
                or root_rank < 0:
            raise ValueError(f"BroadcastGlobalVariables: root_rank must be an int >= 0, got "
                             f"{root_rank!r}")
        self.root_rank = int(root_rank)

    def on_train_begin(self, logs=None):
        broadcast_model(self.model, self.root_rank)


def broadcast_model(model, root: int = 0) -> None:
    """Overwrite every rank's weights and optimizer state with rank ``root``'s. The state's
    layout (names, shapes, dtypes) travels first as JSON bytes, so ranks whose optimizer has
    not taken a step yet receive it whole."""
    for weight in model.weights:
        out = world.broadcast(weight.data, root=root)
        if out is not weight.data:
            weight.data[...] = out
    optimizer = getattr(model, "optimizer", None)
    if world.size() == 1 or optimizer is None or not hasattr(optimizer, "get_state"):
        return
    state = optimizer.get_state() if world.rank() == root else {}
    layout = json.dumps({k: [list(v.shape), v.dtype.str] for k, v in state.items()}).encode()
    length = world.broadcast(np.array([len(layout)], dtype=np.int64), root=root)
    header = np.zeros(int(length[0]), dtype=np.uint8)
    if world.rank() == root:
        header[:] = np.frombuffer(layout, dtype=np.uint8)
    world.broadcast(header, root=root)
    received = {}
    for key, (shape, dtype) in json.loads(header.tobytes()).items():
        array = state[key] if key in state else np.empty(shape, dtype=np.dtype(dtype))
        received[key] = world.broadcast(array, root=root)
    optimizer.set_state(received)


class MetricAverage(Callback):
    """At the end of each epoch, replace every value in the logs by its mean over ranks
    (Horovod's ``MetricAverageCallback``).

    ``fit`` under an initialized world already logs the global loss and metrics, the same on
    every rank, so there this changes nothing; it is for values a rank computes on its own
    (a callback earlier in the list that adds a per-rank figure to the logs).
    """

    def on_epoch_end(self, epoch, logs=None):
        if not logs or world.size() == 1:
            return
        keys = sorted(logs)
        values = np.array([float(logs[k]) for k in keys], dtype=np.float64)
        world.allreduce(values, op="mean")
        logs.update({k: float(v) for k, v in zip(keys, values)})


class LearningRateWarmup(Callback):
    """Ramp the learning rate from ``initial_lr / size`` to ``initial_lr`` over the first
    ``warmup_epochs`` epochs (Goyal et al., 2017), with Horovod's formula, batch by batch:

        e = epoch + (batch + 1) / steps_per_epoch
        lr = initial_lr / size * (e * (size - 1) / warmup_epochs + 1)

    so the last batch of the warm-up runs at ``initial_lr`` (the linearly scaled rate of the
    global batch). With ``momentum_correction`` the momentum of the step is multiplied by
    ``new_lr / old_lr`` while the rate changes and restored afterwards (Horovod's correction).

    Args:
        warmup_epochs: the epochs of the ramp (default 5).
        initial_lr: the rate reached at the end (default ``None``: the optimizer's rate when
            training starts).
        momentum_correction: scale momentum during the ramp (default ``True``; optimizers
            without ``momentum`` ignore it).
        steps_per_epoch: batches per epoch (default ``None``: fit's).
        verbose: print the rate at the end of the warm-up (default 0).
    """

    def __init__(self, warmup_epochs: float = 5, initial_lr: float | None = None,
                 momentum_correction: bool = True, steps_per_epoch: int | None = None,
                 verbose: int = 0):
        super().__init__()
        if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, (int, float)) \
                or not warmup_epochs > 0:
            raise ValueError(f"LearningRateWarmup: warmup_epochs must be a number > 0, got "
                             f"{warmup_epochs!r}")
        if initial_lr is not None and not initial_lr > 0:
            raise ValueError(f"LearningRateWarmup: initial_lr must be > 0, got {initial_lr!r}")
        self.warmup_epochs = warmup_epochs
        self.initial_lr = initial_lr
        self.momentum_correction = bool(momentum_correction)
        self.steps_per_epoch = steps_per_epoch
        self.verbose = verbose
        self._epoch = 0
        self._restore_momentum = None

    def on_train_begin(self, logs=None):
        if self.initial_lr is None:
            self.initial_lr = float(self.model.optimizer.learning_rate)
        if self.steps_per_epoch is None:
            self.steps_per_epoch = self.params.get("steps") or 1

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def learning_rate(self, epoch: int, batch: int) -> float:
        """Horovod's warm-up rate for ``batch`` of ``epoch``."""
        p = world.size()
        e = epoch + (batch + 1) / self.steps_per_epoch
        return self.initial_lr / p * (e * (p - 1) / self.warmup_epochs + 1)

    def on_train_batch_begin(self, batch, logs=None):
        if self._epoch + batch / self.steps_per_epoch >= self.warmup_epochs:
            return
        optimizer = self.model.optimizer
        old = float(optimizer.learning_rate)
        new = self.learning_rate(self._epoch, batch)
        _set_learning_rate(self.model, new, "LearningRateWarmup")
        if self.momentum_correction and getattr(optimizer, "momentum", 0) and old > 0:
            self._restore_momentum = optimizer.momentum
            optimizer.momentum = optimizer.momentum * new / old

    def on_train_batch_end(self, batch, logs=None):
        if self._restore_momentum is not None:
            self.model.optimizer.momentum = self._restore_momentum
            self._restore_momentum = None

    def on_epoch_end(self, epoch, logs=None):
        if self.verbose and epoch + 1 == int(np.ceil(self.warmup_epochs)) and world.rank() == 0:
            print(f"Epoch {epoch + 1}: finished the learning-rate warm-up at "
                  f"{float(self.model.optimizer.learning_rate):g}")

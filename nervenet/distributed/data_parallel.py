"""What ``Model.fit``, ``evaluate`` and ``predict`` do on the ranks of an initialized world.

Data parallelism as the one-process run, exactly: every rank holds the whole data set and the
same model; ``batch_size`` is the *global* batch. Each epoch every rank uses rank 0's shuffled
order, and within each global batch of m samples rank r takes the contiguous rows
``[m*r // p, m*(r+1) // p)`` (p ranks). Each rank computes the mean loss of its n_r rows and
its gradient g_r; one flat buffer per step carries ``n_r * g_r`` and ``n_r * loss_r``, summed
over ranks (``Allreduce``) and divided by m:

    g = (1/m) sum_r n_r g_r = d/dw (1/m) sum_i loss_i

which is the one-process gradient of the same batch, also for an uneven last batch. A global
batch with fewer rows than ranks (a short last batch) is computed whole by every rank, each
weighted n_r = m/p, so that no rank has an empty slice. Weight penalties enter every g_r and
sum back to themselves, since sum_r n_r = m. The optimizer then takes the same step on every
rank, so the weights stay equal without being sent again.

In a world of one process the helpers here return their input: fit, evaluate and predict are
unchanged.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np

from nervenet import callbacks as callbacks_module, world
from nervenet.autograd import Tensor
from nervenet.layers.base import nested_layers
from nervenet.layers.normalization import BatchNormalization, SyncBatchNormalization
from nervenet.models import data_adapter

#: callbacks that print or write files: on rank 0 only (or any callback whose class sets
#: ``rank_zero_only = True``)
RANK_ZERO_CALLBACKS = (callbacks_module.ProgbarLogger, callbacks_module.CSVLogger,
                       callbacks_module.ModelCheckpoint, callbacks_module.TensorBoard)


def part(count: int, rank: int | None = None, ranks: int | None = None) -> slice:
    """Rank ``rank``'s contiguous share of ``count`` rows: ``[count*r // p, count*(r+1) // p)``,
    or all of them when there are fewer rows than ranks (no rank gets nothing).

    Example:
        >>> [part(10, r, 3) for r in range(3)]
        [slice(0, 3, None), slice(3, 6, None), slice(6, 10, None)]
        >>> part(2, 1, 3)
        slice(0, 2, None)
    """
    rank = world.rank() if rank is None else rank
    ranks = world.size() if ranks is None else ranks
    if count < ranks:
        return slice(0, count)
    return slice(count * rank // ranks, count * (rank + 1) // ranks)


def on_this_rank(callbacks: list) -> list:
    """The callbacks this rank runs: all on rank 0, the others without the ones that print or
    write (``RANK_ZERO_CALLBACKS``, ``rank_zero_only``)."""
    if world.rank() == 0:
        return list(callbacks)
    return [c for c in callbacks if not isinstance(c, RANK_ZERO_CALLBACKS)
            and not getattr(c, "rank_zero_only", False)]


class DataParallel:
    """One data-parallel ``fit``: the model's ``data_parallel`` while it runs.

    ``Model.fit`` calls ``DataParallel.start`` (``None`` in a world of one process), then this
    object's ``train_step`` for each global batch; ``Model.train_step`` calls ``reduce`` on
    the gradients of this rank's slice.
    """

    def __init__(self, model):
        self.model = model
        self.local_count = 0   # rows of the current global batch here (m/p: all m rows)
        self.global_count = 0  # rows of the current global batch

    @classmethod
    def start(cls, model, x, y, sample_weight, batch_size) -> DataParallel | None:
        """Check that every rank has the same data and model, copy rank 0's weights to all.

        Raises:
            ValueError: the ranks differ (naming what and on which ranks), or the optimizer
                is second-order (full-batch steps are not split over ranks).
        """
        if world.size() == 1:
            return None
        check_same_on_all_ranks(describe_fit(model, x, y, sample_weight, batch_size),
                                "fit")
        if hasattr(model.optimizer, "minimize"):
            raise ValueError(f"fit: {type(model.optimizer).__name__} takes full-batch steps "
                             "in one process; data-parallel fit needs a first-order optimizer")
        for weight in model.weights:
            broadcast_into(weight.data, root=0)
        if world.rank() == 0:
            warn_about_per_rank_layers(model)
        if hasattr(model.optimizer, "average_gradients"):  # fit reduces the gradients itself
            model.optimizer.average_gradients = False
        return cls(model)

    def finish(self) -> None:
        """The fit is over: a DistributedOptimizer averages again; returns ``None`` (the
        model's ``data_parallel`` after fit)."""
        if hasattr(self.model.optimizer, "average_gradients"):
            self.model.optimizer.average_gradients = True

    def train_step(self, x, y, sample_weight=None):
        """One global batch: this rank's slice through ``model.train_step``; returns the
        global batch's loss and (when there are metrics) its predictions, gathered."""
        m, ranks = data_adapter.num_samples(x), world.size()
        rows = part(m)
        self.global_count = m
        self.local_count = rows.stop - rows.start if m >= ranks else m / ranks
        loss, predictions = self.model.train_step(
            data_adapter.take(x, rows), data_adapter.take(y, rows),
            data_adapter.take(sample_weight, rows))
        if self.model.compiled_metrics and m >= ranks:  # else every rank has them all
            counts = [part(self.global_count, r).stop - part(self.global_count, r).start
                      for r in range(world.size())]
            if isinstance(predictions, (list, tuple)):
                predictions = type(predictions)(world.allgather_rows(p, counts)
                                                for p in predictions)
            else:
                predictions = world.allgather_rows(predictions, counts)
        return loss, predictions

    def reduce(self, loss: float, gradients: list, weights: list[Tensor],
               output_losses: list | None = None):
        """The global batch's loss and gradients from this rank's: one flat buffer holding
        ``n_r * g_r`` for every weight, then ``n_r * loss_r`` and ``n_r`` times each of
        ``output_losses`` (a multi-output model's per-output losses, replaced in place by
        their global values), summed over ranks, over m.

        A gradient that is ``None`` (a weight the loss does not use) counts as zeros."""
        n = self.local_count
        extra = [loss] + [float(v) for v in output_losses or []]
        sizes = [w.data.size for w in weights]
        dtype = np.result_type(*[w.data.dtype for w in weights])
        flat = np.empty(sum(sizes) + len(extra), dtype=dtype)  # new each step (not reused)
        offset = 0
        for g, size in zip(gradients, sizes):
            segment = flat[offset:offset + size]
            if g is None:
                segment[...] = 0
            else:
                np.multiply(getattr(g, "data", g).reshape(-1), dtype.type(n), out=segment)
            offset += size
        flat[offset:] = np.array(extra) * n
        world.allreduce(flat, op="sum")
        flat /= dtype.type(self.global_count)
        reduced, offset = [], 0
        for w, size in zip(weights, sizes):
            reduced.append(flat[offset:offset + size].reshape(w.data.shape))
            offset += size
        if output_losses:
            output_losses[:] = [float(v) for v in flat[offset + 1:]]
        return float(flat[offset]), reduced


def warn_about_per_rank_layers(model) -> None:
    """Warn when layers make the data-parallel run differ from the one-process one: plain
    BatchNormalization (statistics of each rank's slice) and layers that draw random numbers
    (each rank draws for its own slice)."""
    found = []
    for layer in nested_layers(model):
        if isinstance(layer, BatchNormalization) and not isinstance(
                layer, SyncBatchNormalization):
            found.append(f"{layer.name} (BatchNormalization: use SyncBatchNormalization)")
        elif "seed" in layer.get_config():
            found.append(f"{layer.name} (random numbers drawn per rank)")
    if found:
        warnings.warn("fit on several ranks: these layers make the run differ from the "
                      f"one-process run: {', '.join(found)}", stacklevel=3)


def broadcast_into(array: np.ndarray, root: int = 0) -> None:
    """Overwrite ``array`` with rank ``root``'s (in place)."""
    out = world.broadcast(array, root=root)
    if out is not array:
        array[...] = out


def _described(data) -> str:
    if data is None:
        return "none"
    return ", ".join(f"{a.shape} {a.dtype}" for a in data_adapter.flatten(data))


def describe_fit(model, x, y, sample_weight, batch_size) -> dict[str, str]:
    """What must be the same on every rank for a data-parallel fit, as text."""
    weights = model.weights
    return {
        "x": _described(x), "y": _described(y), "sample_weight": _described(sample_weight),
        "batch_size": str(batch_size),
        "weight count": f"{len(weights)} arrays, {sum(w.data.size for w in weights)} values",
        "weights": ", ".join(f"{w.name} {w.data.shape} {w.data.dtype}" for w in weights),
        "optimizer": type(model.optimizer).__name__,
    }


def check_same_on_all_ranks(description: dict[str, str], where: str) -> None:
    """Raise the same ValueError on every rank when the ranks' descriptions differ."""
    mine = np.frombuffer(json.dumps(description).encode(), dtype=np.uint8)
    counts = np.zeros(world.size(), dtype=np.int64)
    counts[world.rank()] = mine.size
    world.allreduce(counts, op="sum")
    everyone = world.allgather_rows(mine, counts)
    ends = np.cumsum(counts)
    texts = [everyone[end - count:end].tobytes() for end, count in zip(ends, counts)]
    described = [json.loads(text) for text in texts]
    for key in described[0]:
        values = [d.get(key) for d in described]
        if any(v != values[0] for v in values):
            differ = "; ".join(f"rank {r}: {v}" for r, v in enumerate(values))
            raise ValueError(f"{where}: the ranks differ in {key} ({differ}); every rank must "
                             "load the same data and build the same model")


def combine_logs(logs: dict, count: int) -> dict:
    """Evaluation logs of this rank's ``count`` samples -> the logs of all samples: each value
    averaged over ranks weighted by their counts (exact for the loss and for mean metrics such
    as accuracy; a ratio metric such as precision becomes the weighted mean of the ranks')."""
    if world.size() == 1:
        return logs
    keys = list(logs)
    values = np.array([count] + [count * float(logs[k]) if count else 0.0 for k in keys],
                      dtype=np.float64)
    world.allreduce(values, op="sum")
    total = values[0]
    return {k: (float(v / total) if total else math.nan) for k, v in zip(keys, values[1:])}


def shard(*data):
    """This rank's contiguous block of the rows of each of ``data`` (arrays, lists or dicts
    of arrays, or ``None``), for evaluate and predict; everything in a world of one process or
    when there are fewer rows than ranks."""
    rows = part(data_adapter.num_samples(data[0]))
    out = tuple(data_adapter.take(d, rows) for d in data)
    return out if len(out) > 1 else out[0]


def gather(outputs, total: int):
    """predict's outputs of this rank's block -> the outputs of all rows (``total`` of them),
    in order, on every rank."""
    if world.size() == 1 or total < world.size():
        return outputs
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(world.allgather_rows(o) for o in outputs)
    return world.allgather_rows(outputs)

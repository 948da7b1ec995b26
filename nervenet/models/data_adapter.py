"""Checking and batching the arrays given to fit/evaluate/predict.

Everything the user passes is checked here, before any weight changes: numeric dtypes, no
NaN/Inf, the same number of samples in x, y and sample weights.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import numpy as np

from nervenet.autograd import Tensor
from nervenet.data.dataset import Dataset
from nervenet.nest import flatten, map_structure


def to_array(value, argument: str) -> np.ndarray:
    """An ndarray from an array-like or Tensor, checked to be numeric and finite."""
    if isinstance(value, Tensor):
        value = value.data
    try:
        array = np.asarray(value)
    except ValueError as error:
        raise ValueError(f"{argument}: cannot make an array: {error}") from None
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{argument}: expected numeric data, got dtype {array.dtype}")
    if array.ndim == 0:
        raise ValueError(f"{argument}: expected an array with a sample axis, got a scalar")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise ValueError(f"{argument} contains {bad} NaN or Inf value(s); clean or impute the "
                         "data before training")
    return array


def check_representable(data, dtype, argument: str) -> None:
    """Floating data must fit ``dtype`` (the model's): float64 1e39 would become inf in
    float32 without any NaN/Inf check seeing it."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        return
    limit = np.finfo(dtype).max
    for index, array in enumerate(flatten(data)):
        if array.dtype.kind == "f" and array.dtype.itemsize > dtype.itemsize and array.size and (
                np.abs(array).max() > limit):
            where = argument if not isinstance(data, (list, dict)) else f"{argument}[{index}]"
            raise ValueError(f"{where} has values of magnitude up to {np.abs(array).max():.3g}, "
                             f"beyond the largest {dtype} ({limit:.3g}) the model computes in")


def to_arrays(value, argument: str):
    """Like ``to_array`` for a single array, a list/tuple of arrays or a dict of arrays."""
    if isinstance(value, dict):
        return {k: to_array(v, f"{argument}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)) and value and isinstance(
            value[0], (np.ndarray, Tensor, list)) and not _is_nested_numbers(value):
        return [to_array(v, f"{argument}[{i}]") for i, v in enumerate(value)]
    return to_array(value, argument)


def _is_nested_numbers(value) -> bool:
    """True for a plain nested list of numbers (one array), False for a list of arrays."""
    try:
        array = np.asarray(value)
    except ValueError:
        return False
    return array.dtype.kind in "biuf" and not isinstance(value[0], (np.ndarray, Tensor))


def output_arrays(outputs):
    """A model's outputs as NumPy arrays: one, or a list (a tuple stays a tuple). Outputs on a
    device (``Model.to``) are copied to the host; on the CPU they are the arrays themselves."""
    if isinstance(outputs, Tensor):
        return outputs.numpy()
    return type(outputs)(o.numpy() for o in outputs) if isinstance(outputs, tuple) else [
        o.numpy() for o in outputs]


def num_samples(data) -> int:
    return len(flatten(data)[0])


def check_lengths(**named) -> int:
    """All given arrays must have the same number of samples; return it."""
    lengths = {}
    for name, data in named.items():
        if data is None:
            continue
        for index, array in enumerate(flatten(data)):
            label = name if not isinstance(data, (list, dict)) else f"{name}[{index}]"
            lengths[label] = len(array)
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{k} has {v}" for k, v in lengths.items())
        raise ValueError(f"x, y and sample_weight must have the same number of samples: "
                         f"{described}")
    if lengths and next(iter(lengths.values())) == 0:
        raise ValueError("cannot train or evaluate on zero samples")
    return next(iter(lengths.values()), 0)


def take(data, index):
    """Select samples ``index`` (a slice or an index array) from every array."""
    return None if data is None else map_structure(lambda array: array[index], data)


def split_validation(x, y, sample_weight, validation_split: float):
    """Hold out the LAST ``validation_split`` fraction of the samples (before shuffling, as
    Keras)."""
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")
    n = num_samples(x)
    held_out = int(math.floor(n * validation_split))
    if validation_split and held_out == 0:
        raise ValueError(f"validation_split={validation_split} of {n} samples leaves no "
                         "validation sample")
    if held_out == n:
        raise ValueError(f"validation_split={validation_split} leaves no training sample")
    cut = n - held_out
    train = (take(x, slice(0, cut)), take(y, slice(0, cut)), take(sample_weight, slice(0, cut)))
    validation = (take(x, slice(cut, n)), take(y, slice(cut, n)),
                  take(sample_weight, slice(cut, n)))
    return train, validation


def class_weights_to_sample_weights(y: np.ndarray, class_weight: dict) -> np.ndarray:
    """Per-sample weights from ``{class: weight}``; the class of a sample is its integer label,
    the argmax of a one-hot row, or its 0/1 value for binary targets."""
    if not isinstance(class_weight, dict) or not class_weight:
        raise ValueError(f"class_weight must be a non-empty dict {{class: weight}}, got "
                         f"{class_weight!r}")
    if y.ndim == 2 and y.shape[1] > 1:
        classes = y.argmax(axis=1)
    else:
        classes = np.round(y.reshape(len(y))).astype(int)
    for label, weight in class_weight.items():
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or label < 0:
            raise ValueError(f"class_weight: keys must be class indices (ints >= 0), got "
                             f"{label!r}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float, np.number)) or not (
                0 <= weight < math.inf):
            raise ValueError(f"class_weight: the weight of class {label} must be a finite "
                             f"number >= 0, got {weight!r}")
    present, index = np.unique(classes, return_inverse=True)
    unknown = sorted(set(present.tolist()) - set(class_weight))
    if unknown:
        raise ValueError(f"class_weight has no weight for class(es) {unknown}; "
                         f"it covers {sorted(class_weight)}")
    return np.array([float(class_weight[c]) for c in present.tolist()])[index.reshape(-1)]


def array_batches(x, y, sample_weight, batch_size: int, order=None, steps: int | None = None):
    """``(x, y, sample_weight)`` batches of ``batch_size`` samples (the last one smaller), in
    ``order`` (a permutation of the samples; ``None``: as stored), at most ``steps`` of them.
    Each batch gathers its rows: copying the whole shuffled set every epoch would cost more.
    No sample gives one empty batch (so that predict's output has its shape)."""
    batches = max(math.ceil(num_samples(x) / batch_size), 1)
    for step in range(batches if steps is None else min(steps, batches)):
        window = slice(step * batch_size, (step + 1) * batch_size)
        if order is not None:
            window = order[window]
        yield take(x, window), take(y, window), take(sample_weight, window)


def is_stream(data) -> bool:
    """Whether ``data`` comes in batches rather than as arrays: a Python generator or iterator,
    or a ``Dataset`` with ``map`` stages (a Dataset of arrays alone is read as arrays)."""
    if isinstance(data, Dataset):
        return any(stage[0] == "map" for stage in data._stages)
    return isinstance(data, Iterator)


class Stream:
    """Batches from a generator, an iterator or a Dataset with ``map`` stages, as Keras reads
    them: each element is ``(x, y)``, ``(x, y, sample_weight)``, ``(x,)`` or ``x`` alone.

    A Dataset is iterated afresh every epoch; a generator goes on where the last epoch
    stopped (give ``steps_per_epoch`` for one that never ends).

    Args:
        source: the generator, iterator or batched Dataset.
        argument: its name in messages (``"x"``, ``"validation_data"``).
    """

    def __init__(self, source, argument: str):
        if isinstance(source, Dataset) and source.batch_size is None:
            raise ValueError(f"{argument}: the Dataset must be batched: call "
                             ".batch(batch_size) (as Keras needs a batched tf.data.Dataset)")
        self.source = source
        self.argument = argument
        self._iterator = None if isinstance(source, Dataset) else source

    @property
    def steps(self) -> int | None:
        """Batches in one pass (``None`` for a generator: not known)."""
        return len(self.source) if self._iterator is None else None

    def batches(self, steps: int | None = None):
        """The next pass (a Dataset) or the next ``steps`` batches (a generator, all that are
        left without ``steps``), each as ``(x, y, sample_weight)``."""
        iterator = iter(self.source) if self._iterator is None else self._iterator
        for element in itertools.islice(iterator, steps):
            if isinstance(element, tuple) and 1 <= len(element) <= 3:
                yield tuple(element) + (None,) * (3 - len(element))
            else:
                yield element, None, None


def unpack_dataset(dataset, y, batch_size, shuffle):
    """``fit(Dataset)``: the arrays, batch size and shuffling a ``nervenet.data.Dataset``
    describes. Returns ``(x, y, sample_weight, batch_size, shuffle)``."""
    if y is not None:
        raise ValueError("fit: when x is a Dataset, y must be None (the Dataset holds the "
                         "targets: Dataset.from_tensor_slices((x, y)))")
    structure = dataset.arrays()
    if not isinstance(structure, tuple) or len(structure) not in (2, 3):
        raise ValueError("fit: a Dataset must hold (x, y) or (x, y, sample_weight), got "
                         f"{type(structure).__name__}")
    x, y, *weights = structure
    shuffled = any(stage[0] == "shuffle" for stage in dataset._stages)
    return (x, y, weights[0] if weights else None, dataset.batch_size or batch_size,
            shuffle and shuffled)

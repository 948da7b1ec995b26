"""Keras-like input pipelines: ``Dataset.from_tensor_slices((x, y)).shuffle(n, seed).batch(32)``.

A ``Dataset`` is a sequence of *elements*; each transformation returns a new Dataset and
leaves the old one as it was. Everything is index arithmetic over in-memory NumPy arrays: the
arrays are never copied until a batch is taken.

* ``from_tensor_slices(data)``: one element per sample (row) of an array, or of a tuple or
  dict of arrays of the same length;
* ``shuffle(buffer_size, seed=None)``: as ``tf.data``: a buffer of ``buffer_size`` elements is
  filled, each output is drawn uniformly from it and replaced by the next element; a buffer at
  least as long as the data gives a uniform permutation. Reshuffled on every pass;
* ``batch(batch_size, drop_remainder=False)``: stack consecutive elements;
* ``map(fn)``: apply ``fn`` to each element (each batch, after ``batch``).

``fit`` needs the data as arrays or as batches: ``arrays()`` returns the samples in their
original order, ``batch_size`` the batch size, and iterating yields the batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

from nervenet import backend
from nervenet.checks import check_int
from nervenet.nest import flatten, map_structure


def _take(structure, index):
    return map_structure(lambda array: array[index], structure)


def _as_structure(data):
    if isinstance(data, tuple) or (isinstance(data, list) and data and all(
            isinstance(item, (np.ndarray, tuple, dict)) for item in data)):
        return tuple(_as_structure(item) for item in data)
    if isinstance(data, dict):
        return {key: _as_structure(value) for key, value in data.items()}
    array = np.asarray(getattr(data, "data", data))  # Tensors give their array
    if array.ndim == 0:
        raise ValueError("Dataset.from_tensor_slices: every array needs a sample axis, got a "
                         "scalar")
    return array


class Dataset:
    """An in-memory input pipeline (build it with ``Dataset.from_tensor_slices``).

    Example:
        >>> x, y = np.arange(10.0).reshape(5, 2), np.arange(5)
        >>> data = Dataset.from_tensor_slices((x, y)).shuffle(5, seed=0).batch(2)
        >>> [len(batch_y) for batch_x, batch_y in data]
        [2, 2, 1]
        >>> sorted(np.concatenate([batch_y for _, batch_y in data]).tolist())
        [0, 1, 2, 3, 4]
        >>> data.arrays()[1].tolist()   # the samples in their original order
        [0, 1, 2, 3, 4]
    """

    def __init__(self, structure, stages: tuple = ()):
        self._structure = structure
        self._stages = stages
        self._passes = 0  # how many times iteration started (reshuffles differ between passes)
        lengths = {len(leaf) for leaf in flatten(structure)}
        if len(lengths) != 1:
            raise ValueError(f"Dataset: all arrays must have the same number of samples, got "
                             f"{sorted(len(leaf) for leaf in flatten(structure))}")
        self._n = lengths.pop()

    @classmethod
    def from_tensor_slices(cls, data) -> Dataset:
        """One element per sample of ``data``: an array, a tuple ``(x, y)`` or
        ``(x, y, sample_weight)``, or a dict of arrays, all with the same first dimension."""
        return cls(_as_structure(data))

    def _with(self, stage: tuple) -> Dataset:
        return Dataset(self._structure, self._stages + (stage,))

    def shuffle(self, buffer_size: int, seed=None,
                reshuffle_each_iteration: bool = True) -> Dataset:
        """Shuffle with a buffer of ``buffer_size`` elements (see the module docstring).

        Args:
            buffer_size: elements held in the buffer; ``>= len`` gives a uniform shuffle.
            seed: an int or Generator (default ``None``: nervenet's global generator).
            reshuffle_each_iteration: a new order on every pass (default ``True``).
        """
        check_int("Dataset.shuffle", "buffer_size", buffer_size, low=1)
        if self._batched():
            raise ValueError("Dataset.shuffle: shuffle before batch (shuffling whole batches "
                             "is not supported)")
        seed = backend.make_rng(seed).integers(2**63)  # fixed now: each pass derives from it
        return self._with(("shuffle", int(buffer_size), int(seed), reshuffle_each_iteration))

    def batch(self, batch_size: int, drop_remainder: bool = False) -> Dataset:
        """Group consecutive elements into batches of ``batch_size`` (the last one smaller
        unless ``drop_remainder``)."""
        check_int("Dataset.batch", "batch_size", batch_size, low=1)
        if self._batched():
            raise ValueError("Dataset.batch: the dataset is already batched")
        return self._with(("batch", int(batch_size), bool(drop_remainder)))

    def map(self, fn: Callable) -> Dataset:
        """Apply ``fn`` to every element (every batch once batched); a tuple element is passed
        as separate arguments, as ``tf.data`` does."""
        if not callable(fn):
            raise TypeError(f"Dataset.map: fn must be callable, got {type(fn).__name__}")
        return self._with(("map", fn))

    # ----------------------------------------------------------------------- reading
    def _batched(self) -> bool:
        return any(stage[0] == "batch" for stage in self._stages)

    @property
    def batch_size(self) -> int | None:
        """The batch size, or ``None`` for an unbatched dataset."""
        for stage in self._stages:
            if stage[0] == "batch":
                return stage[1]
        return None

    @property
    def cardinality(self) -> int:
        """The number of samples of the underlying arrays."""
        return self._n

    def __len__(self) -> int:
        """The number of elements one pass yields (batches once batched)."""
        for stage in self._stages:
            if stage[0] == "batch":
                return self._n // stage[1] if stage[2] else math.ceil(self._n / stage[1])
        return self._n

    def arrays(self):
        """The underlying arrays in their original order: ``x``, ``(x, y)`` or a dict, as
        given to ``from_tensor_slices`` (``map`` is not applied)."""
        return self._structure

    def _order(self, pass_index: int) -> np.ndarray:
        order = np.arange(self._n)
        for stage in self._stages:
            if stage[0] == "shuffle":
                _, buffer_size, seed, reshuffle = stage
                rng = np.random.default_rng([seed, pass_index if reshuffle else 0])
                order = _buffer_shuffle(order, buffer_size, rng)
        return order

    def __iter__(self) -> Iterator:
        order = self._order(self._passes)
        self._passes += 1
        batch = next((stage for stage in self._stages if stage[0] == "batch"), None)
        maps_before = [s[1] for s in self._stages[:self._stages.index(batch)]
                       if s[0] == "map"] if batch else [s[1] for s in self._stages
                                                        if s[0] == "map"]
        maps_after = [s[1] for s in self._stages[self._stages.index(batch) + 1:]
                      if s[0] == "map"] if batch else []
        if batch is None:
            for index in order:
                yield _apply(maps_before, _take(self._structure, index))
            return
        size, drop = batch[1], batch[2]
        for start in range(0, self._n, size):
            window = order[start:start + size]
            if drop and len(window) < size:
                break
            if maps_before:
                elements = [_apply(maps_before, _take(self._structure, i)) for i in window]
                item = _stack(elements)
            else:
                item = _take(self._structure, window)
            yield _apply(maps_after, item)

    def __repr__(self) -> str:
        stages = "".join(f".{stage[0]}({stage[1] if stage[0] != 'map' else '...'})"
                         for stage in self._stages)
        return f"<Dataset of {self._n} samples{stages}>"


def _apply(functions, element):
    for fn in functions:
        element = fn(*element) if isinstance(element, tuple) else fn(element)
    return element


def _stack(elements: list):
    first = elements[0]
    if isinstance(first, tuple):
        return tuple(_stack([e[i] for e in elements]) for i in range(len(first)))
    if isinstance(first, dict):
        return {key: _stack([e[key] for e in elements]) for key in first}
    return np.stack([np.asarray(e) for e in elements])


def _buffer_shuffle(order: np.ndarray, buffer_size: int, rng: np.random.Generator) -> np.ndarray:
    """tf.data's shuffle: emit a uniformly chosen element of a sliding buffer."""
    if buffer_size >= len(order):
        return order[rng.permutation(len(order))]
    buffer = list(order[:buffer_size])
    out = np.empty_like(order)
    draws = rng.random(len(order))
    for position in range(len(order)):
        slot = int(draws[position] * len(buffer))  # uniform over the buffer's current size
        out[position] = buffer[slot]
        following = position + buffer_size
        if following < len(order):
            buffer[slot] = order[following]
        else:
            buffer[slot] = buffer[-1]
            buffer.pop()
    return out

"""The data of fit, evaluate and predict: checked, standardized, split, weighted and batched.

``DataHandler`` is the one object that takes what the user passes (arrays, lists or dicts of
arrays, a ``nervenet.data.Dataset``, a generator of batches) and gives the batches of each
pass, as Keras's data handler does. Everything is checked here before any weight changes:
numeric dtypes, no NaN/Inf, values the model's dtype can hold, the same number of samples in
x, y and sample weights, and one sample run through the model (which builds it).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import numpy as np

from nervenet import kernels
from nervenet.autograd import Tensor
from nervenet.checks import check_int
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
    if array.dtype.kind == "f" and not kernels.all_finite(array):
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


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``, checked by ``nervenet.checks.check_int`` (``name``
    may start with its owner: ``"evaluate: batch_size"``)."""
    owner, _, argument = name.rpartition(": ")
    return check_int(owner or "fit", argument, value, minimum)


def check_optional_steps(value, name: str) -> int | None:
    """``None`` (no limit) or a positive int."""
    return None if value is None else check_positive_int(value, name)


def min_steps(limit: int | None, available: int | None) -> int | None:
    """The batches one pass runs: ``limit`` (steps_per_epoch, steps) capped by what the data
    has (``None``: unknown, a generator)."""
    if limit is None or available is None:
        return available if limit is None else limit
    return min(limit, available)


def refuse_with_stream(method: str, full_batch: bool = False, **given) -> None:
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


def standardize_x(model, x, argument: str):
    """``x`` as arrays the model computes with, in the order of its inputs."""
    x = to_arrays(x, argument)
    check_representable(x, model.dtype, argument)
    return model.standardize_inputs(x)


def standardize_y(y, names: list[str], argument: str):
    """One target array per output ``names`` (a dict is matched by output name); a single
    array for a model with one output."""
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
        return to_array(y, argument)
    if not isinstance(y, (list, tuple)) or len(y) != len(names):
        raise ValueError(f"{argument}: the model has {len(names)} outputs {names}; give one "
                         "target array per output (a list, tuple or dict by output name)")
    return [to_array(v, f"{argument}[{i}]") for i, v in enumerate(y)]


def standardize(model, x, y, sample_weight, prefix: str = ""):
    """Check and convert fit/evaluate data: arrays, inputs in the model's order (a dict is
    matched by input name), one target array per output (likewise). A subclassed model that
    never ran shows its outputs here (``model._settle_outputs``)."""
    x = standardize_x(model, x, f"{prefix}x")
    model._settle_outputs(x)
    y = standardize_y(y, model.output_names, f"{prefix}y")
    check_representable(y, model.dtype, f"{prefix}y")
    if sample_weight is not None:
        sample_weight = to_array(sample_weight, f"{prefix}sample_weight")
    check_lengths(x=x, y=y, sample_weight=sample_weight)
    return x, y, sample_weight


def _same(*data):
    return data


class DataHandler:
    """The data of one ``fit``, ``evaluate`` or ``predict``, and the batches of each pass.

    Arrays are standardized and checked once, here (see ``standardize``), then one sample runs
    through the model so that bad data fails before any weight changes; ``fit`` holds out its
    validation part and turns ``class_weight`` into sample weights. A generator or a Dataset
    with ``map`` stages (``Stream``) is checked batch by batch as it comes, its first batch of
    each pass also against the model. ``fit`` reads a Dataset of arrays as the arrays, with
    the Dataset's batch size and shuffling.

    Args:
        model: the model the data is for (a ``Model``).
        x, y, sample_weight: the data as given to fit/evaluate/predict.
        where: ``"fit"``, ``"evaluate"``, ``"predict"`` or ``"validation_data"`` (what the
            data must hold, and the name in messages).
        batch_size: samples per batch (``None``: all in one; a second-order optimizer's
            ``full_batch`` too).
        steps: at most this many batches per pass (``None``: all).
        shuffle: a new order every pass (``batches(rng)``; default ``False``).
        class_weight, validation_split, validation_data, validation_steps: fit's (default
            none).
        full_batch: one batch of the whole set (second-order optimizers; default ``False``).
        shard: ``shard(x, y, sample_weight)`` gives this rank's rows for evaluate, predict and
            validation (``data_parallel.shard``; default: all rows).
        agree: ``agree(order)`` makes every rank use the same shuffled order
            (``world.broadcast``; default: the order as drawn).

    Attributes:
        x, y, sample_weight: the standardized arrays (``None`` for a stream).
        samples: the number of samples before sharding (``None`` for a stream).
        steps: batches per pass (``None``: a generator, not known).
        validation: fit's validation data as a ``DataHandler``, or ``None``.
        full_batch: whether fit takes one whole-set step per epoch.
    """

    def __init__(self, model, x=None, y=None, sample_weight=None, *, where: str = "fit",
                 batch_size: int | None = 32, steps: int | None = None, shuffle: bool = False,
                 class_weight=None, validation_split: float = 0.0, validation_data=None,
                 validation_steps: int | None = None, full_batch: bool = False,
                 shard=_same, agree=lambda order: order):
        self.model, self.where, self.agree, self.full_batch = model, where, agree, full_batch
        self.x = self.y = self.sample_weight = None
        self.validation = None
        if where == "fit" and isinstance(x, Dataset) and not is_stream(x):
            x, y, sample_weight, batch_size, shuffle = unpack_dataset(x, y, batch_size, shuffle)
        self.batch_size, self.shuffle, self.step_limit = batch_size, shuffle, steps
        if is_stream(x) or (where != "fit" and isinstance(x, Dataset)):
            refuse_with_stream(where, y=y, sample_weight=sample_weight,
                               class_weight=class_weight, validation_split=validation_split,
                               full_batch=full_batch)
            self.stream = Stream(x, "x" if where != "validation_data" else where)
            self.samples, self.steps = None, min_steps(steps, self.stream.steps)
        else:
            self.stream = None
            self._take_arrays(x, y, sample_weight, class_weight, validation_split,
                              validation_data)
            self.samples = num_samples(self.x)
            self.x, self.y, self.sample_weight = (
                shard(self.x, self.y, self.sample_weight) if where != "fit" else
                (self.x, self.y, self.sample_weight))  # this rank's rows
            n = num_samples(self.x)
            if full_batch or batch_size is None:
                self.batch_size = max(n, 1)
            else:
                self.batch_size = check_positive_int(batch_size, "batch_size")
            self.steps = min_steps(steps, max(math.ceil(n / self.batch_size), 1))
        if self.validation is not None:  # the held-out part of validation_split
            self.validation = self._validation(self.validation, validation_steps, shard)
        elif validation_data is not None:
            self.validation = self._validation(validation_data, validation_steps, shard)

    def _take_arrays(self, x, y, sample_weight, class_weight, validation_split,
                     validation_data) -> None:
        """Standardize the arrays; fit also holds out its validation part and weights the
        classes. Then one sample through the model."""
        where, model = self.where, self.model
        if where == "predict":
            self.x = standardize_x(model, x, "x")
            return
        if x is None or y is None:
            raise ValueError(f"{where}: x and y are required")
        x, y, sample_weight = standardize(model, x, y, sample_weight,
                                          "validation_data " if where == "validation_data"
                                          else "")
        if where == "fit" and validation_data is None and validation_split:
            (x, y, sample_weight), held_out = split_validation(x, y, sample_weight,
                                                               validation_split)
            self.validation = held_out
        if class_weight is not None:
            if isinstance(y, list):
                raise ValueError("fit: class_weight is for single-output models; give "
                                 "sample_weight instead")
            weights = class_weights_to_sample_weights(y, class_weight)
            sample_weight = weights if sample_weight is None else sample_weight * weights
        model._check_data_against_model(x, y, where)
        self.x, self.y, self.sample_weight = x, y, sample_weight

    def _validation(self, validation_data, steps: int | None, shard) -> DataHandler:
        """fit's validation data (checked now, as the training data): a generator or Dataset,
        or a tuple of arrays."""
        if is_stream(validation_data) or isinstance(validation_data, Dataset):
            return DataHandler(self.model, validation_data, where="validation_data",
                               steps=steps)
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be a tuple (x_val, y_val) or "
                             "(x_val, y_val, sample_weight_val)")
        return DataHandler(self.model, *validation_data, where="validation_data",
                           batch_size=self.batch_size, steps=steps, shard=shard)

    def batches(self, rng: np.random.Generator | None = None):
        """The batches of one pass, each ``(x, y, sample_weight)`` (``y`` and
        ``sample_weight`` ``None`` for predict): shuffled with ``rng`` when ``shuffle``."""
        if self.stream is not None:
            return self._stream_batches()
        order = None
        if self.shuffle and rng is not None:
            order = self.agree(rng.permutation(num_samples(self.x)))
        return array_batches(self.x, self.y, self.sample_weight, self.batch_size, order,
                             self.steps)

    def _stream_batches(self):
        """The stream's batches, each checked and converted as arrays are; the first of each
        pass is also checked against the model (which it builds)."""
        where, argument = self.where, self.stream.argument
        for index, (x, y, sample_weight) in enumerate(self.stream.batches(self.step_limit)):
            if where == "predict":
                yield standardize_x(self.model, x, f"{argument} batch {index}"), None, None
                continue
            if y is None:
                raise ValueError(f"{where}: the batches must be (x, y) or (x, y, "
                                 f"sample_weight) tuples; batch {index} has no targets")
            x, y, sample_weight = standardize(self.model, x, y, sample_weight,
                                              f"{argument} batch {index}: ")
            if index == 0:
                self.model._check_data_against_model(x, y, where)
            yield x, y, sample_weight

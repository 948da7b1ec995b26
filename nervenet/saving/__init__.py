"""Saving and loading models safely: no pickle, nothing in a file is ever imported or called.

A model file (``model.save("m.nervenet")``) is a zip of three members:

* ``config.json``: the architecture (``{"class_name", "config"}`` of the model, layers nested
  inside) and the compile settings (optimizer, losses, loss weights, metrics);
* ``weights.safetensors``: every weight by path (``dense/kernel``, ``block/dense/bias``) and the
  optimizer state (``optimizer/iterations``, ``optimizer/0/m``, ...);
* ``metadata.json``: the format and its version, library versions and date (and, in a
  training checkpoint, the training state: epoch, step, random generator states; and
  ``model_metadata``, the model's own ``metadata`` dict, e.g. the class names the CLI stores).

The zip's comment holds the SHA-256 of the rest of the file, checked before anything else is
read: a truncated file and a corrupted one are rejected with different messages.

``load_model`` resolves every class name through a registry (layers, activations, initializers,
losses, metrics, optimizers): a name that is not registered is rejected, so a file can only
rebuild what the library, or you with ``register_serializable``, put there. Saves are atomic
(see ``archive.py``). ``save_weights`` writes one safetensors file with the weights only.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import math
import os
import platform
import struct
import warnings
from collections.abc import Mapping

import numpy as np

from nervenet import backend
from nervenet._version import __version__
from nervenet.autograd import no_grad
from nervenet.layers.base import (
    Layer,
    deserialize,
    nested_layers,
    registry as layer_registry,
    serialize,
)
from nervenet.optimizers.base import check_finite_state
from nervenet.saving import safetensors
from nervenet.saving.archive import (
    MEMBER_LIMITS,
    ModelArchive,
    ModelFormatError,
    atomic_write,
    open_regular_file,
    region_reader,
    remove_stale_temporaries,
    write_zip,
)
from nervenet.saving.guard import load_budget
from nervenet.saving.safetensors import SafetensorsError

__all__ = ["ModelFormatError", "SafetensorsError", "atomic_write", "load_model",
           "load_weights", "register_serializable", "remove_stale_temporaries", "safetensors",
           "save_model", "save_weights"]

FORMAT = "nervenet.model"
FORMAT_VERSION = 1
_OPTIMIZER_PREFIX = "optimizer/"
#: the largest safetensors header a model or weights file may have: about 80 bytes per tensor,
#: so room for over ten thousand tensors, while a header bomb stays small and fast to reject
MAX_HEADER_BYTES = 2**20
#: the most values the zeros fed to a model to build it on load may have
_MAX_BUILD_VALUES = 2**24
#: weight values a model may build beyond those its file holds: the scalars that files written
#: before they existed lack (``Layer.older_file_defaults``), a few bytes each
_OLDER_FILE_SLACK = 4096


def register_serializable(package: str = "Custom", name: str | None = None):
    """Class decorator: register a custom Layer (or Model) so saved models can name it, as
    ``keras.saving.register_keras_serializable``. It is registered as ``"package>Name"``.

    The class needs ``get_config()`` returning its constructor arguments (JSON values).

    Example:
        >>> import nervenet
        >>> @register_serializable(package="Docs")
        ... class Double(nervenet.layers.Layer):
        ...     def call(self, inputs):
        ...         return inputs * 2.0
        >>> nervenet.layers.registry.lookup("Docs>Double") is Double
        True
    """
    if not isinstance(package, str) or not package or ">" in package:
        raise ValueError(f"register_serializable: package must be a non-empty string without "
                         f"'>', got {package!r}")

    def decorate(cls):
        if not (isinstance(cls, type) and issubclass(cls, Layer)):
            raise TypeError(f"register_serializable: expected a Layer or Model subclass, got "
                            f"{cls!r}")
        layer_registry.add(f"{package}>{name or cls.__name__}", cls)
        return cls

    return decorate


# ------------------------------------------------------------------------------ saving
def _model_weights(model) -> dict:
    if not model.built or not model.weights and not model.layers:
        raise ValueError(f"model {model.name!r} has no weights yet: call it on a batch (or "
                         "fit it) before saving")
    return model.named_weights()


def _optimizer_state(model, paths: dict) -> tuple[dict, list[str]]:
    """The optimizer state as ``{"optimizer/<key>": array}`` and, for each optimizer variable
    index, the path of the weight it belongs to."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "get_state"):
        return {}, []
    path_of = {id(weight): path for path, weight in paths.items()}
    # NOTE: the optimizer keys its state by the order in which it first saw each variable.
    tracked = getattr(optimizer, "tracked_variables", [])
    order = []
    for variable in tracked:
        if id(variable) not in path_of:
            raise ValueError(f"the optimizer of {model.name!r} updates a variable "
                             f"({variable.name!r}) that is not a weight of the model")
        order.append(path_of[id(variable)])
    state = {_OPTIMIZER_PREFIX + key: np.asarray(value)
             for key, value in optimizer.get_state().items()}
    return state, order


def _metadata(training_state: dict | None = None, model_metadata: dict | None = None
              ) -> bytes:
    metadata = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "nervenet_version": __version__,
        "numpy_version": np.__version__, "python_version": platform.python_version(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    if training_state is not None:
        metadata["training_state"] = training_state
    if model_metadata:
        metadata["model_metadata"] = model_metadata
    return json.dumps(metadata, indent=1).encode("utf-8")


def save_model(model, filepath, overwrite: bool = True, training_state: dict | None = None
               ) -> None:
    """Write ``model`` (architecture, weights, compile settings, optimizer state) to
    ``filepath`` atomically (suffix ``.nervenet`` by convention).

    Args:
        model: a built model.
        filepath: the target file.
        overwrite: replace an existing file (default ``True``).
        training_state: a JSON-serialisable dict stored in ``metadata.json`` (default
            ``None``); ``callbacks.BackupAndRestore`` keeps the epoch and the random
            generators' states there, so that one atomic file holds the whole checkpoint.

    Raises:
        NotImplementedError: a subclassed model without ``get_config``.
        ValueError: a layer class that is not registered, an unbuilt model.
    """
    architecture = serialize(model)
    paths = _model_weights(model)
    tensors = {path: backend.to_numpy(weight.data) for path, weight in paths.items()}
    state, order = _optimizer_state(model, paths)
    clash = sorted(set(state) & set(tensors))
    if clash:
        raise ValueError(f"model {model.name!r}: the weights {clash[:3]} would be saved under "
                         "the optimizer state's names; rename the layer")
    tensors.update(state)
    compile_settings = model.get_compile_config()
    if compile_settings is not None:
        compile_settings["optimizer_variables"] = order
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": architecture,
              "build_input_shape": _json_shape(model.input_shape), "compile": compile_settings}
    members = {"config.json": json.dumps(config, indent=1).encode("utf-8"),
               "weights.safetensors": safetensors.dumps(tensors),
               "metadata.json": _metadata(training_state, getattr(model, "metadata", None))}
    atomic_write(filepath, lambda handle: write_zip(handle, members), overwrite=overwrite)


def _json_shape(shape):
    if shape is None:
        return None
    if isinstance(shape, list):
        return [_json_shape(s) for s in shape]
    return list(shape)


#: file name endings Keras users write, which name other formats than the file nervenet writes
_KERAS_SUFFIXES = (".h5", ".hdf5", ".keras", ".ckpt", ".tf")


def warn_foreign_format(filepath, what: str, save_format: str | None = None) -> None:
    """Warn that ``filepath`` (a Keras-style name, or ``save_format``) gets nervenet's own
    format: Keras users' file names are accepted, and the same name loads it back."""
    name = os.fspath(filepath)
    asked = f"save_format={save_format!r}" if save_format is not None else next(
        (f"the suffix {suffix!r}" for suffix in _KERAS_SUFFIXES if name.endswith(suffix)), None)
    if asked is not None:
        warnings.warn(f"{name!r}: {asked} names another library's format; nervenet writes "
                      f"its own {what} file there whatever the name (load it back from the "
                      "same path)", UserWarning, stacklevel=3)


def save_weights(model, filepath, overwrite: bool = True) -> None:
    """Write the model's weights to one safetensors file, atomically, keyed by path
    (``dense/kernel``). The conventional name ends in ``.weights.safetensors``; Keras-style
    names (``"my_weights"``, ``"my_weights.h5"``) are accepted (the latter with a warning:
    the file is safetensors whatever the name)."""
    warn_foreign_format(filepath, "safetensors weights")
    tensors = {path: backend.to_numpy(w.data) for path, w in _model_weights(model).items()}
    data = safetensors.dumps(tensors, metadata={"format": "nervenet.weights"})
    # the SHA-256 of the tensor bytes, so that a changed value is detected on load
    start = 8 + struct.unpack("<Q", data[:8])[0]
    data = safetensors.dumps(tensors, metadata={
        "format": "nervenet.weights", "sha256": hashlib.sha256(data[start:]).hexdigest()})
    atomic_write(filepath, lambda handle: handle.write(data), overwrite=overwrite)


# ----------------------------------------------------------------------------- loading
def _tensor_file(readinto, size: int, where: str) -> safetensors.TensorFile:
    try:
        return safetensors.TensorFile(readinto, size, max_header_bytes=MAX_HEADER_BYTES)
    except safetensors.SafetensorsError as error:
        raise ModelFormatError(f"{where}: {error}") from None


@contextlib.contextmanager
def _weights_file(where: str):
    """The tensors of a safetensors weights file (a ``TensorFile``), after the format's checks.

    A nervenet file (``save_weights``: metadata ``format`` ``"nervenet.weights"``) must also
    carry the SHA-256 of its tensor data, and match it (computed in chunks: the file is never
    held in memory whole). Any other safetensors file (written by the ``safetensors`` library
    or another framework, which store no checksum) is read as the standard format: its
    structure is checked, its names are matched like ours.
    """
    handle, size = open_regular_file(where, MEMBER_LIMITS["weights.safetensors"])
    with handle:
        tensors = _tensor_file(region_reader(handle, 0, size, where), size, where)
        metadata = tensors.metadata
        if metadata.get("format") != "nervenet.weights":
            yield tensors                   # a standard safetensors file: no checksum to check
            return
        if "sha256" not in metadata:
            raise ModelFormatError(f"{where}: the weights file has no sha256 checksum")
        digest, chunk = hashlib.sha256(), bytearray(2**20)
        for offset in range(0, size - tensors.data_start, len(chunk)):
            part = memoryview(chunk)[:min(len(chunk), size - tensors.data_start - offset)]
            tensors.read_data(offset, part)
            digest.update(part)
        if digest.hexdigest() != metadata["sha256"]:
            raise ModelFormatError(f"{where}: the file is corrupted: the SHA-256 of its tensor "
                                   "data does not match the checksum in its header")
        yield tensors


def _match_by_structure(model, tensors, where: str):
    """``tensors`` under the model's weight paths when the names differ (a fresh copy of a
    model has new layer names): as Keras 3, the n-th weight of the file goes to the n-th
    weight of the model (layer order, then weight order), and each pair must agree in weight
    name (``kernel``) and shape, else the first layer that does not is named."""
    paths = model.named_weights()
    names = list(tensors)
    if not paths or set(paths) == set(names):  # (no weights yet: _checked_paths says so)
        return tensors
    missing = [p for p in paths if p not in tensors][:3]
    unexpected = [n for n in names if n not in paths][:3]
    mismatch = (f"{where}: the weights do not match model {model.name!r} by name (missing "
                f"{missing}, unexpected {unexpected}, ...) nor by structure: ")
    for index, (path, weight) in enumerate(paths.items()):
        layer = path.rpartition("/")[0] or model.name
        if index >= len(names):
            raise ModelFormatError(
                mismatch + f"the file has {len(names)} weights, and layer {layer!r} (weight "
                f"{path!r}, number {index + 1}) has none there")
        shape = _shape_and_dtype(tensors, names[index])[0]
        if names[index].rpartition("/")[2] != path.rpartition("/")[2] or shape != weight.shape:
            raise ModelFormatError(
                mismatch + f"the first mismatch is layer {layer!r}: its weight {path!r} of "
                f"shape {weight.shape} meets the file's {names[index]!r} of shape {shape}")
    if len(names) > len(paths):
        raise ModelFormatError(
            mismatch + f"the file has {len(names) - len(paths)} weights more than the model, "
            f"from {names[len(paths)]!r} on")
    return _Selection(tensors, dict(zip(paths, names)))


def _assign(model, tensors, where: str, staged: bool = True, by_structure: bool = False
            ) -> None:
    """Copy ``tensors`` (a mapping, or a ``TensorFile`` read on demand) into the model's
    weights by path: every name must match, every shape must agree, and all are checked
    before any weight changes.

    With ``staged`` (default) every value is read (and converted) before the first weight is
    written, so that a failure leaves the model as it was; without it the values are read
    straight into the weights (a model being loaded, which nobody else holds yet).
    ``by_structure`` (load_weights) matches by layer and weight order when the names differ
    (``_match_by_structure``); ``load_model`` rebuilds the very names it saved."""
    if by_structure:
        tensors = _match_by_structure(model, tensors, where)
    if not staged and isinstance(tensors, (safetensors.TensorFile, _Selection)):
        for path, weight in _checked_paths(model, tensors, where).items():
            tensors.read(path, out=weight.data)
        return
    for weight, value in stage_weights(model, tensors, where):
        backend.copy_into(weight.data, value)


def stage_weights(model, tensors, where: str) -> list[tuple]:
    """``[(weight, value)]`` for every weight of ``model``, read from ``tensors`` and checked
    (names, shapes, floating dtype), nothing written yet."""
    return [(weight, _value(tensors, path, weight.data.dtype))
            for path, weight in _checked_paths(model, tensors, where).items()]


def _checked_paths(model, tensors, where: str) -> dict:
    paths = model.named_weights()
    if not paths and not model.built:
        raise ValueError(f"model {model.name!r} has no weights yet: build it (call it on a "
                         "batch) before loading weights")
    older = _older_file_defaults(model)
    missing = [p for p in paths if p not in tensors and p not in older]
    unexpected = [n for n in tensors if n not in paths]
    if missing or unexpected:
        raise ModelFormatError(f"{where}: the weights do not match model {model.name!r}: "
                               f"missing {missing}, unexpected {unexpected}")
    paths = {p: w for p, w in paths.items() if p in tensors}
    for path, weight in paths.items():
        shape, dtype = _shape_and_dtype(tensors, path)
        if shape != weight.shape:
            raise ModelFormatError(f"{where}: weight {path!r} has shape {shape} in the "
                                   f"file, the model needs {weight.shape}")
        if dtype.kind != "f":
            raise ModelFormatError(f"{where}: weight {path!r} has dtype {dtype}; "
                                   "expected floating-point values")
    return paths


def _older_file_defaults(model) -> dict[str, float]:
    """``{path: value}`` for the weights that files written before they existed lack
    (``Layer.older_file_defaults``): such a file loads, the weight taking that value."""
    paths = {id(weight): path for path, weight in model.named_weights().items()}
    found = {}
    for layer in [model, *nested_layers(model)]:
        for key, value in type(layer).older_file_defaults.items():
            weight = layer._weights.get(key)
            if weight is not None and id(weight) in paths:
                found[paths[id(weight)]] = value
    return found


def _shape_and_dtype(tensors, name: str) -> tuple[tuple, np.dtype]:
    if isinstance(tensors, (safetensors.TensorFile, _Selection)):
        return tensors.shape(name), tensors.dtype(name)
    return tensors[name].shape, tensors[name].dtype


def _value(tensors, name: str, dtype) -> np.ndarray:
    if isinstance(tensors, (safetensors.TensorFile, _Selection)):
        return tensors.read(name, out=np.empty(tensors.shape(name), dtype))
    return tensors[name]


def load_weights(model, filepath) -> None:
    """Load weights written by ``save_weights`` (or the weights of a model file, or any
    standard ``.safetensors`` file with the model's weight paths as names) into ``model``, by
    name, with shape checks, all or nothing."""
    where = os.fspath(filepath)
    if where.endswith(".safetensors") or not _is_zip(where):
        with _weights_file(where) as tensors:
            _assign(model, tensors, where, by_structure=True)
        return
    with open_model_file(where) as (_, _, tensors):
        _assign(model, split_tensors(tensors, model.named_weights())[0], where,
                by_structure=True)


def _is_zip(path: str) -> bool:
    """Whether ``path`` starts as a zip (a model file) rather than a weights file: what
    decides how a name without the conventional suffix (``"my_weights"``) is read (anything
    but a regular file goes to the weights reader, which refuses it)."""
    if not os.path.isfile(path):
        return False
    with open(path, "rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


def _load_json(data: bytes, member: str, where: str) -> dict:
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ModelFormatError(f"{where}: {member} is not valid JSON: {error}") from None
    except RecursionError:
        raise ModelFormatError(f"{where}: {member} nests too deeply") from None
    if not isinstance(value, dict):
        raise ModelFormatError(f"{where}: {member} must hold a JSON object")
    return value


def _check_format(value: dict, member: str, where: str) -> None:
    if value.get("format") != FORMAT:
        raise ModelFormatError(f"{where}: {member} does not describe a {FORMAT} file (its "
                               f"format is {value.get('format')!r})")
    version = value.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        newer = type(version) is int and version > FORMAT_VERSION
        raise ModelFormatError(f"{where}: {member} has format version {version!r}; this "
                               f"nervenet reads version {FORMAT_VERSION}"
                               + (" (the file is from a newer nervenet)" if newer else ""))


@contextlib.contextmanager
def open_model_file(where: str):
    """``with open_model_file(path) as (config, metadata, tensors)``: a model file with every
    format check passed; ``tensors`` (a ``TensorFile``) reads the weights from the open file
    on demand."""
    with ModelArchive(where) as archive:
        config = _load_json(archive.read("config.json"), "config.json", where)
        metadata = _load_json(archive.read("metadata.json"), "metadata.json", where)
        _check_format(metadata, "metadata.json", where)
        _check_format(config, "config.json", where)
        yield config, metadata, _tensor_file(*archive.reader("weights.safetensors"), where)


class _Selection(Mapping):
    """Some of the tensors of ``tensors``, under new names: ``names`` maps each new name to
    the name in ``tensors``."""

    def __init__(self, tensors, names: dict[str, str]):
        self.tensors, self.names = tensors, names

    def __getitem__(self, name: str) -> np.ndarray:
        return self.tensors[self.names[name]]

    def __contains__(self, name) -> bool:  # not Mapping's, which would read the tensor
        return name in self.names

    def __iter__(self):
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def shape(self, name: str) -> tuple:
        return self.tensors.shape(self.names[name])

    def dtype(self, name: str) -> np.dtype:
        return self.tensors.dtype(self.names[name])

    def read(self, name: str, out: np.ndarray | None = None) -> np.ndarray:
        return self.tensors.read(self.names[name], out=out)


def split_tensors(tensors, paths) -> tuple[_Selection, _Selection]:
    """``(weights, optimizer state)`` of a model file's tensors: the weights are the names
    that are weight paths of the model (or do not start with ``optimizer/``; ``_assign``
    rejects those), the optimizer state the others, ``optimizer/`` removed. A layer may thus
    be named "optimizer"."""
    weights, state = {}, {}
    for name in tensors:
        if name in paths or not name.startswith(_OPTIMIZER_PREFIX):
            weights[name] = name
        else:
            state[name[len(_OPTIMIZER_PREFIX):]] = name
    return _Selection(tensors, weights), _Selection(tensors, state)


def load_model(filepath, compile: bool = True):  # noqa: A002  (Keras's argument name)
    """Rebuild a model saved by ``Model.save``: architecture, weights and, with ``compile``,
    the compile settings and the optimizer state (so that training resumes exactly).

    Args:
        filepath: the model file.
        compile: re-apply the saved compile settings (default ``True``).

    Raises:
        ModelFormatError: a malformed, truncated or altered file, or one naming a class that
            is not registered (nothing from the file is imported or called).
    """
    where = os.fspath(filepath)
    with open_model_file(where) as (config, metadata, tensors):
        model = _rebuild(config, tensors, where)
        weights, state = split_tensors(tensors, model.named_weights())
        _assign(model, weights, where, staged=False)  # a new model: read into its weights
        for path, value in _older_file_defaults(model).items():
            if path not in weights:  # a file written before this weight existed
                model.named_weights()[path].data[...] = value
        model_metadata = metadata.get("model_metadata", {})
        if not isinstance(model_metadata, dict):
            raise ModelFormatError(f"{where}: metadata.json's model_metadata must be an object, "
                                   f"got {type(model_metadata).__name__}")
        model.metadata = model_metadata
        settings = config.get("compile")
        if compile and settings is not None:
            try:
                model.compile_from_config(settings)
                _restore_optimizer(model, settings.get("optimizer_variables") or [], state)
            except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError,
                    RecursionError) as error:
                raise ModelFormatError(f"{where}: cannot restore the compile settings: "
                                       f"{error}") from None
    return model


def _rebuild(config: dict, tensors, where: str):
    """The model a config describes, built, within the budgets: no more weight values than
    the file holds, no intermediate activation over ``_MAX_BUILD_VALUES`` values."""
    try:
        # _OLDER_FILE_SLACK: room for the weights an older file lacks (older_file_defaults)
        with load_budget(sum(math.prod(tensors.shape(n)) for n in tensors) + _OLDER_FILE_SLACK,
                         _MAX_BUILD_VALUES):
            model = deserialize(config.get("model"))
            if not hasattr(model, "compile"):
                raise ValueError(f"{type(model).__name__} is a layer, not a model")
            if not model.built:
                _build(model, config.get("build_input_shape"))
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError,
            MemoryError, RecursionError) as error:
        # NOTE: a file can only name registered classes, so these come from registered layers
        # given arguments that no save wrote (a hostile or hand-edited config)
        raise ModelFormatError(f"{where}: cannot rebuild the model: "
                               f"{type(error).__name__}: {error}") from None
    return model


def _build(model, shape) -> None:
    """Build a model whose config does not fix its input, by calling it on one zero sample of
    the shape it had when saved."""
    if shape is None:
        return
    shapes = shape if shape and isinstance(shape[0], list) else [shape]
    if not all(isinstance(s, list) and all(d is None or (type(d) is int and 0 < d <= 2**16)
                                           for d in s) for s in shapes):
        raise ValueError(f"build_input_shape must be shapes of small positive ints, got "
                         f"{shape!r}")
    if sum(math.prod(1 if d is None else d for d in s) for s in shapes) > _MAX_BUILD_VALUES:
        raise ValueError(f"build_input_shape {shape!r} has more than {_MAX_BUILD_VALUES} "
                         "values per sample")
    arrays = [np.zeros([1 if d is None else d for d in s], dtype=model.dtype) for s in shapes]
    with no_grad():
        model(arrays[0] if len(arrays) == 1 else arrays, training=False)


def check_optimizer_keys(state: dict, count: int) -> None:
    """Every optimizer state key is ``iterations`` or ``<index>/<slot>`` with an index below
    ``count`` (the variables the state belongs to): nothing extra is accepted."""
    extra = [key for key in state if key != "iterations" and not (
        key.partition("/")[0].isdigit() and int(key.partition("/")[0]) < count)]
    if extra:
        raise ValueError(f"the optimizer state has entries {extra[:5]} for no variable (it "
                         f"belongs to {count} variables)")


def _restore_optimizer(model, order: list, state) -> None:
    """Restore a new model's optimizer state from ``state`` (the ``optimizer/`` tensors, read
    on demand): every key and shape checked first, the slots then read straight into the
    optimizer's arrays, and refused when not finite."""
    optimizer = model.optimizer
    if not state or not hasattr(optimizer, "set_state"):
        return
    paths = model.named_weights()
    if not isinstance(order, list) or not all(isinstance(p, str) and p in paths for p in order):
        raise ValueError(f"optimizer_variables must name weights of the model, got {order!r}")
    check_optimizer_keys(state, len(order))
    if "iterations" not in state or state.shape("iterations") != () or (
            state.dtype("iterations").kind not in "iu"):
        raise ValueError("the optimizer state needs 'iterations', an integer scalar")
    optimizer.build([paths[p] for p in order])
    slots = {f"{i}/{key}": array for i, var in enumerate(optimizer.tracked_variables)
             for key, array in optimizer.slots(var).items()}
    if set(slots) != set(state) - {"iterations"}:
        raise ValueError(f"the optimizer {type(optimizer).__name__} has slots "
                         f"{sorted(slots)[:6]}, the file {sorted(set(state) - {'iterations'})[:6]}")
    for key, array in slots.items():
        if state.shape(key) != array.shape:
            raise ValueError(f"optimizer slot {key} has shape {state.shape(key)}, the "
                             f"variable needs {array.shape}")
    for key, array in slots.items():
        state.read(key, out=array)
        check_finite_state(type(optimizer).__name__, key, array)
    iterations = int(state.read("iterations"))
    if iterations < 0:
        raise ValueError(f"the optimizer state has iterations {iterations}, below 0")
    optimizer.iterations = iterations

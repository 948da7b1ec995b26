"""Saving and loading models safely: no pickle, nothing in a file is ever imported or called.

A model file (``model.save("m.nervenet")``) is a zip of three members:

* ``config.json``: the architecture (``{"class_name", "config"}`` of the model, layers nested
  inside) and the compile settings (optimizer, losses, loss weights, metrics);
* ``weights.safetensors``: every weight by path (``dense/kernel``, ``block/dense/bias``) and the
  optimizer state (``optimizer/iterations``, ``optimizer/0/m``, ...);
* ``metadata.json``: the format and its version, library versions and date (and, in a
  training checkpoint, the training state: epoch, step, random generator states).

The zip's comment holds the SHA-256 of the rest of the file, checked before anything else is
read: a truncated file and a corrupted one are rejected with different messages.

``load_model`` resolves every class name through a registry (layers, activations, initializers,
losses, metrics, optimizers): a name that is not registered is rejected, so a file can only
rebuild what the library, or you with ``register_serializable``, put there. Saves are atomic
(see ``archive.py``). ``save_weights`` writes one safetensors file with the weights only.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import platform
import struct
import warnings

import numpy as np

import nervenet
from nervenet import losses, metrics, optimizers
from nervenet.autograd import no_grad
from nervenet.layers.base import (
    Layer,
    deserialize,
    registry as layer_registry,
    serialize,
    weight_budget,
)
from nervenet.saving import safetensors
from nervenet.saving.archive import (
    MEMBER_LIMITS,
    ModelFormatError,
    atomic_write,
    read_zip,
    remove_stale_temporaries,
    write_zip,
)
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


# ------------------------------------------------------------------------ compile settings
def _serialize_loss(loss):
    if loss is None or isinstance(loss, str):
        return loss
    if isinstance(loss, losses.Loss):
        return losses.serialize(loss)
    raise ValueError(f"the loss {loss!r} is a Python function, which a model file cannot name")


def _serialize_metric(metric):
    if metric is None or isinstance(metric, str):
        return metric
    if isinstance(metric, metrics.Metric):
        for name in metrics.registry.names():
            if metrics.registry.lookup(name) is type(metric):
                return {"class_name": name, "config": metric.get_config()}
    raise ValueError(f"the metric {metric!r} is not registered, so a model file cannot name it")


def _structure(value, fn):
    if isinstance(value, dict) and "class_name" not in value:
        return {k: _structure(v, fn) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_structure(v, fn) for v in value]
    return fn(value)


def compile_config(model) -> dict | None:
    """The JSON form of the model's ``compile(...)`` arguments, or ``None`` (not compiled, or a
    loss/metric given as a Python function: warned, the rest is still saved)."""
    arguments = getattr(model, "compile_arguments", None)
    if not getattr(model, "compiled", False) or arguments is None:
        return None
    try:
        return {
            "optimizer": optimizers.serialize(model.optimizer),
            "loss": _structure(arguments["loss"], _serialize_loss),
            "loss_weights": arguments["loss_weights"],
            "metrics": _structure(arguments["metrics"], _serialize_metric),
        }
    except (ValueError, TypeError) as error:
        warnings.warn(f"the compile settings of {model.name!r} are not saved: {error}; "
                      "compile the loaded model yourself", stacklevel=3)
        return None


def _objects(value, getter):
    if isinstance(value, dict) and "class_name" in value:
        return getter(value)
    if isinstance(value, dict):
        return {k: _objects(v, getter) for k, v in value.items()}
    if isinstance(value, list):
        return [_objects(v, getter) for v in value]
    return value


def compile_arguments(config: dict) -> dict:
    """``compile``'s keyword arguments from ``compile_config``'s dict (registered names only)."""
    if not isinstance(config, dict) or not {"optimizer", "loss"} <= set(config):
        raise ValueError("the compile settings must be a dict with 'optimizer' and 'loss'")
    metric_ids = config.get("metrics")
    _structure(metric_ids, lambda m: metrics.get(m) if isinstance(m, str) else m)  # known ids
    return {"optimizer": optimizers.get(config["optimizer"]),
            "loss": _objects(config["loss"], losses.get),
            "loss_weights": config.get("loss_weights"),
            "metrics": _objects(metric_ids, metrics.get)}


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


def _metadata(training_state: dict | None = None) -> bytes:
    metadata = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "nervenet_version": nervenet.__version__,
        "numpy_version": np.__version__, "python_version": platform.python_version(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    if training_state is not None:
        metadata["training_state"] = training_state
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
    tensors = {path: weight.data for path, weight in paths.items()}
    state, order = _optimizer_state(model, paths)
    tensors.update(state)
    compile_settings = compile_config(model)
    if compile_settings is not None:
        compile_settings["optimizer_variables"] = order
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": architecture,
              "build_input_shape": _json_shape(model.input_shape), "compile": compile_settings}
    members = {"config.json": json.dumps(config, indent=1).encode("utf-8"),
               "weights.safetensors": safetensors.dumps(tensors),
               "metadata.json": _metadata(training_state)}
    atomic_write(filepath, lambda handle: write_zip(handle, members), overwrite=overwrite)


def _json_shape(shape):
    if shape is None:
        return None
    if isinstance(shape, list):
        return [_json_shape(s) for s in shape]
    return list(shape)


def save_weights(model, filepath, overwrite: bool = True) -> None:
    """Write the model's weights to one safetensors file (``.weights.safetensors``),
    atomically, keyed by path (``dense/kernel``)."""
    if not os.fspath(filepath).endswith(".weights.safetensors"):
        raise ValueError(f"save_weights: the file name must end in .weights.safetensors, got "
                         f"{os.fspath(filepath)!r}")
    tensors = {path: w.data for path, w in _model_weights(model).items()}
    data = safetensors.dumps(tensors, metadata={"format": "nervenet.weights"})
    # the SHA-256 of the tensor bytes, so that a changed value is detected on load
    start = 8 + struct.unpack("<Q", data[:8])[0]
    data = safetensors.dumps(tensors, metadata={
        "format": "nervenet.weights", "sha256": hashlib.sha256(data[start:]).hexdigest()})
    atomic_write(filepath, lambda handle: handle.write(data), overwrite=overwrite)


# ----------------------------------------------------------------------------- loading
def _read_tensors(data: bytes, where: str, with_metadata: bool = False):
    try:
        return safetensors.loads(data, with_metadata=with_metadata,
                                 max_header_bytes=MAX_HEADER_BYTES)
    except safetensors.SafetensorsError as error:
        raise ModelFormatError(f"{where}: {error}") from None


def _read_weights_file(where: str) -> dict:
    """The tensors of a ``.weights.safetensors`` file, after its checks and its checksum."""
    size = os.path.getsize(where)
    if size > MEMBER_LIMITS["weights.safetensors"]:
        raise ModelFormatError(f"{where}: {size} bytes is over the limit of "
                               f"{MEMBER_LIMITS['weights.safetensors']}")
    with open(where, "rb") as handle:
        data = handle.read()
    tensors, metadata = _read_tensors(data, where, with_metadata=True)
    if metadata.get("format") != "nervenet.weights":
        raise ModelFormatError(f"{where}: not a nervenet weights file (its metadata says "
                               f"format {metadata.get('format')!r}, expected "
                               "'nervenet.weights')")
    start = 8 + struct.unpack("<Q", data[:8])[0]
    if "sha256" not in metadata:
        raise ModelFormatError(f"{where}: the weights file has no sha256 checksum")
    if hashlib.sha256(memoryview(data)[start:]).hexdigest() != metadata["sha256"]:
        raise ModelFormatError(f"{where}: the file is corrupted: the SHA-256 of its tensor "
                               "data does not match the checksum in its header")
    return tensors


def _assign(model, tensors: dict, where: str) -> None:
    """Copy ``tensors`` into the model's weights by path: every name must match, every shape
    must agree, and all are checked before any weight changes."""
    paths = model.named_weights()
    if not paths:
        raise ValueError(f"model {model.name!r} has no weights yet: build it (call it on a "
                         "batch) before loading weights")
    missing = [p for p in paths if p not in tensors]
    unexpected = [n for n in tensors if n not in paths]
    if missing or unexpected:
        raise ModelFormatError(f"{where}: the weights do not match model {model.name!r}: "
                               f"missing {missing}, unexpected {unexpected}")
    for path, weight in paths.items():
        value = tensors[path]
        if value.shape != weight.shape:
            raise ModelFormatError(f"{where}: weight {path!r} has shape {value.shape} in the "
                                   f"file, the model needs {weight.shape}")
        if value.dtype.kind != "f":
            raise ModelFormatError(f"{where}: weight {path!r} has dtype {value.dtype}; "
                                   "expected floating-point values")
    for path, weight in paths.items():
        weight.data[...] = tensors[path]


def load_weights(model, filepath) -> None:
    """Load weights written by ``save_weights`` (or the weights of a model file) into
    ``model``, by name, with shape checks, all or nothing."""
    where = os.fspath(filepath)
    if where.endswith(".weights.safetensors"):
        tensors = _read_weights_file(where)
    else:
        members = read_zip(where)
        tensors = _read_tensors(members["weights.safetensors"], where)
        tensors = {k: v for k, v in tensors.items() if not k.startswith(_OPTIMIZER_PREFIX)}
    _assign(model, tensors, where)


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


def read_model_file(where: str) -> tuple[dict, dict, dict]:
    """``(config, metadata, tensors)`` of a model file, every format check passed."""
    members = read_zip(where)
    config = _load_json(members["config.json"], "config.json", where)
    metadata = _load_json(members["metadata.json"], "metadata.json", where)
    _check_format(metadata, "metadata.json", where)
    _check_format(config, "config.json", where)
    return config, metadata, _read_tensors(members["weights.safetensors"], where)


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
    config, _, tensors = read_model_file(where)
    state = {k[len(_OPTIMIZER_PREFIX):]: v for k, v in tensors.items()
             if k.startswith(_OPTIMIZER_PREFIX)}
    weights = {k: v for k, v in tensors.items() if not k.startswith(_OPTIMIZER_PREFIX)}
    try:
        with weight_budget(sum(v.size for v in weights.values())):
            model = deserialize(config.get("model"))
            if not hasattr(model, "compile"):
                raise ValueError(f"{type(model).__name__} is a layer, not a model")
            if not model.built or not model.named_weights():
                _build(model, config.get("build_input_shape"))
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError,
            MemoryError, RecursionError) as error:
        # NOTE: a file can only name registered classes, so these come from registered layers
        # given arguments that no save wrote (a hostile or hand-edited config)
        raise ModelFormatError(f"{where}: cannot rebuild the model: "
                               f"{type(error).__name__}: {error}") from None
    _assign(model, weights, where)
    settings = config.get("compile")
    if compile and settings is not None:
        try:
            model.compile(**compile_arguments(settings))
            _restore_optimizer(model, settings.get("optimizer_variables") or [], state)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError,
                RecursionError) as error:
            raise ModelFormatError(f"{where}: cannot restore the compile settings: "
                                   f"{error}") from None
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


def _restore_optimizer(model, order: list, state: dict) -> None:
    optimizer = model.optimizer
    if not state or not hasattr(optimizer, "set_state"):
        return
    paths = model.named_weights()
    if not isinstance(order, list) or not all(isinstance(p, str) and p in paths for p in order):
        raise ValueError(f"optimizer_variables must name weights of the model, got {order!r}")
    check_optimizer_keys(state, len(order))
    optimizer.build([paths[p] for p in order])
    optimizer.set_state(state)

"""The Layer contract (as Keras 3).

* ``__init__`` stores and validates the configuration (string ids resolved through registries);
* ``build(input_shape)`` creates the weights with ``add_weight`` the first time the layer is
  called, when the input shape is known;
* ``call(inputs, training=False)`` computes the output with differentiable ops;
* ``compute_output_shape(input_shape)`` gives the output shape without computing;
* ``get_config()`` returns every constructor argument (JSON-serialisable) and
  ``from_config(config)`` rebuilds an equal layer.

Weights are Tensors; a trainable weight has ``requires_grad=True``. Sub-layers assigned as
attributes (also inside lists and dicts) are tracked in insertion order, so the order of
``weights`` is deterministic.

A layer checks each new input shape against its ``input_spec`` (``check_input_shapes``) and
is built by ``maybe_build`` on its first call. Calling a layer on ``SymbolicTensor``
placeholders (what ``Input`` returns) computes nothing: it builds the layer, works out the
output shape and records a ``Node`` (``layers/symbolic.py``), which is how the functional API
(``Model(inputs, outputs)``) learns the graph. While a model file loads, the guard of that
load (``nervenet.loading``) limits what ``add_weight`` and a call may allocate.
"""

from __future__ import annotations

import inspect
import itertools
import re
import threading
from collections.abc import Sequence

import numpy as np

import nervenet.functional as F
from nervenet import (
    activations,
    backend,
    constraints,
    initializers,
    loading,
    nest,
    regularizers,
)
from nervenet.autograd import Tensor, no_grad
from nervenet.autograd.capture import current_tape
from nervenet.layers.symbolic import (
    Node,
    check_call_arguments,
    is_symbolic,
    record_call,
    symbolic_shapes,
)
from nervenet.registry import Registry

#: layer classes by name: the only classes a saved model may name
registry = Registry("layer")

_name_counts: dict[str, int] = {}
_name_lock = threading.Lock()

_transactions = threading.local()


def update_state(apply) -> None:
    """Change non-trainable state (``apply()`` writes it: BatchNormalization's moving
    statistics): now, or, inside a ``state_transaction`` of this thread, when it commits."""
    tape = current_tape()
    if tape is not None:  # a step being captured: its replays make this update too
        tape.record_state_update(apply)
    transaction = getattr(_transactions, "current", None)
    if transaction is None:
        apply()
    else:
        transaction.updates.append(apply)


class state_transaction:  # noqa: N801  (a context manager, used like a function)
    """All or nothing for the state a training step changes besides the weights.

    Within ``with state_transaction(layer) as step:``, ``update_state`` calls are recorded
    instead of applied; ``step.commit()`` applies them in order. Leaving the block without
    committing (a NaN loss, an exception) drops them and puts every generator of ``layer``'s
    nested layers (Dropout's, the augmentations', ...) back in the state it had on entry, so
    the next step draws what this one drew.
    """

    def __init__(self, layer: Layer):
        self.generators = [(sub._rng, sub._rng.bit_generator.state)
                           for sub in [layer, *nested_layers(layer)]
                           if isinstance(getattr(sub, "_rng", None), np.random.Generator)]
        self.updates: list = []
        self.committed = False

    def __enter__(self) -> state_transaction:
        self._outer = getattr(_transactions, "current", None)
        _transactions.current = self
        return self

    def commit(self) -> None:
        """Apply the recorded state updates (once)."""
        _transactions.current = self._outer
        for apply in self.updates:
            apply()
        self.updates.clear()
        self.committed = True

    def __exit__(self, *exc_info) -> None:
        _transactions.current = self._outer
        if not self.committed:
            self.updates.clear()
            for generator, state in self.generators:
                generator.bit_generator.state = state


def _snake_case(name: str) -> str:
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(prefix: str) -> str:
    """``dense``, ``dense_1``, ``dense_2``, ... as Keras names layers."""
    with _name_lock:  # two threads building layers must not get the same name
        count = _name_counts.get(prefix, 0)
        _name_counts[prefix] = count + 1
    return prefix if count == 0 else f"{prefix}_{count}"


def shape_tuple(shape) -> tuple:
    """Normalize a user's shape argument (an int or a sequence of ints/None) to a tuple."""
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    if not isinstance(shape, Sequence):
        raise TypeError(f"a shape must be an int or a sequence of ints, got {shape!r}")
    out = []
    for dim in shape:
        if dim is not None and (not isinstance(dim, (int, np.integer)) or dim < 0):
            raise ValueError(f"shape dimensions must be non-negative ints or None, got {shape!r}")
        out.append(None if dim is None else int(dim))
    return tuple(out)


class InputSpec:
    """What a layer accepts: the rank (``ndim`` exactly or ``min_ndim`` at least) and fixed
    sizes of some axes (``axes={-1: 784}``)."""

    def __init__(self, ndim: int | None = None, min_ndim: int | None = None,
                 axes: dict[int, int] | None = None, shape: tuple | None = None):
        self.ndim = ndim
        self.min_ndim = min_ndim
        self.axes = axes or {}
        self.shape = shape

    def check(self, layer: Layer, shape: tuple, index: int = 0) -> None:
        where = f"{type(layer).__name__} layer {layer.name!r}, input {index}"
        if self.shape is not None and (len(shape) != len(self.shape) or any(
                want is not None and got != want for got, want in zip(shape, self.shape))):
            raise ValueError(f"{type(layer).__name__} expected input of shape {self.shape}, "
                             f"got {shape} ({where})")
        if self.ndim is not None and len(shape) != self.ndim:
            raise ValueError(
                f"{where}: expected input with {self.ndim} dimensions, got shape {shape}")
        if self.min_ndim is not None and len(shape) < self.min_ndim:
            raise ValueError(
                f"{where}: expected input with at least {self.min_ndim} dimensions, got "
                f"shape {shape}")
        for axis, size in self.axes.items():
            if -len(shape) <= axis < len(shape) and shape[axis] not in (size, None):
                axis_name = "last dimension" if axis == -1 else f"dimension {axis}"
                raise ValueError(
                    f"{type(layer).__name__} expected input with {axis_name} {size}, got "
                    f"{shape} ({where})")


#: counts the changes of any layer's sub-layers, weights or trainable flag: the cached weight
#: lists are valid while it stays the same
_structure_version = [0]
_structure_counter = itertools.count(1)


def _structure_changed() -> None:
    _structure_version[0] = next(_structure_counter)  # atomic: threads lose no change


def structure_version() -> int:
    """A number that changes whenever any layer's sub-layers, weights or trainable flag do
    (a captured step made under another number is stale)."""
    return _structure_version[0]


def nested_layers(layer: Layer) -> list[Layer]:
    """Every layer inside ``layer``, depth first, a shared layer once (each training step
    asks: cached until a layer's structure changes)."""
    version, found = layer.__dict__.get("_nested_cache", (-1, ()))
    if version != _structure_version[0]:
        unique: dict[int, Layer] = {}
        for sub in layer.sublayers:
            for inner in [sub, *nested_layers(sub)]:
                unique.setdefault(id(inner), inner)
        found = tuple(unique.values())
        object.__setattr__(layer, "_nested_cache", (_structure_version[0], found))
    return list(found)


class _CallContext(threading.local):
    """The ``training`` value of the layer calls running now in this thread, outermost
    first (empty outside any call)."""

    def __init__(self):
        self.training: list[bool] = []


_call_context = _CallContext()


def current_training() -> bool | None:
    """The ``training`` flag of the innermost layer call running now in this thread, or
    ``None`` outside any call: what a layer called without ``training`` follows (Keras's call
    context)."""
    stack = _call_context.training
    return stack[-1] if stack else None


class Layer:
    """Base class of every layer (and of Model).

    Args:
        name: unique name (default: the snake_case class name, numbered as Keras).
        trainable: whether the weights are updated by fit (default ``True``).
        input_shape: the shape of one sample, for the first layer of a Sequential model
            (default ``None``).
        dtype: the weights' dtype (default ``nervenet.backend.floatx()``).

    Attributes:
        weights, trainable_weights, non_trainable_weights: lists of Tensors.
        input_shape, output_shape: shapes seen at the last call, batch axis ``None``.
    """

    def __init__(self, name: str | None = None, trainable: bool = True,
                 input_shape=None, dtype=None):
        object.__setattr__(self, "_layers", {})
        object.__setattr__(self, "_sublayers", None)
        object.__setattr__(self, "_trainable_cache", (-1, ()))  # (structure version, weights)
        object.__setattr__(self, "_checked_shapes", None)  # input shapes that passed input_spec
        self._weights: dict[str, Tensor] = {}
        self._weight_trainable: dict[str, bool] = {}
        self._regularized: list = []   # (weight, regularizer) pairs
        self._constrained: list = []   # (weight, constraint) pairs
        self.activity_regularizer = None
        self.name = name if name is not None else unique_name(_snake_case(type(self).__name__))
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"{type(self).__name__}: name must be a non-empty string, "
                             f"got {name!r}")
        self._trainable = bool(trainable)
        self.dtype = backend.floatx() if dtype is None else _checked_dtype(self, dtype)
        self.built = False
        self.input_spec: InputSpec | None = None
        self.sample_shape = None if input_shape is None else shape_tuple(input_shape)
        self.input_shape = None
        self.output_shape = None
        self.losses: list[Tensor] = []  # activity regularization of the last call
        self._inbound_nodes: list[Node] = []  # symbolic calls (the functional API)

    # --------------------------------------------------------------- sub-layer tracking
    def __setattr__(self, name, value):
        if name in ("input_spec", "built"):
            object.__setattr__(self, "_checked_shapes", None)  # check the next input again
        if not name.startswith("_"):
            layers = self.__dict__.get("_layers")
            if layers is not None:
                tracked = [x for x in nest.flatten(value) if isinstance(x, Layer)]
                if layers.pop(name, None) is not None or tracked:
                    object.__setattr__(self, "_sublayers", None)  # recomputed when asked
                    _structure_changed()
                if tracked:
                    layers[name] = tracked
        object.__setattr__(self, name, value)

    @property
    def sublayers(self) -> list[Layer]:
        """Layers assigned as attributes (also in lists and dicts), in assignment order."""
        if self._sublayers is None:  # each training step asks, through the weights
            seen: dict[int, Layer] = {}
            for group in self._layers.values():
                for layer in group:
                    seen.setdefault(id(layer), layer)
            object.__setattr__(self, "_sublayers", tuple(seen.values()))
        return list(self._sublayers)

    # ------------------------------------------------------------------------ weights
    #: weights that model files written before they existed lack, by name, with the value
    #: each takes when such a file is loaded (e.g. Normalization's ``count``)
    older_file_defaults: dict[str, float] = {}

    def add_weight(self, name: str, shape, initializer="glorot_uniform", trainable: bool = True,
                   regularizer=None, constraint=None, dtype=None) -> Tensor:
        """Create a weight Tensor, initialize it and track it.

        Args:
            name: the weight's name inside the layer ("kernel", "bias", ...).
            shape: its shape.
            initializer: an initializer id, config or callable (default "glorot_uniform").
            trainable: whether fit updates it (default ``True``).
            regularizer: a penalty added to the loss (default ``None``).
            constraint: a projection applied after each update (default ``None``).
            dtype: default: the layer's dtype.
        """
        if name in self._weights:
            raise ValueError(f"{self.name}: a weight named {name!r} already exists")
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        shape = shape_tuple(shape)
        guard = loading.current_guard()
        if guard is not None:  # rebuilding a model from a file: never beyond what it holds,
            guard.take_weights(self, name, shape)
            values = np.zeros(shape, dtype)  # and no initializer (its draws, its float64
        else:                                # temporaries): the file's values replace them
            values = initializers.get(initializer)(shape, dtype=dtype)
        # (reshaped: ascontiguousarray makes a scalar weight, Keras's count, one-dimensional)
        weight = Tensor(np.ascontiguousarray(values, dtype=dtype).reshape(shape),
                        requires_grad=trainable and self.trainable, name=f"{self.name}/{name}")
        self._weights[name] = weight
        self._weight_trainable[name] = bool(trainable)
        _structure_changed()
        if regularizer is not None:
            self._regularized.append((weight, regularizers.get(regularizer)))
        if constraint is not None:
            constraint = constraints.get(constraint)
            if isinstance(constraint, constraints.Constraint):
                constraint.check_shape(shape, f"{self.name}: weight {name!r}")
            self._constrained.append((weight, constraint))
        return weight

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        """Freeze (False) or unfreeze the layer's weights and those of its sub-layers."""
        self._trainable = bool(value)
        _structure_changed()
        for name, weight in self._weights.items():
            weight.requires_grad = self._trainable and self._weight_trainable[name]
        for layer in self.sublayers:
            layer.trainable = value

    @property
    def trainable_weights(self) -> list[Tensor]:
        version, weights = self._trainable_cache
        if version != _structure_version[0]:  # fit asks every step; the answer rarely changes
            weights = ()
            if self.trainable:
                own = [w for n, w in self._weights.items() if self._weight_trainable[n]]
                weights = tuple(_unique(
                    own + [w for layer in self.sublayers for w in layer.trainable_weights]))
            object.__setattr__(self, "_trainable_cache", (_structure_version[0], weights))
        return list(weights)

    @property
    def non_trainable_weights(self) -> list[Tensor]:
        own = [w for n, w in self._weights.items()
               if not (self.trainable and self._weight_trainable[n])]
        nested = [w for layer in self.sublayers for w in layer.non_trainable_weights]
        if not self.trainable:
            nested += [w for layer in self.sublayers for w in layer.trainable_weights]
        return _unique(own + nested)

    @property
    def weights(self) -> list[Tensor]:
        """All weights: trainable first, then non-trainable (as Keras)."""
        return self.trainable_weights + [w for w in self.non_trainable_weights
                                         if all(w is not t for t in self.trainable_weights)]

    def count_params(self) -> int:
        """The number of scalar values in the weights."""
        if not self.built:
            raise ValueError(f"{self.name}: count_params() needs the layer to be built; call it "
                             "on data first or build(input_shape)")
        return int(sum(w.size for w in self.weights))

    def named_weights(self) -> dict[str, Tensor]:
        """Every weight by path: ``"kernel"`` for this layer's own, ``"dense/kernel"`` for a
        sub-layer's, ``"block/dense/kernel"`` deeper (a shared weight under its first path).
        A sub-layer's path element is its attribute name (``hidden``, ``blocks/0``), so that
        two instances of a subclassed model name their weights alike; models made of named
        layers (Sequential, functional) use the layer names. These are the names
        ``save_weights`` writes."""
        paths: dict[str, Tensor] = {}
        seen: set[int] = set()
        stack: list[tuple[str, Layer]] = [("", self)]
        while stack:
            prefix, layer = stack.pop(0)
            for key, weight in layer._weights.items():
                if id(weight) in seen:
                    continue
                if prefix + key in paths:
                    raise ValueError(f"{self.name}: two weights would be saved as "
                                     f"{prefix + key!r}; give the layers distinct names")
                seen.add(id(weight))
                paths[prefix + key] = weight
            stack[:0] = [(f"{prefix}{path}/", sub) for path, sub in layer._sublayer_paths()]
        return paths

    def _sublayer_paths(self) -> list[tuple[str, Layer]]:
        """(path element, layer) for each sub-layer, by attribute name (list index, dict
        key), each layer once."""
        found: dict[int, tuple[str, Layer]] = {}
        for attribute in self._layers:
            for path, layer in nest.flatten_with_paths(getattr(self, attribute), attribute):
                if isinstance(layer, Layer):
                    found.setdefault(id(layer), (path, layer))
        return list(found.values())

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights' values, in ``weights`` order."""
        return [backend.host_copy(w.data) for w in self.weights]

    def set_weights(self, values: Sequence) -> None:
        """Set the weights from arrays in ``weights`` order; shapes must match exactly."""
        weights = self.weights
        values = list(values)
        if len(values) != len(weights):
            raise ValueError(f"{self.name}: set_weights expected {len(weights)} arrays, got "
                             f"{len(values)}")
        arrays = []
        for weight, value in zip(weights, values):
            value = np.asarray(value)
            if value.shape != weight.shape:
                raise ValueError(f"{self.name}: weight {weight.name!r} has shape {weight.shape}, "
                                 f"got an array of shape {value.shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{self.name}: weight {weight.name!r}: values must be finite")
            arrays.append(value)
        for weight, value in zip(weights, arrays):  # all checked first: all or nothing
            backend.copy_into(weight.data, value)

    def regularization_losses(self) -> list[Tensor]:
        """The weight penalties of this layer and its sub-layers, as scalar Tensors."""
        losses = [regularizer(weight) for weight, regularizer in self._regularized]
        for layer in self.sublayers:
            losses += layer.regularization_losses()
        return losses

    def apply_constraints(self) -> None:
        """Project constrained weights back onto their sets (called after each update)."""
        for weight, constraint in self._constrained:
            weight.data[...] = constraint(weight.data)
        for layer in self.sublayers:
            layer.apply_constraints()

    # --------------------------------------------------------------------- computation
    def build(self, input_shape) -> None:
        """Create the weights for inputs of ``input_shape`` (batch axis ``None``)."""
        self.built = True

    def call(self, inputs, training: bool = False):
        raise NotImplementedError(f"{type(self).__name__} must implement call()")

    def compute_output_shape(self, input_shape):
        """The output shape for ``input_shape`` (batch axis ``None``), computing nothing.

        Every built-in layer declares it. A layer that does not (a user's) is taken to keep
        its input's shape by ``Sequential``, and is probed on one sample of zeros when called
        on symbolic inputs (the functional API)."""
        return input_shape

    def __call__(self, inputs, training: bool | None = None, **kwargs):
        """Compute the layer on ``inputs`` (building it on the first call).

        ``training`` (as Keras): given explicitly, it holds for this call and for every
        layer called inside it that is not given one itself; ``None`` (default) takes the
        value of the enclosing layer call, or ``False`` outside any call. So a ``Dropout``
        inside a subclassed model whose ``call`` does not pass ``training`` on is active in
        ``fit`` and inactive in ``predict``."""
        stack = _call_context.training
        if training is None:
            training = stack[-1] if stack else False
        if type(inputs) is Tensor and inputs.data.dtype == self.dtype:
            shapes = [inputs.data.shape]  # the common case (one Tensor), without conversions
        elif is_symbolic(inputs):
            return self._call_symbolic(inputs, kwargs)
        else:
            inputs = nest.map_structure(self._convert_input, inputs)
            shapes = _shapes(inputs)
        if shapes != self._checked_shapes:  # once per input shape, not once per batch
            guard = loading.current_guard()
            if guard is not None:
                self._check_load_guard(guard, shapes)
            self.maybe_build(shapes)
            self.input_shape = _unbatched(shapes)
            self._checked_shapes = shapes
        if _call_takes_training(type(self)):
            kwargs["training"] = training
        stack.append(bool(training))
        try:
            outputs = self.call(inputs, **kwargs)
        finally:
            stack.pop()
        if type(outputs) is Tensor:
            shape = outputs.data.shape
            output_shape = (None,) + shape[1:] if shape else shape
        else:
            output_shape = _unbatched(_shapes(outputs))
        if output_shape != self.output_shape:  # compared: assigning costs more (tracking)
            self.output_shape = output_shape
        if self.activity_regularizer is not None:
            self.losses = [self.activity_regularizer(outputs)]
        return outputs

    def _call_symbolic(self, inputs, kwargs: dict):
        """Build the layer for the placeholders' shapes, record a Node, return placeholders
        for the outputs (nothing is computed)."""
        check_call_arguments(self, kwargs)
        shapes = symbolic_shapes(self, inputs)
        self.maybe_build(shapes)
        shape_arg = shapes[0] if len(shapes) == 1 and not isinstance(inputs, (list, tuple)) \
            else shapes
        if self._declares_output_shape():
            out_shapes = self.compute_output_shape(shape_arg)  # no numerics: a layer filled
            out_dtypes = None                                  # later (adapt) can be used now
        else:  # not declared (a user's layer): run it on one sample of zeros
            out_shapes, out_dtypes = self._probe_output(inputs, kwargs)
        outputs = record_call(self, inputs, kwargs, out_shapes, out_dtypes)
        self.input_shape = shape_arg if isinstance(shape_arg, tuple) else list(shape_arg)
        self.output_shape = [t.shape for t in outputs] if isinstance(outputs, list) \
            else outputs.shape
        return outputs

    def _declares_output_shape(self) -> bool:
        return type(self).compute_output_shape is not Layer.compute_output_shape

    def _check_load_guard(self, guard: loading.LoadGuard, shapes: list[tuple]) -> None:
        """While a model file loads: the inputs, and the output when the layer declares its
        shape, within the activation budget, before anything is computed."""
        for shape in shapes:
            guard.check_activation(self, tuple(shape), "input")
        if self._declares_output_shape():
            shape_arg = _unbatched(shapes)
            guard.check_activation(self, self.compute_output_shape(shape_arg), "output")

    def _probe_output(self, inputs, kwargs):
        guard = loading.current_guard()
        if guard is not None:
            for leaf in nest.flatten(inputs):
                guard.check_activation(self, leaf.shape, "input")

        def zeros(leaf):
            return np.zeros(tuple(1 if d is None else d for d in leaf.shape), leaf.dtype)

        with no_grad():
            outputs = self(nest.map_structure(zeros, inputs), training=False, **kwargs)
        leaves = nest.flatten(outputs)
        batch = [(None,) + tuple(leaf.shape[1:]) for leaf in leaves]
        shapes = batch if isinstance(outputs, (list, tuple)) else batch[0]
        return shapes, [leaf.dtype for leaf in leaves]

    def _convert_input(self, value) -> Tensor:
        """An array becomes a Tensor; a floating input is cast to the layer's dtype."""
        if isinstance(value, Tensor):
            if value.dtype != self.dtype and value.dtype.kind in "fiub":
                return F.cast(value, self.dtype)
            return value
        array = backend.as_device_array(value)  # a device array stays on its device
        if array.dtype.kind not in "fiub":
            raise TypeError(f"{self.name}: expected numeric input, got dtype {array.dtype}")
        return Tensor.from_array(array.astype(self.dtype, copy=False))

    def check_input_shapes(self, shapes: list[tuple]) -> None:
        """Raise ValueError, naming this layer, when inputs of ``shapes`` (one shape per
        input, batch axis included) do not fit its ``input_spec``.

        ``input_spec`` (as Keras's, which checks it in ``assert_input_compatibility``) is an
        ``InputSpec``, a list of them (one per input), or ``None`` (anything goes). The layer
        call checks each new input shape before computing; ``Sequential`` checks each layer
        while it builds the stack. A layer with a rule a spec cannot say (Conv2D's hint for
        a missing channel axis) extends this method and calls ``super()``.
        """
        if self.input_spec is None:
            return
        specs = self.input_spec if isinstance(self.input_spec, list) else [self.input_spec]
        for index, (spec, shape) in enumerate(zip(specs, shapes)):
            spec.check(self, shape, index)

    def maybe_build(self, shapes: list[tuple]) -> None:
        """Check inputs of ``shapes`` (one per input, batch axis included) and, the first
        time, build the layer for them and check again (``build`` may fix sizes: Dense's
        last axis). The first call does this; ``Sequential.build`` does it for each layer."""
        self.check_input_shapes(shapes)
        if not self.built:
            self.build(_unbatched(shapes))
            self.built = True
            self.check_input_shapes(shapes)

    # ------------------------------------------------------------------ configuration
    def get_config(self) -> dict:
        """Every constructor argument, JSON-serialisable (subclasses extend it)."""
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype.name}
        if self.sample_shape is not None:
            config["input_shape"] = list(self.sample_shape)
        return config

    @classmethod
    def from_config(cls, config: dict) -> Layer:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"


def unchanged_shape(layer: Layer, input_shape):
    """``compute_output_shape`` of the layers whose output has their input's shape
    (activations, noise, normalization, augmentation): ``input_shape`` itself."""
    return input_shape


def _checked_dtype(layer: Layer, dtype) -> np.dtype:
    """A layer's dtype: a numeric NumPy dtype (floating for weights; integer or bool for an
    input of labels)."""
    try:
        value = np.dtype(dtype)
    except (TypeError, ValueError):
        value = None
    if value is None or value.kind not in "fiub" or value.fields is not None:
        raise ValueError(f"{type(layer).__name__}: dtype must name a numeric dtype "
                         f"('float32', 'float64', ...), got {dtype!r}")
    return value


def serialize(layer: Layer) -> dict:
    """``{"class_name": registered id, "config": layer.get_config()}``.

    Raises:
        ValueError: the layer's class is not registered (saving could not rebuild it).
    """
    config = layer.get_config()  # first: a subclassed model explains what it lacks
    name = registry.name_of(type(layer))
    if name is None:
        raise ValueError(
            f"layer {layer.name!r} is of class {type(layer).__qualname__}, which is not "
            "registered, so a saved file could not name it; decorate the class with "
            "@nervenet.saving.register_serializable() (and give it a get_config() returning "
            "its constructor arguments)")
    return {"class_name": name, "config": config}


def deserialize(config: dict) -> Layer:
    """Rebuild a layer from ``serialize``'s dict; only registered classes are accepted."""
    layer = registry.from_config(config)
    if not isinstance(layer, Layer):
        raise TypeError(f"{config.get('class_name')!r} did not build a Layer")
    return layer


def _unique(tensors: list[Tensor]) -> list[Tensor]:
    """Drop repeated tensors (a shared layer's weights count once), keeping the order."""
    seen: dict[int, Tensor] = {}
    for t in tensors:
        seen.setdefault(id(t), t)
    return list(seen.values())


def _shapes(values) -> list[tuple]:
    return [value.shape for value in nest.flatten(values)]


def _unbatched(shapes: list[tuple]):
    """Shapes with the batch axis as ``None`` (as Keras reports them); one shape for one input."""
    shapes = [(None,) + tuple(s[1:]) if s else s for s in shapes]
    return shapes[0] if len(shapes) == 1 else shapes


_TAKES_TRAINING: dict[type, bool] = {}


def _call_takes_training(cls: type) -> bool:
    if cls not in _TAKES_TRAINING:
        _TAKES_TRAINING[cls] = "training" in inspect.signature(cls.call).parameters
    return _TAKES_TRAINING[cls]


# The arguments every layer with a kernel and a bias takes (Dense, Conv2D), in one place.
def set_kernel_arguments(layer: Layer, activation, use_bias, kernel_initializer,
                         bias_initializer, kernel_regularizer, bias_regularizer,
                         activity_regularizer, kernel_constraint, bias_constraint) -> None:
    """Resolve and store the kernel/bias arguments of ``layer`` through their registries."""
    layer.activation = activations.get(activation)
    layer.use_bias = bool(use_bias)
    layer.kernel_initializer = initializers.get(kernel_initializer)
    layer.bias_initializer = initializers.get(bias_initializer)
    layer.kernel_regularizer = regularizers.get(kernel_regularizer)
    layer.bias_regularizer = regularizers.get(bias_regularizer)
    layer.activity_regularizer = regularizers.get(activity_regularizer)
    layer.kernel_constraint = constraints.get(kernel_constraint)
    layer.bias_constraint = constraints.get(bias_constraint)


def serialize_optional(module, obj) -> dict | None:
    """``module.serialize(obj)``, or ``None`` for an absent regularizer or constraint."""
    return None if obj is None else module.serialize(obj)


def kernel_arguments_config(layer: Layer) -> dict:
    """The JSON form of the arguments ``set_kernel_arguments`` stored."""
    optional = serialize_optional
    return {
        "activation": activations.serialize(layer.activation), "use_bias": layer.use_bias,
        "kernel_initializer": initializers.serialize(layer.kernel_initializer),
        "bias_initializer": initializers.serialize(layer.bias_initializer),
        "kernel_regularizer": optional(regularizers, layer.kernel_regularizer),
        "bias_regularizer": optional(regularizers, layer.bias_regularizer),
        "activity_regularizer": optional(regularizers, layer.activity_regularizer),
        "kernel_constraint": optional(constraints, layer.kernel_constraint),
        "bias_constraint": optional(constraints, layer.bias_constraint),
    }

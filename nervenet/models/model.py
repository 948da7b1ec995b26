"""Model: a Layer that can be trained, as Keras's.

Three ways to make one, as in Keras:

* the functional API: ``Model(inputs=[...], outputs=[...])`` from ``layers.Input``
  placeholders and layer calls on them (several inputs and outputs, shared layers, nested
  models; the graph lives in ``functional.py``);
* subclassing: define ``__init__`` (assign layers as attributes) and ``call``;
* ``Sequential``.

This module is the layer side (the graph, the structure, saving); how a model learns
(``compile``, ``train_step``, ``fit``, ``evaluate``, ``predict``) is ``trainer.Trainer``,
which ``Model`` inherits, as Keras 3's Model inherits its Trainer.
"""

from __future__ import annotations

import numpy as np

from nervenet import backend, saving
from nervenet.autograd import no_grad
from nervenet.layers.base import Layer, registry as layer_registry
from nervenet.layers.core import InputLayer
from nervenet.models.functional import Graph
from nervenet.models.summary import print_summary
from nervenet.models.trainer import Trainer
from nervenet.nest import flatten
from nervenet.registry import Registry

export_formats = Registry("export format")
"""The formats ``Model.export`` writes: id -> ``write(model, filepath, **options)``. The
exporters sit a floor above the models they trace, so they register here from above
(``nervenet/__init__.py`` registers ``"onnx"``) and models import nothing of theirs."""


class Model(Trainer, Layer):
    """A trainable network of layers.

    Args:
        inputs: the functional API's inputs: one ``layers.Input(...)`` placeholder, or a list,
            tuple or dict (by name) of them (default ``None``: a subclassed model).
        outputs: placeholders computed from ``inputs`` by layer calls: one, or a list of them
            (default ``None``).
        name: the model's name (default: the snake_case class name).

    Example (functional, the Wide & Deep network):
        >>> from nervenet import layers
        >>> input_ = layers.Input(shape=(8,))
        >>> hidden1 = layers.Dense(30, activation="relu")(input_)
        >>> hidden2 = layers.Dense(30, activation="relu")(hidden1)
        >>> concat = layers.Concatenate()([input_, hidden2])
        >>> output = layers.Dense(1)(concat)
        >>> model = Model(inputs=[input_], outputs=[output])
        >>> model.predict(np.zeros((5, 8)), verbose=0).shape
        (5, 1)

    Example (subclassing):
        >>> from nervenet import layers
        >>> class TwoLayer(Model):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.hidden = layers.Dense(8, activation="relu")
        ...         self.out = layers.Dense(1)
        ...     def call(self, inputs, training=False):
        ...         return self.out(self.hidden(inputs))
        >>> model = TwoLayer()
        >>> model(np.zeros((2, 3))).shape
        (2, 1)
    """

    def __init__(self, inputs=None, outputs=None, name: str | None = None, **kwargs):
        super().__init__(name=name, **kwargs)
        # JSON-able facts the model file carries with it (the CLI's class names, feature names
        # and task); Model.save writes them to metadata.json and load_model restores them
        self.metadata: dict = {}
        self._graph: Graph | None = None
        if inputs is not None or outputs is not None:
            if inputs is None or outputs is None:
                raise ValueError(f"Model {self.name!r}: give both inputs and outputs (the "
                                 "functional API), or neither (a subclassed model)")
            self._graph = Graph(inputs, outputs)
            self.tracked_layers = list(self._graph.layers)
            self.inputs = list(self._graph.inputs)
            self.outputs = list(self._graph.outputs)
            shapes = [t.shape for t in self.inputs]
            self.input_shape = shapes[0] if len(shapes) == 1 else shapes
            self.output_shape = self.compute_output_shape(self.input_shape)
            self.built = True

    # -------------------------------------------------------------------- structure
    @property
    def input_names(self) -> list[str]:
        """The names to feed inputs by (a functional model's Input names)."""
        return list(self._graph.input_names) if self._graph is not None else ["input"]

    @property
    def output_names(self) -> list[str]:
        """The outputs' names, as Keras names the per-output losses and metrics
        (``<name>_loss``): the layers that produce them, or, for a subclassed model,
        ``output_1``, ``output_2``, ... (as many as its last call returned)."""
        if self._graph is not None:
            return list(self._graph.output_names)
        layers = self.layers
        if layers and type(self).__name__ == "Sequential":
            return [layers[-1].name]
        count = len(self.output_shape) if isinstance(self.output_shape, list) else 1
        return [f"output_{index + 1}" for index in range(count)]

    def has_fixed_outputs(self) -> bool:
        """Whether the outputs are known without running the model (a functional model or a
        Sequential); a subclassed model shows them at its first call."""
        return self._graph is not None or type(self).__name__ == "Sequential"

    def standardize_inputs(self, x):
        """Arrays ``x`` in the order of the model's inputs (a functional model matches a dict
        by input name); other models take ``x`` as it comes."""
        if self._graph is None:
            return x
        x = self._graph.standardize_inputs(x)
        return x[0] if len(x) == 1 else x

    def call(self, inputs, training: bool = False):
        """A functional model runs its graph; a subclass defines its own ``call``."""
        if self._graph is None:
            raise NotImplementedError(
                f"{type(self).__name__} must implement call(inputs, training=None), or be "
                "built with Model(inputs=..., outputs=...)")
        return self._graph.run(inputs, training)

    def compute_output_shape(self, input_shape):
        """A functional model's output shapes come from its graph; a subclassed model's
        ``call`` is any Python code, so it is run on one sample of zeros (as Keras traces
        it)."""
        if self._graph is not None:
            shapes = self._graph.output_shapes()
            return shapes[0] if self._graph.single_output else shapes
        several = isinstance(input_shape, list)
        arrays = [np.zeros(tuple(1 if d is None else d for d in shape), self.dtype)
                  for shape in (input_shape if several else [input_shape])]
        with no_grad():
            outputs = self(arrays if several else arrays[0], training=False)
        shapes = [(None,) + tuple(o.shape[1:]) for o in flatten(outputs)]
        return shapes if isinstance(outputs, (list, tuple)) else shapes[0]

    def _sublayer_paths(self) -> list[tuple[str, Layer]]:
        if self._graph is None:
            return super()._sublayer_paths()  # subclassed: by attribute name
        return [(layer.name, layer) for layer in self.sublayers]  # the graph's named layers

    @property
    def layers(self) -> list[Layer]:
        """The model's layers, in order (the Input layer is not listed, as Keras)."""
        return [layer for layer in self.sublayers if not isinstance(layer, InputLayer)]

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """Return a layer by ``name`` or by ``index`` in ``layers``."""
        if (name is None) == (index is None):
            raise ValueError("get_layer: give exactly one of name and index")
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"get_layer: index {index} is out of range for a model with "
                                 f"{len(self.layers)} layers")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"get_layer: no layer named {name!r}; the layers are "
                         f"{[layer.name for layer in self.layers]}")

    def to(self, device: str) -> Model:
        """Move the model to ``device`` (``"cpu"``, ``"gpu"`` or ``"fake"``): every weight
        (trainable or not, e.g. BatchNormalization's moving statistics) and the optimizer's
        state; ``fit``, ``evaluate`` and ``predict`` then move each batch there and still
        return NumPy arrays. Returns the model, as ``torch.nn.Module.to``.

        Weights keep their identity (the optimizer's and callbacks' references stay valid);
        saving always writes host arrays, and ``load_model(path).to(device)`` loads onto a
        device.

        Raises:
            ValueError: an unknown device, or a model not built yet (its weights do not
                exist: build it, or call it on a batch, first).
            RuntimeError: ``"gpu"`` without CuPy or without a CUDA GPU.

        Example:
            >>> from nervenet import layers, models
            >>> model = models.Sequential([layers.Input(shape=(3,)), layers.Dense(2)])
            >>> model = model.to("fake")
            >>> model.device, model.weights[0].device
            ('fake', 'fake')
            >>> type(model.predict(np.ones((4, 3)), verbose=0))
            <class 'numpy.ndarray'>
        """
        backend.check_device(device)
        if not self.built:
            raise ValueError(f"{self.name}.to({device!r}): the model is not built, so it has no "
                             "weights to move yet; build it (an Input, model.build(shape)) or "
                             "call it on a batch first")
        for weight in self.weights:
            weight.data = backend.to_device(weight.data, device)
        if self.optimizer is not None:
            self.optimizer.move_state(device)
        self.device = device
        return self

    def summary(self, print_fn=None, line_length: int | None = None) -> None:
        """Print a table of the layers with output shapes and parameter counts (and, for a
        functional model, what each layer is connected to)."""
        print_summary(self, print_fn=print_fn, line_length=line_length)

    # ----------------------------------------------------------------- saving
    def save(self, filepath, overwrite: bool = True, save_format: str | None = None) -> None:
        """Save the whole model (architecture, weights, compile settings and optimizer state)
        to one file, atomically (see ``nervenet.saving.save_model``).

        ``save_format`` (``"tf"``, ``"h5"``, ``"keras"``, as TF-Keras 2 code writes it) and
        Keras file names (``"my_model.h5"``) are accepted with a warning: the file is
        nervenet's format whatever the name, and ``load_model`` of the same path restores it.

        A subclassed model needs ``get_config()`` (returning its constructor arguments) and
        ``@nervenet.saving.register_serializable()`` to be saved whole; ``save_weights``
        always works.
        """
        if save_format not in (None, "tf", "h5", "keras", "nervenet"):
            raise ValueError(f"save: save_format must be None, 'tf', 'h5', 'keras' or "
                             f"'nervenet', got {save_format!r}")
        saving.warn_foreign_format(filepath, "model", None if save_format in (
            None, "nervenet") else save_format)
        saving.save_model(self, filepath, overwrite=overwrite)

    def save_weights(self, filepath, overwrite: bool = True) -> None:
        """Write the weights to one safetensors file (``.weights.safetensors`` by convention;
        Keras-style names are accepted), keyed by layer and weight name (``dense/kernel``)."""
        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath) -> None:
        """Load weights written by ``save_weights`` (or a model file), by name, or by
        structure (layer and weight order, as Keras 3) into a fresh copy of the model whose
        layers have other names; every shape is checked before any weight changes."""
        saving.load_weights(self, filepath)

    def export(self, filepath, format: str = "onnx", opset: int | None = None,  # noqa: A002
               dynamic_batch: bool = True) -> None:
        """Export the model for inference elsewhere, as Keras 3's ``model.export``: ``format``
        names a writer in ``export_formats``; ``"onnx"`` (the only one) writes an ONNX file
        with ``nervenet.onnx.export`` (see there for ``opset`` and ``dynamic_batch``; needs the
        ``onnx`` package)."""
        write = export_formats.lookup(format)
        write(self, filepath, opset=opset, dynamic_batch=dynamic_batch)

    def get_config(self) -> dict:
        """A functional model's graph (every layer's config and the calls between them).

        Raises:
            NotImplementedError: for a subclassed model that does not define ``get_config``.
        """
        if self._graph is None:
            raise NotImplementedError(
                f"model {self.name!r} is a subclassed Model ({type(self).__qualname__}); to "
                "be saved whole it needs get_config() returning its constructor arguments "
                "(and its class decorated with @nervenet.saving.register_serializable()). "
                "Without them, save its weights with save_weights() and rebuild it in code")
        return {"name": self.name, "trainable": self.trainable, **self._graph.get_config()}

    @classmethod
    def from_config(cls, config: dict) -> Model:
        if cls is not Model or "nodes" not in config:
            return cls(**config)
        inputs, outputs = Graph.inputs_outputs_from_config(config)
        return cls(inputs=inputs, outputs=outputs, name=config.get("name"),
                   trainable=config.get("trainable", True))


layer_registry.add("Functional", Model)

"""Sequential: a plain stack of layers, each feeding the next."""

from __future__ import annotations

from nervenet.layers.base import Layer, deserialize, registry as layer_registry, serialize
from nervenet.layers.core import InputLayer
from nervenet.layers.symbolic import SymbolicTensor
from nervenet.models.model import Model


@layer_registry.register("Sequential")
class Sequential(Model):
    """A model whose layers are applied one after the other.

    Args:
        layers: the layers, in order (default ``None``: add them with ``add``). The first may
            be ``Input(shape=...)``, or the first layer may get ``input_shape=...``; otherwise
            the model is built at its first call.
        name: the model's name.

    Example:
        >>> from nervenet import layers
        >>> model = Sequential([layers.Input(shape=(4,)), layers.Dense(3, activation="relu"),
        ...                     layers.Dense(1)])
        >>> model.count_params()
        19
    """

    def __init__(self, layers=None, name: str | None = None, **kwargs):
        super().__init__(name=name, **kwargs)
        self._input_layer: InputLayer | None = None
        self._stack: list[Layer] = []
        for layer in layers or []:
            self.add(layer)

    def add(self, layer) -> None:
        """Append a layer (or set the input with an ``Input(...)`` tensor)."""
        if isinstance(layer, SymbolicTensor):
            layer = layer.layer
        if isinstance(layer, InputLayer):
            if self._input_layer is not None or self._stack:
                raise ValueError(f"Sequential {self.name!r}: an Input can only come first")
            self._input_layer = layer
            self._build_from_input()
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a Layer, got {type(layer).__name__}")
        if any(existing is layer for existing in self._stack):
            raise ValueError(f"Sequential {self.name!r}: layer {layer.name!r} is already in the "
                             "model")
        if not self._stack and self._input_layer is None and layer.sample_shape is not None:
            self._input_layer = InputLayer(shape=layer.sample_shape)
        self._stack.append(layer)
        self._stack_changed()
        self._build_from_input()

    def pop(self) -> Layer:
        """Remove and return the last layer."""
        if not self._stack:
            raise ValueError(f"Sequential {self.name!r} has no layer to pop")
        layer = self._stack.pop()
        self._stack_changed()
        return layer

    def _stack_changed(self) -> None:
        # assigning the list through __setattr__ keeps sub-layer tracking in step
        self.tracked_layers = [self._input_layer, *self._stack] if self._input_layer else list(
            self._stack)
        self.built = False

    def _build_from_input(self) -> None:
        if self._input_layer is not None:
            self.build((None,) + self._input_layer.shape)
            self.built = True

    def build(self, input_shape) -> None:
        """Build every layer in turn from the shapes each one reports."""
        shape = tuple(input_shape)
        if self._input_layer is not None:
            self._input_layer.check_input_shapes([shape])
        for layer in self._stack:
            layer.maybe_build([shape])
            layer.input_shape = shape
            shape = tuple(layer.compute_output_shape(shape))
            layer.output_shape = shape
        self.input_shape = tuple(input_shape)
        self.output_shape = shape

    def call(self, inputs, training: bool = False):
        if self._input_layer is not None:
            inputs = self._input_layer(inputs)
        for layer in self._stack:
            inputs = layer(inputs, training=training)
        return inputs

    def _sublayer_paths(self) -> list[tuple[str, Layer]]:
        return [(layer.name, layer) for layer in self.sublayers]  # by layer name, as Keras

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self._stack:
            shape = tuple(layer.compute_output_shape(shape))
        return shape

    def get_config(self) -> dict:
        config = {"name": self.name, "trainable": self.trainable, "layers": []}
        if self._input_layer is not None:
            config["layers"].append(serialize(self._input_layer))
        for layer in self._stack:
            config["layers"].append(serialize(layer))
        return config

    @classmethod
    def from_config(cls, config: dict) -> Sequential:
        entries = config.get("layers", [])
        if not isinstance(entries, list):
            raise ValueError(f"Sequential config: 'layers' must be a list, got "
                             f"{type(entries).__name__}")
        layers = [deserialize(entry) for entry in entries]
        return cls(layers, name=config.get("name"), trainable=config.get("trainable", True))

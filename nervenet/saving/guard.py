"""The loading guard: what a model file may make the layers build while it is rebuilt.

A config names layers and their sizes; the weights file holds the values. A hostile or
corrupted config could name a Dense of 10^12 units: ``load_budget`` makes such a load fail
with a clear error before anything of that size is allocated. Layers consult the guard of
the running load through ``nervenet.loading`` (a floor below them); the rules are here.
"""

from __future__ import annotations

import math

from nervenet import loading


class load_budget:  # noqa: N801  (a context manager, used like a function)
    """Within ``with load_budget(weights, activations):``, in this thread, layers may create
    at most ``weights`` weight values in all (``add_weight`` raises ValueError beyond that,
    and creates zeros without running the initializer: the file's values replace them), and
    no layer may take or produce more than ``activations`` values per sample (checked from
    the shapes, before the layer computes). Model loading uses it."""

    def __init__(self, weights: int, activations: int | None = None):
        self.weights = int(weights)
        self.activations = activations

    def __enter__(self) -> load_budget:
        self._outer = loading.swap_guard(self)
        return self

    def __exit__(self, *exc_info) -> None:
        loading.swap_guard(self._outer)

    def take_weights(self, layer, name: str, shape: tuple) -> None:
        size = math.prod(shape)  # Python ints: a huge shape cannot overflow to 0
        if size > self.weights:
            raise ValueError(f"{layer.name}: weight {name!r} of shape {shape} has more "
                             "values than the whole weights file holds")
        self.weights -= size

    def check_activation(self, layer, shape, what: str) -> None:
        if self.activations is None or not isinstance(shape, tuple) or not all(
                d is None or isinstance(d, int) for d in shape):
            return
        values = math.prod(d or 1 for d in shape[1:])
        if values > self.activations:
            raise ValueError(f"{layer.name}: its {what} of shape {shape} has {values} values "
                             f"per sample, over the {self.activations} a loaded model may "
                             "build with")

"""``load(path)``: an ONNX file as a nervenet Model.

* A nervenet export (``metadata_props`` has ``nervenet.config``) is rebuilt from its config,
  and every weight read back from the initializer the export recorded for it (transposed
  back), or from the original weights the export kept: the same model, exactly.
* Any other graph is converted node by node by the operator converters of
  ``nervenet.onnx.operators`` into a functional model.

Both paths read the file through ``reader.read`` (bounded sizes, external data only from the
file's own folder), build their layers with zeros instead of initializer draws
(``load_budget``) and read each weight's bytes from the file straight into the layer's
array, so a load costs about the file's size (``docs/onnx.md``); every failure is a
``ModelFormatError``.
"""

from __future__ import annotations

import json

import numpy as np

from nervenet.layers.base import deserialize
from nervenet.onnx.exporter import FORMAT
from nervenet.onnx.operators import convert_graph
from nervenet.onnx.reader import OnnxFile, read
from nervenet.saving import (
    _MAX_BUILD_VALUES,
    _OLDER_FILE_SLACK,
    ModelFormatError,
    _assign,
    _build,
    _Selection,
)
from nervenet.saving.guard import load_budget

__all__ = ["load"]

_REBUILD_ERRORS = (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError,
                   MemoryError, RecursionError)


class _ExportedWeights:
    """The weights of a nervenet export by weight path, each read on demand from the
    initializer the export recorded for it (stored as the weight transposed by ``perm``)
    straight into the model's own array: no second copy of the weights is ever made."""

    def __init__(self, file: OnnxFile, mapping):
        if not isinstance(mapping, dict):
            raise ValueError("'weights' must map weight paths to initializers")
        self.entries = {}
        for path, entry in mapping.items():
            name, perm = entry.get("initializer"), entry.get("perm")
            stored = file.tensors.get(name, file.originals.get(name))
            if stored is None:
                raise ValueError(f"weight {path!r} names initializer {name!r}, which the file "
                                 "does not hold")
            if perm is not None and sorted(perm) != list(range(stored.ndim)):
                raise ValueError(f"weight {path!r}: {perm!r} is not a permutation of the "
                                 f"axes of its initializer of shape {stored.shape}")
            self.entries[path] = (stored, None if perm is None else tuple(perm))

    def values(self) -> int:
        return sum(stored.size for stored, _ in self.entries.values())

    def shape(self, path: str) -> tuple:
        stored, perm = self.entries[path]
        return stored.shape if perm is None else tuple(stored.shape[i] for i in np.argsort(perm))

    def dtype(self, path: str) -> np.dtype:
        return self.entries[path][0].dtype

    def read(self, path: str, out: np.ndarray | None = None) -> np.ndarray:
        stored, perm = self.entries[path]
        if out is None:
            out = np.empty(self.shape(path), stored.dtype)
        return stored.read(out=out, perm=perm)

    def __getitem__(self, path: str) -> np.ndarray:
        return self.read(path)


def _load_own(file: OnnxFile):
    where = file.where
    try:
        config = json.loads(file.metadata["nervenet.config"])
    except (ValueError, RecursionError) as error:
        raise ModelFormatError(f"{where}: its nervenet.config metadata is not valid JSON "
                               f"({error})") from None
    if not isinstance(config, dict):
        raise ModelFormatError(f"{where}: its nervenet.config metadata is not a JSON object")
    try:
        weights = _ExportedWeights(file, config.get("weights"))
        with load_budget(weights.values(), _MAX_BUILD_VALUES):
            model = deserialize(config.get("model"))
            if not hasattr(model, "compile"):
                raise ValueError(f"{type(model).__name__} is a layer, not a model")
            if not model.built or not model.named_weights():
                _build(model, config.get("input_shape"))
    except _REBUILD_ERRORS as error:
        raise ModelFormatError(f"{where}: cannot rebuild the nervenet model: "
                               f"{type(error).__name__}: {error}") from None
    if weights.entries or model.named_weights():  # a model without weights: nothing to do
        # read into the fresh model's weights directly (nobody holds it yet: no staging)
        _assign(model, _Selection(weights, {path: path for path in weights.entries}), where,
                staged=False)
    return model


def load(path):
    """See ``nervenet.onnx.load``."""
    file = read(path)
    if file.metadata.get("nervenet.format") == FORMAT and "nervenet.config" in file.metadata:
        return _load_own(file)
    if "nervenet.format" in file.metadata and any(
            len(v.type.tensor_type.shape.dim) == 4 for v in file.proto.graph.input):
        # its images are channels-last already: the importer would read them as NCHW
        raise ModelFormatError(f"{file.where}: exported by nervenet from a model without a "
                               "config (a subclassed model); rebuild the model in code instead")
    try:
        # layers made for the graph start as zeros (no initializer draws), the file's values
        # read into them; they may hold at most twice the file's values (a scalar Gemm bias
        # becomes one per unit)
        values = sum(t.size for t in [*file.tensors.values(), *file.originals.values()])
        with load_budget(2 * values + _OLDER_FILE_SLACK, _MAX_BUILD_VALUES):
            return convert_graph(file)
    except ModelFormatError:
        raise
    except _REBUILD_ERRORS as error:
        raise ModelFormatError(f"{file.where}: cannot convert the graph: "
                               f"{type(error).__name__}: {error}") from None

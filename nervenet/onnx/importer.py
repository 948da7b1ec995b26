"""``load(path)``: an ONNX file as a nervenet Model.

* A nervenet export (``metadata_props`` has ``nervenet.config``) is rebuilt from its config,
  and every weight read back from the initializer the export recorded for it (transposed
  back), or from the original weights the export kept: the same model, exactly.
* Any other graph is converted node by node by the operator converters of
  ``nervenet.onnx.operators`` into a functional model.

Both paths read the file through ``reader.read`` (bounded sizes, external data only from the
file's own folder) and turn every failure into a ``ModelFormatError``.
"""

from __future__ import annotations

import json

import numpy as np

from nervenet.layers.base import deserialize, load_budget
from nervenet.onnx.exporter import FORMAT
from nervenet.onnx.operators import convert_graph
from nervenet.onnx.reader import OnnxFile, read
from nervenet.saving import _MAX_BUILD_VALUES, ModelFormatError, _assign, _build

__all__ = ["load"]

_REBUILD_ERRORS = (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError,
                   MemoryError, RecursionError)


def _own_weights(file: OnnxFile, mapping) -> dict[str, np.ndarray]:
    if not isinstance(mapping, dict):
        raise ValueError("'weights' must map weight paths to initializers")
    weights = {}
    for path, entry in mapping.items():
        name, perm = entry.get("initializer"), entry.get("perm")
        array = file.tensors.get(name, file.originals.get(name))
        if array is None:
            raise ValueError(f"weight {path!r} names initializer {name!r}, which the file "
                             "does not hold")
        if perm is not None:
            if sorted(perm) != list(range(array.ndim)):
                raise ValueError(f"weight {path!r}: {perm!r} is not a permutation of the "
                                 f"axes of its initializer of shape {array.shape}")
            array = np.transpose(array, np.argsort(perm))
        weights[path] = array.copy(order="C")  # (ascontiguousarray makes scalars 1-D)
    return weights


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
        weights = _own_weights(file, config.get("weights"))
        with load_budget(sum(a.size for a in weights.values()), _MAX_BUILD_VALUES):
            model = deserialize(config.get("model"))
            if not hasattr(model, "compile"):
                raise ValueError(f"{type(model).__name__} is a layer, not a model")
            if not model.built or not model.named_weights():
                _build(model, config.get("input_shape"))
    except _REBUILD_ERRORS as error:
        raise ModelFormatError(f"{where}: cannot rebuild the nervenet model: "
                               f"{type(error).__name__}: {error}") from None
    if weights or model.named_weights():  # a model without weights has nothing to assign
        _assign(model, weights, where)
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
        return convert_graph(file)
    except ModelFormatError:
        raise
    except _REBUILD_ERRORS as error:
        raise ModelFormatError(f"{file.where}: cannot convert the graph: "
                               f"{type(error).__name__}: {error}") from None

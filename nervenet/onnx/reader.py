"""Reading an ONNX file without trusting it.

An ONNX file is a protobuf message; its large tensors may live in other files (*external
data*, ``model.onnx.data``), named by a path inside the message. A hostile file can name
``../../etc/passwd`` or an absolute path there, declare a tensor of 10^12 values backed by a
few bytes, nest messages until the parser overflows, or wire its nodes in a cycle. So:

* the file is read whole, under the same size bound as a ``.nervenet`` file, and parsed
  without ``onnx.load``'s automatic external-data loading;
* every tensor's declared size must match the bytes that back it, and is bounded before any
  array is allocated; external data is read only from regular files inside the ONNX file's
  own folder (symbolic links resolved first), within their size;
* the graph's inputs have bounded sample sizes, the metadata bounded length.

Every violation is a ``ModelFormatError`` naming the problem. (Cycles, and tensors used before
any node produces them, are found when the graph is walked in order by the importer.)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper

from nervenet.saving.archive import MEMBER_LIMITS, ModelFormatError

__all__ = ["MAX_FILE_BYTES", "OnnxFile", "read"]

#: protobuf messages cannot exceed 2 GiB; larger weights must be external data
MAX_FILE_BYTES = 2**31
#: one tensor, however stored, at most this many bytes (as a ``.nervenet`` file's weights)
MAX_TENSOR_BYTES = MEMBER_LIMITS["weights.safetensors"]
#: the most nodes a graph may have (a real network has hundreds to a few thousand)
MAX_NODES = 100_000
#: the most values one sample of a graph input may have (as a model file's build shape)
MAX_SAMPLE_VALUES = 2**24
#: the metadata string holding a nervenet config, at most as large as a model's config.json
MAX_CONFIG_BYTES = MEMBER_LIMITS["config.json"]

_DTYPES = {onnx.TensorProto.FLOAT: np.float32, onnx.TensorProto.DOUBLE: np.float64,
           onnx.TensorProto.INT64: np.int64, onnx.TensorProto.INT32: np.int32}


@dataclass
class OnnxFile:
    """A checked ONNX file: the message, its tensors (initializers and the original weights
    of a nervenet export) as arrays, and its metadata."""

    proto: onnx.ModelProto
    tensors: dict[str, np.ndarray]
    originals: dict[str, np.ndarray]
    metadata: dict[str, str]
    where: str

    @property
    def folder(self) -> str:
        """The only folder external data may be read from: the file's own."""
        return os.path.dirname(os.path.abspath(self.where))


def _external_bytes(tensor: onnx.TensorProto, folder: str, nbytes: int, where: str) -> bytes:
    info = {entry.key: entry.value for entry in tensor.external_data}
    location = info.get("location", "")
    try:
        offset, length = int(info.get("offset", 0)), int(info.get("length", nbytes))
    except ValueError:
        raise ModelFormatError(f"{where}: tensor {tensor.name!r}: external data offset/length "
                               f"are not integers ({info})") from None
    root = os.path.realpath(folder)
    target = os.path.realpath(os.path.join(root, location))
    if (not location or os.path.isabs(location)
            or os.path.commonpath([root, target]) != root or target == root):
        raise ModelFormatError(f"{where}: tensor {tensor.name!r}: its external data "
                               f"{location!r} is not a file inside the model's folder {root}")
    if not os.path.isfile(target):
        raise ModelFormatError(f"{where}: tensor {tensor.name!r}: its external data file "
                               f"{location!r} does not exist beside the model")
    if offset < 0 or length != nbytes or offset + length > os.path.getsize(target):
        raise ModelFormatError(
            f"{where}: tensor {tensor.name!r}: external data at offset {offset}, length "
            f"{length} does not hold its {nbytes} bytes within {location!r} "
            f"({os.path.getsize(target)} bytes)")
    with open(target, "rb") as handle:
        handle.seek(offset)
        return handle.read(length)


def tensor_array(tensor: onnx.TensorProto, folder: str, where: str) -> np.ndarray:
    """The values of ``tensor`` after checking that its declared shape matches its data."""
    dtype = _DTYPES.get(tensor.data_type)
    if dtype is None:
        kind = helper.tensor_dtype_to_string(tensor.data_type) if tensor.data_type in \
            onnx.TensorProto.DataType.values() else tensor.data_type
        raise ModelFormatError(f"{where}: tensor {tensor.name!r} has element type {kind}; "
                               "nervenet reads float32, float64, int32 and int64 tensors")
    dims = list(tensor.dims)
    if any(d < 0 for d in dims):
        raise ModelFormatError(f"{where}: tensor {tensor.name!r} has a negative size {dims}")
    nbytes = math.prod(dims) * np.dtype(dtype).itemsize  # Python ints: no overflow
    if nbytes > MAX_TENSOR_BYTES:
        raise ModelFormatError(f"{where}: tensor {tensor.name!r} declares shape {dims} "
                               f"({nbytes} bytes), over the limit of {MAX_TENSOR_BYTES}")
    if tensor.HasField("segment"):
        raise ModelFormatError(f"{where}: tensor {tensor.name!r} is segmented, which nervenet "
                               "does not read")
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        data = _external_bytes(tensor, folder, nbytes, where)
        return np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<")).astype(
            dtype).reshape(dims)
    stored = len(tensor.raw_data) if tensor.HasField("raw_data") else (
        _typed_length(tensor) * np.dtype(dtype).itemsize)
    if stored != nbytes:
        raise ModelFormatError(f"{where}: tensor {tensor.name!r} declares shape {dims} "
                               f"({nbytes} bytes) but holds {stored} bytes")
    return numpy_helper.to_array(tensor).astype(dtype, copy=False)


def _typed_length(tensor: onnx.TensorProto) -> int:
    return (len(tensor.float_data) + len(tensor.double_data) + len(tensor.int32_data)
            + len(tensor.int64_data))


def _check_inputs(graph: onnx.GraphProto, where: str) -> None:
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        sample = [d.dim_value for d in dims[1:] if d.HasField("dim_value")]
        if any(d < 0 for d in sample) or math.prod(sample) > MAX_SAMPLE_VALUES:
            raise ModelFormatError(f"{where}: input {value.name!r} declares samples of shape "
                                   f"{sample}, over the limit of {MAX_SAMPLE_VALUES} values")


def read(path) -> OnnxFile:
    """Parse and check the ONNX file at ``path`` (see the module docstring).

    Raises:
        ModelFormatError: for any malformed, truncated, oversized or hostile content.
    """
    where = os.fspath(path)
    size = os.path.getsize(where)
    if size > MAX_FILE_BYTES:
        raise ModelFormatError(f"{where}: {size} bytes is over the limit of {MAX_FILE_BYTES} "
                               "for an ONNX file")
    with open(where, "rb") as handle:
        data = handle.read()
    try:
        proto = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RecursionError, RuntimeError) as error:
        raise ModelFormatError(f"{where}: not a readable ONNX file ({error}); truncated or "
                               "not an ONNX model?") from None
    if not proto.HasField("graph") or not proto.graph.output:
        raise ModelFormatError(f"{where}: not an ONNX model (no graph, or a graph without "
                               "outputs); truncated?")
    if len(proto.graph.node) > MAX_NODES:
        raise ModelFormatError(f"{where}: {len(proto.graph.node)} nodes, over the limit of "
                               f"{MAX_NODES}")
    _check_inputs(proto.graph, where)
    folder = os.path.dirname(os.path.abspath(where))
    tensors = {t.name: tensor_array(t, folder, where) for t in proto.graph.initializer}
    originals = {t.name: tensor_array(t, folder, where) for info in proto.training_info
                 for t in info.initialization.initializer}
    metadata = {}
    for prop in proto.metadata_props:
        if len(prop.value) > MAX_CONFIG_BYTES:
            raise ModelFormatError(f"{where}: metadata {prop.key!r} has {len(prop.value)} "
                                   f"characters, over the limit of {MAX_CONFIG_BYTES}")
        metadata[prop.key] = prop.value
    return OnnxFile(proto, tensors, originals, metadata, where)

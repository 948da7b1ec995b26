"""Reading an ONNX file without trusting it, in memory bounded by its weights.

An ONNX file is a protobuf message; its large tensors may live in other files (*external
data*, ``model.onnx.data``), named by a path inside the message. A hostile file can name
``../../etc/passwd`` or an absolute path there, declare a tensor of 10^12 values backed by a
few bytes, nest messages until the parser overflows, or wire its nodes in a cycle. So:

* the file is mapped, not read: a scan of the protobuf wire format finds the bytes of every
  initializer (``raw_data``, packed ``float_data``/``double_data``) and parses only the rest
  (nodes, shapes, names, metadata: a few KiB to MiB) with ``onnx``, without its automatic
  external-data loading. A weight's bytes are read later straight into the array that keeps
  them (the model's weight), in chunks when they must be transposed or cast
  (``StoredTensor.read``): loading costs about the file's size plus a bounded amount,
  as a ``.nervenet`` file;
* every tensor's declared size must match the bytes that back it, and is bounded before any
  array is allocated; external data is read only from regular files inside the ONNX file's
  own folder (symbolic links resolved first), within their size;
* the graph's inputs have bounded sample sizes, the metadata bounded length.

Every violation is a ``ModelFormatError`` naming the problem. (Cycles, and tensors used before
any node produces them, are found when the graph is walked in order by the importer.)
"""

from __future__ import annotations

import math
import mmap
import os
import stat
import sys
from dataclasses import dataclass

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper

from nervenet.saving.archive import MEMBER_LIMITS, ModelFormatError

__all__ = ["MAX_FILE_BYTES", "OnnxFile", "StoredTensor", "read"]

#: protobuf messages cannot exceed 2 GiB; larger weights must be external data
MAX_FILE_BYTES = 2**31
#: one tensor, however stored, at most this many bytes (as a ``.nervenet`` file's weights)
MAX_TENSOR_BYTES = MEMBER_LIMITS["weights.safetensors"]
#: the most nodes a graph may have (a real network has hundreds to a few thousand)
MAX_NODES = 100_000
#: the most protobuf fields the wire-format scan visits outside tensors (a node counts one)
MAX_FIELDS = 500_000
#: the most fields of one initializer (dims, type, name, data, external data entries)
MAX_TENSOR_FIELDS = 256
#: the most values one sample of a graph input may have (as a model file's build shape)
MAX_SAMPLE_VALUES = 2**24
#: the metadata string holding a nervenet config, at most as large as a model's config.json
MAX_CONFIG_BYTES = MEMBER_LIMITS["config.json"]
#: bytes of a tensor transposed or cast at a time while it is read into its array
CHUNK_BYTES = 2**24

_DTYPES = {onnx.TensorProto.FLOAT: np.float32, onnx.TensorProto.DOUBLE: np.float64,
           onnx.TensorProto.INT64: np.int64, onnx.TensorProto.INT32: np.int32}

# protobuf field numbers (onnx.proto): the path from the model to an initializer's bytes
_MODEL_GRAPH, _MODEL_TRAINING_INFO = 7, 20
_TRAINING_INITIALIZATION = 1
_GRAPH_INITIALIZER = 5
#: TensorProto fields whose payload is the tensor's little-endian bytes (packed repeated
#: float/double are exactly that, as raw_data is)
_PAYLOADS = {9: "raw_data", 4: "float_data", 10: "double_data"}


# ------------------------------------------------------------------------------- tensors
@dataclass
class StoredTensor:
    """A checked tensor of the file, its values not read yet: ``dims`` values of ``dtype``
    at ``offset`` in the file ``path``, or the small array ``inline`` parsed with the
    message (int tensors, Constant nodes)."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    path: str | None = None
    offset: int = 0
    inline: np.ndarray | None = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def read(self, out: np.ndarray | None = None, perm=None, gather=None) -> np.ndarray:
        """The values, into ``out`` (default: a new array of the stored dtype and shape).

        ``out`` may have another dtype, and another layout: ``out.transpose(perm)`` receives
        the stored tensor (so ``out`` is the stored tensor transposed by ``argsort(perm)``),
        with ``gather = (axis, index)`` its ``index`` entries along that stored axis
        (``out.transpose(perm) = stored.take(index, axis)``). The bytes go straight into
        ``out`` when nothing needs converting, else in chunks of rows of at most
        ``CHUNK_BYTES``: never a whole second copy of a large tensor.
        """
        shape = list(self.shape)
        if gather is not None:
            shape[gather[0]] = len(gather[1])
        if out is None:
            out = np.empty(shape, self.dtype)
        view = out if perm is None else out.transpose(perm)
        if list(view.shape) != shape:
            raise ValueError(f"tensor {self.name!r} of shape {self.shape} does not fit an array "
                             f"of shape {out.shape} (perm {perm}, gather axis "
                             f"{None if gather is None else gather[0]})")
        if self.inline is not None:
            view[...] = self.inline if gather is None else self.inline.take(gather[1], gather[0])
            return out
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            if gather is None and view.dtype == self.dtype and view.flags.c_contiguous \
                    and sys.byteorder == "little":
                _read_exactly(handle, view, self)
            else:
                self._read_rows(handle, view, gather)
        return out

    def _read_rows(self, handle, view: np.ndarray, gather) -> None:
        """``view = stored`` (or its gather), a chunk of rows of the first axis at a time."""
        if self.ndim == 0 or self.size == 0:
            view[...] = self._chunk(handle, self.shape)
            return
        row = math.prod(self.shape[1:]) * self.dtype.itemsize
        step = max(1, CHUNK_BYTES // max(row, 1))
        if not view.flags.c_contiguous:
            # a transpose writes each row across the array: a few hundred rows at a time keep
            # the written runs in cache (4x faster than 16 MiB chunks for a Dense kernel)
            step = min(step, 256)
        inverse = None
        if gather is not None and gather[0] == 0:  # rows land where the index names them
            inverse = np.full(self.shape[0], -1)
            inverse[np.asarray(gather[1])] = np.arange(len(gather[1]))
        for start in range(0, self.shape[0], step):
            rows = self._chunk(handle, (min(step, self.shape[0] - start),) + self.shape[1:])
            if gather is None:
                view[start:start + len(rows)] = rows
            elif gather[0] == 0:
                wanted = inverse[start:start + len(rows)]
                view[wanted[wanted >= 0]] = rows[wanted >= 0]
            else:
                view[start:start + len(rows)] = rows.take(gather[1], axis=gather[0])

    def _chunk(self, handle, shape) -> np.ndarray:
        chunk = np.empty(shape, self.dtype)
        _read_exactly(handle, chunk, self)
        return chunk if sys.byteorder == "little" else chunk.byteswap().view(
            chunk.dtype.newbyteorder())


def _read_exactly(handle, array: np.ndarray, tensor: StoredTensor) -> None:
    target = memoryview(array.reshape(-1)).cast("B")
    if handle.readinto(target) != target.nbytes:
        raise ModelFormatError(f"{tensor.path}: tensor {tensor.name!r} ends before its "
                               f"{target.nbytes} bytes (the file changed while read?)")


def _external_location(tensor: onnx.TensorProto, folder: str, nbytes: int,
                       where: str) -> tuple[str, int]:
    """(file, offset) of a tensor stored as external data, after checking that the file is
    a regular one inside ``folder`` holding its ``nbytes`` bytes."""
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
    return target, offset


def stored_tensor(tensor: onnx.TensorProto, folder: str, where: str,
                  payload: tuple[int, int] | None = None) -> StoredTensor:
    """``tensor`` checked: its declared shape matches its data, within the limits.
    ``payload`` is ``(offset, length)`` of its bytes in the file ``where`` when the scan took
    them out of the message."""
    dtype = _DTYPES.get(tensor.data_type)
    if dtype is None:
        kind = helper.tensor_dtype_to_string(tensor.data_type) if tensor.data_type in \
            onnx.TensorProto.DataType.values() else tensor.data_type
        raise ModelFormatError(f"{where}: tensor {tensor.name!r} has element type {kind}; "
                               "nervenet reads float32, float64, int32 and int64 tensors")
    dtype = np.dtype(dtype)  # the values are little-endian in the file, native in arrays
    dims = list(tensor.dims)
    if any(d < 0 for d in dims):
        raise ModelFormatError(f"{where}: tensor {tensor.name!r} has a negative size {dims}")
    nbytes = math.prod(dims) * dtype.itemsize  # Python ints: no overflow
    if nbytes > MAX_TENSOR_BYTES:
        raise ModelFormatError(f"{where}: tensor {tensor.name!r} declares shape {dims} "
                               f"({nbytes} bytes), over the limit of {MAX_TENSOR_BYTES}")
    if tensor.HasField("segment"):
        raise ModelFormatError(f"{where}: tensor {tensor.name!r} is segmented, which nervenet "
                               "does not read")
    shape = tuple(dims)
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        path, offset = _external_location(tensor, folder, nbytes, where)
        return StoredTensor(tensor.name, dtype, shape, path, offset)
    if payload is not None:
        stored = payload[1]
    else:
        stored = len(tensor.raw_data) if tensor.HasField("raw_data") else (
            _typed_length(tensor) * dtype.itemsize)
    if stored != nbytes:
        raise ModelFormatError(f"{where}: tensor {tensor.name!r} declares shape {dims} "
                               f"({nbytes} bytes) but holds {stored} bytes")
    if payload is not None:
        return StoredTensor(tensor.name, dtype, shape, where, payload[0])
    return StoredTensor(tensor.name, dtype, shape,
                        inline=numpy_helper.to_array(tensor).astype(dtype, copy=False))


def _typed_length(tensor: onnx.TensorProto) -> int:
    return (len(tensor.float_data) + len(tensor.double_data) + len(tensor.int32_data)
            + len(tensor.int64_data))


# --------------------------------------------------------------------- the wire-format scan
class _Scan:
    """Copies the message in ``buffer`` (a read-only map of the file) without the payloads
    of its initializers, recording where each payload is: ``payloads[k]`` for the k-th
    initializer of the graph, then of each training_info's initialization, in file order,
    which is the order of the parsed message's repeated fields."""

    def __init__(self, buffer, where: str):
        self.buffer, self.where = buffer, where
        self.fields = 0
        self.graph: list = []
        self.training: list[list] = []

    def fail(self, problem: str) -> ModelFormatError:
        return ModelFormatError(f"{self.where}: not a readable ONNX file ({problem}); "
                                "truncated or not an ONNX model?")

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        result = shift = 0
        while True:
            if pos >= end or shift > 63:
                raise self.fail(f"a varint at byte {pos} runs past its message")
            byte = self.buffer[pos]
            result |= (byte & 0x7F) << shift
            pos, shift = pos + 1, shift + 7
            if byte < 0x80:
                return result, pos

    def entries(self, start: int, end: int, limit: int | None = None):
        """Yield (field number, wire type, field start, value start, value end); at most
        ``limit`` fields (default: ``MAX_FIELDS`` in all the scan counts)."""
        pos, count = start, 0
        while pos < end:
            count += 1
            if limit is None:
                self.fields += 1
            if self.fields > MAX_FIELDS or (limit is not None and count > limit):
                where = "an initializer" if limit else "the model outside its nodes"
                raise ModelFormatError(f"{self.where}: more than {limit or MAX_FIELDS} "
                                       f"protobuf fields in {where}")
            key, value = self.varint(pos, end)
            number, wire = key >> 3, key & 7
            if wire == 0:
                _, stop = self.varint(value, end)
            elif wire == 2:
                length, value = self.varint(value, end)
                stop = value + length
            elif wire in (1, 5):
                stop = value + (8 if wire == 1 else 4)
            else:
                raise self.fail(f"wire type {wire} at byte {pos}")
            if number == 0 or stop > end:
                raise self.fail(f"field {number} at byte {pos} runs past its message")
            yield number, wire, pos, value, stop
            pos = stop

    def message(self, start: int, end: int, children: dict, once=()) -> bytes:
        """The message's bytes, each length-delimited field in ``children`` replaced by what
        its handler returns; a field in ``once`` may occur only once."""
        parts, seen = [], set()
        for number, wire, field, value, stop in self.entries(start, end):
            if number in once and number in seen:
                raise ModelFormatError(f"{self.where}: protobuf field {number} occurs twice "
                                       "where one message is expected")
            seen.add(number)
            handler = children.get(number) if wire == 2 else None
            if handler is None:
                parts.append(self.buffer[field:stop])
                continue
            inner = handler(value, stop)
            parts.append(_varint_bytes(number << 3 | 2) + _varint_bytes(len(inner)) + inner)
        return b"".join(parts)

    def model(self) -> bytes:
        return self.message(0, len(self.buffer), {
            _MODEL_GRAPH: lambda s, e: self.graph_message(s, e, self.graph),
            _MODEL_TRAINING_INFO: self.training_info}, once=(_MODEL_GRAPH,))

    def training_info(self, start: int, end: int) -> bytes:
        self.training.append([])
        return self.message(start, end, {_TRAINING_INITIALIZATION: lambda s, e: (
            self.graph_message(s, e, self.training[-1]))}, once=(_TRAINING_INITIALIZATION,))

    def graph_message(self, start: int, end: int, payloads: list) -> bytes:
        return self.message(start, end, {
            _GRAPH_INITIALIZER: lambda s, e: self.tensor(s, e, payloads)})

    def tensor(self, start: int, end: int, payloads: list) -> bytes:
        found = []
        parts = []
        for number, wire, field, value, stop in self.entries(start, end, MAX_TENSOR_FIELDS):
            if number in _PAYLOADS and wire == 2:
                found.append((_PAYLOADS[number], value, stop - value))
            else:
                parts.append(self.buffer[field:stop])
        if len(found) > 1:
            raise ModelFormatError(f"{self.where}: an initializer holds its data in "
                                   f"{len(found)} fields ({', '.join(f[0] for f in found)}); "
                                   "ONNX tensors have one")
        payloads.append(found[0][1:] if found else None)
        return b"".join(parts)


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# ---------------------------------------------------------------------------------- files
@dataclass
class OnnxFile:
    """A checked ONNX file: the message without its initializers' bytes, its tensors
    (initializers, and the original weights of a nervenet export) as ``StoredTensor``s read
    on demand, and its metadata."""

    proto: onnx.ModelProto
    tensors: dict[str, StoredTensor]
    originals: dict[str, StoredTensor]
    metadata: dict[str, str]
    where: str

    @property
    def folder(self) -> str:
        """The only folder external data may be read from: the file's own."""
        return os.path.dirname(os.path.abspath(self.where))


def _check_inputs(graph: onnx.GraphProto, where: str) -> None:
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        sample = [d.dim_value for d in dims[1:] if d.HasField("dim_value")]
        if any(d < 0 for d in sample) or math.prod(sample) > MAX_SAMPLE_VALUES:
            raise ModelFormatError(f"{where}: input {value.name!r} declares samples of shape "
                                   f"{sample}, over the limit of {MAX_SAMPLE_VALUES} values")


def _parse(where: str) -> tuple[onnx.ModelProto, _Scan]:
    """The message of the file without its initializers' bytes, and the scan that found them."""
    status = os.stat(where)
    if not stat.S_ISREG(status.st_mode):
        raise ModelFormatError(f"{where}: not a regular file")
    if status.st_size > MAX_FILE_BYTES:
        raise ModelFormatError(f"{where}: {status.st_size} bytes is over the limit of "
                               f"{MAX_FILE_BYTES} for an ONNX file")
    if status.st_size == 0:
        raise ModelFormatError(f"{where}: not a readable ONNX file (it is empty)")
    with open(where, "rb") as handle, \
            mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        # (slices of an mmap are bytes: no view of it outlives the map, even in a traceback)
        scan = _Scan(mapped, where)
        skeleton = scan.model()
    try:
        return onnx.load_model_from_string(skeleton), scan
    except (DecodeError, ValueError, RecursionError, RuntimeError) as error:
        raise ModelFormatError(f"{where}: not a readable ONNX file ({error}); truncated or "
                               "not an ONNX model?") from None


def _tensors(initializers, payloads: list, folder: str, where: str) -> dict[str, StoredTensor]:
    return {t.name: stored_tensor(t, folder, where, payload)
            for t, payload in zip(initializers, payloads, strict=True)}


def read(path) -> OnnxFile:
    """Parse and check the ONNX file at ``path`` (see the module docstring).

    Raises:
        ModelFormatError: for any malformed, truncated, oversized or hostile content.
    """
    where = os.fspath(path)
    proto, scan = _parse(where)
    if not proto.HasField("graph") or not proto.graph.output:
        raise ModelFormatError(f"{where}: not an ONNX model (no graph, or a graph without "
                               "outputs); truncated?")
    if len(proto.graph.node) > MAX_NODES:
        raise ModelFormatError(f"{where}: {len(proto.graph.node)} nodes, over the limit of "
                               f"{MAX_NODES}")
    _check_inputs(proto.graph, where)
    folder = os.path.dirname(os.path.abspath(where))
    tensors = _tensors(proto.graph.initializer, scan.graph, folder, where)
    originals = {}
    for info, payloads in zip(proto.training_info, scan.training, strict=True):
        originals.update(_tensors(info.initialization.initializer, payloads, folder, where))
    metadata = {}
    for prop in proto.metadata_props:
        if len(prop.value) > MAX_CONFIG_BYTES:
            raise ModelFormatError(f"{where}: metadata {prop.key!r} has {len(prop.value)} "
                                   f"characters, over the limit of {MAX_CONFIG_BYTES}")
        metadata[prop.key] = prop.value
    return OnnxFile(proto, tensors, originals, metadata, where)

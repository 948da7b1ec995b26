"""The safetensors format, written and read by hand (no pickle, nothing executed).

A file is::

    8 bytes     N, the header length, unsigned little-endian
    N bytes     a JSON object: {name: {"dtype": "F32", "shape": [3, 4],
                                       "data_offsets": [begin, end]}, ...,
                                "__metadata__": {str: str}}   (optional)
    the rest    the tensors' raw little-endian bytes, C order; offsets are relative to here

Reading checks everything before trusting it (the checks the format specification asks for,
and what a hostile file would get wrong): the header size is capped and lies inside the file,
the header is one JSON object with unique names, every dtype is known, every shape is a list
of at most ``MAX_DIMS`` non-negative ints that NumPy can make, every byte range has exactly
``prod(shape) * itemsize`` bytes, and the ranges, sorted, tile the data area from 0 to its end
with no gap and no overlap.

``TensorFile`` reads the tensors of a file region on demand (into a given array, or a new
one), so that loading needs no copy of the whole file in memory.
"""

from __future__ import annotations

import collections
import json
import math
import struct
from collections.abc import Mapping

import numpy as np

#: safetensors dtype codes and the little-endian NumPy dtypes they mean
DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_CODES = {(dtype.kind, dtype.itemsize): code for code, dtype in DTYPES.items()}

#: the largest header accepted (the reference implementation's limit)
MAX_HEADER_BYTES = 100_000_000
#: the most dimensions a tensor may have (NumPy 1's limit; NumPy 2 allows 64)
MAX_DIMS = 32


class SafetensorsError(ValueError):
    """A safetensors file is malformed (raised with what is wrong and where)."""


def dtype_code(dtype) -> str:
    dtype = np.dtype(dtype)
    try:
        return _CODES[(dtype.kind, dtype.itemsize)]
    except KeyError:
        raise TypeError(f"safetensors cannot store dtype {dtype}; use one of "
                        f"{sorted(DTYPES)}") from None


def dumps(tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> bytes:
    """The safetensors bytes of ``{name: array}`` (in the dict's order) and ``metadata``.

    Example:
        >>> data = dumps({"w": np.arange(3, dtype=np.float32)})
        >>> loads(data)["w"]
        array([0., 1., 2.], dtype=float32)
    """
    header: dict = {}
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("safetensors metadata must map strings to strings")
        header["__metadata__"] = dict(metadata)
    chunks, offset = [], 0
    for name, array in tensors.items():
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise ValueError(f"tensor names must be non-empty strings (not '__metadata__'), "
                             f"got {name!r}")
        array = np.asarray(array)
        code = dtype_code(array.dtype)
        raw = np.ascontiguousarray(array, dtype=DTYPES[code]).tobytes()
        header[name] = {"dtype": code, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as the reference does
    return b"".join([struct.pack("<Q", len(text)), text, *chunks])


def _unique_pairs(pairs):
    value = dict(pairs)
    if len(value) != len(pairs):  # linear: a header of many names must not cost n**2
        counts = collections.Counter(key for key, _ in pairs)
        duplicated = sorted(name for name, count in counts.items() if count > 1)
        raise SafetensorsError(f"the header names {duplicated[:10]} more than once")
    return value


def _check_shape(name: str, shape, dtype: np.dtype) -> None:
    """A shape NumPy can make: a list of at most ``MAX_DIMS`` non-negative ints whose product
    (zeros left out, as NumPy counts) times the item size stays under 2**63 bytes."""
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise SafetensorsError(f"tensor {name!r}: the shape must be a list of non-negative "
                               f"ints, got {shape!r}")
    if len(shape) > MAX_DIMS:
        raise SafetensorsError(f"tensor {name!r}: the shape has {len(shape)} dimensions, more "
                               f"than the {MAX_DIMS} an array may have")
    if math.prod(d for d in shape if d) * dtype.itemsize >= 2**63:
        raise SafetensorsError(f"tensor {name!r}: the shape {shape} is too large for an array "
                               "(over 2**63 bytes, zero dimensions left out)")


def parse_header(data: bytes | memoryview, max_header_bytes: int = MAX_HEADER_BYTES,
                 size: int | None = None) -> tuple[dict, dict, int]:
    """Validate the header of safetensors ``data``.

    Args:
        data: the file's bytes, or (with ``size``) at least its first ``8 + N`` bytes.
        max_header_bytes: the largest header accepted (default ``MAX_HEADER_BYTES``, the
            reference implementation's limit).
        size: the size of the whole file when ``data`` is only its beginning (default
            ``None``: ``len(data)``).

    Returns:
        ``(entries, metadata, data_start)``: ``{name: (dtype, shape, begin, end)}`` with
        offsets relative to the data area, the metadata dict, and where the data area starts.

    Raises:
        SafetensorsError: anything malformed.
    """
    size = len(data) if size is None else size
    header_size = header_length(data, size, max_header_bytes)
    if len(data) < 8 + header_size:
        raise ValueError(f"parse_header: give at least the first {8 + header_size} bytes")
    try:
        header = json.loads(bytes(data[8:8 + header_size]).decode("utf-8"),
                            object_pairs_hook=_unique_pairs)
    except SafetensorsError:
        raise
    except (UnicodeDecodeError, ValueError) as error:
        raise SafetensorsError(f"the header is not valid JSON: {error}") from None
    except RecursionError:
        raise SafetensorsError("the header nests too deeply") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"the header must be a JSON object, got "
                               f"{type(header).__name__}")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise SafetensorsError("__metadata__ must map strings to strings")
    entries = {name: _entry(name, info, size - 8 - header_size) for name, info in header.items()}
    _check_tiling(entries, size - 8 - header_size)
    return entries, metadata, 8 + header_size


def header_length(data: bytes | memoryview, size: int, max_header_bytes: int) -> int:
    """N, from the first 8 bytes of a file of ``size`` bytes, checked against the limit and
    the file's size."""
    if size < 8 or len(data) < 8:
        raise SafetensorsError(f"the file has {size} bytes, fewer than the 8-byte header "
                               "length (truncated?)")
    (header_size,) = struct.unpack("<Q", bytes(data[:8]))
    if header_size > max_header_bytes:
        raise SafetensorsError(f"the header claims {header_size} bytes, over the limit of "
                               f"{max_header_bytes}")
    if 8 + header_size > size:
        raise SafetensorsError(f"the header claims {header_size} bytes but the file has only "
                               f"{size - 8} after the length (truncated?)")
    return header_size


def _entry(name: str, info, data_size: int) -> tuple:
    if not name:
        raise SafetensorsError("a tensor has an empty name")
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise SafetensorsError(f"tensor {name!r}: an entry must have exactly dtype, shape "
                               f"and data_offsets, got {info!r}")
    if not isinstance(info["dtype"], str) or info["dtype"] not in DTYPES:
        raise SafetensorsError(f"tensor {name!r}: unknown dtype {info['dtype']!r}; known: "
                               f"{sorted(DTYPES)}")
    dtype = DTYPES[info["dtype"]]
    shape, offsets = info["shape"], info["data_offsets"]
    _check_shape(name, shape, dtype)
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(
            type(o) is int and o >= 0 for o in offsets) or offsets[0] > offsets[1]:
        raise SafetensorsError(f"tensor {name!r}: data_offsets must be [begin, end] with "
                               f"0 <= begin <= end, got {offsets!r}")
    expected = math.prod(shape) * dtype.itemsize
    if offsets[1] - offsets[0] != expected:
        raise SafetensorsError(
            f"tensor {name!r}: shape {shape} of {info['dtype']} needs {expected} bytes, "
            f"but its data_offsets {offsets} span {offsets[1] - offsets[0]}")
    if offsets[1] > data_size:
        raise SafetensorsError(f"tensor {name!r}: data_offsets {offsets} run past the end "
                               f"of the data ({data_size} bytes; truncated?)")
    return dtype, tuple(shape), offsets[0], offsets[1]


def _check_tiling(entries: dict, data_size: int) -> None:
    """The byte ranges, sorted, cover the data area exactly: no gap, no overlap."""
    position = 0
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda item: item[1][2:]):
        if begin != position:
            problem = "overlaps the previous tensor" if begin < position else "leaves a gap"
            raise SafetensorsError(f"tensor {name!r}: data_offsets start at {begin}, which "
                                   f"{problem} (the previous data ends at {position})")
        position = end
    if position != data_size:
        raise SafetensorsError(f"the tensors cover {position} bytes of data, but the file has "
                               f"{data_size} after the header")


def loads(data: bytes, with_metadata: bool = False, max_header_bytes: int = MAX_HEADER_BYTES):
    """Parse safetensors ``data`` into ``{name: ndarray}`` (native-endian copies), and the
    metadata with ``with_metadata=True``. Every check of ``parse_header`` passes before any
    array is made."""
    view = memoryview(data)
    entries, metadata, start = parse_header(view, max_header_bytes)
    tensors = {}
    for name, (dtype, shape, begin, end) in entries.items():
        array = np.frombuffer(view[start + begin:start + end], dtype=dtype).reshape(shape)
        tensors[name] = array.astype(dtype.newbyteorder("="), copy=True)
    return (tensors, metadata) if with_metadata else tensors


#: the most bytes read at once when a tensor is converted to another dtype while reading
_CHUNK_BYTES = 16 * 2**20


class TensorFile(Mapping):
    """The tensors of one safetensors file, or of a region of a file, read on demand.

    Only the header is read (and checked, as ``parse_header``) when it is made; ``read(name)``
    then reads one tensor's bytes, straight into a given array when its dtype matches, so that
    loading a file never needs a second copy of it in memory.

    Args:
        readinto: ``readinto(offset, buffer)`` fills the writable buffer with the bytes at
            ``offset`` (relative to the start of the safetensors data) or raises.
        size: the number of bytes of the safetensors data.
        max_header_bytes: the largest header accepted (default ``MAX_HEADER_BYTES``).

    Example:
        >>> data = dumps({"w": np.arange(3, dtype=np.float32)})
        >>> tensors = TensorFile.from_bytes(data)
        >>> tensors.read("w", out=np.zeros(3)), tensors.shape("w")
        (array([0., 1., 2.]), (3,))
    """

    def __init__(self, readinto, size: int, max_header_bytes: int = MAX_HEADER_BYTES):
        self._readinto = readinto
        prefix = bytearray(min(size, 8))
        readinto(0, prefix)
        head = bytearray(8 + header_length(prefix, size, max_header_bytes))
        readinto(0, head)
        self.entries, self.metadata, self.data_start = parse_header(head, max_header_bytes,
                                                                    size)
        self.size = size

    @classmethod
    def from_bytes(cls, data: bytes, max_header_bytes: int = MAX_HEADER_BYTES) -> TensorFile:
        view = memoryview(data)

        def readinto(offset: int, buffer) -> None:
            buffer[:] = view[offset:offset + len(buffer)]

        return cls(readinto, len(view), max_header_bytes)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.read(name)

    def __contains__(self, name) -> bool:  # not Mapping's, which would read the tensor
        return name in self.entries

    def __iter__(self):
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def shape(self, name: str) -> tuple:
        return self.entries[name][1]

    def dtype(self, name: str) -> np.dtype:
        return self.entries[name][0]

    def read_data(self, offset: int, buffer) -> None:
        """Fill ``buffer`` with the tensor data area's bytes from ``offset`` (hashing)."""
        self._readinto(self.data_start + offset, buffer)

    def read(self, name: str, out: np.ndarray | None = None) -> np.ndarray:
        """Tensor ``name``: into ``out`` (same shape; cast to its dtype) or a new array."""
        dtype, shape, begin, _ = self.entries[name]
        if out is None:
            out = np.empty(shape, dtype.newbyteorder("="))
        elif out.shape != shape:
            raise ValueError(f"tensor {name!r} has shape {shape}, the array {out.shape}")
        if out.size == 0:
            return out
        if out.dtype == dtype and out.flags.c_contiguous and out.flags.writeable:
            self.read_data(begin, out.reshape(-1).view(np.uint8))
            return out
        flat = out.reshape(-1) if out.flags.c_contiguous else np.empty(out.size, out.dtype)
        step = max(1, _CHUNK_BYTES // dtype.itemsize)
        for start in range(0, out.size, step):
            chunk = np.empty(min(step, out.size - start), dtype)
            self.read_data(begin + start * dtype.itemsize, chunk.view(np.uint8))
            flat[start:start + len(chunk)] = chunk
        if not out.flags.c_contiguous:
            out[...] = flat.reshape(shape)
        return out

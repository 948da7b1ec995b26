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
of non-negative ints, every byte range has exactly ``prod(shape) * itemsize`` bytes, and the
ranges, sorted, tile the data area from 0 to its end with no gap and no overlap.
"""

from __future__ import annotations

import json
import math
import struct

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
    names = [key for key, _ in pairs]
    if len(set(names)) != len(names):
        duplicated = sorted({n for n in names if names.count(n) > 1})
        raise SafetensorsError(f"the header names {duplicated} more than once")
    return dict(pairs)


def parse_header(data: bytes | memoryview, max_header_bytes: int = MAX_HEADER_BYTES
                 ) -> tuple[dict, dict, int]:
    """Validate the header of safetensors ``data``.

    Args:
        data: the file's bytes.
        max_header_bytes: the largest header accepted (default ``MAX_HEADER_BYTES``, the
            reference implementation's limit).

    Returns:
        ``(entries, metadata, data_start)``: ``{name: (dtype, shape, begin, end)}`` with
        offsets relative to the data area, the metadata dict, and where the data area starts.

    Raises:
        SafetensorsError: anything malformed.
    """
    size = len(data)
    if size < 8:
        raise SafetensorsError(f"the file has {size} bytes, fewer than the 8-byte header "
                               "length (truncated?)")
    (header_size,) = struct.unpack("<Q", bytes(data[:8]))
    if header_size > max_header_bytes:
        raise SafetensorsError(f"the header claims {header_size} bytes, over the limit of "
                               f"{max_header_bytes}")
    if 8 + header_size > size:
        raise SafetensorsError(f"the header claims {header_size} bytes but the file has only "
                               f"{size - 8} after the length (truncated?)")
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
    data_size = size - 8 - header_size
    entries = {}
    for name, info in header.items():
        if not name:
            raise SafetensorsError("a tensor has an empty name")
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise SafetensorsError(f"tensor {name!r}: an entry must have exactly dtype, shape "
                                   f"and data_offsets, got {info!r}")
        if info["dtype"] not in DTYPES:
            raise SafetensorsError(f"tensor {name!r}: unknown dtype {info['dtype']!r}; known: "
                                   f"{sorted(DTYPES)}")
        shape, offsets = info["shape"], info["data_offsets"]
        if not isinstance(shape, list) or not all(
                type(d) is int and d >= 0 for d in shape):
            raise SafetensorsError(f"tensor {name!r}: the shape must be a list of "
                                   f"non-negative ints, got {shape!r}")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(
                type(o) is int and o >= 0 for o in offsets) or offsets[0] > offsets[1]:
            raise SafetensorsError(f"tensor {name!r}: data_offsets must be [begin, end] with "
                                   f"0 <= begin <= end, got {offsets!r}")
        dtype = DTYPES[info["dtype"]]
        expected = math.prod(shape) * dtype.itemsize
        if offsets[1] - offsets[0] != expected:
            raise SafetensorsError(
                f"tensor {name!r}: shape {shape} of {info['dtype']} needs {expected} bytes, "
                f"but its data_offsets {offsets} span {offsets[1] - offsets[0]}")
        if offsets[1] > data_size:
            raise SafetensorsError(f"tensor {name!r}: data_offsets {offsets} run past the end "
                                   f"of the data ({data_size} bytes; truncated?)")
        entries[name] = (dtype, tuple(shape), offsets[0], offsets[1])
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
    return entries, metadata, 8 + header_size


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

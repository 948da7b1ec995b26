"""The IDX file format of MNIST and Fashion-MNIST (LeCun et al.), read and written with NumPy.

An IDX file is a tiny header followed by the raw array, big-endian, in C order::

    bytes 0-1   0x00 0x00                 (always zero)
    byte  2     type code                 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                                          0x0D float32, 0x0E float64
    byte  3     number of dimensions      1 for labels, 3 for images
    then        one 4-byte big-endian unsigned size per dimension
    then        the data, prod(sizes) values of the type

The files are distributed gzip-compressed (``*-ubyte.gz``); ``read_idx`` recognises gzip by its
magic number and decompresses it, and checks that the data has exactly the length the header
announces, so a truncated or padded file fails with a clear message instead of a wrong array.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

#: IDX type code -> big-endian NumPy dtype
IDX_DTYPES = {
    0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
_CODES = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}

_GZIP_MAGIC = b"\x1f\x8b"


def parse_idx(data: bytes, name: str = "IDX data") -> np.ndarray:
    """Decode the bytes of an IDX file (gzip-compressed or not).

    Args:
        data: the file's bytes.
        name: how to call the data in error messages (default ``"IDX data"``).

    Returns:
        The array, in native byte order (uint8 for MNIST's images and labels).

    Raises:
        ValueError: for a bad header, an unknown type code, or data shorter or longer than the
            header announces.

    Example:
        >>> parse_idx(bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 8, 9]))
        array([7, 8, 9], dtype=uint8)
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"parse_idx: data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise ValueError(f"{name}: damaged gzip stream: {error}") from None
    if len(data) < 4 or data[:2] != b"\x00\x00":
        raise ValueError(f"{name}: not an IDX file (the first two bytes must be zero, got "
                         f"{data[:2]!r})")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        raise ValueError(f"{name}: unknown IDX type code 0x{code:02X}; expected one of "
                         f"{', '.join(f'0x{c:02X}' for c in IDX_DTYPES)}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{name}: truncated header ({len(data)} bytes for {ndim} dimensions)")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"{name}: the header announces shape {shape} ({expected} bytes of "
                         f"data) but the file holds {len(data) - header} bytes")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # a native-order, writable copy


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain) into an array; see ``parse_idx``."""
    path = Path(path)
    return parse_idx(path.read_bytes(), name=str(path))


def encode_idx(array, compress: bool = False) -> bytes:
    """The bytes of an IDX file holding ``array`` (the inverse of ``parse_idx``).

    Args:
        array: an array of one of the IDX types (uint8, int8, int16, int32, float32, float64).
        compress: gzip the result, as the distributed files are (default ``False``).

    Example:
        >>> encode_idx(np.array([7, 8, 9], dtype=np.uint8)).hex()
        '0000080100000003070809'
    """
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _CODES:
        raise ValueError(f"encode_idx: dtype must be one of uint8, int8, int16, int32, float32, "
                         f"float64, got {array.dtype}")
    if array.ndim > 255:
        raise ValueError(f"encode_idx: at most 255 dimensions, got {array.ndim}")
    code = _CODES[native]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    return gzip.compress(raw, mtime=0) if compress else raw


def write_idx(path: str | os.PathLike, array) -> Path:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends in ``.gz``."""
    path = Path(path)
    path.write_bytes(encode_idx(array, compress=path.suffix == ".gz"))
    return path

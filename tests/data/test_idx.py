"""The IDX parser on fixtures: every type code, gzip, and damaged files."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from nervenet.data.idx import encode_idx, parse_idx, read_idx, write_idx


def test_mnist_like_header_is_decoded_byte_by_byte():
    # 2 images of 2x3, written by hand: magic 0x00000803, then sizes 2, 2, 3, then the pixels
    raw = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 2, 2, 3) + bytes(range(12))
    images = parse_idx(raw)
    assert images.dtype == np.uint8 and images.shape == (2, 2, 3)
    np.testing.assert_array_equal(images, np.arange(12).reshape(2, 2, 3))
    labels = parse_idx(bytes([0, 0, 0x08, 1, 0, 0, 0, 2, 7, 3]))
    assert labels.tolist() == [7, 3]


@pytest.mark.parametrize("dtype", ["u1", "i1", "i2", "i4", "f4", "f8"])
def test_round_trip_every_type(dtype, tmp_path):
    rng = np.random.default_rng(0)
    array = (rng.normal(size=(3, 4, 5)) * 100).astype(dtype)
    np.testing.assert_array_equal(parse_idx(encode_idx(array)), array)
    path = write_idx(tmp_path / "a.idx.gz", array)
    assert path.read_bytes()[:2] == b"\x1f\x8b"  # gzip, as the distributed files
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(back, array)


def test_multibyte_values_are_big_endian():
    raw = bytes([0, 0, 0x0B, 1, 0, 0, 0, 2]) + bytes([0x01, 0x02, 0xFF, 0xFE])
    assert parse_idx(raw).tolist() == [0x0102, -2]


@pytest.mark.parametrize("raw, message", [
    (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "not an IDX file"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "unknown IDX type code 0x07"),
    (b"\x00\x00\x08\x03\x00\x00", "truncated header"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x03\x05\x06", r"announces shape \(3,\).*holds 2 bytes"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x01\x05\x06", r"holds 2 bytes"),
])
def test_damaged_files_fail_clearly(raw, message):
    with pytest.raises(ValueError, match=message):
        parse_idx(raw)


def test_truncated_gzip_fails_clearly():
    body = gzip.compress(encode_idx(np.zeros((10, 28, 28), np.uint8)))
    with pytest.raises(ValueError, match="damaged gzip"):
        parse_idx(body[:-20])


def test_bad_dtype_and_type():
    with pytest.raises(ValueError, match="dtype must be one of"):
        encode_idx(np.zeros(3, dtype=np.int64))
    with pytest.raises(TypeError, match="must be bytes"):
        parse_idx("0000")

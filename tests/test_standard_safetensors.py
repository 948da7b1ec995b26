"""Standard safetensors files (written by the ``safetensors`` library, no nervenet metadata)
load with ``load_weights``; nervenet's own weights files still need their checksum (#15)."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

import nervenet
from nervenet import layers
from nervenet.saving.archive import ModelFormatError

safetensors_numpy = pytest.importorskip("safetensors.numpy",
                                        reason="the safetensors library writes the files")


def _model():
    model = nervenet.Sequential([layers.Input(shape=(3,)), layers.Dense(4, name="hidden"),
                                layers.Dense(2, name="out")])
    model(np.zeros((1, 3), np.float32))
    return model


def test_a_file_written_by_the_safetensors_library_loads(tmp_path):
    rng = np.random.default_rng(0)
    model = _model()
    arrays = {path: rng.standard_normal(w.shape).astype(np.float32)
              for path, w in model.named_weights().items()}
    path = tmp_path / "model.safetensors"
    safetensors_numpy.save_file(arrays, str(path))
    model.load_weights(path)
    for name, weight in model.named_weights().items():
        np.testing.assert_array_equal(weight.data, arrays[name])
    x = rng.standard_normal((5, 3)).astype(np.float32)
    expected = (x @ arrays["hidden/kernel"] + arrays["hidden/bias"]) @ arrays["out/kernel"] \
        + arrays["out/bias"]
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    # and what nervenet writes, the library reads
    saved = tmp_path / "mine.weights.safetensors"
    model.save_weights(saved)
    read = safetensors_numpy.load_file(str(saved))
    assert sorted(read) == sorted(arrays)


def test_a_standard_file_with_other_metadata_or_float64_loads(tmp_path):
    model = _model()
    arrays = {path: np.full(w.shape, 0.5) for path, w in model.named_weights().items()}
    path = tmp_path / "torch-style.safetensors"
    safetensors_numpy.save_file(arrays, str(path), metadata={"format": "pt"})
    model.load_weights(path)
    assert all((w.data == 0.5).all() for w in model.weights)
    assert model.weights[0].dtype == np.float32                    # cast into the model's


def test_a_standard_file_must_still_match_the_model(tmp_path):
    model = _model()
    path = tmp_path / "other.safetensors"
    safetensors_numpy.save_file({"0.weight": np.zeros((4, 3), np.float32)}, str(path))
    with pytest.raises(ModelFormatError, match=r"missing \['hidden/kernel'.*unexpected \['0\."):
        model.load_weights(path)
    wrong = {p: np.zeros((7,) + w.shape, np.float32) for p, w in model.named_weights().items()}
    safetensors_numpy.save_file(wrong, str(path))
    with pytest.raises(ModelFormatError, match="shape"):
        model.load_weights(path)
    with open(path, "r+b") as handle:                               # truncated
        handle.truncate(50)
    with pytest.raises(ModelFormatError):
        model.load_weights(path)


def test_nervenet_weights_files_still_need_their_checksum(tmp_path):
    model = _model()
    path = tmp_path / "w.weights.safetensors"
    model.save_weights(path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF                                                # one changed value
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match="SHA-256"):
        model.load_weights(path)
    # a nervenet file whose checksum was removed from its header is refused too
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(bytes(data[8:8 + size]))
    del header["__metadata__"]["sha256"]
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + bytes(data[8 + size:]))
    with pytest.raises(ModelFormatError, match="no sha256 checksum"):
        model.load_weights(path)

"""Corrupt and hostile ONNX files: each gives a ModelFormatError naming the problem, quickly,
and no external data is read from outside the ONNX file's own folder."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

import nervenet.onnx
from nervenet import layers, models
from nervenet.saving import ModelFormatError
from tests.onnx.common import onnx

helper, TensorProto = onnx.helper, onnx.TensorProto


def _load_fails(path, match: str) -> None:
    start = time.perf_counter()
    with pytest.raises(ModelFormatError, match=match):
        nervenet.onnx.load(path)
    assert time.perf_counter() - start < 5.0


@pytest.fixture
def exported(tmp_path):
    model = models.Sequential([layers.Input(shape=(6, 6, 1)), layers.Conv2D(2, 3, name="conv"),
                               layers.BatchNormalization(), layers.Flatten(),
                               layers.Dense(3, name="dense")])
    model.export(tmp_path / "model.onnx")
    return tmp_path / "model.onnx"


def test_truncated_files(exported, tmp_path):
    data = exported.read_bytes()
    for cut in (1, 7, len(data) // 3, len(data) // 2, len(data) - 5):
        (tmp_path / "cut.onnx").write_bytes(data[:cut])
        _load_fails(tmp_path / "cut.onnx", "cut.onnx")


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not onnx", bytes(range(256)) * 40])
def test_not_onnx(content, tmp_path):
    (tmp_path / "bad.onnx").write_bytes(content)
    _load_fails(tmp_path / "bad.onnx", "bad.onnx")


def _matmul_file(path, weight: onnx.TensorProto, input_dims=("N", 4)):
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", weight.name], ["y"], name="mm")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_dims))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], [weight])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.write_bytes(proto.SerializeToString())
    return path


def _external(name: str, location: str, offset: int = 0, length: int = 48):
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=[4, 3])
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)),
                       ("length", str(length))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


@pytest.mark.parametrize("location", ["../secret.bin", "SECRET_ABSOLUTE", "link.bin",
                                      "sub/../../secret.bin", ""])
def test_external_data_outside_the_folder_is_never_read(location, tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(12, dtype=np.float32).tobytes())
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "sub").mkdir()
    os.symlink(secret, folder / "link.bin")
    location = str(secret) if location == "SECRET_ABSOLUTE" else location
    path = _matmul_file(folder / "m.onnx", _external("w", location))
    _load_fails(path, "not a file inside the model's folder")


def test_constant_node_data_is_read_from_the_model_folder_only(tmp_path, monkeypatch):
    (tmp_path / "secret.bin").write_bytes(np.arange(12, dtype=np.float32).tobytes())
    (tmp_path / "model").mkdir()
    monkeypatch.chdir(tmp_path)  # not from the working directory either
    constant = helper.make_node("Constant", [], ["w"], name="const",
                                value=_external("value", "secret.bin"))
    graph = helper.make_graph(
        [constant, helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (tmp_path / "model" / "m.onnx").write_bytes(proto.SerializeToString())
    _load_fails(tmp_path / "model" / "m.onnx", "does not exist beside the model")


@pytest.mark.parametrize("offset, length, match", [
    (0, 40, "does not hold its 48 bytes"), (16, 48, "does not hold"),
    (-4, 48, "does not hold"), (0, 48, "does not exist")])
def test_external_data_that_does_not_fit(offset, length, match, tmp_path):
    if match != "does not exist":
        (tmp_path / "w.bin").write_bytes(bytes(48))
    path = _matmul_file(tmp_path / "m.onnx", _external("w", "w.bin", offset, length))
    _load_fails(path, match)


def test_huge_declared_shapes(tmp_path):
    small = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 3], raw_data=bytes(8))
    _load_fails(_matmul_file(tmp_path / "a.onnx", small), "declares shape \\[4, 3\\]")
    huge = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2**40, 2**20],
                       raw_data=bytes(48))
    _load_fails(_matmul_file(tmp_path / "b.onnx", huge), "over the limit")
    weight = onnx.numpy_helper.from_array(np.zeros((4, 3), np.float32), "w")
    _load_fails(_matmul_file(tmp_path / "c.onnx", weight, ("N", 2**20, 2**20, 4)),
                "over the limit")


def test_cycle(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["z"], ["y"], name="first"),
         helper.make_node("Relu", ["y"], ["z"], name="second")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (tmp_path / "c.onnx").write_bytes(proto.SerializeToString())
    _load_fails(tmp_path / "c.onnx", "'first'.*cycle")


def _with_config(exported, tmp_path, edit) -> str:
    proto = onnx.load(str(exported))
    props = {p.key: p.value for p in proto.metadata_props}
    props["nervenet.config"] = edit(props["nervenet.config"])
    helper.set_model_props(proto, props)
    path = tmp_path / "edited.onnx"
    path.write_bytes(proto.SerializeToString())
    return path


def _edit_json(change):
    def edit(text):
        config = json.loads(text)
        change(config)
        return json.dumps(config)
    return edit


@pytest.mark.parametrize("edit, match", [
    (lambda text: text[:-3], "not valid JSON"),
    (lambda text: "[" * 100_000 + "]" * 100_000, "not valid JSON|nests"),
    (lambda text: "x" * (2**20 + 1), "over the limit"),
    (_edit_json(lambda c: c["model"].update(class_name="os.system")), "unknown layer"),
    (_edit_json(lambda c: c["model"]["config"]["layers"][-1]["config"].update(units=10**9)),
     "more values than"),
    (_edit_json(lambda c: c["weights"]["dense/kernel"].update(initializer="nope")),
     "does not hold"),
    (_edit_json(lambda c: c["weights"]["conv/kernel"].update(perm=[0, 0, 1, 2])),
     "not a permutation"),
])
def test_altered_nervenet_metadata(edit, match, exported, tmp_path):
    _load_fails(_with_config(exported, tmp_path, edit), match)


def test_the_untouched_file_loads(exported):
    assert isinstance(nervenet.onnx.load(exported), models.Sequential)


def _key(number: int, wire: int = 2) -> bytes:
    return _varint(number << 3 | wire)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


@pytest.mark.parametrize("case, match", [
    ("length past the end", "runs past its message"),
    ("two graphs", "field 7 occurs twice"),
    ("two data fields", "holds its data in 2 fields"),
    ("too many fields", "more than 500000 protobuf fields in the model outside its nodes"),
    ("a tensor of many fields", "more than 256 protobuf fields in an initializer"),
    ("wire type 3", "wire type 3"),
])
def test_wire_format_tricks_are_caught_by_the_scan(case, match, exported, tmp_path):
    """The scan that finds the initializers' bytes reads lengths and counts from the file:
    each is checked against the message that holds it before anything is allocated."""
    data = exported.read_bytes()
    weight = onnx.numpy_helper.from_array(np.zeros((4, 3), np.float32), "w").SerializeToString()
    bad = {
        "length past the end": _key(7) + _varint(2**62) + b"\0" * 16,
        "two graphs": data + _key(7) + _varint(0),
        "two data fields": _key(7) + _varint(len(weight) + 52) + _key(5)
        + _varint(len(weight) + 50) + weight + _key(9) + _varint(48) + bytes(48),
        "too many fields": _key(7) + _varint(600_000 * 2) + (_key(13) + b"\0") * 600_000,
        "a tensor of many fields": _key(7) + _varint(300 * 2 + 3) + _key(5)
        + _varint(300 * 2) + (_key(1, 0) + b"\1") * 300,  # 300 dims of 1
        "wire type 3": _key(7, 3) + b"\0" * 8,
    }[case]
    (tmp_path / "bad.onnx").write_bytes(bad)
    _load_fails(tmp_path / "bad.onnx", match)

"""A fuzz target for the model file: Hypothesis mutates real saved models (member names,
compression methods, zip header fields, safetensors shapes, dtypes and offsets, config and
metadata values, raw bytes under a valid checksum) and every load must

* raise nothing but ModelFormatError (or load: many edits are harmless),
* take under 1 s, and under file size + 64 MiB of added memory (tracemalloc),
* run no code: the audit hook of test_hostile_files records imports, exec, compile, process
  and network events while loading.

CI runs at most ``NERVENET_FUZZ_EXAMPLES`` (default 1,000, about 20 s here) examples within
``NERVENET_FUZZ_SECONDS`` (default 30) seconds; examples past the budget return at once. A
longer campaign: ``NERVENET_FUZZ_EXAMPLES=20000 NERVENET_FUZZ_SECONDS=600``."""

from __future__ import annotations

import io
import json
import os
import struct
import time
import tracemalloc
import zipfile

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from nervenet import layers, models
from nervenet.saving import ModelFormatError, archive, safetensors
from tests.reliability.test_hostile_files import watch

SECONDS = float(os.environ.get("NERVENET_FUZZ_SECONDS", "30"))
EXAMPLES = int(os.environ.get("NERVENET_FUZZ_EXAMPLES", "1000"))
MiB = 2**20


def _seed_models() -> list[dict[str, bytes]]:
    """The members of a few real saved models: an MLP with BatchNormalization and Dropout
    trained with Adam, a functional graph with Concatenate, a small CNN."""
    mlp = models.Sequential([layers.Input(shape=(5,)), layers.Dense(8, activation="relu"),
                             layers.BatchNormalization(), layers.Dropout(0.2),
                             layers.Dense(3, activation="softmax")])
    mlp.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    mlp.fit(np.ones((8, 5), np.float32), np.arange(8) % 3, verbose=0)
    inputs = layers.Input(shape=(4,))
    hidden = layers.Dense(6, activation="tanh")(inputs)
    graph = models.Model(inputs, layers.Dense(1)(layers.Concatenate()([inputs, hidden])))
    graph.compile("sgd", "mse")
    cnn = models.Sequential([layers.Input(shape=(8, 8, 1)), layers.Conv2D(2, 3),
                             layers.MaxPooling2D(), layers.Flatten(), layers.Dense(2)])
    seeds = []
    for model in (mlp, graph, cnn):
        model.save(_scratch_path("seed"))
        with zipfile.ZipFile(_scratch_path("seed")) as zf:
            seeds.append({name: zf.read(name) for name in zf.namelist()})
    return seeds


_SCRATCH: dict[str, str] = {}


def _scratch_path(name: str) -> str:
    if name not in _SCRATCH:
        import tempfile
        _SCRATCH[name] = os.path.join(tempfile.mkdtemp(prefix="nervenet-fuzz-"),
                                      f"{name}.nervenet")
    return _SCRATCH[name]


SEEDS = _seed_models()
START = time.monotonic()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.sampled_from(
        [0, -1, 2**31, 2**63, 10**30, 8000]) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12) | st.sampled_from(["os.system", "Dense", "float64", "relu", "[]"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=8)
member_names = st.sampled_from(["config.json", "metadata.json", "weights.safetensors",
                                "../config.json", "/etc/passwd", "a/b", "config.json/",
                                "weights.safetensors.py", ""]) | st.text(max_size=10)
methods = st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                           zipfile.ZIP_LZMA])


def _leaves(value, path=()):
    """Every (path, leaf) of a JSON value."""
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in _leaves(v, path + (k,))] or [(path, value)]
    if isinstance(value, list):
        return [x for i, v in enumerate(value) for x in _leaves(v, path + (i,))] or [
            (path, value)]
    return [(path, value)]


def _set(value, path, new):
    if not path:
        return new
    value[path[0]] = _set(value[path[0]], path[1:], new)
    return value


@st.composite
def mutation(draw, members: dict[str, bytes]):
    """One mutation of ``members`` (a dict name -> bytes, plus per-member methods under the
    key ``None``); returns the new dict."""
    members = dict(members)
    methods_of = dict(members.pop(None, {}))
    kind = draw(st.sampled_from(["rename", "method", "config", "metadata", "shape", "dtype",
                                 "offsets", "bytes", "drop", "extra"]))
    if kind == "rename":
        old = draw(st.sampled_from(sorted(members)))
        members[draw(member_names)] = members.pop(old)
    elif kind == "method":
        methods_of[draw(st.sampled_from(sorted(members)))] = draw(methods)
    elif kind in ("config", "metadata") and f"{kind}.json" in members:
        try:
            value = json.loads(members[f"{kind}.json"])
        except ValueError:
            value = {}
        leaves = _leaves(value)
        path, _ = draw(st.sampled_from(leaves))
        value = _set(value, path, draw(json_values))
        members[f"{kind}.json"] = json.dumps(value).encode()
    elif kind in ("shape", "dtype", "offsets") and "weights.safetensors" in members:
        members["weights.safetensors"] = draw(_header_edit(members["weights.safetensors"]))
    elif kind == "bytes":
        name = draw(st.sampled_from(sorted(members)))
        data = bytearray(members[name])
        for _ in range(draw(st.integers(1, 4))):
            if data:
                data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        members[name] = bytes(data)
    elif kind == "drop" and members:
        members.pop(draw(st.sampled_from(sorted(members))))
    elif kind == "extra":
        members[draw(member_names)] = draw(st.binary(max_size=64))
    members[None] = methods_of
    return members


@st.composite
def _header_edit(draw, data: bytes):
    if len(data) < 8:
        return data
    size = struct.unpack("<Q", data[:8])[0]
    try:
        header = json.loads(data[8:8 + size])
    except ValueError:
        return data
    names = [n for n in header if n != "__metadata__"]
    if not names:
        return data
    entry = header[draw(st.sampled_from(names))]
    if not isinstance(entry, dict):
        return data
    if "shape" in entry and draw(st.booleans()):
        entry["shape"] = draw(st.lists(st.integers(-1, 2**64) | st.sampled_from(
            [0, 1, 10**30, 2**63, 2**31]), max_size=70))
    elif "dtype" in entry and draw(st.booleans()):
        entry["dtype"] = draw(st.sampled_from(sorted(safetensors.DTYPES) + ["PY", "OBJ", ""]))
    else:
        entry["data_offsets"] = draw(st.lists(st.integers(-2, 2**64), min_size=0, max_size=3))
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data[8 + size:]


def _zip(members: dict) -> bytes:
    """The model zip of ``members`` with a valid checksum; members named in ``members[None]``
    use that compression method (``save`` never compresses the weights)."""
    methods_of = members.get(None, {})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, payload in members.items():
            if name is None:
                continue
            method = methods_of.get(name, zipfile.ZIP_STORED if name.endswith(
                ".safetensors") else zipfile.ZIP_DEFLATED)
            zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), payload,
                        compress_type=method)
        zf.comment = archive.DIGEST_PREFIX + b"0" * 64
    data = bytearray(buffer.getvalue())
    covered = len(data) - 80
    data[covered + len(archive.DIGEST_PREFIX):] = archive.hashlib.sha256(
        data[:covered]).hexdigest().encode()
    return bytes(data)


@st.composite
def hostile_files(draw) -> bytes:
    members = dict(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 3))):
        members = draw(mutation(members))
    data = _zip(members)
    if draw(st.integers(0, 9)) == 0:  # a zip header field edited under a valid checksum
        data = bytearray(data)
        position = draw(st.integers(0, len(data) - 81))
        data[position] = draw(st.integers(0, 255))
        covered = len(data) - 80
        data[covered + len(archive.DIGEST_PREFIX):] = archive.hashlib.sha256(
            data[:covered]).hexdigest().encode()
        data = bytes(data)
    return data


def _load(path) -> str:
    try:
        models.load_model(path)
        return "loaded"
    except ModelFormatError:
        return "rejected"


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(hostile_files())
def test_fuzzed_model_files_raise_only_model_format_errors_quickly_and_run_nothing(data):
    if time.monotonic() - START > SECONDS:
        return  # the time budget is spent
    path = _scratch_path("fuzz")
    with open(path, "wb") as handle:
        handle.write(data)
    with watch() as events:
        start = time.perf_counter()
        _load(path)  # anything but ModelFormatError fails the test, with the example
        elapsed = time.perf_counter() - start
    assert not events, f"code ran while loading: {sorted(set(events))}"
    assert elapsed < 1.0, f"the load took {elapsed:.2f} s"
    tracemalloc.start()
    try:
        _load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < len(data) + 64 * MiB, f"peak memory {peak / MiB:.1f} MiB"

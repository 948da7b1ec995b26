"""Hostile model files: a generated corpus of more than 1,000 files (pickle and marshal payloads,
module and class names, configs that name library functions, header and JSON bombs, shapes
without data, overflowing shapes, overlapping offsets, duplicate names, dtype mismatches, zip
path traversal and links, truncations, random edits with a valid checksum). Loading each one
must run no code (an audit hook counts import/exec/compile/process events while loading), raise
nothing but ModelFormatError (or, for a harmless edit, load), take under 1 s and stay under
file size + 64 MiB of traced memory. And a small model's file truncated at every byte offset
or with any bit flipped always gives ModelFormatError."""

from __future__ import annotations

import contextlib
import io
import json
import marshal
import stat
import struct
import sys
import time
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest

from nervenet import models
from nervenet.saving import ModelFormatError, archive, safetensors
from tests.reliability.common import small_model

#: audit events that mean code from a file could be running
DANGEROUS = ("import", "exec", "compile", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
             "os.fork", "os.startfile", "subprocess.Popen", "ctypes.", "marshal.loads",
             "pickle.find_class", "builtins.input", "socket.", "webbrowser.open", "os.remove",
             "os.rename", "shutil.")
_recording: list[list[str]] = []


def _audit(event: str, args) -> None:
    if _recording and event.startswith(DANGEROUS):
        _recording[-1].append(event)


sys.addaudithook(_audit)  # hooks cannot be removed; it records only inside `watch()`


@contextlib.contextmanager
def watch():
    events: list[str] = []
    _recording.append(events)
    try:
        yield events
    finally:
        _recording.pop()


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "small.nervenet"
    small_model().save(path)
    data = path.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    models.load_model(path)  # warm up: any lazy import of the loader happens here
    return data, members


# -------------------------------------------------------------------------- the corpus
PICKLE = b"cos\nsystem\n(S'touch /tmp/nervenet-pwned'\ntR."  # protocol 0: os.system(...)
PICKLE_2 = b"\x80\x02cbuiltins\neval\nX\x0b\x00\x00\x00__import__()\x85R."
MARSHAL = marshal.dumps(compile("open('/tmp/nervenet-pwned', 'w')", "<evil>", "exec"))
EVIL_NAMES = ["os.system", "builtins.eval", "builtins.exec", "__import__", "subprocess.Popen",
              "posix.system", "nervenet.saving.save_model", "nervenet.utils.set_random_seed",
              "importlib.import_module", "Custom>os.system", "__builtins__", "eval", "getattr",
              "../../etc/passwd", "", "Dense.__init__", "numpy.load", "np.lib.format",
              "shutil.rmtree", "keras.layers.Lambda", "Lambda", "function", "module:os"]


def st_header(header, data: bytes = b"") -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def with_member(members, name, payload) -> bytes:
    return archive.zip_bytes({**members, name: payload})


def with_config(members, edit) -> bytes:
    config = json.loads(members["config.json"])
    edit(config)
    return with_member(members, "config.json", json.dumps(config).encode())


def raw_zip(entries) -> bytes:
    """A zip with arbitrary ZipInfo entries, given a valid nervenet checksum."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for info, payload in entries:
            zf.writestr(info, payload)
    data = buffer.getvalue()
    # re-wrap: a checksum over these exact bytes, as zip_bytes would write
    comment = archive.DIGEST_PREFIX + archive.hashlib.sha256(
        data[:-2] + struct.pack("<H", 80)).hexdigest().encode()
    return data[:-2] + struct.pack("<H", 80) + comment


def corpus(good) -> list[tuple[str, bytes, bool]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile: "Duplicate name" on purpose
        return _corpus(good)


def _corpus(good) -> list[tuple[str, bytes, bool]]:
    """``(label, file bytes, must_fail)``; a file that need not fail may load (a harmless
    edit), but may never raise anything else than ModelFormatError."""
    data, members = good
    tensors = safetensors.loads(members["weights.safetensors"])
    files = []

    def add(label, payload, must_fail=True):
        files.append((label, payload, must_fail))

    # pickle and marshal payloads, as the file, as each member, as an extra member
    for name, payload in (("pickle", PICKLE), ("pickle2", PICKLE_2), ("marshal", MARSHAL)):
        add(f"{name} file", payload)
        add(f"{name} file with checksum", payload + archive.DIGEST_PREFIX + b"0" * 64)
        for member in members:
            add(f"{name} as {member}", with_member(members, member, payload))
        for extra in ("data.pkl", "model.pkl", "__init__.py", "code.pyc"):
            add(f"{name} as extra {extra}", with_member(members, extra, payload))
        add(f"{name} as tensor data", with_member(members, "weights.safetensors", st_header(
            {"dense/kernel": {"dtype": "U8", "shape": [len(payload)],
                              "data_offsets": [0, len(payload)]}}, payload)))

    # class and function names everywhere a name is resolved
    layer_slots = ["class_name", "activation", "kernel_initializer", "bias_initializer",
                   "kernel_regularizer", "kernel_constraint", "activity_regularizer"]
    for evil in EVIL_NAMES:
        def model_class(c, evil=evil):
            c["model"]["class_name"] = evil
        add(f"model class {evil!r}", with_config(members, model_class))
        for slot in layer_slots:
            for as_object in (False, True):
                def edit(c, evil=evil, slot=slot, as_object=as_object):
                    layer = c["model"]["config"]["layers"][1]
                    value = {"class_name": evil, "config": {"command": "touch x"}} if (
                        as_object or slot.endswith(("initializer", "regularizer",
                                                    "constraint"))) else evil
                    if slot == "class_name":
                        layer["class_name"] = evil if not as_object else {"class_name": evil}
                    else:
                        layer["config"][slot] = value
                add(f"layer {slot} {evil!r} object={as_object}", with_config(members, edit))
        for key in ("optimizer", "loss", "metrics"):
            def compile_edit(c, evil=evil, key=key):
                value = {"class_name": evil, "config": {"args": ["touch", "x"]}}
                c["compile"][key] = [value] if key == "metrics" else value
            add(f"compile {key} {evil!r}", with_config(members, compile_edit))
            def compile_str(c, evil=evil, key=key):
                c["compile"][key] = [evil] if key == "metrics" else evil
            add(f"compile {key} string {evil!r}", with_config(members, compile_str))

    # configs that try to reach library internals through keys and arguments
    for key, value in (("__class__", "os.system"), ("__reduce__", ["os.system", ["ls"]]),
                       ("module", "os"), ("registered_name", "os.system"),
                       ("fn", "nervenet.saving.save_model"), ("function", "eval"),
                       ("build_config", {"input_shape": [10**9]}), ("dtype", "object"),
                       ("dtype", "O"), ("dtype", "complex128"), ("dtype", "V8"),
                       ("units", -1), ("units", 10**30), ("units", 1.5), ("units", "4"),
                       ("units", None), ("units", [4]), ("activation", {"x": 1}),
                       ("activation", 3), ("name", {"a": 1}), ("name", "a/b/../c"),
                       ("trainable", "yes"), ("use_bias", "os.system")):
        def inject(c, key=key, value=value):
            c["model"]["config"]["layers"][1]["config"][key] = value
        add(f"layer config {key}={value!r}", with_config(members, inject), must_fail=False)
    for key, value in (("format", "pickle"), ("format_version", 2), ("format_version", "1"),
                       ("format_version", True), ("format_version", 10**40), ("model", None),
                       ("model", []), ("model", "Sequential"), ("build_input_shape", [10**9]),
                       ("build_input_shape", [[70000, 70000, 70000]]),
                       ("build_input_shape", "3"), ("compile", []), ("compile", "adam")):
        def top(c, key=key, value=value):
            c[key] = value
        add(f"config {key}={value!r}", with_config(members, top),
            must_fail=key != "build_input_shape")  # unused: an Input layer fixes the shape
    for key, value in (("format", "nervenet.weights"), ("format_version", 99),
                       ("format_version", None)):
        meta = json.loads(members["metadata.json"])
        meta[key] = value
        add(f"metadata {key}={value!r}", with_member(members, "metadata.json",
                                                     json.dumps(meta).encode()))

    # header and JSON bombs
    for depth in (1_000, 100_000, 1_000_000):
        add(f"config nested {depth}", with_member(members, "config.json",
                                                  b"[" * depth + b"]" * depth))
        add(f"metadata nested {depth}", with_member(members, "metadata.json",
                                                    b'{"a":' * min(depth, 10_000)))
        add(f"header nested {depth}", with_member(members, "weights.safetensors",
                                                  st_header_raw(b"[" * depth + b"]" * depth)))
    add("config 1 MiB of numbers", with_member(members, "config.json",
                                               b"[" + b"0," * (2**19 - 2) + b"0]"))
    add("config 1 MiB of keys", with_member(members, "config.json", json.dumps(
        {f"{i:x}": 0 for i in range(2**20 // 12)}).encode()[:2**20 - 1] + b"}"))
    add("config over its limit", with_member(members, "config.json", b" " * (2**20 + 1)))
    add("config big int", with_member(members, "config.json", b"9" * 100_000))
    add("config huge float", with_member(members, "config.json", b'{"a": 1e999999}'))
    many = {f"t{i}": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]} for i in range(50_000)}
    add("header 50k entries", with_member(members, "weights.safetensors", st_header(many)))
    many = {f"t{i}": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]} for i in range(14_000)}
    add("header 14k entries", with_member(members, "weights.safetensors", st_header(many)))
    for claimed in (2**63, 2**64 - 1, 2**20 + 1, 10**9):
        add(f"header claims {claimed}", with_member(members, "weights.safetensors",
                                                    struct.pack("<Q", claimed) + b"{}"))
    add("header invalid utf-8", with_member(members, "weights.safetensors",
                                            st_header_raw(b'{"\xff\xfe": 1}')))

    # tensors: shapes without data, overflows, overlaps, duplicates, dtypes, names
    def weights_file(header, payload=b""):
        return with_member(members, "weights.safetensors", st_header(header, payload))
    kernel = {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]}
    for shape in ([3, 4], [2**62, 2**62], [2**64], [2**31, 2**31, 2**31], [-1, -48],
                  [1.5, 32], ["3", 4], [None], [3, 4, 0], [10**100], [True, 48], {}):
        add(f"shape {shape!r} without data", weights_file(
            {"dense/kernel": {"dtype": "F32", "shape": shape, "data_offsets": [0, 48]}}))
    for offsets in ([0, 2**64], [48, 0], [-48, 0], [0.0, 48.0], [0], [0, 48, 96], "0-48",
                    [2**63, 2**63 + 48], [8, 56]):
        add(f"offsets {offsets!r}", weights_file(
            {"dense/kernel": {"dtype": "F32", "shape": [3, 4], "data_offsets": offsets}},
            b"\0" * 56))
    add("overlapping tensors", weights_file(
        {"dense/kernel": kernel, "dense/bias": {"dtype": "F32", "shape": [4],
                                                "data_offsets": [32, 48]}}, b"\0" * 48))
    add("aliased tensors", weights_file(
        {"dense/kernel": kernel, "dense_1/kernel": dict(kernel)}, b"\0" * 48))
    add("duplicate names", with_member(members, "weights.safetensors", st_header_raw(
        b'{"dense/kernel":{"dtype":"F32","shape":[3,4],"data_offsets":[0,48]},'
        b'"dense/kernel":{"dtype":"F32","shape":[3,4],"data_offsets":[48,96]}}', b"\0" * 96)))
    for code in safetensors.DTYPES:
        cast = {k: v.astype(safetensors.DTYPES[code]) for k, v in tensors.items()}
        add(f"weights as {code}", with_member(members, "weights.safetensors",
                                              safetensors.dumps(cast)),
            must_fail=code not in ("F64", "F32", "F16"))  # floats are cast to the weight dtype
    for code in ("PY", "OBJ", "F8", "f4", "", "C64", "BF16"):
        add(f"dtype {code!r}", weights_file(
            {"dense/kernel": {"dtype": code, "shape": [3, 4], "data_offsets": [0, 48]}},
            b"\0" * 48))
    names = list(tensors)
    for name in names:
        add(f"missing {name}", with_member(members, "weights.safetensors", safetensors.dumps(
            {k: v for k, v in tensors.items() if k != name})))
        add(f"extra beside {name}", with_member(members, "weights.safetensors",
                                                safetensors.dumps({**tensors, name + "x": 0})))
        add(f"wrong shape {name}", with_member(members, "weights.safetensors", safetensors.dumps(
            {**tensors, name: np.zeros(tensors[name].shape + (1,), np.float32)})))
    add("tensor named __metadata__", weights_file(
        {"__metadata__": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]}}, b"\0" * 48))
    add("tensor named ''", weights_file(
        {"": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]}}, b"\0" * 48))
    for name in ("../../x", "/etc/passwd", "optimizer/../../x",
                 "optimizer/iterations/x", "optimizer/99/m", "optimizer/0/evil"):
        add(f"tensor named {name!r}", with_member(members, "weights.safetensors",
                                                  safetensors.dumps({**tensors, name: 0})))
    add("metadata not strings", weights_file({"__metadata__": {"a": 1}}))

    # zip structure: traversal, links, directories, duplicates, flags, methods, sizes
    for name in ("../escape.json", "/abs/config.json", "sub/config.json", "config.json/",
                 "..\\config.json", "C:/config.json", "config.json\x00.txt", "./config.json"):
        add(f"member named {name!r}", with_member(members, name, b"{}"))
        add(f"member renamed {name!r}", archive.zip_bytes(
            {**{k: v for k, v in members.items() if k != "config.json"},
             name: members["config.json"]}),
            must_fail="\x00" not in name)  # zipfile reads "config.json\x00.txt" as config.json
    for name in members:
        link = zipfile.ZipInfo(name)
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        add(f"{name} as a symlink", raw_zip(
            [(link, b"/etc/passwd")] + [(zipfile.ZipInfo(k), v) for k, v in members.items()
                                        if k != name]))
        add(f"{name} twice", raw_zip([(zipfile.ZipInfo(k), v) for k, v in members.items()]
                                     + [(zipfile.ZipInfo(name), members[name])]))
        add(f"{name} missing", archive.zip_bytes(
            {k: v for k, v in members.items() if k != name}))
    for flag, method in ((0x1, 0), (0x40, 0), (0, 99), (0, 12), (0, 14), (0, 93)):
        entries = []
        for k, v in members.items():
            info = zipfile.ZipInfo(k)
            entries.append((info, v))
        blob = bytearray(raw_zip(entries))
        start = blob.index(b"PK\x01\x02")  # the first central directory entry
        struct.pack_into("<HH", blob, start + 8, flag, method)
        add(f"central flag {flag:#x} method {method}", rechecksum(bytes(blob)))
    bomb = zipfile.ZipInfo("config.json")
    bomb.compress_type = zipfile.ZIP_DEFLATED
    bomb_blob = bytearray(raw_zip([(bomb, b" " * 3 * 2**20)] + [
        (zipfile.ZipInfo(k), v) for k, v in members.items() if k != "config.json"]))
    central = bomb_blob.index(b"PK\x01\x02")
    struct.pack_into("<L", bomb_blob, central + 24, 10)  # it claims 10 bytes uncompressed
    add("deflate bomb lying about its size", rechecksum(bytes(bomb_blob)))

    # truncations and random edits (valid checksum: what only the deeper checks can catch)
    rng = np.random.default_rng(0)
    for cut in sorted(rng.choice(len(data), 100, replace=False)):
        add(f"truncated at {cut}", data[:cut])
    for i in range(150):
        member = ["config.json", "weights.safetensors", "metadata.json"][i % 3]
        blob = bytearray(members[member])
        for _ in range(1 + i % 4):
            position = int(rng.integers(len(blob)))
            blob[position] = int(rng.integers(256))
        add(f"random edit {i} of {member}", with_member(members, member, bytes(blob)),
            must_fail=False)
    for i in range(100):
        text = members["config.json"].decode()
        digits = [j for j, ch in enumerate(text) if ch.isdigit()]
        j = int(rng.choice(digits))
        text = text[:j] + str(rng.choice([0, 9, 99999, 10**12, -1])) + text[j + 1:]
        add(f"number edit {i}", with_member(members, "config.json", text.encode()),
            must_fail=False)
    return files


def st_header_raw(text: bytes, data: bytes = b"") -> bytes:
    return struct.pack("<Q", len(text)) + text + data


def rechecksum(data: bytes) -> bytes:
    """Recompute the trailing checksum of a zip already ending in a nervenet comment."""
    covered = data[:-len(archive.DIGEST_PREFIX) - 64]
    return covered + archive.DIGEST_PREFIX + archive.hashlib.sha256(covered).hexdigest().encode()


def load(path) -> tuple[str, list[str]]:
    """Load ``path`` under the audit hook: ``(outcome, dangerous events)``."""
    with watch() as events:
        try:
            models.load_model(path)
            outcome = "loaded"
        except ModelFormatError:
            outcome = "rejected"
        except Exception as error:  # noqa: BLE001  (the point: nothing else escapes)
            outcome = f"crashed: {type(error).__name__}: {str(error)[:200]}"
    return outcome, events


def test_a_thousand_hostile_files_run_nothing_crash_nothing_and_stay_small(good, tmp_path):
    files = corpus(good)
    assert len(files) >= 1000
    path = tmp_path / "hostile.nervenet"
    problems, rejected = [], 0
    for label, payload, must_fail in files:  # timed without tracemalloc, which slows 5-10x
        path.write_bytes(payload)
        start = time.perf_counter()
        outcome, events = load(path)
        elapsed = time.perf_counter() - start
        rejected += outcome == "rejected"
        if events:
            problems.append(f"{label}: ran code ({sorted(set(events))})")
        if outcome.startswith("crashed") or (must_fail and outcome == "loaded"):
            problems.append(f"{label}: {outcome}")
        if elapsed > 1.0:
            problems.append(f"{label}: took {elapsed:.2f} s")
    tracemalloc.start()
    try:
        for label, payload, _ in files:
            path.write_bytes(payload)
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            load(path)
            peak = tracemalloc.get_traced_memory()[1] - base
            if peak > len(payload) + 64 * 2**20:
                problems.append(f"{label}: peak memory {peak / 2**20:.1f} MiB")
    finally:
        tracemalloc.stop()
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:40])
    assert rejected > 900


def test_the_audit_hook_sees_code_running():
    """The check above can fail: what a pickle payload would do is recorded."""
    with watch() as events:
        exec(compile("import json", "<probe>", "exec"))  # noqa: S102
    assert "exec" in events and "compile" in events


def test_every_truncation_and_every_bit_flip_of_a_small_model_file_is_rejected(good, tmp_path):
    data, members = good
    path = tmp_path / "cut.nervenet"
    messages = set()
    for cut in range(len(data)):
        path.write_bytes(data[:cut])
        with pytest.raises(ModelFormatError, match="truncated|not a nervenet") as info:
            models.load_model(path)
        messages.add(str(info.value).split(": ", 1)[1][:30])
    assert len(data) > 2000 and len(messages) == 2, messages  # "not a model file" under 4 B
    for bit in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(flipped)
        with pytest.raises(ModelFormatError, match="corrupted"):
            models.load_model(path)


def test_every_bit_flip_of_the_weights_header_is_rejected_even_with_a_valid_checksum(
        good, tmp_path):
    """A flip the checksum cannot see (the file re-checksummed) is still caught by the
    safetensors checks: names, dtypes, shapes, offsets, JSON."""
    _, members = good
    weights = members["weights.safetensors"]
    end = 8 + struct.unpack("<Q", weights[:8])[0]
    path = tmp_path / "flip.nervenet"
    for bit in range(end * 8):
        flipped = bytearray(weights)
        flipped[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(with_member(members, "weights.safetensors", bytes(flipped)))
        with pytest.raises(ModelFormatError):
            models.load_model(path)

"""Bounded loads: what a model or weights file can make the loader read, allocate and spend.

Each test is one promise of SECURITY.md: only stored weights members (a compression bomb is
refused before it is inflated), every member inside the file, at most ``MAX_MEMBERS`` zip
entries, linear duplicate checks, only regular files opened and read with a bound, shapes
NumPy cannot make refused as ModelFormatError, no intermediate activation of a build pass over
the build budget, a peak of at most file size + 64 MiB while loading, and files that ``save``
writes always load (a layer named "optimizer", a model without weights)."""

from __future__ import annotations

import io
import json
import os
import struct
import threading
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

from nervenet import layers, models
from nervenet.saving import ModelFormatError, SafetensorsError, archive, safetensors
from tests.reliability.common import small_model

MiB = 2**20


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    path = tmp_path_factory.mktemp("bounds") / "small.nervenet"
    small_model().save(path)
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def with_checksum(data: bytes) -> bytes:
    """A zip (written by zipfile, no comment) given the nervenet comment with a valid
    checksum, so that only the structural checks can reject it."""
    data = data[:-2] + struct.pack("<H", 80)
    return data + archive.DIGEST_PREFIX + archive.hashlib.sha256(data).hexdigest().encode()


def zipped(entries: list[tuple[str, bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, payload, method in entries:
            zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), payload,
                        compress_type=method)
    return with_checksum(buffer.getvalue())


def timed_load(path) -> tuple[str, float, int]:
    """``(outcome, seconds, peak traced bytes)`` of ``load_model(path)``."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        models.load_model(path)
        outcome = "loaded"
    except ModelFormatError as error:
        outcome = f"rejected: {error}"
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return outcome, elapsed, peak


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_a_compressed_weights_member_is_refused_before_it_is_inflated(members, tmp_path,
                                                                      method):
    """A 2 GiB bomb compresses to a few KiB with bzip2; the loader must not inflate it."""
    header = json.dumps({"dense/kernel": {"dtype": "U8", "shape": [2**31],
                                          "data_offsets": [0, 2**31]}}).encode()
    bomb = struct.pack("<Q", len(header)) + header + bytes(2**26)  # 64 MiB of zeros
    entries = [(name, payload, zipfile.ZIP_STORED) for name, payload in members.items()
               if name != "weights.safetensors"] + [("weights.safetensors", bomb, method)]
    path = tmp_path / "bomb.nervenet"
    path.write_bytes(zipped(entries))
    assert path.stat().st_size < 2 * MiB
    outcome, elapsed, peak = timed_load(path)
    assert outcome.startswith("rejected") and "compression method" in outcome, outcome
    assert elapsed < 1.0 and peak < path.stat().st_size + 8 * MiB


def test_a_member_claiming_more_bytes_than_the_file_has_is_refused(members, tmp_path):
    data = bytearray(zipped([(name, payload, zipfile.ZIP_STORED)
                             for name, payload in members.items()]))
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<LL", data, central + 20, 2**32 - 1, 2**32 - 1)  # sizes of entry 0
    path = tmp_path / "big.nervenet"
    path.write_bytes(with_checksum(bytes(data[:-80 - 2]) + b"\0\0"))
    with pytest.raises(ModelFormatError, match="fit in the file|over the limit"):
        models.load_model(path)


def test_the_member_count_is_capped_before_the_directory_is_parsed(members, tmp_path):
    """64,000 entries (6 MB) took 33 s with a quadratic duplicate check."""
    entries = [(name, payload, zipfile.ZIP_STORED) for name, payload in members.items()]
    entries += [(f"x{i}", b"", zipfile.ZIP_STORED) for i in range(64_000)]
    path = tmp_path / "many.nervenet"
    path.write_bytes(zipped(entries))
    outcome, elapsed, _ = timed_load(path)
    assert f"at most {archive.MAX_MEMBERS} members" in outcome, outcome
    assert elapsed < 1.0


def test_duplicate_tensor_names_are_found_in_linear_time():
    """100,000 entries: a count per name (quadratic) makes 10**10 comparisons, about 4
    minutes on a busy machine; a set well under a second on a quiet one (5 s: room for a busy
    one)."""
    names = [f"t{i}" for i in range(50_000)]
    text = ",".join(f'"{n}":{{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}'
                    for n in names + names)
    header = ("{" + text + "}").encode()
    start = time.perf_counter()
    with pytest.raises(SafetensorsError, match="more than once"):
        safetensors.loads(struct.pack("<Q", len(header)) + header)
    assert time.perf_counter() - start < 5.0


def load_in_thread(path, seconds: float = 5.0) -> str:
    """The outcome of ``load_model(path)`` in a thread that must end within ``seconds``."""
    outcome = []

    def run():
        try:
            models.load_model(path)
            outcome.append("loaded")
        except ModelFormatError as error:
            outcome.append(f"rejected: {error}")
        except Exception as error:  # noqa: BLE001  (reported by the assertion)
            outcome.append(f"crashed: {type(error).__name__}: {error}")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"load_model({path}) still runs after {seconds} s"
    return outcome[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_a_device_a_directory_are_refused_without_reading(tmp_path):
    fifo = tmp_path / "fifo.nervenet"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.nervenet"
    zero.symlink_to("/dev/zero")
    for path in (fifo, zero, tmp_path):
        assert "not a regular file" in load_in_thread(path)
    with pytest.raises(ModelFormatError, match="not a regular file"):
        models.load_model(tmp_path).load_weights(zero)


def test_a_sparse_5_gib_file_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "sparse.nervenet"
    with open(path, "wb") as handle:
        handle.write(b"PK\x03\x04")
        handle.truncate(5 * 2**30)
    outcome, elapsed, peak = timed_load(path)
    assert "truncated" in outcome and elapsed < 0.5 and peak < 4 * MiB, (outcome, elapsed)


SHAPES = [[0, 10**30], [0, 2**63], [1] * 65, [0] * 65, [2**62, 0, 2**62]]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s)}dims-{max(s)}")
def test_shapes_numpy_cannot_make_are_format_errors_everywhere(members, tmp_path, shape):
    header = json.dumps({"dense/kernel": {"dtype": "F32", "shape": shape,
                                          "data_offsets": [0, 0]}}).encode()
    data = struct.pack("<Q", len(header)) + header
    with pytest.raises(SafetensorsError, match="too large|dimensions|needs"):
        safetensors.loads(data)
    path = tmp_path / "shape.nervenet"
    path.write_bytes(archive.zip_bytes({**members, "weights.safetensors": data}))
    with pytest.raises(ModelFormatError):
        models.load_model(path)
    model = small_model()
    with pytest.raises(ModelFormatError):
        model.load_weights(path)
    header = json.dumps({"__metadata__": {"format": "nervenet.weights", "sha256": "0" * 64},
                         "dense/kernel": {"dtype": "F32", "shape": shape,
                                          "data_offsets": [0, 0]}}).encode()
    weights = tmp_path / "shape.weights.safetensors"
    weights.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(ModelFormatError):
        model.load_weights(weights)


def test_zero_padding_8000_loads_without_building_huge_activations(tmp_path):
    """A 2.5 KB file whose build pass padded a 4x4 image to 16004x16004 cost 2.9 GiB."""
    model = models.Sequential([layers.Input(shape=(4, 4, 1)), layers.ZeroPadding2D(8000),
                               layers.MaxPooling2D(100)])
    path = tmp_path / "pad.nervenet"
    model.save(path)
    outcome, elapsed, peak = timed_load(path)
    assert outcome == "loaded" and elapsed < 1.0 and peak < 16 * MiB, (outcome, elapsed, peak)
    # a functional graph whose next layer is probed on zeros of the padded shape
    inputs = layers.Input(shape=(4, 4, 1))
    functional = models.Model(inputs, layers.Activation("relu")(layers.ZeroPadding2D(1)(inputs)))
    functional.save(path)
    with zipfile.ZipFile(path) as zf:
        saved = {name: zf.read(name) for name in zf.namelist()}
    config = json.loads(saved["config.json"])
    padding = [node for node in config["model"]["config"]["layers"]
               if node["class_name"] == "ZeroPadding2D"][0]["config"]
    padding["padding"] = [[8000, 8000], [8000, 8000]]
    path.write_bytes(archive.zip_bytes({**saved, "config.json": json.dumps(config).encode()}))
    outcome, elapsed, peak = timed_load(path)
    assert outcome == "loaded" or "values per sample" in outcome, outcome
    assert elapsed < 1.0 and peak < 16 * MiB, (outcome, elapsed, peak)


def test_peak_memory_of_a_load_is_at_most_the_file_size_plus_64_mib(tmp_path):
    """Measured with tracemalloc (NumPy reports its buffers): the file was read whole, then
    copied per member and per tensor, 2.3x its size in all."""
    model = models.Sequential([layers.Input(shape=(1000,)), layers.Dense(8000),
                               layers.Dense(10)])
    model.compile("adam", "mse")
    model.train_on_batch(np.ones((2, 1000), np.float32), np.zeros((2, 10), np.float32))
    path = tmp_path / "big.nervenet"
    model.save(path)
    size = path.stat().st_size
    assert size > 90 * MiB  # so that 2.3x the size would exceed the bound
    outcome, _, peak = timed_load(path)
    assert outcome == "loaded"
    assert peak < size + 64 * MiB, f"peak {peak / MiB:.0f} MiB for a {size / MiB:.0f} MiB file"
    # one weight of 80 MB: its initial values (drawn in float64) are not made on load
    model = models.Sequential([layers.Input(shape=(1000,)), layers.Dense(20_000)])
    model.save(path)
    outcome, _, peak = timed_load(path)
    assert outcome == "loaded" and peak < path.stat().st_size + 64 * MiB, peak / MiB
    weights = tmp_path / "big.weights.safetensors"
    model.save_weights(weights)
    tracemalloc.start()
    model.load_weights(weights)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < weights.stat().st_size + 64 * MiB


def test_a_layer_named_optimizer_and_a_model_without_weights_round_trip(tmp_path):
    path = tmp_path / "m.nervenet"
    model = models.Sequential([layers.Input(shape=(3,)), layers.Dense(2, name="optimizer")])
    model.compile("adam", "mse")
    model.fit(np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32), verbose=0)
    model.save(path)
    loaded = models.load_model(path)
    np.testing.assert_array_equal(loaded.get_weights()[0], model.get_weights()[0])
    assert loaded.optimizer.iterations == 1
    np.testing.assert_array_equal(loaded.optimizer.get_state()["0/m"],
                                  model.optimizer.get_state()["0/m"])
    empty = models.Sequential([layers.Input(shape=(3,)), layers.Flatten()])
    empty.save(path)
    np.testing.assert_array_equal(models.load_model(path).predict(np.ones((2, 3))),
                                  np.ones((2, 3)))

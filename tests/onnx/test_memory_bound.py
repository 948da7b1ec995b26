"""Loading an ONNX file costs at most its size + 64 MiB, as a ``.nervenet`` file
(tests/reliability/test_file_bounds.py): the weights' bytes go from the file straight into the
model's arrays, never through the parsed message or a second copy.

Measured as the peak resident memory of a fresh interpreter (``VmHWM``, reset before each load
through ``/proc/self/clear_refs``; ``ru_maxrss`` would include the parent's size at the fork)
against its resident memory just before the load: tracemalloc sees neither protobuf's C++
buffers nor mapped pages, which are exactly what an unbounded reader spends. Each file holds a
108 MB weight; reading it with ``onnx.load`` and copying the arrays peaked at 4 to 7 times
that."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nervenet import layers, models
from tests.onnx.common import onnx

helper, TensorProto = onnx.helper, onnx.TensorProto
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads the resident memory from /proc (Linux)")

ROOT = Path(__file__).resolve().parents[2]
MiB = 2**20
UNITS, FEATURES = 27_000, 1000  # one 108 MB float32 weight

MEASURE = """
import json, sys
import numpy as np
import nervenet.onnx

def status(key):
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) * 1024 for line in handle if line.startswith(key))

nervenet.onnx.load(sys.argv[1])  # imports, and what a first load sets up, outside the count
results = {}
for path in sys.argv[2:]:
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # the peak (VmHWM) starts again from the resident size now
    before = status("VmRSS:")
    model = nervenet.onnx.load(path)
    growth = status("VmHWM:") - before
    x = np.random.default_rng(0).standard_normal((2,) + tuple(model.input_shape[1:]))
    results[path] = {"growth": growth, "kernel": model.layers[-1].kernel.data[:3, :3].tolist(),
                     "y": model.predict(x.astype(np.float32), verbose=0)[:, :5].tolist()}
    del model
print(json.dumps(results))
"""


def _gemm_file(folder: Path, weight: np.ndarray) -> Path:
    """Images (N, 10, 10, 10) flattened into a Gemm with transB=1 (torch's Linear), its
    weight stored beside the file as torch's dynamo exporter does: the kernel is read
    transposed, its rows gathered into nervenet's (H, W, C) order."""
    weight.tofile(folder / "m.onnx.data")
    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=weight.shape,
                         data_location=TensorProto.EXTERNAL)
    for key, value in (("location", "m.onnx.data"), ("length", str(weight.nbytes))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"], name="flat"),
         helper.make_node("Gemm", ["f", "w"], ["y"], name="fc", transB=1)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 10, 10, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", UNITS])], [tensor])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (folder / "m.onnx").write_bytes(proto.SerializeToString())
    return folder / "m.onnx"


def test_peak_memory_of_a_load_is_at_most_the_file_size_plus_64_mib(tmp_path):
    """A nervenet export (the weights inside the file) and a foreign graph with external
    data; the values must arrive where they belong."""
    small = models.Sequential([layers.Input(shape=(3,)), layers.Dense(2)])
    small.export(tmp_path / "small.onnx")
    # quick to make, and no two rows or columns alike
    values = np.resize(np.linspace(-1, 1, 997, dtype=np.float32), UNITS * FEATURES)
    own = models.Sequential([layers.Input(shape=(FEATURES,)),
                             layers.Dense(UNITS, kernel_initializer="zeros")])
    own.layers[-1].kernel.data[...] = values.reshape(FEATURES, UNITS)
    own.export(tmp_path / "own.onnx")
    (tmp_path / "external").mkdir()
    weight = values.reshape(UNITS, FEATURES)
    foreign = _gemm_file(tmp_path / "external", weight)
    paths = [tmp_path / "own.onnx", foreign]
    done = subprocess.run([sys.executable, "-c", MEASURE, str(tmp_path / "small.onnx"),
                           *map(str, paths)], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for path in paths:
        size = path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob("*.data"))
        growth = results[str(path)]["growth"]
        assert size > 100 * MiB
        assert growth < size + 64 * MiB, \
            f"{path.name}: peak {growth / MiB:.0f} MiB for {size / MiB:.0f} MiB of weights"
    np.testing.assert_array_equal(results[str(paths[0])]["kernel"],
                                  own.layers[-1].kernel.data[:3, :3])
    # the kernel is W^T with its rows in (H, W, C) order
    order = np.arange(1000).reshape(10, 10, 10).transpose(1, 2, 0).ravel()
    np.testing.assert_array_equal(results[str(foreign)]["kernel"], weight.T[order][:3, :3])
    x = np.random.default_rng(0).standard_normal((2, 10, 10, 10)).astype(np.float32)
    want = x.transpose(0, 3, 1, 2).reshape(2, -1) @ weight.T[:, :5]  # NHWC fed -> NCHW
    np.testing.assert_allclose(results[str(foreign)]["y"], want, rtol=1e-4, atol=1e-4)

"""Devices: the array module per array, the fake device's refusals, moving tensors, and the
errors for a GPU that is not there."""

from __future__ import annotations

import subprocess
import sys
import types

import numpy as np
import pytest

import nervenet
from nervenet import backend
from nervenet.fake_device import FakeArray, fake_numpy
from tests.scripts import modules_left_imported


def test_get_array_module_follows_the_arrays():
    host, fake = np.ones(2), backend.to_device(np.ones(2), "fake")
    assert backend.get_array_module(host) is np
    assert backend.get_array_module(fake) is fake_numpy
    assert backend.get_array_module(1.0, None, host, fake) is fake_numpy
    assert backend.get_array_module() is np and backend.get_array_module(2, None) is np


def test_fake_arrays_refuse_implicit_host_conversion_and_mixing():
    fake = backend.to_device(np.arange(6.0).reshape(2, 3), "fake")
    host = np.ones(3)
    for action in (lambda: np.asarray(fake), lambda: np.exp(fake), lambda: fake + host,
                   lambda: host + fake, lambda: np.concatenate([fake, fake]),
                   lambda: fake_numpy.maximum(fake, host), lambda: fake[np.array([0])],
                   lambda: fake.tolist(), lambda: float(fake)):
        with pytest.raises((TypeError, AttributeError)):
            action()
    with pytest.raises(TypeError, match="where"):
        fake_numpy.divide(fake, fake, where=fake > 0)  # CuPy's ufuncs take no where=
    with pytest.raises(AttributeError, match="errstate"):
        fake_numpy.errstate  # noqa: B018  (CuPy has no floating-point error state)
    assert not hasattr(fake.flags, "writeable")  # as CuPy's flags


def test_fake_arrays_compute_what_numpy_computes():
    a = np.random.default_rng(0).standard_normal((3, 4))
    fake = backend.to_device(a, "fake")
    results = {"sum": fake.sum(axis=0), "matmul": fake @ fake.T, "exp": fake_numpy.exp(fake),
               "scalar": fake * 2.5 - 1, "reduce": fake.max()}
    expected = {"sum": a.sum(axis=0), "matmul": a @ a.T, "exp": np.exp(a), "scalar": a * 2.5 - 1,
                "reduce": np.asarray(a.max())}
    for name, value in results.items():
        assert type(value) is FakeArray, name  # reductions give 0-d arrays, as CuPy's
        np.testing.assert_array_equal(value.get(), expected[name], err_msg=name)
    assert float(fake.max()) == a.max()  # a one-element read is allowed (a scalar sync)


def test_moving_between_devices_copies_and_keeps_values():
    a = np.arange(4, dtype=np.float32)
    fake = backend.to_device(a, "fake")
    assert backend.device_of(fake) == "fake" and backend.device_of(a) == "cpu"
    back = backend.to_numpy(fake)
    assert type(back) is np.ndarray and back.dtype == np.float32
    np.testing.assert_array_equal(back, a)
    a[0] = 9  # the device copy does not share the host's memory
    assert backend.to_numpy(fake)[0] == 0
    assert backend.to_device(fake, "fake") is fake and backend.to_device(a, "cpu") is a


def test_tensor_to_and_tensor_device():
    t = nervenet.tensor([1.0, 2.0], requires_grad=True, device="fake")
    assert t.device == "fake" and t.requires_grad and t.dtype == np.float32
    (t * t).sum().backward()
    assert backend.device_of(t.grad) == "fake"
    np.testing.assert_array_equal(backend.to_numpy(t.grad), [2.0, 4.0])
    host = t.to("cpu")
    assert host.device == "cpu" and host.requires_grad and host.is_leaf
    assert type(host.numpy()) is np.ndarray
    assert t.to("fake") is t
    assert "device='fake'" in repr(t)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(t)
    with pytest.raises(ValueError, match="device must be one of 'cpu', 'gpu', 'fake', got 'tpu'"):
        t.to("tpu")


def test_numbers_join_a_tensor_on_its_device():
    t = nervenet.tensor([1.0, 2.0], device="fake")
    for y in (t * 2, 2 * t, t + np.float32(1), t ** 2):
        assert y.device == "fake" and y.dtype == np.float32
    with pytest.raises(TypeError, match="does not mix with NumPy arrays"):
        t + np.ones(2)


def test_gpu_without_cupy_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy raises ImportError
    with pytest.raises(RuntimeError, match=r'device "gpu" needs CuPy.*nervenet\[gpu\]'):
        nervenet.tensor([1.0]).to("gpu")


def test_gpu_without_cuda_says_so(monkeypatch):
    # cupy-cuda12x imports fine without CUDA: only is_available() tells
    stub = types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=lambda: False))
    monkeypatch.setitem(sys.modules, "cupy", stub)
    with pytest.raises(RuntimeError, match=r'device "gpu".*is_available\(\) is False'):
        backend.check_device("gpu")


def test_installed_cupy_without_a_gpu_is_refused_clearly():
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed (the gpu extra)")
    if cupy.cuda.is_available():
        pytest.skip("a CUDA GPU is available here: tests/gpu covers it")
    with pytest.raises(RuntimeError, match="sees no CUDA GPU"):
        nervenet.tensor([1.0], device="gpu")


def test_import_nervenet_never_imports_cupy():
    code = ("import numpy as np, nervenet; "
            "t = nervenet.tensor(np.ones(2), device='fake').to('cpu')")
    assert modules_left_imported(code, ("cupy", "cupyx")) == []


def test_every_array_module_name_the_package_uses_exists_in_cupy():
    """The fake device mirrors NumPy; this checks the other side: each ``xp.NAME`` the package
    calls is in CuPy's namespace too (CuPy imports without a GPU)."""
    import re
    from pathlib import Path

    cupy = pytest.importorskip("cupy", reason="CuPy is not installed (the gpu extra)")
    pattern = re.compile(r"(?:\bxp|get_array_module\([^()]*\))\.(\w+)(?:\.(\w+))?")
    used = set()
    for path in Path(nervenet.__file__).parent.rglob("*.py"):
        used.update(pattern.findall(path.read_text()))
    assert len(used) > 20
    missing = [f"{a}.{b}" if b else a for a, b in used
               if not hasattr(cupy, a) or (b and not hasattr(getattr(cupy, a), b))]
    assert not missing, f"names CuPy does not have: {sorted(missing)}"


def test_the_gpu_benchmark_refuses_clearly_without_a_gpu():
    from pathlib import Path

    try:
        backend.check_device("gpu")
    except RuntimeError:
        pass
    else:
        pytest.skip("a CUDA GPU is available here: bench/gpu.py would run")
    script = Path(nervenet.__file__).resolve().parents[1] / "bench" / "gpu.py"
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert "bench/gpu.py needs a CUDA GPU" in done.stderr and 'device "gpu"' in done.stderr

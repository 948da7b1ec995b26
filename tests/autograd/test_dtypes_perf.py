"""A whole training step keeps its dtype, and the engine does no work it does not need.

Every array an op produces while training the 784-300-100-10 MLP (forward, backward, and the
engine's gradient accumulation) is recorded by wrapping ``Tensor.from_array``; float32 must stay
float32 everywhere (a silent float64 upcast doubles memory traffic and halves BLAS speed), and
float64 must stay float64.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import nervenet
import nervenet.functional as F
from nervenet import Tensor

SIZES = (784, 300, 100, 10)


@pytest.fixture
def produced(monkeypatch):
    """Record (dtype, shape) of every array wrapped into a Tensor: the result of every op, in
    forward and in backward, whether computed by a Function or on bare arrays."""
    records = []
    original = Tensor.from_array.__func__

    def spy(cls, array):
        tensor = original(cls, array)
        records.append((tensor.dtype, tensor.shape))
        return tensor

    monkeypatch.setattr(Tensor, "from_array", classmethod(spy))
    return records


def _mlp(dtype, rng):
    params = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        limit = np.sqrt(6.0 / n_in)
        params.append(Tensor(rng.uniform(-limit, limit, (n_in, n_out)).astype(dtype),
                             requires_grad=True))
        params.append(Tensor(np.zeros(n_out, dtype), requires_grad=True))
    return params


def _loss(params, x, labels):
    w1, b1, w2, b2, w3, b3 = params
    h = F.relu(F.linear(x, w1, b1))
    h = F.relu(F.linear(h, w2, b2))
    return F.sparse_categorical_cross_entropy(labels, F.linear(h, w3, b3), from_logits=True)


def _batch(dtype, rng, batch=32):
    x = rng.random((batch, SIZES[0])).astype(dtype)
    labels = rng.integers(0, SIZES[-1], batch).astype(np.uint8)  # MNIST's labels are uint8
    return x, labels


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_training_step_keeps_the_dtype_everywhere(dtype, produced):
    rng = np.random.default_rng(0)
    params = _mlp(dtype, rng)
    x, labels = _batch(dtype, rng)
    before = [p.data.copy() for p in params]

    loss = _loss(params, x, labels)
    forward_ops = len(produced)
    loss.backward()
    with nervenet.no_grad():
        for p in params:
            p.data -= 0.01 * p.grad
            p.grad = None

    assert loss.dtype == dtype
    assert len(produced) - forward_ops >= 6  # backward was seen: at least one array per grad
    wrong = [(dt, shape) for dt, shape in produced if dt != dtype]
    assert not wrong, f"arrays whose dtype is not {np.dtype(dtype)}: {wrong}"
    for p, old in zip(params, before):
        assert p.data.dtype == dtype
        assert not np.array_equal(p.data, old)  # the step did update every parameter


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradients_have_the_dtype_and_shape_of_their_parameters(dtype):
    rng = np.random.default_rng(1)
    params = _mlp(dtype, rng)
    x, labels = _batch(dtype, rng)
    _loss(params, x, labels).backward()
    for p in params:
        assert p.grad.dtype == dtype and p.grad.shape == p.shape


def test_float32_step_equals_the_float64_step_to_float32_precision():
    rng = np.random.default_rng(2)
    params64 = _mlp(np.float64, rng)
    params32 = [Tensor(p.data.astype(np.float32), requires_grad=True) for p in params64]
    x, labels = _batch(np.float64, rng)
    _loss(params64, x, labels).backward()
    _loss(params32, x.astype(np.float32), labels).backward()
    for p32, p64 in zip(params32, params64):
        np.testing.assert_allclose(p32.grad, p64.grad, rtol=1e-3, atol=1e-6)


def test_a_hessian_vector_product_stays_float32(produced):
    rng = np.random.default_rng(3)
    params = _mlp(np.float32, rng)
    x, labels = _batch(np.float32, rng, batch=8)
    w3 = params[4]
    w1, b1, w2, b2, _, b3 = params
    h = F.linear(F.relu(F.linear(F.relu(F.linear(x, w1, b1)), w2, b2)), w3, b3)
    loss = (h * h).mean()  # twice differentiable through w3
    (g,) = nervenet.grad(loss, w3, create_graph=True)
    v = rng.standard_normal(w3.shape).astype(np.float32)
    (hv,) = nervenet.grad((g * v).sum(), w3)
    assert g.dtype == np.float32 and hv.dtype == np.float32
    assert len(produced) > 20
    wrong = [(dt, shape) for dt, shape in produced if dt != np.float32]
    assert not wrong, wrong


def test_the_first_layer_input_gradient_is_never_computed(produced):
    """x needs no gradient: backward makes no array of x's shape."""
    rng = np.random.default_rng(4)
    params = _mlp(np.float32, rng)
    x, labels = _batch(np.float32, rng)
    loss = _loss(params, x, labels)
    start = len(produced)
    loss.backward()
    shapes = [shape for _, shape in produced[start:]]
    assert all(p.shape in shapes for p in params)
    assert x.shape not in shapes


def test_freed_array_memory_is_reused_without_page_faults():
    """nervenet keeps freed heap memory (``backend.retain_freed_memory``): arrays of a few
    megabytes allocated and freed step after step come back without touching new pages
    (without it, each of these 4 MiB arrays faulted in about 1000 pages every time)."""
    resource = pytest.importorskip("resource")
    if not nervenet.backend.retain_freed_memory():
        pytest.skip("needs glibc's mallopt")
    for _ in range(2):  # the heap grows once
        a, b = np.ones(1 << 20, np.float32), np.ones(1 << 20, np.float32)
        del a, b
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        a, b = np.ones(1 << 20, np.float32), np.ones(1 << 20, np.float32)
        del a, b
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before < 200


def test_the_retained_memory_is_set_by_the_environment_and_checked():
    def run(value):
        env = {**os.environ, "NERVENET_RETAINED_BYTES": value}
        return subprocess.run([sys.executable, "-c", "import nervenet"], env=env,
                              capture_output=True, text=True, check=False)

    assert run("0").returncode == 0 and run("1048576").returncode == 0
    failed = run("lots")
    assert failed.returncode != 0
    assert "NERVENET_RETAINED_BYTES must be a whole number of bytes" in failed.stderr
    assert "'lots'" in failed.stderr
    assert nervenet.backend.retain_freed_memory(0) is False  # 0: nothing is changed

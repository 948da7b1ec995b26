"""The op registry on the ``fake`` device: forward, backward and double backward give exactly
the CPU's results.

The fake device's arrays refuse to mix with NumPy arrays and to become one implicitly, so an op
that calls ``np.`` on its inputs instead of ``backend.get_array_module``, or copies to the host,
fails here. (The same comparison on a real GPU, to 1e-5 in float32, is tests/gpu.)
"""

from __future__ import annotations

import numpy as np
import pytest

import nervenet
from nervenet import backend
from tests.autograd.opinfo import ALL_OPS
from tests.autograd.test_ops import CASES


def _on(device, value):
    """Sample arguments on ``device``: arrays move, everything else stays."""
    if isinstance(value, np.ndarray):
        return backend.to_device(value, device)
    if isinstance(value, tuple):
        return tuple(_on(device, v) for v in value)
    return value


def _run(info, sample, device, dtype):
    """Outputs, first gradients and second gradients (of sum(grad * v)) of one call."""
    args = tuple(a.astype(dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
                 for a in sample.args)
    indices = info.differentiable_indices(sample)  # read on the host sample
    moved = type(sample)(args=_on(device, args), kwargs={k: _on(device, v) for k, v in
                                                          sample.kwargs.items()})
    tensors = [nervenet.Tensor(moved.args[i], requires_grad=True) for i in indices]
    call = list(moved.args)
    for i, tensor in zip(indices, tensors):
        call[i] = tensor
    y = info.op(*call, **moved.kwargs)
    rng = np.random.default_rng(3)
    upstream = nervenet.tensor(rng.standard_normal(y.shape).astype(y.dtype), device=device)
    second = info.second_order
    grads = nervenet.grad(y, tensors, upstream, create_graph=second, allow_unused=True)
    results = [y.numpy()] + [g.numpy() for g in grads if g is not None]
    if second:
        used = [(g, x) for g, x in zip(grads, tensors) if g is not None and g.requires_grad]
        if used:
            total = sum((g * nervenet.tensor(rng.standard_normal(g.shape).astype(g.dtype),
                                             device=device)).sum() for g, _ in used)
            results += [g.numpy() for g in nervenet.grad(total, [x for _, x in used],
                                                         allow_unused=True) if g is not None]
    return results


def compare_with_cpu(info, sample, device, dtype, rtol=0.0, atol=0.0) -> None:
    """Run one op call on the CPU and on ``device``: every result back on the host, equal
    within ``rtol`` / ``atol`` (exactly by default)."""
    cpu, other = _run(info, sample, "cpu", dtype), _run(info, sample, device, dtype)
    assert len(other) == len(cpu)
    for got, expected in zip(other, cpu):
        assert type(got) is np.ndarray
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


@pytest.mark.parametrize("info, sample", CASES)
def test_fake_device_equals_cpu(info, sample):
    compare_with_cpu(info, sample, "fake", np.float64)


def test_every_op_runs_on_the_fake_device():
    assert {info.name for info in ALL_OPS} <= {case.values[0].name for case in CASES}

"""Generic tests over the op registry: every op, every sample.

* forward equals the NumPy reference (float64);
* float64 central-difference gradcheck with a random upstream gradient, and a zero upstream
  gradient giving zero gradients;
* exact second derivatives (gradgradcheck) where the op claims them;
* float32 in, float32 out (values and gradients), no silent upcast;
* where torch is installed: values and gradients equal torch's to 1e-8 in float64.
"""

from __future__ import annotations

import numpy as np
import pytest

import nervenet
import nervenet.functional as F
from tests.autograd.opinfo import ALL_OPS, NOT_OPS

CASES = [
    pytest.param(info, sample, id=f"{info.name}-{sample.label or i}")
    for info in ALL_OPS
    for i, sample in enumerate(info.samples(np.random.default_rng(0)))
]


def _bind(info, sample):
    """A function of the differentiable arguments only; the others are closed over."""
    indices = info.differentiable_indices(sample)

    def fn(*differentiable):
        args = list(sample.args)
        for i, value in zip(indices, differentiable):
            args[i] = value
        return info.op(*args, **sample.kwargs)

    return fn, [sample.args[i] for i in indices]


def test_every_public_function_has_an_entry():
    registered = {info.name for info in ALL_OPS}
    missing = set(F.__all__) - registered - NOT_OPS
    assert not missing, f"ops without an OpInfo entry: {sorted(missing)}"


@pytest.mark.parametrize("info, sample", CASES)
def test_forward_matches_reference(info, sample):
    if info.reference is None or not info.deterministic:
        pytest.skip("no NumPy reference")
    got = info.op(*sample.args, **sample.kwargs)
    expected = info.reference(*sample.args, **sample.kwargs)
    np.testing.assert_allclose(got.data, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("info, sample", CASES)
def test_gradcheck(info, sample):
    fn, inputs = _bind(info, sample)
    assert nervenet.gradcheck(fn, inputs, atol=info.atol, rtol=info.rtol)


@pytest.mark.parametrize("info, sample", CASES)
def test_gradgradcheck(info, sample):
    if not info.second_order:
        pytest.skip(f"{info.name} has no second derivative")
    fn, inputs = _bind(info, sample)
    assert nervenet.gradgradcheck(fn, inputs, atol=info.atol, rtol=info.rtol)


@pytest.mark.parametrize("info, sample", CASES)
def test_float32_stays_float32(info, sample):
    fn, inputs = _bind(info, sample)
    tensors = [nervenet.Tensor(x.astype(np.float32), requires_grad=True) for x in inputs]
    outputs = fn(*tensors)
    outputs = [outputs] if isinstance(outputs, nervenet.Tensor) else list(outputs)
    for y in outputs:
        assert y.dtype == np.float32, f"{info.name} returned {y.dtype} for float32 inputs"
    total = sum((y * np.ones(y.shape, np.float32)).sum() for y in outputs)
    total.backward()
    for x in tensors:
        assert x.grad is None or x.grad.dtype == np.float32


@pytest.mark.parametrize("info, sample", CASES)
def test_matches_torch(info, sample):
    torch = pytest.importorskip("torch")
    if info.torch_op is None:
        pytest.skip(f"{info.name} has no torch equivalent")
    fn, inputs = _bind(info, sample)
    indices = info.differentiable_indices(sample)
    ours = [nervenet.Tensor(x, requires_grad=True) for x in inputs]
    y = fn(*ours)
    theirs_args = [torch.tensor(np.asarray(a)) for a in sample.args]
    for i in indices:
        theirs_args[i] = theirs_args[i].clone().requires_grad_(True)
    expected = info.torch_op(*theirs_args, **sample.kwargs)
    np.testing.assert_allclose(y.data, expected.detach().numpy(), rtol=1e-8, atol=1e-10)
    upstream = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(upstream)
    expected.backward(torch.tensor(upstream))
    for x, i in zip(ours, indices):
        np.testing.assert_allclose(x.grad, theirs_args[i].grad.numpy(), rtol=1e-8, atol=1e-10,
                                   err_msg=f"gradient of argument {i}")


@pytest.mark.parametrize("info, sample", CASES)
def test_recorded_backward_equals_fast_backward(info, sample):
    """Hot ops also state their gradient on bare arrays (``backward_array``), which the engine
    runs unless ``create_graph=True``; gradcheck tests that form, gradgradcheck only the
    recorded ``backward`` against its own derivative, so the two are compared here (and no op
    may modify its inputs)."""
    if not info.second_order:
        pytest.skip(f"{info.name} has no recorded backward")
    fn, inputs = _bind(info, sample)
    before = [np.array(a, copy=True) for a in sample.args]

    def gradients(create_graph):
        tensors = [nervenet.Tensor(np.array(x), requires_grad=True) for x in inputs]
        y = fn(*tensors)
        upstream = np.random.default_rng(3).standard_normal(y.shape)
        return [g.data for g in nervenet.grad(y, tensors, nervenet.Tensor(upstream),
                                              create_graph=create_graph, allow_unused=True)
                if g is not None]

    for fast, recorded in zip(gradients(False), gradients(True)):
        np.testing.assert_allclose(recorded, fast, rtol=1e-12, atol=1e-15)
    for a, b in zip(sample.args, before):
        np.testing.assert_array_equal(a, b, err_msg=f"{info.name} modified its input")

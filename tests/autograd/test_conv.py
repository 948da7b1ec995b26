"""conv2d beyond the generic registry suites: bad input, "same" geometry, float32, gradients
that are not asked for, second derivatives against torch, random shapes against a loop
reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nervenet
from nervenet.autograd.ops.conv import conv2d
from nervenet.kernels import same_padding
from tests.autograd.opinfo.conv import conv2d_reference, conv2d_torch


@pytest.fixture
def rng():
    return np.random.default_rng(7)


# ----------------------------------------------------------------------------- bad input


def test_3d_input_is_rejected_with_its_shape(rng):
    with pytest.raises(ValueError, match=r"conv2d: x must be 4-D.*\(5, 5, 3\)"):
        conv2d(rng.normal(size=(5, 5, 3)), rng.normal(size=(3, 3, 3, 2)))


def test_kernel_must_be_4d(rng):
    with pytest.raises(ValueError, match=r"conv2d: w must be a 4-D kernel.*\(3, 3, 2\)"):
        conv2d(rng.normal(size=(1, 5, 5, 3)), rng.normal(size=(3, 3, 2)))


def test_channel_mismatch_names_both_shapes(rng):
    with pytest.raises(ValueError) as error:
        conv2d(rng.normal(size=(2, 5, 5, 3)), rng.normal(size=(3, 3, 4, 8)))
    message = str(error.value)
    assert "(2, 5, 5, 3)" in message and "(3, 3, 4, 8)" in message
    assert "3 channels" in message and "4 input channels" in message


def test_kernel_larger_than_padded_input(rng):
    x, w = rng.normal(size=(1, 4, 4, 1)), rng.normal(size=(5, 5, 1, 1))
    with pytest.raises(ValueError, match=r"window \(5, 5\) is larger than the padded input "
                                         r"\(4, 4\)"):
        conv2d(x, w)
    with pytest.raises(ValueError, match=r"padded input \(4, 6\)"):
        conv2d(rng.normal(size=(1, 4, 6, 1)), rng.normal(size=(5, 3, 1, 1)))
    assert conv2d(x, w, padding=1).shape == (1, 2, 2, 1)  # 6x6 once padded: it fits
    assert conv2d(x, w, padding="same").shape == (1, 4, 4, 1)


@pytest.mark.parametrize("kwargs, match", [
    (dict(stride=0), "stride must be a positive int"),
    (dict(stride=(1, 2, 3)), "stride must be a positive int"),
    (dict(stride=1.5), "stride must be a positive int"),
    (dict(padding="full"), "padding must be 'valid', 'same' or a non-negative int"),
    (dict(padding=-1), "padding must be"),
    (dict(b=np.zeros(3)), r"b must have shape \(2,\).*got \(3,\)"),
])
def test_bad_arguments(rng, kwargs, match):
    with pytest.raises(ValueError, match=match):
        conv2d(rng.normal(size=(1, 5, 5, 1)), rng.normal(size=(3, 3, 1, 2)), **kwargs)


# ------------------------------------------------------------------------------ geometry


def test_lenet_shapes_and_values_against_the_loop_reference(rng):
    x = rng.random((3, 28, 28, 1))
    w1, b1 = rng.normal(size=(3, 3, 1, 32)), rng.normal(size=32)
    y = conv2d(x, w1, b1)
    assert y.shape == (3, 26, 26, 32)
    np.testing.assert_allclose(y.data, conv2d_reference(x, w1, b1), rtol=1e-12, atol=1e-12)
    h = rng.normal(size=(3, 13, 13, 32))
    w2 = rng.normal(size=(3, 3, 32, 64))
    y = conv2d(h, w2, padding="same", stride=2)
    assert y.shape == (3, 7, 7, 64)
    np.testing.assert_allclose(y.data, conv2d_reference(h, w2, padding="same", stride=2),
                               rtol=1e-10, atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 2), h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 4),
       o=st.integers(1, 3), kh=st.integers(1, 4), kw=st.integers(1, 4),
       sh=st.integers(1, 3), sw=st.integers(1, 3),
       padding=st.sampled_from(["valid", "same", 0, 1, 2]), seed=st.integers(0, 2**16))
def test_random_geometries_match_the_loop_reference(n, h, w, c, o, kh, kw, sh, sw, padding,
                                                    seed):
    rng = np.random.default_rng(seed)
    x, kernel, b = rng.normal(size=(n, h, w, c)), rng.normal(size=(kh, kw, c, o)), \
        rng.normal(size=o)
    pad = {"valid": 0, "same": None}.get(padding, padding)
    hp = h + (sum(same_padding(h, kh, sh)) if pad is None else 2 * pad)
    wp = w + (sum(same_padding(w, kw, sw)) if pad is None else 2 * pad)
    if kh > hp or kw > wp:
        with pytest.raises(ValueError, match="larger than the padded input"):
            conv2d(x, kernel, b, stride=(sh, sw), padding=padding)
        return
    y = conv2d(x, kernel, b, stride=(sh, sw), padding=padding)
    np.testing.assert_allclose(y.data, conv2d_reference(x, kernel, b, (sh, sw), padding),
                               rtol=1e-10, atol=1e-10)
    if padding == "same":
        assert y.shape[1:3] == (math.ceil(h / sh), math.ceil(w / sw))


# ------------------------------------------------------------------------------ dtypes


def test_float32_stays_float32_and_agrees_with_float64(rng):
    x, w, b = rng.normal(size=(4, 9, 8, 3)), rng.normal(size=(3, 3, 3, 5)), rng.normal(size=5)
    tensors = {}
    for dtype in (np.float32, np.float64):
        ts = [nervenet.Tensor(a.astype(dtype), requires_grad=True) for a in (x, w, b)]
        y = conv2d(*ts, stride=2, padding="same")
        assert y.dtype == dtype
        (y * y).sum().backward()
        for t in ts:
            assert t.grad.dtype == dtype
        tensors[dtype] = (y, ts)
    y32, ts32 = tensors[np.float32]
    y64, ts64 = tensors[np.float64]
    np.testing.assert_allclose(y32.data, y64.data, rtol=1e-3, atol=1e-4)
    for a, b_ in zip(ts32, ts64):
        np.testing.assert_allclose(a.grad, b_.grad, rtol=1e-3, atol=1e-3)


def test_images_without_gradient_get_none_and_weights_still_learn(rng):
    x = nervenet.Tensor(rng.random((2, 6, 6, 1)))  # the data: no gradient wanted
    w = nervenet.Tensor(rng.normal(size=(3, 3, 1, 4)), requires_grad=True)
    b = nervenet.Tensor(np.zeros(4), requires_grad=True)
    conv2d(x, w, b).sum().backward()
    assert x.grad is None
    np.testing.assert_allclose(w.grad[:, :, 0, 0], [[x.data[:, p:p + 4, q:q + 4].sum()
                                                     for q in range(3)] for p in range(3)])
    np.testing.assert_allclose(b.grad, np.full(4, 2 * 4 * 4.0))


# ------------------------------------------------------------------ second derivatives


@pytest.mark.parametrize("stride, padding", [(1, "valid"), (2, "same"), ((2, 1), 1)])
def test_double_backward_matches_torch(rng, stride, padding):
    """Hessian-vector products of a scalar of the input gradient, through both backward
    Functions, equal torch's."""
    torch = pytest.importorskip("torch")
    x, w, b = rng.normal(size=(2, 7, 6, 3)), rng.normal(size=(3, 2, 3, 4)), rng.normal(size=4)
    ours = [nervenet.Tensor(a, requires_grad=True) for a in (x, w, b)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    y = conv2d(*ours, stride=stride, padding=padding)
    ty = conv2d_torch(*theirs, stride=stride, padding=padding)
    upstream = rng.normal(size=y.shape)
    gx, gw = nervenet.grad(y, ours[:2], upstream, create_graph=True)
    tgx, tgw = torch.autograd.grad(ty, theirs[:2], torch.tensor(upstream), create_graph=True)
    vx, vw = rng.normal(size=x.shape), rng.normal(size=w.shape)
    second = nervenet.grad((gx * vx).sum() + (gw * vw).sum(), ours, allow_unused=True)
    tsecond = torch.autograd.grad((tgx * torch.tensor(vx)).sum() + (tgw * torch.tensor(vw)).sum(),
                                  theirs, allow_unused=True)
    for got, expected in zip(second, tsecond):
        if expected is None:
            assert got is None or not np.any(got.data)
        else:
            np.testing.assert_allclose(got.data, expected.numpy(), rtol=1e-9, atol=1e-10)

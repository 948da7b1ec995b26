"""Semantics of the autograd engine: accumulation, graph lifetime, grad(), grad modes, errors."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import nervenet
import nervenet.functional as F
from nervenet import Function, GradcheckError, Tensor


def test_gradients_accumulate_over_fan_out():
    x = Tensor([2.0, -1.0], requires_grad=True)
    y = x * x + x * 3.0  # x used three times
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 3.0)


def test_gradients_accumulate_across_backward_calls():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * 2.0).sum().backward()
    (x * 5.0).sum().backward()
    np.testing.assert_allclose(x.grad, [7.0, 7.0])
    x.zero_grad()
    assert x.grad is None


def test_only_leaves_keep_grad_unless_retained():
    x = Tensor([1.0, 2.0], requires_grad=True)
    hidden = x * 3.0
    kept = x * 4.0
    kept.retain_grad()
    (hidden * kept).sum().backward()
    assert hidden.grad is None
    np.testing.assert_allclose(kept.grad, hidden.data)
    np.testing.assert_allclose(x.grad, 2 * 12.0 * x.data)


def test_backward_on_a_leaf_sets_its_gradient():
    x = Tensor(3.0, requires_grad=True)
    x.backward()
    assert x.grad == 1.0


def test_broadcasting_is_undone_to_each_input_shape():
    a = Tensor(np.ones((2, 3, 4)), requires_grad=True)
    b = Tensor(np.ones((3, 1)), requires_grad=True)
    c = Tensor(2.0, requires_grad=True)
    (a * b + c).sum().backward()
    assert a.grad.shape == (2, 3, 4)
    assert b.grad.shape == (3, 1)
    np.testing.assert_allclose(b.grad, np.full((3, 1), 8.0))
    assert c.grad.shape == () and c.grad == 24.0


def test_worked_chain_rule_example():
    # y = (w*x + b)^2 with x=3, w=2, b=1 -> z=7, y=49, dy/dw = 2*z*x = 42, dy/db = 14, dy/dx = 28
    x = Tensor(3.0, requires_grad=True)
    w = Tensor(2.0, requires_grad=True)
    b = Tensor(1.0, requires_grad=True)
    y = (w * x + b) ** 2
    y.backward()
    assert (y.item(), w.grad, b.grad, x.grad) == (49.0, 42.0, 14.0, 28.0)


def test_backward_twice_through_freed_graph_explains_itself():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, 4 * x.data)


def test_non_scalar_backward_needs_a_gradient():
    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"shape \(2,\).*grad="):
        (x * 2.0).backward()
    with pytest.raises(ValueError, match=r"grad must have the output's shape \(2,\), got \(3,\)"):
        (x * 2.0).backward(np.ones(3))
    (x * 2.0).backward(np.array([1.0, 10.0]))
    np.testing.assert_allclose(x.grad, [2.0, 20.0])


def test_backward_without_graph_explains_itself():
    with pytest.raises(RuntimeError, match="requires_grad=True"):
        Tensor([1.0]).sum().backward()


def test_deep_graph_does_not_hit_the_recursion_limit():
    x = Tensor(1.0, requires_grad=True)
    y = x
    for _ in range(20_000):
        y = y + 1.0
    y.backward()
    assert x.grad == 1.0


def test_graph_is_freed_after_backward():
    x = Tensor(np.ones(3), requires_grad=True)
    y = F.exp(x * 2.0)
    creator = weakref.ref(y.creator)
    y.sum().backward()
    assert y.creator.released
    del y
    gc.collect()
    assert creator() is None


def test_no_grad_records_nothing_and_restores_the_mode():
    w = Tensor([1.0], requires_grad=True)
    with nervenet.no_grad():
        assert not nervenet.is_grad_enabled()
        y = w * 2.0
        with nervenet.enable_grad():
            z = w * 2.0
    assert nervenet.is_grad_enabled()
    assert not y.requires_grad and y.creator is None
    assert z.requires_grad

    @nervenet.no_grad()
    def predict(v):
        return v * 3.0

    assert not predict(w).requires_grad


def test_grad_returns_gradients_without_touching_dot_grad():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = Tensor([3.0], requires_grad=True)
    (gx, gy) = nervenet.grad((x * x).sum() + y.sum() * 0.0, [x, y])
    np.testing.assert_allclose(gx.data, [2.0, 4.0])
    np.testing.assert_allclose(gy.data, [0.0])
    assert x.grad is None and y.grad is None


def test_grad_of_unused_input():
    x = Tensor([1.0], requires_grad=True)
    unused = Tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="allow_unused=True"):
        nervenet.grad((x * 2.0).sum(), [x, unused])
    gx, gu = nervenet.grad((x * 2.0).sum(), [x, unused], allow_unused=True)
    assert gu is None and gx.data[0] == 2.0


def test_grad_with_respect_to_an_intermediate_tensor():
    x = Tensor([1.0, 2.0], requires_grad=True)
    h = x * 3.0
    (gh,) = nervenet.grad((h * h).sum(), h)
    np.testing.assert_allclose(gh.data, 2 * h.data)


def test_second_derivative_of_a_cubic():
    x = Tensor(3.0, requires_grad=True)
    (dy,) = nervenet.grad(x ** 3, x, create_graph=True)
    (d2y,) = nervenet.grad(dy, x)
    assert (dy.item(), d2y.item()) == (27.0, 18.0)


def test_hessian_vector_product_of_a_dense_network_equals_finite_differences():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3))
    w = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    v = rng.standard_normal((3, 4))

    def loss(weight):
        return (F.exp(F.linear(x, weight) * 0.3) ** 2).mean()

    (g,) = nervenet.grad(loss(w), w, create_graph=True)
    (hv,) = nervenet.grad((g * v).sum(), w)
    eps = 1e-6
    w_plus = Tensor(w.data + eps * v, requires_grad=True)
    w_minus = Tensor(w.data - eps * v, requires_grad=True)
    (g_plus,) = nervenet.grad(loss(w_plus), w_plus)
    (g_minus,) = nervenet.grad(loss(w_minus), w_minus)
    np.testing.assert_allclose(hv.data, (g_plus.data - g_minus.data) / (2 * eps), rtol=1e-6,
                               atol=1e-8)


def test_backward_with_create_graph_allows_differentiating_the_gradient():
    x = Tensor(2.0, requires_grad=True)
    y = x ** 4
    (g,) = nervenet.grad(y, x, create_graph=True)
    assert g.requires_grad
    g.backward()
    assert x.grad == 12 * 2.0 ** 2


class _ForgetsUpstream(Function):
    """A wrong square: backward returns 2x without multiplying by the upstream gradient."""

    def forward(self, x):
        return x * x

    def backward(self, gy):
        return 2.0 * self.inputs[0]


class _WrongScale(Function):
    def forward(self, x):
        return x * x

    def backward(self, gy):
        return gy * self.inputs[0] * 3.0


def test_gradcheck_catches_a_backward_that_ignores_the_upstream_gradient():
    with pytest.raises(GradcheckError, match="zero upstream gradient"):
        nervenet.gradcheck(lambda x: _ForgetsUpstream()(x), [np.ones(3)])


def test_gradcheck_names_the_worst_element():
    with pytest.raises(GradcheckError, match=r"input 0 .*worst element \(\d+,\)"):
        nervenet.gradcheck(lambda x: _WrongScale()(x), [np.linspace(0.5, 1.5, 4)])


def test_gradgradcheck_catches_a_non_differentiable_backward():
    class Square(Function):
        def forward(self, x):
            return x * x

        def backward(self, gy):  # correct first derivative, but computed outside the graph
            return gy * Tensor(2.0 * self.inputs[0].data)

    assert nervenet.gradcheck(lambda x: Square()(x), [np.array([1.0, 2.0])])
    with pytest.raises(GradcheckError):
        nervenet.gradgradcheck(lambda x: Square()(x), [np.array([1.0, 2.0])])


def test_op_errors_name_the_op_and_the_shapes():
    with pytest.raises(ValueError, match=r"Add: .*\(2, 3\), \(4,\)"):
        F.add(np.ones((2, 3)), np.ones(4))
    with pytest.raises(ValueError, match=r"inner dimensions differ: 3 .* vs 4"):
        F.matmul(np.ones((2, 3)), np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"linear: x has 5 features"):
        F.linear(np.ones((2, 5)), np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"Reshape: .*\(2, 3\)"):
        F.reshape(np.ones((2, 3)), (4, 2))
    with pytest.raises(TypeError, match="where: condition must be boolean"):
        F.where(np.ones(3), np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match="clip: low must be <= high"):
        F.clip(np.ones(3), 2.0, 1.0)
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        F.sum(np.ones((2, 3)), axis=3)


def test_ties_split_gradient_evenly_as_torch():
    a = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = Tensor([1.0, 5.0, 0.0], requires_grad=True)
    F.maximum(a, b).sum().backward()
    np.testing.assert_allclose(a.grad, [0.5, 0.0, 1.0])
    np.testing.assert_allclose(b.grad, [0.5, 1.0, 0.0])
    x = Tensor([[1.0, 3.0, 3.0]], requires_grad=True)
    F.max(x).backward()
    np.testing.assert_allclose(x.grad, [[0.0, 0.5, 0.5]])


def test_clip_passes_gradient_at_the_bounds_as_torch_clamp():
    x = Tensor([-1.0, 0.0, 0.5, 1.0, 2.0], requires_grad=True)
    F.clip(x, 0.0, 1.0).sum().backward()
    np.testing.assert_allclose(x.grad, [0.0, 1.0, 1.0, 1.0, 0.0])


def test_repeated_advanced_indices_add_up():
    x = Tensor(np.arange(4.0), requires_grad=True)
    x[np.array([0, 0, 3])].sum().backward()
    np.testing.assert_allclose(x.grad, [2.0, 0.0, 0.0, 1.0])


def test_cast_keeps_the_graph_and_returns_gradients_in_the_input_dtype():
    x = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    y = F.cast(x, np.float64)
    assert y.dtype == np.float64 and F.cast(y, np.float64) is y
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, [2.0, 4.0])
    labels = F.cast(np.array([0, 2]), "float32")
    assert labels.dtype == np.float32 and not labels.requires_grad


def test_leaf_gradients_are_writable_and_never_shared():
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = Tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()  # Add hands the same upstream gradient to both
    assert a.grad is not b.grad
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    x.sum().backward()  # the gradient of a sum is a broadcast (read-only) view
    assert x.grad.flags.writeable
    a.grad *= 10.0  # in-place updates of one .grad leave the others alone
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])


class _TwoOutputs(Function):
    """(2x, 3x): backward reads both upstream gradients."""

    def forward(self, x):
        return 2 * x, 3 * x

    def backward(self, g_double, g_triple):
        return g_double * 2 + g_triple * 3


def test_an_output_of_a_multi_output_op_that_nobody_kept_has_zero_gradient():
    x = nervenet.tensor(np.arange(3.0), requires_grad=True)
    double, triple = _TwoOutputs()(x)
    del triple
    gc.collect()
    double.sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])
    x.grad = None
    double, triple = _TwoOutputs()(x)
    (double.sum() + triple.sum()).backward()
    np.testing.assert_array_equal(x.grad, [5.0, 5.0, 5.0])


def test_the_engine_runs_backward_array_in_first_order_passes_and_backward_when_recording():
    """The one place that chooses: an op's array form for a plain backward, its Tensor form
    (differentiable) under create_graph=True; ops without an array form always use backward."""
    calls = []

    class Double(Function):
        def forward(self, x):
            return 2 * x

        def backward(self, gy):
            calls.append("backward")
            return gy * 2.0

        def backward_array(self, gy):
            calls.append("backward_array")
            return gy * 2.0

    x = Tensor([1.0, 3.0], requires_grad=True)
    (g,) = nervenet.grad(Double()(x).sum(), x)
    assert calls == ["backward_array"] and g.creator is None
    np.testing.assert_array_equal(g.data, [2.0, 2.0])
    (g,) = nervenet.grad((Double()(x) * x).sum(), x, create_graph=True)
    assert calls[1:] == ["backward"] and g.creator is not None
    np.testing.assert_array_equal(g.data, 4.0 * x.data)

"""The Tensor's dtype policy, attributes and conversions."""

from __future__ import annotations

import numpy as np
import pytest

import nervenet
from nervenet import Tensor, backend


@pytest.fixture
def float64_default():
    backend.set_floatx("float64")
    yield
    backend.set_floatx("float32")


def test_python_numbers_and_lists_become_floatx():
    assert nervenet.tensor([1, 2, 3]).dtype == np.float32
    assert nervenet.tensor(2).dtype == np.float32
    assert nervenet.tensor([[1.5]]).dtype == np.float32


def test_floating_arrays_keep_their_dtype_and_integer_arrays_stay_integer():
    assert Tensor(np.ones(2, np.float64)).dtype == np.float64
    assert Tensor(np.ones(2, np.float32)).dtype == np.float32
    assert Tensor(np.array([0, 3, 1])).dtype.kind == "i"
    assert Tensor(np.array([True, False])).dtype == bool


def test_set_floatx_changes_the_default(float64_default):
    assert nervenet.tensor([1.0]).dtype == np.float64
    assert backend.floatx() == np.float64


def test_set_floatx_rejects_unknown_dtypes():
    with pytest.raises(ValueError, match=r"set_floatx: dtype must be one of .*'float16'"):
        backend.set_floatx("float16")


def test_scalars_take_the_dtype_of_the_tensor_they_meet():
    x = Tensor(np.ones(3, np.float32))
    for y in (x * 2.5, 2.5 * x, x / 3, 1 - x, x ** 2, x + np.float32(1.0)):
        assert y.dtype == np.float32
    x64 = Tensor(np.ones(3))
    assert (x64 * 2).dtype == np.float64


def test_float64_end_to_end_gradients_are_float64():
    w = Tensor(np.ones((3, 2)), requires_grad=True)
    (nervenet.functional.linear(np.ones((4, 3)), w) ** 2).mean().backward()
    assert w.grad.dtype == np.float64


def test_bad_data_is_rejected_with_a_clear_type_error():
    with pytest.raises(TypeError, match="expected numeric data"):
        Tensor(["a", "b"])
    with pytest.raises(TypeError, match="only floating tensors can require gradients"):
        Tensor(np.array([1, 2]), requires_grad=True)
    with pytest.raises(TypeError, match="cannot make an array"):
        Tensor([[1.0, 2.0], [3.0]])
    with pytest.raises(TypeError, match="expected numeric data"):
        Tensor(np.array([1 + 2j]))


def test_attributes_and_conversions():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, name="x")
    assert x.shape == (2, 3) and x.ndim == 2 and x.size == 6 and len(x) == 2
    assert x.is_leaf and x.numpy() is x.data
    assert "name='x'" in repr(x) and "requires_grad=True" in repr(x)
    y = x * 2.0
    assert not y.is_leaf and "creator=Mul" in repr(y)
    d = y.detach()
    assert d.data is y.data and not d.requires_grad and d.creator is None
    assert Tensor(5.0).item() == 5.0
    with pytest.raises(ValueError, match="one element"):
        x.item()


def test_shape_methods():
    x = Tensor(np.arange(6.0).reshape(2, 3))
    assert x.T.shape == (3, 2)
    assert x.reshape(3, 2).shape == (3, 2) and x.reshape((6,)).shape == (6,)
    assert x.transpose(1, 0).shape == (3, 2)
    assert x.sum().item() == 15.0 and x.mean(axis=0).shape == (3,)
    assert x.max(axis=1, keepdims=True).shape == (2, 1) and x.min().item() == 0.0
    np.testing.assert_array_equal(x[1].data, [3.0, 4.0, 5.0])


def test_comparisons_give_boolean_tensors_without_graph():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    mask = x > 1.5
    assert mask.dtype == bool and not mask.requires_grad
    np.testing.assert_array_equal(mask.data, [False, True, True])


def test_numpy_arrays_on_the_left_defer_to_tensor():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = np.array([3.0, 4.0]) * x
    assert isinstance(y, Tensor)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 4.0])


def test_same_seed_same_random_numbers():
    nervenet.utils.set_random_seed(7)
    first = backend.make_rng().standard_normal(4)
    nervenet.utils.set_random_seed(7)
    second = backend.make_rng().standard_normal(4)
    np.testing.assert_array_equal(first, second)
    with pytest.raises(ValueError, match="non-negative int"):
        nervenet.utils.set_random_seed(-1)

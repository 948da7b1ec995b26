"""The Tensor: an ndarray that remembers how it was computed.

A Tensor holds ``data`` (an ndarray) and, when it was produced by an op while gradients are
being recorded, ``creator``: the Function that made it. Following ``creator`` links backwards
from a result gives the computational graph that ``backward()`` walks with the chain rule.
"""

from __future__ import annotations

import operator

import numpy as np

from nervenet import backend


class Tensor:
    """A multi-dimensional array with reverse-mode automatic differentiation.

    Args:
        data: array-like. A floating ndarray keeps its dtype; Python numbers and lists become
            ``nervenet.backend.floatx()``; integer arrays stay integer (labels).
        requires_grad: record operations on this tensor so that ``backward`` fills ``.grad``
            (default ``False``). Only floating tensors can require gradients.
        name: an optional label, shown in ``repr`` and error messages (default ``None``).

    Attributes:
        data: the ndarray.
        grad: the accumulated gradient (an ndarray of the same shape), or ``None``. Only leaf
            tensors (those not computed by an op) and tensors that called ``retain_grad()``
            receive it.
        creator: the Function that computed this tensor, or ``None`` for a leaf.

    Example:
        >>> x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
        >>> y = (x * x).sum()
        >>> y.backward()
        >>> x.grad
        array([2., 4., 6.], dtype=float32)
    """

    __slots__ = (
        "data", "grad", "requires_grad", "name", "creator", "generation", "retains_grad",
        "__weakref__",
    )
    # Make NumPy defer to Tensor's reflected operators: ``ndarray + Tensor`` gives a Tensor.
    __array_ufunc__ = None

    def __init__(self, data, requires_grad: bool = False, name: str | None = None):
        if isinstance(data, Tensor):
            data = data.data
        self.data = backend.as_array(data)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(
                f"Tensor: only floating tensors can require gradients, got dtype {self.data.dtype}"
            )
        self.requires_grad = bool(requires_grad)
        self.name = name
        self.grad = None
        self.creator = None
        self.generation = 0
        self.retains_grad = False

    @classmethod
    def from_array(cls, array: np.ndarray) -> Tensor:
        """Wrap an ndarray without copying or converting it (the fast path ops use)."""
        tensor = cls.__new__(cls)
        tensor.data = array if type(array) is np.ndarray else backend.as_device_array(array)
        tensor.requires_grad = False
        tensor.name = None
        tensor.grad = None
        tensor.creator = None
        tensor.generation = 0
        tensor.retains_grad = False
        return tensor

    # ----------------------------------------------------------------- array-like attributes
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        """True for tensors not computed by a recorded op (inputs and weights)."""
        return self.creator is None

    def __len__(self) -> int:
        return len(self.data)

    def __bool__(self) -> bool:
        return bool(self.data)

    @property
    def device(self) -> str:
        """Where the data lives: ``"cpu"``, ``"gpu"`` or ``"fake"``."""
        return backend.device_of(self.data)

    def __repr__(self) -> str:
        body = np.array2string(backend.to_numpy(self.data), prefix="Tensor(", separator=", ")
        extras = f", dtype={self.dtype}"
        if self.device != "cpu":
            extras += f", device={self.device!r}"
        if self.name is not None:
            extras += f", name={self.name!r}"
        if self.creator is not None:
            extras += f", creator={type(self.creator).__name__}"
        elif self.requires_grad:
            extras += ", requires_grad=True"
        return f"Tensor({body}{extras})"

    def numpy(self) -> np.ndarray:
        """Return the data as an ndarray: shared, not copied, on the CPU; a host copy from a
        device."""
        return backend.to_numpy(self.data)

    def to(self, device: str) -> Tensor:
        """This tensor on ``device`` (``"cpu"``, ``"gpu"`` or ``"fake"``): itself when it is
        there already, otherwise a new leaf with a copy of the data (and the same
        ``requires_grad``), as ``torch.Tensor.to``.

        Raises:
            ValueError: an unknown device. RuntimeError: ``"gpu"`` without CuPy or CUDA.
        """
        backend.check_device(device)
        if self.device == device:
            return self
        return Tensor(backend.to_device(self.data, device), requires_grad=self.requires_grad,
                      name=self.name)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """``np.asarray(t)``, ``np.stack([t, ...])``: the values, as TensorFlow's eager tensors
        give them (the book's MC Dropout stacks model outputs this way). NumPy's arithmetic
        with a Tensor still records the op (``__array_ufunc__ = None``). A tensor on a device
        refuses, as its arrays do: copy it with ``numpy()``."""
        data = self.data
        if type(data) is not np.ndarray:
            data.__array__()  # raises the device's own TypeError
        if copy:
            return np.array(data, dtype=dtype, copy=True)
        return data if dtype is None else data.astype(dtype, copy=False)

    def item(self) -> float | int | bool:
        """Return the value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def detach(self) -> Tensor:
        """Return a tensor sharing the same data but cut from the graph (no gradient)."""
        return Tensor.from_array(self.data)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place (only on leaves) and return ``self``."""
        if self.creator is not None and not requires_grad:
            raise RuntimeError("requires_grad_(False) is only allowed on leaf tensors; "
                               "use detach() to cut a computed tensor from the graph")
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating tensors can require gradients, got {self.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after ``backward`` (leaves always keep it)."""
        self.retains_grad = True

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (sets ``.grad`` to ``None``)."""
        self.grad = None

    # --------------------------------------------------------------------------- autodiff
    def backward(self, grad=None, create_graph: bool = False,
                 retain_graph: bool | None = None) -> None:
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf that requires gradients.

        Args:
            grad: the upstream gradient, of this tensor's shape. May be omitted only for a
                tensor with one element (then it is 1).
            create_graph: record the backward computation itself, so the gradients can be
                differentiated again (default ``False``).
            retain_graph: keep the graph for another ``backward`` (defaults to
                ``create_graph``); otherwise its saved values are freed.
        """
        engine.backward([self], [grad], create_graph=create_graph, retain_graph=retain_graph)

    # -------------------------------------------------------------------------- operators
    def __add__(self, other):
        return arith.Add()(self, other)

    def __radd__(self, other):
        return arith.Add()(other, self)

    def __sub__(self, other):
        return arith.Sub()(self, other)

    def __rsub__(self, other):
        return arith.Sub()(other, self)

    def __mul__(self, other):
        return arith.Mul()(self, other)

    def __rmul__(self, other):
        return arith.Mul()(other, self)

    def __truediv__(self, other):
        return arith.Div()(self, other)

    def __rtruediv__(self, other):
        return arith.Div()(other, self)

    def __pow__(self, exponent):
        return arith.Pow()(self, exponent)

    def __rpow__(self, base):
        return arith.Pow()(base, self)

    def __neg__(self):
        return arith.Neg()(self)

    def __matmul__(self, other):
        return matmul.matmul(self, other)

    def __rmatmul__(self, other):
        return matmul.matmul(other, self)

    def __getitem__(self, index):
        return shape.GetItem(index)(self)

    # Comparisons give plain boolean tensors: they are not differentiable.
    def _compare(self, other, compare):
        other_data = other.data if isinstance(other, Tensor) else other
        return Tensor.from_array(compare(self.data, other_data))

    def __lt__(self, other):
        return self._compare(other, operator.lt)

    def __le__(self, other):
        return self._compare(other, operator.le)

    def __gt__(self, other):
        return self._compare(other, operator.gt)

    def __ge__(self, other):
        return self._compare(other, operator.ge)

    # Tensors are identified by object, as in PyTorch (so they can be dict keys).
    __hash__ = object.__hash__

    # ---------------------------------------------------------------------- shape methods
    @property
    def T(self) -> Tensor:
        """The tensor with its axes reversed."""
        return shape.Transpose(None)(self)

    def transpose(self, *axes) -> Tensor:
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return shape.Transpose(tuple(axes) if axes else None)(self)

    def reshape(self, *new_shape) -> Tensor:
        if len(new_shape) == 1 and isinstance(new_shape[0], (tuple, list)):
            new_shape = new_shape[0]
        return shape.Reshape(tuple(new_shape))(self)

    def broadcast_to(self, new_shape) -> Tensor:
        return shape.BroadcastTo(tuple(new_shape))(self)

    def sum_to(self, new_shape) -> Tensor:
        """Sum over the axes that broadcasting to ``self.shape`` would have added."""
        return shape.SumTo(tuple(new_shape))(self)

    # ------------------------------------------------------------------------- reductions
    def sum(self, axis=None, keepdims: bool = False) -> Tensor:
        return reduce.Sum(axis, keepdims)(self)

    def mean(self, axis=None, keepdims: bool = False) -> Tensor:
        return reduce.Mean(axis, keepdims)(self)

    def max(self, axis=None, keepdims: bool = False) -> Tensor:
        return reduce.Max(axis, keepdims)(self)

    def min(self, axis=None, keepdims: bool = False) -> Tensor:
        return reduce.Min(axis, keepdims)(self)


def as_tensor(value, like: Tensor | None = None) -> Tensor:
    """Return ``value`` as a Tensor without copying.

    A Python number next to a floating tensor ``like`` takes that tensor's dtype, so that
    ``x * 2`` stays float32 for a float32 ``x``; a number (Python or NumPy scalar) next to a
    tensor on a device goes to that device, as CuPy takes scalars. Arrays never move here.
    """
    if isinstance(value, Tensor):
        return value
    if type(value) is np.ndarray and value.dtype.kind in "biuf":  # the common case: kept as is
        return Tensor.from_array(value)
    if like is None:
        return Tensor.from_array(backend.as_array(value))
    xp = backend.get_array_module(like.data)
    if isinstance(value, (int, float)) and not isinstance(value, bool) \
            and like.data.dtype.kind == "f":
        return Tensor.from_array(xp.asarray(value, dtype=like.data.dtype))
    if xp is not np and isinstance(value, (bool, int, float, np.generic)):
        return Tensor.from_array(xp.asarray(backend.as_array(value)))  # a number joins like
    return Tensor.from_array(backend.as_array(value))


# The ops are Functions over Tensors, and the engine walks Tensors, so both can only be imported
# once the Tensor class exists. Tensor's operators use them by module name at call time.
from nervenet.autograd import engine  # noqa: E402
from nervenet.autograd.ops import arith, matmul, reduce, shape  # noqa: E402

"""The ``fake`` device: NumPy-backed arrays that behave like CuPy's where it matters for tests.

A ``FakeArray`` holds a NumPy array but is not one: as CuPy's ``ndarray`` it refuses to become
a NumPy array implicitly (``np.asarray(fake)`` raises TypeError), refuses to mix with a NumPy
array in arithmetic or in a NumPy function, and copies to the host only through ``.get()``.
``fake_numpy`` is its array module, mirroring the NumPy namespace as ``cupy`` does (and, like
``cupy``, without NumPy's floating-point error state). So a test run on ``"fake"`` fails at
every op that calls ``np.`` on its inputs instead of asking ``backend.get_array_module``, and
at every forgotten host copy, on any machine, while computing exactly what NumPy computes.

Scalars behave as on CuPy: ``float()``, ``int()``, ``bool()`` and ``item()`` of a
one-element array are allowed (a synchronizing scalar read), ``tolist()`` is not provided.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

_REFUSAL = ("Implicit conversion to a NumPy array is not allowed on the fake device (as on "
            "CuPy): use .get() or nervenet.backend.to_numpy() to copy to the host explicitly")


def _unwrap(value):
    """The NumPy array inside a fake array; lists and tuples (indices, operand lists) element by
    element. A NumPy array here is a host array mixed into device code: refused, as CuPy does."""
    kind = type(value)
    if kind is FakeArray:
        return value._array
    if kind is tuple or kind is list:
        return kind(_unwrap(v) for v in value)
    if isinstance(value, np.ndarray):
        raise TypeError(f"the fake device does not mix with NumPy arrays (got a numpy.ndarray of "
                        f"shape {value.shape}): move it with nervenet.backend.to_device first")
    return value


def _wrap(value):
    """Results back on the device: arrays and NumPy scalars become fake arrays (CuPy's
    reductions return 0-d arrays, not scalars); tuples element by element."""
    if isinstance(value, (np.ndarray, np.generic)):
        return FakeArray(np.asarray(value))
    if type(value) in (tuple, list):  # several results (np.split gives a list)
        return type(value)(_wrap(v) for v in value)
    return value


def _call(function, args, kwargs):
    return _wrap(function(*_unwrap(list(args)), **{k: _unwrap(v) for k, v in kwargs.items()}))


def _method(name):
    def method(self, *args, **kwargs):
        return _call(getattr(self._array, name), args, kwargs)
    method.__name__ = name
    return method


def _in_place(name, ufunc):
    def operator(self, other):
        ufunc(self._array, _unwrap(other), out=self._array)
        return self
    operator.__name__ = name
    return operator


def _operator(name):
    def operator(self, other):
        return _wrap(getattr(self._array, name)(_unwrap(other)))
    operator.__name__ = name
    return operator


class FakeArray:
    """An array of the fake device (see the module docstring).

    Attributes:
        shape, dtype, ndim, size, itemsize, nbytes, strides, flags: as NumPy's.
    """

    __slots__ = ("_array",)
    # NumPy's ufuncs and operators give way: ``ndarray + fake`` reaches __radd__, which refuses.
    __array_ufunc__ = None

    def __init__(self, array: np.ndarray):
        if type(array) is not np.ndarray:
            raise TypeError(f"FakeArray wraps a numpy.ndarray, got {type(array).__name__}")
        self._array = array

    def __array__(self, dtype=None, copy=None):
        raise TypeError(_REFUSAL)

    def get(self) -> np.ndarray:
        """A NumPy copy of the values (CuPy's explicit device-to-host copy)."""
        return self._array.copy()

    shape = property(lambda self: self._array.shape)
    dtype = property(lambda self: self._array.dtype)
    ndim = property(lambda self: self._array.ndim)
    size = property(lambda self: self._array.size)
    itemsize = property(lambda self: self._array.itemsize)
    nbytes = property(lambda self: self._array.nbytes)
    strides = property(lambda self: self._array.strides)
    # CuPy's flags: no ``writeable`` (a device array cannot be made read-only)
    flags = property(lambda self: SimpleNamespace(
        c_contiguous=self._array.flags.c_contiguous, f_contiguous=self._array.flags.f_contiguous,
        owndata=self._array.flags.owndata))
    T = property(lambda self: FakeArray(self._array.T))

    def __len__(self) -> int:
        return len(self._array)

    def __iter__(self):
        return (FakeArray(np.asarray(row)) for row in self._array)

    def __getitem__(self, index):
        return _wrap(self._array[_unwrap(index)])

    def __setitem__(self, index, value):
        self._array[_unwrap(index)] = _unwrap(value)

    def _scalar(self, convert):
        if self._array.size != 1:
            raise TypeError(f"only one-element fake arrays convert to a Python scalar, got shape "
                            f"{self._array.shape}")
        return convert(self._array.reshape(()))

    def __float__(self):
        return self._scalar(float)

    def __int__(self):
        return self._scalar(int)

    def __index__(self):
        return self._scalar(lambda a: a.__index__())

    def __bool__(self):
        return self._scalar(bool)

    def item(self):
        return self._scalar(lambda a: a.item())

    def __repr__(self) -> str:
        return repr(self._array).replace("array(", "fake_array(", 1)

    def __str__(self) -> str:
        return str(self._array)

    __hash__ = None  # arrays compare elementwise (as NumPy's and CuPy's)

    for _name in ("all", "any", "argmax", "argmin", "astype", "clip", "copy", "cumsum", "dot",
                  "fill", "flatten", "max", "mean", "min", "nonzero", "prod", "ravel", "repeat",
                  "reshape", "round", "squeeze", "std", "sum", "swapaxes", "take", "transpose",
                  "var", "view"):
        locals()[_name] = _method(_name)
    for _name in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
                  "__truediv__", "__rtruediv__", "__floordiv__", "__rfloordiv__", "__mod__",
                  "__rmod__", "__pow__", "__rpow__", "__matmul__", "__rmatmul__", "__and__",
                  "__rand__", "__or__", "__ror__", "__xor__", "__rxor__", "__lt__", "__le__",
                  "__gt__", "__ge__", "__eq__", "__ne__"):
        locals()[_name] = _operator(_name)
    del _name

    def __neg__(self):
        return _wrap(-self._array)

    def __pos__(self):
        return _wrap(+self._array)

    def __abs__(self):
        return _wrap(abs(self._array))

    def __invert__(self):
        return _wrap(~self._array)

    for _name, _ufunc in (("__iadd__", np.add), ("__isub__", np.subtract),
                          ("__imul__", np.multiply), ("__itruediv__", np.true_divide),
                          ("__ipow__", np.power), ("__iand__", np.bitwise_and),
                          ("__ior__", np.bitwise_or)):
        locals()[_name] = _in_place(_name, _ufunc)
    del _name, _ufunc


class _FakeUfunc:
    """A NumPy ufunc on fake arrays (``fake_numpy.add``), with ``at`` and ``outer`` as CuPy's."""

    def __init__(self, ufunc: np.ufunc):
        self._ufunc = ufunc
        self.__name__ = ufunc.__name__

    def __call__(self, *args, **kwargs):
        unknown = set(kwargs) - {"out", "dtype", "casting"}
        if unknown:  # CuPy's ufuncs take no where=, order=, subok=, ...
            raise TypeError(f"{self.__name__}() on the fake device takes out=, dtype= and "
                            f"casting= only (as CuPy's ufuncs), got {sorted(unknown)}")
        return _call(self._ufunc, args, kwargs)

    def at(self, *args, **kwargs):
        return _call(self._ufunc.at, args, kwargs)

    def outer(self, *args, **kwargs):
        return _call(self._ufunc.outer, args, kwargs)

    def reduce(self, *args, **kwargs):
        return _call(self._ufunc.reduce, args, kwargs)


def _function(function):
    def call(*args, **kwargs):
        return _call(function, args, kwargs)
    call.__name__ = getattr(function, "__name__", "function")
    return call


def _from_host(value, dtype=None, copy=True):
    """``fake_numpy.asarray`` / ``array``: an explicit host-to-device copy (as ``cupy.asarray``
    of a NumPy array); a fake array stays itself unless a dtype or a copy is asked for."""
    if type(value) is FakeArray:
        array = value._array
        return FakeArray(array.astype(dtype) if dtype is not None and copy else
                         np.array(array, dtype=dtype, copy=copy or None))
    return FakeArray(np.array(value, dtype=dtype, copy=True))


class _FakeNumPy:
    """The fake device's array module: NumPy's names, working on fake arrays (see the module
    docstring). Names CuPy does not have (the floating-point error state, masked arrays, ...)
    are absent here too, so that code written against this module runs on CuPy."""

    __name__ = "fake_numpy"
    ndarray = FakeArray
    _ABSENT = frozenset({"errstate", "seterr", "geterr", "seterrcall", "geterrcall", "ma",
                         "char", "rec", "polynomial", "testing", "random", "emath", "ctypeslib"})

    def asarray(self, value, dtype=None):
        return _from_host(value, dtype, copy=False)

    def array(self, value, dtype=None, copy=True):
        return _from_host(value, dtype, copy=copy)

    def asnumpy(self, array) -> np.ndarray:
        return array.get() if type(array) is FakeArray else np.asarray(array)

    lib = SimpleNamespace(stride_tricks=SimpleNamespace(
        as_strided=_function(np.lib.stride_tricks.as_strided)))

    def __getattr__(self, name: str):
        if name in self._ABSENT or name.startswith("_"):
            raise AttributeError(f"fake_numpy has no {name!r} (nor has CuPy)")
        value = getattr(np, name)
        if isinstance(value, np.ufunc):
            value = _FakeUfunc(value)
        elif callable(value) and not isinstance(value, type):
            value = _function(value)
        setattr(self, name, value)  # looked up once
        return value

    def __repr__(self) -> str:
        return "<array module 'fake_numpy' (NumPy-backed, the fake device)>"


#: the fake device's array module (what ``cupy`` is to CuPy arrays)
fake_numpy = _FakeNumPy()

"""Array backend: the array module, the default float dtype and the random generator.

This is the one module that decides how Python values become arrays. Everything else asks it:

* ``get_array_module(*arrays)`` is the array module of the arrays an op receives: NumPy, CuPy
  (device ``"gpu"``) or the fake device's NumPy-backed module (``"fake"``, for tests).
  ``to_device``, ``device_of`` and ``to_numpy`` move arrays between devices; a host copy is
  made only by ``to_numpy`` (``Tensor.numpy()``, saving, metrics' final values, printing).
* ``floatx()`` is the default floating dtype (float32 unless ``set_floatx`` says otherwise).
* ``as_array(value)`` applies the dtype policy of DESIGN.md: a floating ndarray keeps its dtype,
  an integer or boolean ndarray stays as it is (labels, masks), and Python numbers and lists
  become ``floatx``.
* ``default_rng()`` is the process-wide ``numpy.random.Generator`` that
  ``nervenet.utils.set_random_seed`` reseeds; library code draws random numbers only from
  generators, never from the global ``np.random`` state.
* ``retain_freed_memory()`` (applied on import) keeps freed array memory in the process for
  the next arrays instead of handing it back to the operating system.
"""

from __future__ import annotations

import ctypes
import os

import numpy as np

from nervenet import fake_device

_FLOAT_DTYPES = {"float32": np.float32, "float64": np.float64}
_floatx: type[np.floating] = np.float32
_rng: np.random.Generator = np.random.default_rng()


#: the devices an array can live on
DEVICES = ("cpu", "gpu", "fake")
#: array type -> its module, for every array type that is not NumPy's (CuPy's joins on first use)
_DEVICE_MODULES: dict[type, object] = {fake_device.FakeArray: fake_device.fake_numpy}
_DEVICE_NAMES: dict[type, str] = {fake_device.FakeArray: "fake"}


def get_array_module(*arrays):
    """The array module of ``arrays``: ``cupy`` for a CuPy array, the fake device's module for a
    fake array, ``numpy`` otherwise (numbers, ``None`` and NumPy arrays), as Chainer's
    ``cuda.get_array_module``. An op writes ``xp = get_array_module(x)`` and then ``xp.exp(x)``,
    ``xp.zeros(...)``: the same code runs on every device.

    Example:
        >>> get_array_module(np.ones(2)) is np
        True
    """
    for array in arrays:
        module = _DEVICE_MODULES.get(type(array))
        if module is not None:
            return module
    return np


def device_of(array) -> str:
    """The device an array lives on: ``"cpu"`` (NumPy), ``"gpu"`` (CuPy) or ``"fake"``."""
    return _DEVICE_NAMES.get(type(array), "cpu")


def check_device(device) -> str:
    """Return ``device`` when it names a usable device; for ``"gpu"`` check that CuPy imports
    and sees a CUDA GPU.

    Raises:
        ValueError: an unknown device name.
        RuntimeError: ``"gpu"`` without CuPy or without a CUDA GPU (the message says which).
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(map(repr, DEVICES))}, got {device!r}")
    if device == "gpu":
        _cupy()
    return device


def _cupy():
    """CuPy, checked: importable AND seeing a GPU. NOTE: cupy-cuda12x imports fine on a machine
    without CUDA (``cupy.cuda.is_available()`` is False and the first allocation fails), so the
    guard is ``is_available()``, not ImportError alone."""
    try:
        import cupy
    except ImportError as error:
        raise RuntimeError(
            f'device "gpu" needs CuPy, which could not be imported ({error}); install it with '
            f'pip install "nervenet[gpu]" (the cupy-cuda12x wheel, CUDA 12)') from None
    try:
        available = cupy.cuda.is_available()
    except Exception:  # a broken driver or runtime raises instead of answering False
        available = False
    if not available:
        raise RuntimeError(
            'device "gpu": CuPy is installed but sees no CUDA GPU (cupy.cuda.is_available() is '
            'False: no NVIDIA GPU, driver or CUDA runtime); use device "cpu" instead')
    _DEVICE_MODULES.setdefault(cupy.ndarray, cupy)
    _DEVICE_NAMES.setdefault(cupy.ndarray, "gpu")
    return cupy


def to_device(array, device: str):
    """``array`` on ``device`` (itself when it is already there; otherwise a copy).

    NumPy arrays and numbers go to a device as they are; a device array comes to the CPU
    through ``to_numpy``. Random numbers and initial weights are drawn on the host and moved,
    so a seed gives the same values on every device.
    """
    source = device_of(array)
    if source == device:
        return array
    check_device(device)
    host = to_numpy(array) if source != "cpu" else np.asarray(array)
    if device == "cpu":
        return host
    if device == "fake":
        return fake_device.FakeArray(host.copy())
    return _cupy().asarray(host)


def as_device_array(value):
    """``value`` as an array of its own device: a device array as it is, anything else (a
    NumPy scalar, a number) through ``np.asarray``."""
    return value if type(value) in _DEVICE_MODULES else np.asarray(value)


def host_copy(array) -> np.ndarray:
    """A NumPy copy of ``array``, never sharing its memory (one copy, from any device)."""
    return np.array(array, copy=True) if device_of(array) == "cpu" else array.get()


def copy_into(target, value) -> None:
    """``target[...] = value`` for a ``target`` array on any device: a host ``value`` (a
    loaded weight) is moved to the target's device first."""
    target[...] = to_device(value, device_of(target))


def to_numpy(array) -> np.ndarray:
    """A NumPy array of ``array``'s values: the one explicit host copy of a device array (a
    NumPy array or a number comes back as ``np.asarray`` of it, not copied)."""
    if device_of(array) == "cpu":
        return np.asarray(array)
    return array.get()


def floatx() -> np.dtype:
    """Return the default floating dtype (``float32`` unless changed by ``set_floatx``)."""
    return np.dtype(_floatx)


def set_floatx(dtype: str) -> None:
    """Set the default floating dtype: ``"float32"`` or ``"float64"``.

    Python numbers and lists become this dtype, and layers create their weights in it.
    """
    global _floatx
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in _FLOAT_DTYPES:
        raise ValueError(
            f"set_floatx: dtype must be one of {sorted(_FLOAT_DTYPES)}, got {dtype!r}"
        )
    _floatx = _FLOAT_DTYPES[name]


def as_array(value, dtype=None):
    """Convert ``value`` to an ndarray following the dtype policy.

    Args:
        value: an ndarray, a NumPy scalar, a Python number or a (nested) list.
        dtype: force this dtype instead of the policy (default ``None``).

    Returns:
        An ndarray. Floating arrays keep their dtype, integer and boolean arrays stay integer
        and boolean, Python numbers and lists become ``floatx()``.

    Raises:
        TypeError: for strings, objects, complex numbers and other non-numeric data.
    """
    if dtype is not None:
        return get_array_module(value).asarray(value, dtype=dtype)
    if isinstance(value, np.ndarray) or type(value) in _DEVICE_MODULES:  # (keeps its device)
        array = value
    elif isinstance(value, (np.generic, bool)):
        array = np.asarray(value)
    elif isinstance(value, (int, float)):
        return np.asarray(value, dtype=_floatx)
    else:
        try:
            array = np.asarray(value)
        except ValueError as error:  # ragged nested lists
            raise TypeError(f"cannot make an array from {type(value).__name__}: {error}") from None
        if array.dtype.kind in "iuf":
            array = array.astype(_floatx)
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"expected numeric data (bool, integer or float), got dtype {array.dtype} "
            f"from {type(value).__name__}"
        )
    return array


def default_rng() -> np.random.Generator:
    """Return the process-wide random generator (reseeded by ``set_random_seed``)."""
    return _rng


def seed(value: int) -> None:
    """Reseed the process-wide generator. Prefer ``nervenet.utils.set_random_seed``."""
    global _rng
    _rng = np.random.default_rng(value)


def make_rng(seed: int | np.random.Generator | None = None) -> np.random.Generator:
    """Return a generator: ``seed`` itself if it is one, a new one seeded by an int, or a child
    of the process-wide generator when ``seed`` is ``None`` (so ``set_random_seed`` still
    makes the run reproducible)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng(_rng.integers(2**63))
    return np.random.default_rng(seed)


# glibc's <malloc.h>: the mallopt parameter that sets how much free memory the heap keeps.
_M_TOP_PAD = -2
RETAINED_BYTES = 64 << 20


def retain_freed_memory(nbytes: int = RETAINED_BYTES) -> bool:
    """Keep up to ``nbytes`` of freed heap memory for the next allocations instead of handing
    it back to the operating system (glibc's ``mallopt(M_TOP_PAD, nbytes)``); applied with
    the default of 64 MiB when nervenet is imported.

    A training step allocates and frees tens of megabytes of temporaries (im2col matrices,
    activations, masks, gradients), each step the same sizes. By default glibc gives freed
    memory at the top of the heap back to the kernel once a few megabytes are free, so every
    step touches fresh pages again, the largest cost of a CNN training step (bench/README.md,
    "cnn.py"). With the pad the step faults no pages at all. The cost is up to ``nbytes`` of
    resident memory that the process keeps. (Setting the pad also stops glibc from adapting its
    mmap threshold: large blocks that do not fit in the heap's free top are mapped afresh, as
    blocks over 32 MiB always are.)

    The environment variable ``NERVENET_RETAINED_BYTES`` sets the amount applied on import;
    ``0`` leaves the allocator as it is.

    Returns:
        True where it was applied (Linux with glibc), False elsewhere (nothing is changed).
    """
    if nbytes <= 0:
        return False
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
        return bool(ctypes.CDLL(None).mallopt(_M_TOP_PAD, int(nbytes)))
    except (AttributeError, OSError, ValueError):  # not glibc, or no confstr / mallopt
        return False



def _retained_bytes_from_environment() -> int:
    text = os.environ.get("NERVENET_RETAINED_BYTES", str(RETAINED_BYTES))
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"NERVENET_RETAINED_BYTES must be a whole number of bytes (0: keep the "
                         f"allocator's default), got {text!r}") from None


retain_freed_memory(_retained_bytes_from_environment())

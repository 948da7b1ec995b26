"""Array backend: the array module, the default float dtype and the random generator.

This is the one module that decides how Python values become arrays. Everything else asks it:

* ``xp`` is the array module (NumPy today).
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

xp = np

_FLOAT_DTYPES = {"float32": np.float32, "float64": np.float64}
_floatx: type[np.floating] = np.float32
_rng: np.random.Generator = np.random.default_rng()


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


def as_array(value, dtype=None) -> np.ndarray:
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
        return np.asarray(value, dtype=dtype)
    if isinstance(value, np.ndarray):
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
    step touches fresh pages again: about 4,000 page faults per step of a LeNet-style CNN at
    batch 64, 40% of its time with one thread and half of it with two. With the pad the step
    faults no pages at all. The cost is up to ``nbytes`` of resident memory that the process
    keeps. (Setting the pad also stops glibc from adapting its mmap threshold: large blocks that
    do not fit in the heap's free top are mapped afresh, as blocks over 32 MiB always are.)

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

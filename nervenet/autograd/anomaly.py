"""Anomaly detection: find the first op that produced NaN or Inf, and where it was called.

Inside ``with nervenet.detect_anomaly():`` every op remembers the line of user code that
created it, and every output (forward) and every gradient (backward) is checked. The first
non-finite value raises a FloatingPointError naming the op, the pass and that line, instead of a
NaN surfacing much later in the loss or the weights. It costs a traceback per op, so it is a
debugging tool, off by default.
"""

from __future__ import annotations

import os
import traceback

import numpy as np


class AnomalyMode:
    """The switch detect_anomaly turns on (checked once per op, so it costs nothing when off)."""

    enabled = False
    #: the Function whose backward is running (the ops it calls belong to its backward pass)
    backward_of = None


class detect_anomaly:  # noqa: N801  (a context manager, named as torch.autograd.detect_anomaly)
    """Context manager (and decorator) that checks every forward output and backward gradient.

    Example:
        >>> import nervenet
        >>> x = nervenet.tensor([1.0, -1.0], requires_grad=True)
        >>> with nervenet.detect_anomaly():
        ...     y = nervenet.functional.log(x)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        FloatingPointError: Log produced NaN in its forward pass (output shape (2,)), created at ...
    """

    def __init__(self, enabled: bool = True):
        self.enabled = bool(enabled)
        self.previous = False

    def __enter__(self):
        self.previous = AnomalyMode.enabled
        AnomalyMode.enabled = self.enabled
        return self

    def __exit__(self, *exc_info):
        AnomalyMode.enabled = self.previous
        AnomalyMode.backward_of = None
        return False

    def __call__(self, fn):
        def wrapped(*args, **kwargs):
            with detect_anomaly(self.enabled):
                return fn(*args, **kwargs)

        wrapped.__name__ = getattr(fn, "__name__", "wrapped")
        wrapped.__doc__ = getattr(fn, "__doc__", None)
        return wrapped


def is_anomaly_enabled() -> bool:
    """True inside ``detect_anomaly()``."""
    return AnomalyMode.enabled


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def creation_site() -> str:
    """The innermost stack frame outside nervenet itself: where user code created the op."""
    for frame in reversed(traceback.extract_stack()[:-1]):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE):
            return f"{frame.filename}:{frame.lineno} in {frame.name}: {frame.line}"
    return "inside nervenet"


def _problem(array: np.ndarray) -> str | None:
    if array.dtype.kind != "f" or np.all(np.isfinite(array)):
        return None
    return "NaN" if np.isnan(array).any() else "Inf"


def check_forward(function, outputs) -> None:
    """Raise when an output of ``function`` holds NaN or Inf. Inside another op's backward,
    the blame goes to that op's backward pass and to the line that created it."""
    for output in outputs:
        problem = _problem(output.data)
        if problem is None:
            continue
        owner = AnomalyMode.backward_of
        if owner is not None:
            raise FloatingPointError(
                f"{type(owner).__name__} produced {problem} in its backward pass (in its "
                f"{type(function).__name__} step, shape {output.shape}), created at "
                f"{getattr(owner, 'created_at', 'an unknown place')}")
        raise FloatingPointError(
            f"{type(function).__name__} produced {problem} in its forward pass (output "
            f"shape {output.shape}), created at {function.created_at}")


def check_backward(function, gradients) -> None:
    """Raise when a gradient returned by ``function.backward`` holds NaN or Inf."""
    for index, gradient in enumerate(gradients):
        problem = None if gradient is None else _problem(gradient.data)
        if problem:
            raise FloatingPointError(
                f"{type(function).__name__} produced {problem} in its backward pass (gradient "
                f"of input {index}, shape {gradient.shape}), created at "
                f"{getattr(function, 'created_at', 'an unknown place')}")

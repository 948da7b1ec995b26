"""Reverse-mode automatic differentiation over NumPy arrays.

``Tensor`` records the ops applied to it (each a ``Function``); ``backward`` / ``grad`` walk the
recorded graph in reverse with the chain rule. Nothing here knows about layers or models.
"""

from nervenet.autograd.tensor import Tensor, as_tensor  # noqa: I001  (Tensor must come first)
from nervenet.autograd.anomaly import detect_anomaly, is_anomaly_enabled
from nervenet.autograd.engine import grad
from nervenet.autograd.function import (
    Function,
    enable_grad,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from nervenet.autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck

__all__ = [
    "Function", "GradcheckError", "Tensor", "as_tensor", "detect_anomaly", "enable_grad", "grad",
    "gradcheck", "gradgradcheck", "is_anomaly_enabled", "is_grad_enabled", "no_grad",
    "set_grad_enabled",
]

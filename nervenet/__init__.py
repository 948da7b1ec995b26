"""nervenet: a deep-learning library written from first principles on NumPy.

``import nervenet`` makes every public submodule reachable: ``nervenet.functional``,
``nervenet.layers``, ``nervenet.models``, ``nervenet.optimizers``, ``nervenet.losses``, ...
``nervenet.Sequential``, ``nervenet.Model`` and ``nervenet.Input`` are at the top, as in Keras,
so that Keras code runs after ``import nervenet as keras`` (see docs/keras_api.md).
"""

from nervenet import backend, utils  # noqa: I001  (the layers of the house, bottom up)
from nervenet._version import __version__
from nervenet.autograd import (
    Function,
    GradcheckError,
    Tensor,
    detect_anomaly,
    enable_grad,
    grad,
    gradcheck,
    gradgradcheck,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from nervenet import functional
from nervenet import activations, constraints, initializers, losses, metrics, regularizers
from nervenet import layers, optimizers, callbacks, models, saving, data, diagnostics, viz
from nervenet import ensemble, linear, tuning, distributed, datasets, summary
from nervenet.layers import Input
from nervenet.models import Model, Sequential



def _export_onnx(model, filepath, opset: int | None = None, dynamic_batch: bool = True) -> None:
    """``Model.export``'s ``"onnx"`` format: ``nervenet.onnx.export``, imported on first use."""
    import nervenet.onnx

    nervenet.onnx.export(model, filepath, opset=opset, dynamic_batch=dynamic_batch)


models.model.export_formats.add("onnx", _export_onnx)


def __getattr__(name: str):
    """``nervenet.sklearn`` and ``nervenet.onnx`` are imported on first use: they build on
    scikit-learn and onnx (the ``tune`` and ``onnx`` extras), which ``import nervenet`` must
    not load."""
    if name in ("sklearn", "onnx"):
        import importlib

        return importlib.import_module(f"nervenet.{name}")
    raise AttributeError(f"module 'nervenet' has no attribute {name!r}")


def tensor(data, requires_grad: bool = False, name: str | None = None,
           device: str | None = None) -> Tensor:
    """Build a Tensor (see ``nervenet.Tensor`` for the dtype policy), on ``device``
    (``"cpu"``, ``"gpu"`` or ``"fake"``; default ``None``: where ``data`` is, the CPU for
    NumPy arrays, numbers and lists).

    Example:
        >>> import nervenet
        >>> nervenet.tensor([1, 2]).dtype
        dtype('float32')
        >>> nervenet.tensor([1, 2], device="fake").device
        'fake'
    """
    if device is not None:
        data = backend.to_device(backend.as_array(data), backend.check_device(device))
    return Tensor(data, requires_grad=requires_grad, name=name)


__all__ = [
    "Function", "GradcheckError", "Input", "Model", "Sequential", "Tensor", "activations",
    "backend", "callbacks", "constraints", "data", "datasets", "detect_anomaly", "diagnostics",
    "distributed", "enable_grad", "ensemble", "functional", "grad", "gradcheck",
    "gradgradcheck", "initializers", "is_grad_enabled", "layers", "linear", "losses", "metrics",
    "models", "no_grad", "onnx", "optimizers", "regularizers", "saving", "set_grad_enabled",
    "sklearn", "summary", "tensor", "tuning", "utils", "viz", "__version__",
]

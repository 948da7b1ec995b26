"""ONNX export and import: run nervenet models anywhere ONNX runs, start from networks
trained elsewhere.

* ``export(model, path, opset=None, dynamic_batch=True)`` (also ``Model.export``) writes a
  Sequential, functional or traceable subclassed model as an ONNX file that onnxruntime (or any
  ONNX runtime) runs; images stay channels-last as you feed them;
* ``load(path)`` gives a nervenet ``Model`` back: its own exports exactly (architecture and
  weights, from the file's metadata), other graphs (PyTorch's exports) for a subset of
  operators, channels-first convolutions turned into channels-last layers.

``docs/onnx.md`` has the operator table and the limits. This package needs the ``onnx``
package (``pip install nervenet[onnx]``); ``import nervenet`` does not import it.
"""

from __future__ import annotations

import importlib

__all__ = ["DEFAULT_OPSET", "OPSETS", "export", "load"]

DEFAULT_OPSET = 17
OPSETS = range(13, 22)


def _module(name: str):
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ImportError("nervenet.onnx needs the onnx package: pip install 'nervenet[onnx]'"
                          ) from None
    return importlib.import_module(f"nervenet.onnx.{name}")


def export(model, path, opset: int | None = None, dynamic_batch: bool = True) -> None:
    """Write ``model`` to the ONNX file ``path``.

    Args:
        model: a built nervenet Model (Sequential, functional, or subclassed with a ``call``
            that only calls layers).
        path: the ``.onnx`` file (written atomically).
        opset: the ONNX opset, 13 to 21 (default ``None``: 17). The file's IR version is the
            one that opset needs, so older runtimes load it.
        dynamic_batch: leave the batch axis free (default ``True``); ``False`` fixes it to the
            Input's ``batch_size``, or 1.

    Raises:
        ValueError: a layer or activation without a converter (named), an opset out of range,
            a model that is not built or cannot be traced.

    Example:
        >>> import numpy as np, onnxruntime, tempfile, os
        >>> from nervenet import layers, models
        >>> model = models.Sequential([layers.Input(shape=(3,)), layers.Dense(2)])
        >>> path = os.path.join(tempfile.mkdtemp(), "model.onnx")
        >>> export(model, path)
        >>> session = onnxruntime.InferenceSession(path)
        >>> x = np.ones((4, 3), np.float32)
        >>> bool(np.allclose(session.run(None, {"input": x})[0], model.predict(x, verbose=0),
        ...                    atol=1e-6))
        True
    """
    _module("exporter").export(model, path, opset=opset, dynamic_batch=dynamic_batch)


def load(path):
    """A nervenet Model from the ONNX file ``path``.

    A file written by ``export`` is rebuilt exactly (config and weights from its metadata).
    Another graph is converted operator by operator (the subset in ``docs/onnx.md``: Gemm,
    MatMul, Add, Conv, MaxPool, AveragePool, GlobalAveragePool, Relu, LeakyRelu, Sigmoid,
    Tanh, Softmax, Flatten, Reshape, BatchNormalization, Dropout, Identity); channels-first
    (N, C, H, W) inputs become channels-last Inputs (N, H, W, C) with the kernels transposed.
    Weights stored beside the file (``model.onnx.data``) are read from the file's own folder
    only.

    Raises:
        ModelFormatError: a truncated, corrupt or hostile file (external data outside the
            folder, sizes that do not match the data, a cycle, shapes over the limits).
        ValueError: an operator without a converter (naming the operator and the node).
    """
    return _module("importer").load(path)

"""What the ONNX tests share: running a file with onnxruntime, and the export-and-compare check
every layer and model goes through."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the ONNX tests need the onnx package (the onnx "
                                           "extra)")
ort = pytest.importorskip("onnxruntime", reason="the ONNX tests compare with onnxruntime "
                                                "(the test extra installs it)")

import nervenet.onnx  # noqa: E402

#: the tolerance the issue asks of onnxruntime's float32 outputs against model.predict
ATOL = 1e-5


def session(path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run(path, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """onnxruntime's outputs of the file for ``inputs`` in the graph's input order."""
    sess = session(path)
    names = [i.name for i in sess.get_inputs()]
    return sess.run(None, dict(zip(names, inputs)))


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def check_export(model, inputs, path, opset=None, atol: float = ATOL, reload: bool = True):
    """Export ``model`` once to ``path``, then for batch sizes 1 and 7 of ``inputs`` (arrays
    of 7 samples) compare onnxruntime with ``model.predict``; and the file reloaded by
    ``nervenet.onnx.load`` must predict exactly as the model, with the same weights (unless
    not ``reload``). Returns the loaded model."""
    inputs = _as_list(inputs)
    model.export(path, opset=opset)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    for batch in (1, 7):
        feed = [x[:batch] for x in inputs]
        want = _as_list(model.predict(feed if len(feed) > 1 else feed[0], batch_size=batch))
        got = run(path, feed)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=0, atol=atol)
    if not reload:
        return None
    loaded = nervenet.onnx.load(path)
    assert loaded.get_config() == model.get_config()
    for a, b in zip(loaded.weights, model.weights, strict=True):
        assert a.name == b.name
        np.testing.assert_array_equal(a.data, b.data)
    feed = inputs if len(inputs) > 1 else inputs[0]
    for g, w in zip(_as_list(loaded.predict(feed)), _as_list(model.predict(feed))):
        np.testing.assert_array_equal(g, w)
    return loaded

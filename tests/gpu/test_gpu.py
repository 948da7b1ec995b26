"""On a real GPU (CuPy and CUDA; skipped, saying why, elsewhere): the op registry matches the
CPU to 1e-5 in float32, and the MLP and the CNN train to the CPU's losses (dropout off).

The fake device (tests/autograd/test_ops_on_devices.py, tests/models/test_training_on_devices.py)
checks the same code paths on any machine; this checks CuPy's arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from nervenet import backend

cupy = pytest.importorskip("cupy", reason="CuPy is not installed (pip install 'nervenet[gpu]')")
try:
    backend.check_device("gpu")
except RuntimeError as error:
    pytest.skip(str(error), allow_module_level=True)

from tests.autograd.test_ops import CASES  # noqa: E402
from tests.autograd.test_ops_on_devices import compare_with_cpu  # noqa: E402
from tests.models.test_training_on_devices import _data, _model  # noqa: E402


@pytest.mark.parametrize("info, sample", CASES)
def test_op_registry_on_the_gpu_matches_the_cpu_in_float32(info, sample):
    compare_with_cpu(info, sample, "gpu", np.float32, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_mlp_and_cnn_train_to_the_cpu_loss_on_the_gpu(kind):
    x, y = _data(kind)
    histories = {}
    for device in ("cpu", "gpu"):
        model = _model(kind, device, "adam", dropout=0.0)  # no random draws to compare
        histories[device] = model.fit(x, y, epochs=3, batch_size=16, shuffle=False,
                                      verbose=0).history
        assert type(model.predict(x, verbose=0)) is np.ndarray
    np.testing.assert_allclose(histories["gpu"]["loss"], histories["cpu"]["loss"], rtol=1e-4)

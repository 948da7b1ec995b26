"""The course's MNIST CNN (examples/mnist_cnn.py) on the embedded 4,000 / 1,000 subset."""

from __future__ import annotations

import numpy as np
import pytest

from tests.scripts import load_example


def test_cnn_architecture_shapes_and_parameter_counts():
    model = load_example("mnist_cnn").build_model()
    rows = [(layer.name, layer.output_shape, layer.count_params()) for layer in model.layers]
    assert rows[:5] == [  # block 1: Conv -> BN -> ReLU -> Dropout -> MaxPool, as the course
        ("conv1", (None, 28, 28, 32), 3 * 3 * 1 * 32),  # no bias: BN's beta is the shift
        ("bn1", (None, 28, 28, 32), 4 * 32),  # gamma, beta, moving mean and variance
        ("relu1", (None, 28, 28, 32), 0), ("dropout1", (None, 28, 28, 32), 0),
        ("pool1", (None, 14, 14, 32), 0)]
    assert [(name, shape) for name, shape, _ in rows[5:]] == [
        ("conv2", (None, 14, 14, 64)), ("bn2", (None, 14, 14, 64)), ("relu2", (None, 14, 14, 64)),
        ("dropout2", (None, 14, 14, 64)), ("pool2", (None, 7, 7, 64)),
        ("conv3", (None, 7, 7, 128)), ("bn3", (None, 7, 7, 128)), ("relu3", (None, 7, 7, 128)),
        ("dropout3", (None, 7, 7, 128)), ("pool3", (None, 3, 3, 128)),
        ("flatten", (None, 1152)), ("classifier", (None, 10))]
    assert model.count_params() == (288 + 128) + (18432 + 256) + (73728 + 512) + 11530


def test_pictures_of_filters_and_feature_maps(tmp_path):
    pytest.importorskip("matplotlib")
    example = load_example("mnist_cnn")
    model = example.build_model()
    image = np.zeros((28, 28, 1), dtype=np.float32)
    image[6:22, 12:16] = 1.0  # a "1"
    maps = example.feature_maps(model, image)
    assert maps["pool1"].shape == (14, 14, 32) and maps["classifier"].shape == (10,)
    np.testing.assert_allclose(maps["classifier"].sum(), 1.0, rtol=1e-5)
    paths = example.save_pictures(model, image, str(tmp_path))
    assert [p.name for p in paths] == ["cnn_filters.png", "cnn_input.png", "cnn_maps_relu1.png",
                                       "cnn_maps_pool1.png", "cnn_maps_relu2.png"]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_mnist_cnn_reaches_97_percent_in_5_epochs():
    # about 30-40 s with one BLAS thread on a busy 2-core machine
    model, history, accuracy = load_example("mnist_cnn").train(epochs=5, verbose=0)
    # measured test accuracy (one BLAS thread): seeds 0, 1, 2 give 0.973, 0.976, 0.972 with
    # OpenBLAS's Haswell kernels, seed 0 gives 0.975 with SkylakeX (training accuracy 0.996-
    # 0.998): the course's 97% is reached, but a kernel moves the result by 0.002 and a seed by
    # 0.004, so the bound keeps 0.005 below the lowest value measured
    assert accuracy >= 0.967, history.history
    assert len(history.history["val_accuracy"]) == 5
    assert history.history["accuracy"][-1] > 0.98  # training accuracy after 5 epochs

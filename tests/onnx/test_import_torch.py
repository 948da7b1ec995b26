"""Networks built and trained in PyTorch, exported with both of torch's ONNX exporters (the
TorchScript one and the default dynamo one, which writes the weights beside the file as
``model.onnx.data``), load into nervenet and predict as torch does; the imported CNN
fine-tunes on the shipped MNIST subset with its first layers frozen."""

from __future__ import annotations

import importlib.util
import os
import warnings

import numpy as np
import pytest

import nervenet.onnx
import tests.onnx.common  # noqa: F401  (skips without onnx and onnxruntime)
from nervenet import layers, losses, optimizers
from nervenet.data.datasets import load_mnist

torch = pytest.importorskip("torch", reason="the PyTorch import tests need torch (CI has it)")
nn = torch.nn

EXPORTERS = ["torchscript", pytest.param("dynamo", marks=pytest.mark.skipif(
    importlib.util.find_spec("onnxscript") is None,
    reason="torch's dynamo ONNX exporter needs onnxscript (CI installs it)"))]


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def _mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(64, 32), nn.Sigmoid(), nn.Linear(32, 10), nn.Softmax(dim=1))


@pytest.fixture(scope="module")
def mnist():
    (x, y), (x_test, y_test) = load_mnist()
    as_images = (x[:, None] / 255.0).astype(np.float32)  # NCHW, as torch takes them
    return as_images, y.astype(np.int64), (x_test[:, None] / 255.0).astype(np.float32)


@pytest.fixture(scope="module")
def trained(mnist):
    """A LeNet and an MLP, each trained for 30 steps of Adam in torch."""
    x, y, _ = mnist
    torch.manual_seed(0)
    nets = {"lenet": LeNet(), "mlp": _mlp()}
    for net in nets.values():
        optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
        for step in range(30):
            batch = slice(step * 32, step * 32 + 32)
            loss = nn.functional.cross_entropy(net(torch.from_numpy(x[batch])),
                                               torch.from_numpy(y[batch]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        net.eval()
    return nets


def _export(net, path, exporter: str) -> None:
    example = (torch.zeros(2, 1, 28, 28),)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            torch.onnx.export(net, example, str(path), dynamo=True, verbose=False,
                              dynamic_shapes={"x": {0: torch.export.Dim("batch")}}
                              if isinstance(net, LeNet) else
                              {"input": {0: torch.export.Dim("batch")}})
        else:
            torch.onnx.export(net, example, str(path), dynamo=False, input_names=["x"],
                              dynamic_axes={"x": {0: "batch"}})


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", ["lenet", "mlp"])
def test_torch_export_predicts_as_torch(name, exporter, trained, mnist, tmp_path):
    net = trained[name]
    path = tmp_path / f"{name}.onnx"
    _export(net, path, exporter)
    if exporter == "dynamo" and name == "lenet":
        assert os.path.exists(f"{path}.data")  # the weights live beside the file
    model = nervenet.onnx.load(path)
    x = mnist[2][:7]
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    for batch in (1, 7):
        got = model.predict(x[:batch].transpose(0, 2, 3, 1), batch_size=batch)  # NHWC
        np.testing.assert_allclose(got, want[:batch], rtol=0, atol=1e-5)
    if name == "lenet":
        assert [type(layer).__name__ for layer in model.layers if layer.weights] == \
            ["Conv2D", "Conv2D", "Dense", "Dense", "Dense"]


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_dilated_convolutions_predict_as_torch(exporter, mnist, tmp_path):
    """Atrous convolutions: "same" pads of the dilated span, other pads, dilation with
    strides (random weights: the arithmetic, not the training, is the point)."""
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, dilation=2, padding=2), nn.ReLU(),
                        nn.Conv2d(4, 6, (3, 2), dilation=(1, 3), padding=(1, 0), stride=2),
                        nn.Tanh(), nn.Conv2d(6, 3, 3, dilation=(2, 1)), nn.Flatten(),
                        nn.Linear(3 * 10 * 11, 10)).eval()
    _export(net, tmp_path / "atrous.onnx", exporter)
    model = nervenet.onnx.load(tmp_path / "atrous.onnx")
    assert [layer.dilation_rate for layer in model.layers if isinstance(layer, layers.Conv2D)] \
        == [(2, 2), (1, 3), (2, 1)]
    x = mnist[2][:7]
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.predict(x.transpose(0, 2, 3, 1)), want, rtol=0, atol=1e-5)


def test_imported_lenet_fine_tunes_with_frozen_first_layers(trained, mnist, tmp_path):
    x, y, _ = mnist
    _export(trained["lenet"], tmp_path / "lenet.onnx", "torchscript")
    model = nervenet.onnx.load(tmp_path / "lenet.onnx")
    convs = [layer for layer in model.layers if isinstance(layer, layers.Conv2D)]
    for layer in convs:
        layer.trainable = False
    frozen = [w.data.copy() for layer in convs for w in layer.weights]
    dense = [layer for layer in model.layers if isinstance(layer, layers.Dense)]
    before = [w.data.copy() for layer in dense for w in layer.weights]
    x_train, y_train = x[960:1960].transpose(0, 2, 3, 1), y[960:1960]  # not seen by torch
    model.compile(optimizer=optimizers.Adam(learning_rate=3e-3), metrics=["accuracy"],
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True))  # torch's logits
    start = model.evaluate(x_train, y_train, batch_size=500, return_dict=True)
    model.fit(x_train, y_train, epochs=2, batch_size=50, verbose=0)
    end = model.evaluate(x_train, y_train, batch_size=500, return_dict=True)
    assert end["loss"] < 0.9 * start["loss"]
    for weight, value in zip([w for layer in convs for w in layer.weights], frozen):
        np.testing.assert_array_equal(weight.data, value)
    assert all(not np.array_equal(w.data, b)
               for w, b in zip([w for layer in dense for w in layer.weights], before))
    model.save(tmp_path / "tuned.nervenet")  # an ordinary nervenet model from here on

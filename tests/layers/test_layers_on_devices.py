"""Every built-in layer on the ``fake`` device: forward (training and inference) and backward
(the gradients of the inputs and of the trainable weights) equal the CPU's exactly."""

from __future__ import annotations

import numpy as np
import pytest

import nervenet
from nervenet import backend, utils
from tests.layers.test_output_shapes import CASES


def _run(name, device, training):
    factory, shape = CASES[name]
    several = isinstance(shape, list)
    rng = np.random.default_rng(0)
    arrays = [rng.uniform(0.1, 1.0, s).astype(np.float32) for s in (shape if several else
                                                                      [shape])]
    utils.set_random_seed(0)
    layer = factory()
    layer(arrays if several else arrays[0])  # built on the host, as every model is
    for weight in layer.weights:
        weight.data = backend.to_device(weight.data, device)
    inputs = [nervenet.tensor(a, device=device, requires_grad=True) for a in arrays]
    y = layer(inputs if several else inputs[0], training=training)
    upstream = nervenet.tensor(rng.standard_normal(y.shape).astype(np.float32), device=device)
    wanted = inputs + list(layer.trainable_weights)
    grads = nervenet.grad((y * upstream).sum(), wanted, allow_unused=True) \
        if y.requires_grad else []
    return [y.numpy()] + [g.numpy() for g in grads if g is not None] + [
        w.numpy() for w in layer.weights]


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("name", sorted(CASES))
def test_layer_on_the_fake_device_equals_cpu(name, training):
    cpu, fake = _run(name, "cpu", training), _run(name, "fake", training)
    assert len(cpu) == len(fake)
    for got, expected in zip(fake, cpu):
        np.testing.assert_array_equal(got, expected)

"""The layer harness (as Keras's): for every layer, output shape (also against
compute_output_shape), weight counts, one training step that moves the trainable weights,
and a get_config/from_config round trip giving identical outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

import nervenet
from nervenet import layers
from nervenet.layers.base import nested_layers

# (layer factory, input shape, expected output shape, expected trainable, non-trainable counts)
CASES = {
    "Dense": (lambda: layers.Dense(5, activation="tanh"), (4, 3), (4, 5), 20, 0),
    "Dense-no-bias": (lambda: layers.Dense(2, use_bias=False), (4, 3), (4, 2), 6, 0),
    "Dense-3d": (lambda: layers.Dense(2, kernel_initializer="he_normal"), (4, 6, 3), (4, 6, 2),
                 8, 0),
    "Activation": (lambda: layers.Activation("sigmoid"), (4, 3), (4, 3), 0, 0),
    "Flatten": (lambda: layers.Flatten(), (4, 2, 3), (4, 6), 0, 0),
    "Reshape": (lambda: layers.Reshape((3, -1)), (4, 6), (4, 3, 2), 0, 0),
    "Rescaling": (lambda: layers.Rescaling(1 / 255, offset=-0.5), (4, 3), (4, 3), 0, 0),
    "LeakyReLU": (lambda: layers.LeakyReLU(0.2), (4, 3), (4, 3), 0, 0),
    "PReLU": (lambda: layers.PReLU(alpha_initializer="ones"), (4, 3), (4, 3), 3, 0),
    "PReLU-shared": (lambda: layers.PReLU(alpha_initializer=nervenet.initializers.Constant(0.25),
                                          shared_axes=[1]), (4, 5, 3), (4, 5, 3), 3, 0),
    "ELU": (lambda: layers.ELU(0.5), (4, 3), (4, 3), 0, 0),
    "ReLU": (lambda: layers.ReLU(), (4, 3), (4, 3), 0, 0),
    "Softmax": (lambda: layers.Softmax(), (4, 3), (4, 3), 0, 0),
    "Maxout": (lambda: layers.Maxout(2), (4, 6), (4, 2), 0, 0),
    "Normalization": (lambda: layers.Normalization(mean=[1.0, 2.0, 3.0],
                                                   variance=[1.0, 4.0, 9.0]), (4, 3), (4, 3),
                      0, 7),
    "SyncBatchNormalization": (lambda: layers.SyncBatchNormalization(momentum=0.9), (4, 3),
                               (4, 3), 6, 6),
}


@pytest.fixture(params=sorted(CASES))
def case(request):
    return CASES[request.param]


def test_output_shape_and_weight_counts(case):
    factory, input_shape, output_shape, trainable, non_trainable = case
    layer = factory()
    x = np.random.default_rng(0).standard_normal(input_shape).astype(np.float32)
    y = layer(x)
    assert y.shape == output_shape
    assert y.dtype == np.float32
    expected = tuple(layer.compute_output_shape((None,) + input_shape[1:]))
    assert expected == (None,) + output_shape[1:]
    assert layer.output_shape == expected
    assert sum(w.size for w in layer.trainable_weights) == trainable
    assert sum(w.size for w in layer.non_trainable_weights) == non_trainable
    assert layer.count_params() == trainable + non_trainable


def test_one_training_step_moves_the_trainable_weights(case):
    factory, input_shape, *_ = case
    layer = factory()
    x = np.random.default_rng(1).standard_normal(input_shape).astype(np.float32)
    layer(x)
    before = [w.data.copy() for w in layer.weights]
    loss = (layer(x) ** 2).mean()
    if layer.trainable_weights:
        gradients = nervenet.grad(loss, layer.trainable_weights)
        with nervenet.no_grad():
            for w, g in zip(layer.trainable_weights, gradients):
                w.data -= 0.1 * g.data
    for w, old in zip(layer.weights, before):
        moved = not np.array_equal(w.data, old)
        assert moved == any(w is t for t in layer.trainable_weights), w.name


def test_config_round_trip_gives_identical_outputs(case):
    factory, input_shape, *_ = case
    layer = factory()
    x = np.random.default_rng(2).standard_normal(input_shape).astype(np.float32)
    expected = layer(x).data
    config = json.loads(json.dumps(layer.get_config()))  # must be JSON-serialisable
    clone = type(layer).from_config(config)
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(x).data, expected)
    assert clone.get_config() == layer.get_config()


def test_frozen_layer_has_no_trainable_weights():
    layer = layers.Dense(3)
    layer(np.ones((1, 2)))
    layer.trainable = False
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 2
    assert not any(w.requires_grad for w in layer.weights)
    layer.trainable = True
    assert all(w.requires_grad for w in layer.weights)


def test_cached_weight_lists_follow_every_change_of_structure():
    # trainable_weights and sublayers are cached between training steps: freezing, adding
    # sub-layers or weights, and reassigning attributes must all show up at once.
    class Block(layers.Layer):
        def __init__(self):
            super().__init__()
            self.first = layers.Dense(2)

        def call(self, x):
            return self.first(x)

    block = Block()
    block(np.ones((1, 3)))
    first = block.trainable_weights
    assert len(first) == 2
    block.first.trainable = False                       # a sub-layer frozen
    assert block.trainable_weights == []
    block.first.trainable = True
    block.second = layers.Dense(4)                      # a sub-layer added, then built
    block.second(np.ones((1, 2)))
    assert len(block.trainable_weights) == 4 and block.sublayers == [block.first, block.second]
    block.first.add_weight("extra", (1,))               # a weight added
    assert len(block.trainable_weights) == 5
    assert nested_layers(block) == [block.first, block.second]
    block.second = None                                 # a sub-layer removed
    assert block.sublayers == [block.first] and len(block.trainable_weights) == 3
    assert nested_layers(block) == [block.first]
    block.again = [block.first, Block()]                # shared once; nested ones included
    inner = block.again[1]
    assert nested_layers(block) == [block.first, inner, inner.first]


def test_the_input_spec_is_checked_again_when_the_shape_or_the_spec_changes():
    layer = layers.Dense(4)
    layer(np.ones((2, 3)))
    layer(np.ones((5, 3)))                              # another batch size: still fine
    with pytest.raises(ValueError, match="last dimension 3"):
        layer(np.ones((2, 7)))
    layer(np.ones((2, 3)))
    layer.input_spec = layers.InputSpec(ndim=3)         # a new spec applies to the next call
    with pytest.raises(ValueError, match="expected input with 3 dimensions"):
        layer(np.ones((2, 3)))


def test_dense_rejects_a_wrong_feature_shape_naming_both():
    layer = layers.Dense(4)
    layer(np.ones((2, 784)))
    with pytest.raises(ValueError, match=r"Dense expected input with last dimension 784, "
                                         r"got \(32, 28, 28\)"):
        layer(np.ones((32, 28, 28)))


def test_bad_constructor_arguments_are_named():
    with pytest.raises(ValueError, match="units must be a positive int"):
        layers.Dense(0)
    with pytest.raises(ValueError, match="unknown activation 'rleu'; valid activation ids"):
        layers.Dense(3, activation="rleu")
    with pytest.raises(ValueError, match="unknown initializer 'he'"):
        layers.Dense(3, kernel_initializer="he")
    with pytest.raises(ValueError, match="multiple of num_units"):
        layers.Maxout(4)(np.ones((2, 6)))


def test_set_weights_checks_shapes_and_changes_nothing_on_error():
    layer = layers.Dense(2)
    layer(np.ones((1, 3)))
    before = layer.get_weights()
    with pytest.raises(ValueError, match=r"has shape \(2,\), got an array of shape \(3,\)"):
        layer.set_weights([np.zeros((3, 2)), np.zeros(3)])
    for w, old in zip(layer.get_weights(), before):
        np.testing.assert_array_equal(w, old)


def test_normalization_adapt_is_a_z_score():
    data = np.random.default_rng(3).normal(5.0, 2.0, (500, 3))
    layer = layers.Normalization()
    layer.adapt(data)
    out = layer(data).data
    np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(0), 1.0, atol=1e-4)
    inverse = layers.Normalization(mean=data.mean(0), variance=data.var(0), invert=True)
    np.testing.assert_allclose(inverse(out).data, data, rtol=1e-4, atol=1e-4)


def test_a_layers_public_input_check_is_what_its_call_and_sequential_consult():
    class Even(layers.Layer):
        """Accepts only an even number of features: a rule no InputSpec states."""

        def check_input_shapes(self, shapes):
            if shapes[0][-1] % 2:
                raise ValueError(f"{self.name}: an even number of features, got {shapes[0]}")
            super().check_input_shapes(shapes)

        def call(self, x):
            return x

    with pytest.raises(ValueError, match="an even number of features"):
        Even()(np.ones((2, 3)))
    with pytest.raises(ValueError, match="an even number of features"):
        nervenet.models.Sequential([layers.Input(shape=(4,)), layers.Dense(3), Even()])
    model = nervenet.models.Sequential([layers.Input(shape=(4,)), layers.Dense(2), Even()])
    assert model.output_shape == (None, 2)
    dense = layers.Dense(3)
    dense.maybe_build([(None, 5)])                      # built and checked, as a first call
    assert dense.built and dense.kernel.shape == (5, 3)
    with pytest.raises(ValueError, match="last dimension 5"):
        dense.check_input_shapes([(None, 4)])

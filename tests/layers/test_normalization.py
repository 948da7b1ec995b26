"""BatchNormalization against torch.nn.BatchNorm1d/2d, its moving averages, the population
statistics recomputed after training, and folding into the previous layer."""

from __future__ import annotations

import json

import numpy as np
import pytest

import nervenet
from nervenet import layers, models
from nervenet.layers.normalization import (
    BatchNormalization,
    ScaleShift,
    recompute_population_statistics,
)
from nervenet.models.folding import fold_batch_norm
from tests.layers.test_layer_harness import (
    test_config_round_trip_gives_identical_outputs as harness_config,
    test_one_training_step_moves_the_trainable_weights as harness_step,
    test_output_shape_and_weight_counts as harness_shapes,
)

HARNESS = {
    "BatchNormalization": (lambda: BatchNormalization(), (4, 3), (4, 3), 6, 6),
    "BatchNormalization-images": (lambda: BatchNormalization(momentum=0.5, epsilon=1e-5),
                                  (2, 4, 4, 3), (2, 4, 4, 3), 6, 6),
    "BatchNormalization-axis1": (lambda: BatchNormalization(axis=1, center=False),
                                 (4, 3, 5), (4, 3, 5), 3, 6),
    "ScaleShift": (lambda: ScaleShift(), (4, 3), (4, 3), 6, 0),
}


@pytest.mark.parametrize("name", sorted(HARNESS))
def test_layer_harness(name):
    harness_shapes(HARNESS[name])
    harness_step(HARNESS[name])
    harness_config(HARNESS[name])


def _torch_bn(torch, channels, images, keras_momentum, epsilon, gamma, beta):
    cls = torch.nn.BatchNorm2d if images else torch.nn.BatchNorm1d
    bn = cls(channels, eps=epsilon, momentum=1 - keras_momentum).double()
    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(gamma))
        bn.bias.copy_(torch.from_numpy(beta))
    return bn


@pytest.mark.parametrize("images", [False, True], ids=["BatchNorm1d", "BatchNorm2d"])
def test_training_steps_match_torch(images):
    """Forward, gradients (x, gamma, beta, random upstream) and running statistics over five
    training steps, then the inference output, all in float64."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    shape = (6, 5, 4, 3) if images else (8, 3)
    channels, momentum, epsilon = 3, 0.9, 1e-3
    gamma, beta = rng.uniform(0.5, 2.0, channels), rng.normal(size=channels)
    layer = BatchNormalization(momentum=momentum, epsilon=epsilon, dtype="float64")
    layer.build((None,) + shape[1:])
    layer.set_weights([gamma, beta, np.zeros(channels), np.ones(channels)])
    reference = _torch_bn(torch, channels, images, momentum, epsilon, gamma, beta)
    # channels-last (N, H, W, C) here, channels-first (N, C, H, W) for torch
    to_torch = (lambda a: np.moveaxis(a, -1, 1)) if images else (lambda a: a)
    m = int(np.prod(shape[:-1]))  # values per channel: N for Dense, N*H*W for images
    steps = 5
    for _ in range(steps):
        x = rng.normal(3.0, 2.0, shape)
        upstream = rng.normal(size=shape)
        xt = torch.tensor(to_torch(x), requires_grad=True)
        yt = reference(xt)
        (yt * torch.from_numpy(to_torch(upstream))).sum().backward()

        xn = nervenet.Tensor(x, requires_grad=True)
        y = layer(xn, training=True)
        gx, ggamma, gbeta = nervenet.grad((y * upstream).sum(), [xn, layer.gamma, layer.beta])
        np.testing.assert_allclose(to_torch(y.data), yt.detach().numpy(), atol=1e-6, rtol=0)
        np.testing.assert_allclose(to_torch(gx.data), xt.grad.numpy(), atol=1e-6, rtol=0)
        np.testing.assert_allclose(ggamma.data, reference.weight.grad.numpy(), atol=1e-6)
        np.testing.assert_allclose(gbeta.data, reference.bias.grad.numpy(), atol=1e-6)
        reference.zero_grad()

    np.testing.assert_allclose(layer.moving_mean.data, reference.running_mean.numpy(),
                               atol=1e-6, rtol=0)
    # torch averages the unbiased batch variance var_B * m/(m-1), Keras the biased one. From
    # the initial value 1: torch = M^t + (m/(m-1)) * S and Keras = M^t + S, with S the
    # weighted sum of the biased batch variances, so Keras = M^t + (torch - M^t) (m-1)/m.
    decay = momentum ** steps
    expected_var = decay + (reference.running_var.numpy() - decay) * (m - 1) / m
    np.testing.assert_allclose(layer.moving_variance.data, expected_var, atol=1e-6, rtol=0)

    reference.eval()
    with torch.no_grad():
        reference.running_var.copy_(torch.from_numpy(layer.moving_variance.data))
        x = rng.normal(3.0, 2.0, shape)
        expected = reference(torch.from_numpy(to_torch(x))).numpy()
    np.testing.assert_allclose(to_torch(layer(x, training=False).data), expected, atol=1e-6,
                               rtol=0)


def test_moving_average_follows_keras_formula_and_per_feature_map_statistics():
    rng = np.random.default_rng(1)
    x = rng.normal(2.0, 3.0, (4, 5, 5, 2))
    layer = BatchNormalization(momentum=0.8, dtype="float64")
    layer(x, training=True)
    batch_mean, batch_var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))  # N*H*W per channel
    np.testing.assert_allclose(layer.moving_mean.data, 0.2 * batch_mean, rtol=1e-12)
    np.testing.assert_allclose(layer.moving_variance.data, 0.8 + 0.2 * batch_var, rtol=1e-12)
    y = layer(x, training=True).data  # normalized by the batch statistics
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 1, 2)), batch_var / (batch_var + 1e-3), rtol=1e-9)


def test_inference_uses_moving_statistics_and_does_not_update_them():
    layer = BatchNormalization(epsilon=0.0, dtype="float64")
    layer.build((None, 2))
    layer.set_weights([np.array([2.0, 1.0]), np.array([0.5, 0.0]), np.array([1.0, -1.0]),
                       np.array([4.0, 0.25])])
    before = layer.get_weights()
    y = layer(np.array([[3.0, 0.0]])).data
    np.testing.assert_allclose(y, [[2.0 * (3 - 1) / 2 + 0.5, 1.0 * (0 + 1) / 0.5]])
    for w, old in zip(layer.get_weights(), before):
        np.testing.assert_array_equal(w, old)


def test_frozen_layer_runs_in_inference_mode():
    layer = BatchNormalization(dtype="float64")
    x = np.random.default_rng(2).normal(5.0, 1.0, (16, 3))
    expected = layer(x, training=False).data
    layer.trainable = False
    np.testing.assert_array_equal(layer(x, training=True).data, expected)
    np.testing.assert_array_equal(layer.moving_mean.data, np.zeros(3))


def test_batch_of_one_in_training_is_a_clear_error():
    layer = BatchNormalization()
    with pytest.raises(ValueError, match=r"more than one value per channel.*\(1, 4\).*batch "
                                         r"size of at least 2"):
        layer(np.ones((1, 4)), training=True)
    assert layer(np.ones((1, 4))).shape == (1, 4)  # inference is fine


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="momentum must be a number in"):
        BatchNormalization(momentum=1.5)
    with pytest.raises(ValueError, match="epsilon must be a number >= 0"):
        BatchNormalization(epsilon=-1.0)
    with pytest.raises(ValueError, match="axis 0 is not a channel axis"):
        BatchNormalization(axis=0)(np.ones((4, 3)))
    with pytest.raises(ValueError, match="batch_size must be an int >= 2"):
        recompute_population_statistics(models.Sequential([BatchNormalization()]),
                                         np.ones((4, 2)), batch_size=1)
    with pytest.raises(ValueError, match="has no BatchNormalization layer"):
        recompute_population_statistics(models.Sequential([layers.Dense(2)]), np.ones((4, 2)))


def test_regularizers_and_config_round_trip():
    layer = BatchNormalization(gamma_regularizer="l2", beta_regularizer={
        "class_name": "L1", "config": {"l1": 0.5}}, gamma_constraint="non_neg",
        gamma_initializer="random_normal")
    layer(np.ones((2, 3)))
    assert len(layer.regularization_losses()) == 2
    config = json.loads(json.dumps(layer.get_config()))
    clone = BatchNormalization.from_config(config)
    assert clone.get_config() == layer.get_config()
    layer.gamma.data[...] = -1.0
    layer.apply_constraints()
    np.testing.assert_array_equal(layer.gamma.data, 0.0)


def _mlp_with_bn(seed: int, dtype: str = "float32") -> models.Sequential:
    nervenet.utils.set_random_seed(seed)
    return models.Sequential([
        layers.Input(shape=(5,), dtype=dtype),
        BatchNormalization(dtype=dtype),                 # first: becomes a ScaleShift
        layers.Dense(8, dtype=dtype),
        BatchNormalization(momentum=0.5, dtype=dtype),   # folds into the Dense
        layers.Activation("relu", dtype=dtype),
        layers.Dense(6, activation="tanh", use_bias=False, dtype=dtype),
        BatchNormalization(momentum=0.5, dtype=dtype),   # after an activation: ScaleShift
        layers.Dense(4, use_bias=False, dtype=dtype),
        BatchNormalization(momentum=0.5, dtype=dtype),   # folds, creating the bias
        layers.Dense(3, activation="softmax", dtype=dtype),
    ], dtype=dtype)


def test_fold_batch_norm_gives_the_same_predictions():
    model = _mlp_with_bn(3)
    rng = np.random.default_rng(3)
    x = rng.normal(1.0, 2.0, (64, 5)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    folded = fold_batch_norm(model)
    assert [type(layer).__name__ for layer in folded.layers] == [
        "ScaleShift", "Dense", "Activation", "Dense", "ScaleShift", "Dense", "Dense"]
    expected = model.predict(x)
    got = folded.predict(x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    # the pre-activation values themselves (not only the squashed softmax outputs)
    stem, folded_stem = models.Sequential(model.layers[:3]), models.Sequential(folded.layers[:2])
    np.testing.assert_allclose(folded_stem.predict(x), stem.predict(x), atol=1e-5, rtol=1e-5)
    # the copy shares nothing with the original
    folded.layers[1].kernel.data[...] = 0.0
    np.testing.assert_allclose(model.predict(x), expected)


def test_fold_formula_and_layer_fold():
    layer = BatchNormalization(epsilon=0.5, dtype="float64")
    layer.build((None, 2))
    gamma, beta, mu, var = [2.0, -1.0], [0.5, 1.0], [1.0, 3.0], [1.5, 3.5]
    layer.set_weights([np.array(v) for v in (gamma, beta, mu, var)])
    affine = layer.fold()
    assert isinstance(affine, ScaleShift)
    a = np.array(gamma) / np.sqrt(np.array(var) + 0.5)
    np.testing.assert_allclose(affine.scale.data, a, rtol=1e-15)
    np.testing.assert_allclose(affine.shift.data, np.array(beta) - a * np.array(mu), rtol=1e-15)
    x = np.random.default_rng(4).normal(size=(5, 2))
    np.testing.assert_allclose(affine(x).data, layer(x).data, rtol=1e-13)


def test_fold_batch_norm_into_conv2d_when_available():
    conv = pytest.importorskip("nervenet.layers.conv")
    nervenet.utils.set_random_seed(5)
    model = models.Sequential([
        layers.Input(shape=(8, 8, 2)), conv.Conv2D(4, 3), BatchNormalization(momentum=0.0),
        layers.Activation("relu"), layers.Flatten(), layers.Dense(3)])
    x = np.random.default_rng(5).normal(size=(10, 8, 8, 2)).astype(np.float32)
    model(x, training=True)  # momentum 0: the moving statistics are this batch's
    folded = fold_batch_norm(model)
    assert [type(layer).__name__ for layer in folded.layers] == [
        "Conv2D", "Activation", "Flatten", "Dense"]
    np.testing.assert_allclose(folded.predict(x), model.predict(x), atol=1e-5, rtol=1e-5)


def test_fold_batch_norm_rejects_other_models():
    with pytest.raises(TypeError, match="must be a Sequential model"):
        fold_batch_norm(layers.Dense(3))
    with pytest.raises(ValueError, match="must be built"):
        fold_batch_norm(models.Sequential([layers.Dense(3), BatchNormalization()]))


def _batch_norm_forward(h, epsilon=1e-3):
    mean, var = h.mean(axis=0), h.var(axis=0)
    return (h - mean) / np.sqrt(var + epsilon), mean, var


@pytest.mark.parametrize("unbiased", [False, True])
def test_recompute_population_statistics_equals_the_direct_average(unbiased):
    model = _mlp_with_bn(6, dtype="float64")
    x = np.random.default_rng(6).normal(2.0, 3.0, (70, 5))
    model(x, training=True)
    bns = [layer for layer in model.layers if isinstance(layer, BatchNormalization)]
    for bn in bns:  # non-trivial gamma and beta, so later layers see their effect
        bn.gamma.data[...] = np.linspace(0.5, 1.5, bn.gamma.shape[0])
        bn.beta.data[...] = np.linspace(-0.2, 0.3, bn.beta.shape[0])
    recompute_population_statistics(model, x, batch_size=16, unbiased=unbiased)

    # The same by hand: batches of 16, 16, 16, 16 and 6, every BN on its batch statistics.
    dense1, dense2, dense3 = (layer for layer in model.layers if isinstance(layer, layers.Dense)
                              and layer.units != 3)
    sums = [np.zeros(bn.gamma.shape[0]) for bn in bns]
    sums_var = [np.zeros(bn.gamma.shape[0]) for bn in bns]
    for start in range(0, 70, 16):
        h = x[start:start + 16]
        count = len(h)
        factor = count / (count - 1) if unbiased else 1.0
        stages = [lambda h: h, lambda h: h @ dense1.kernel.data + dense1.bias.data,
                  lambda h: np.tanh(np.maximum(h, 0) @ dense2.kernel.data),
                  lambda h: h @ dense3.kernel.data]
        for index, (stage, bn) in enumerate(zip(stages, bns)):
            h = stage(h)
            normalized, mean, var = _batch_norm_forward(h)
            sums[index] += count * mean
            sums_var[index] += count * var * factor
            h = normalized * bn.gamma.data + bn.beta.data
    for bn, total_mean, total_var in zip(bns, sums, sums_var):
        np.testing.assert_allclose(bn.moving_mean.data, total_mean / 70, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(bn.moving_variance.data, total_var / 70, rtol=1e-10)
    assert all(bn._recorded is None for bn in bns)


def test_recompute_population_statistics_single_layer_is_the_data_mean():
    x = np.random.default_rng(7).normal(4.0, 2.0, (33, 3))  # last batch of 1 joins the one before
    bn = BatchNormalization(dtype="float64")
    model = models.Sequential([layers.Input(shape=(3,), dtype="float64"), bn],
                              dtype="float64")
    recompute_population_statistics(model, x, batch_size=8)
    np.testing.assert_allclose(bn.moving_mean.data, x.mean(axis=0), rtol=1e-12)
    expected_var = (8 * sum(x[s:s + 8].var(0) for s in range(0, 24, 8)) + 9 * x[24:].var(0)) / 33
    np.testing.assert_allclose(bn.moving_variance.data, expected_var, rtol=1e-12)


def _batch_norm_accuracy(seed: int) -> float:
    nervenet.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.normal(10.0, 5.0, (256, 4)).astype(np.float32)  # badly scaled inputs
    y = (x[:, 0] - 10 > 0.5 * (x[:, 1] - 10)).astype(np.int64)
    model = models.Sequential([layers.Input(shape=(4,)), layers.Dense(16),
                               BatchNormalization(), layers.Activation("relu"),
                               layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=20, batch_size=32, verbose=0)
    recompute_population_statistics(model, x, batch_size=32)
    return model.evaluate(x, y)[1]


def test_batch_norm_model_trains():
    """An MLP with BatchNormalization fits a small problem; its inference mode is consistent
    with its training mode once the statistics are recomputed."""
    # measured (OpenBLAS Haswell and SkylakeX kernels alike): seeds 8-12 give 0.957, 0.934,
    # 0.910, 0.969, 0.848; one seed alone can fall under 0.9, the median of three does not
    accuracies = [_batch_norm_accuracy(seed) for seed in (8, 9, 10)]
    assert np.median(accuracies) > 0.88, accuracies
    assert min(accuracies) > 0.8, accuracies

"""Initializers: the variance each one promises, seeds, ids and configs."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nervenet
from nervenet import initializers

SHAPE = (400, 300)  # fan_in 400, fan_out 300
FAN_IN, FAN_OUT = SHAPE

EXPECTED_STD = {
    "glorot_uniform": math.sqrt(2 / (FAN_IN + FAN_OUT)),
    "glorot_normal": math.sqrt(2 / (FAN_IN + FAN_OUT)),
    "he_uniform": math.sqrt(2 / FAN_IN),
    "he_normal": math.sqrt(2 / FAN_IN),
    "lecun_uniform": math.sqrt(1 / FAN_IN),
    "lecun_normal": math.sqrt(1 / FAN_IN),
    "random_normal": 0.05,
}


@pytest.mark.parametrize("name", sorted(EXPECTED_STD))
def test_variance_matches_the_formula(name):
    values = initializers.get(name)(SHAPE)
    assert values.dtype == np.float32 and values.shape == SHAPE
    assert abs(values.mean()) < 0.05 * EXPECTED_STD[name]
    np.testing.assert_allclose(values.std(), EXPECTED_STD[name], rtol=0.02)


@pytest.mark.parametrize("name", ["glorot_uniform", "he_uniform", "lecun_uniform"])
def test_uniform_limits(name):
    scale = {"glorot_uniform": 6 / (FAN_IN + FAN_OUT), "he_uniform": 6 / FAN_IN,
             "lecun_uniform": 3 / FAN_IN}[name]
    values = initializers.get(name)(SHAPE)
    limit = math.sqrt(scale)
    assert values.max() <= limit and values.min() >= -limit
    assert values.max() > 0.99 * limit


def test_truncated_normals_stay_within_two_standard_deviations():
    values = initializers.HeNormal()(SHAPE)
    stddev = math.sqrt(2 / FAN_IN) / 0.87962566103423978
    assert np.abs(values).max() <= 2 * stddev


def test_conv_kernel_fans():
    assert initializers.compute_fans((3, 3, 16, 32)) == (144, 288)
    assert initializers.compute_fans((5,)) == (5, 5)


def test_glorot_uniform_equals_torch_xavier_bound():
    torch = pytest.importorskip("torch")
    w = torch.empty(FAN_OUT, FAN_IN)
    torch.nn.init.xavier_uniform_(w)
    ours = initializers.GlorotUniform()(SHAPE)
    assert abs(float(w.abs().max()) - float(np.abs(ours).max())) < 1e-3


def test_seeds_make_values_reproducible():
    a = initializers.GlorotUniform(seed=3)((5, 5))
    b = initializers.GlorotUniform(seed=3)((5, 5))
    np.testing.assert_array_equal(a, b)
    nervenet.utils.set_random_seed(11)
    c = initializers.HeNormal()((5, 5))
    nervenet.utils.set_random_seed(11)
    d = initializers.HeNormal()((5, 5))
    np.testing.assert_array_equal(c, d)


def test_ids_configs_and_errors():
    for name in ["zeros", "ones", "constant", "random_normal", "random_uniform",
                 "truncated_normal", "variance_scaling", "glorot_uniform", "glorot_normal",
                 "he_uniform", "he_normal", "lecun_uniform", "lecun_normal"]:
        initializer = initializers.get(name)
        config = initializers.serialize(initializer)
        again = initializers.get(config)
        assert type(again) is type(initializer) and again.get_config() == initializer.get_config()
    with pytest.raises(ValueError, match="unknown initializer 'xavier'; valid initializer ids"):
        initializers.get("xavier")
    with pytest.raises(ValueError, match="mode must be one of"):
        initializers.VarianceScaling(mode="fan_sum")
    assert initializers.Constant(2.5)((2,)).tolist() == [2.5, 2.5]

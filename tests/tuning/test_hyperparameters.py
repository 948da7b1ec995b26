"""HyperParameters: ranges, sampling, grids, conditions, JSON, bad input."""

import numpy as np
import pytest

from nervenet.tuning import Boolean, Choice, Float, HyperParameters, Int, grid_points


def test_registration_returns_defaults_and_values():
    hp = HyperParameters()
    assert hp.Int("units", 8, 64, step=8) == 8
    assert hp.Float("lr", 1e-4, 1e-1, sampling="log", default=1e-3) == 1e-3
    assert hp.Choice("act", ["relu", "tanh"]) == "relu"
    assert hp.Boolean("bn") is False
    trial = hp.with_values({"units": 32, "lr": 0.01, "act": "tanh", "bn": True})
    assert trial["units"] == 32 and trial.get("act") == "tanh"
    with pytest.raises(ValueError, match="outside"):
        hp.with_values({"units": 128})


def test_log_sampling_is_uniform_in_the_exponent():
    rng = np.random.default_rng(0)
    lr = Float("lr", 1e-5, 1e-1, sampling="log")
    exponents = np.log10([lr.sample(rng) for _ in range(4000)])
    # log10 uniform on [-5, -1]: each decade gets a quarter of the samples
    counts = np.histogram(exponents, bins=4, range=(-5, -1))[0] / 4000
    np.testing.assert_allclose(counts, 0.25, atol=0.03)
    assert Float("lr", 1e-4, 1.0, sampling="log").grid(5) == pytest.approx(
        [1e-4, 1e-3, 1e-2, 1e-1, 1.0])


def test_int_steps_and_grids():
    rng = np.random.default_rng(1)
    units = Int("units", 16, 64, step=16)
    assert units.grid(10) == [16, 32, 48, 64]
    assert set(units.sample(rng) for _ in range(200)) == {16, 32, 48, 64}
    assert Int("n", 1, 100).grid(3) == [1, 50, 100]   # 1 + 0.5 * 99 = 50.5 -> 50 (even)


def test_grid_size_is_q_to_the_m_and_counts_conditions():
    hp = HyperParameters()
    for i in range(4):
        hp.Float(f"x{i}", 0.0, 1.0)
    assert hp.grid_size(q=5) == 5 ** 4
    hp = HyperParameters()
    hp.Choice("optimizer", ["adam", "sgd"])
    with hp.conditional_scope("optimizer", "sgd"):
        hp.Float("momentum", 0.0, 0.9)
    points = grid_points(hp, q=4)
    assert len(points) == 1 + 4                        # adam alone, sgd with 4 momenta
    assert {"optimizer": "adam"} in points
    assert all(("momentum" in p) == (p["optimizer"] == "sgd") for p in points)


def test_config_round_trip():
    hp = HyperParameters()
    hp.Int("units", 8, 64, step=8)
    hp.Choice("act", ["relu", "tanh"])
    with hp.conditional_scope("act", "relu"):
        hp.Boolean("leaky")
    copy = HyperParameters.from_config(hp.get_config())
    assert [h.get_config() for h in copy.space] == [h.get_config() for h in hp.space]
    assert copy.values == hp.values


def test_bad_ranges_give_clear_errors():
    with pytest.raises(ValueError, match="min_value must be <= max_value"):
        Float("lr", 1.0, 0.1)
    with pytest.raises(ValueError, match="sampling='log' needs min_value > 0"):
        Float("lr", 0.0, 1.0, sampling="log")
    with pytest.raises(ValueError, match="sampling='log' needs min_value > 0"):
        Int("units", -4, 64, sampling="log")
    with pytest.raises(ValueError, match="sampling must be 'linear' or 'log'"):
        Float("lr", 0.1, 1.0, sampling="exp")
    with pytest.raises(ValueError, match="step must be a positive number"):
        Int("units", 1, 10, step=0)
    with pytest.raises(ValueError, match="must be an int"):
        Int("units", 1.5, 10)
    with pytest.raises(ValueError, match="non-empty list"):
        Choice("act", [])
    with pytest.raises(ValueError, match="default"):
        Choice("act", ["relu"], default="tanh")
    hp = HyperParameters()
    hp.Int("units", 1, 10)
    with pytest.raises(ValueError, match="defined twice differently"):
        hp.Int("units", 1, 20)
    with pytest.raises(ValueError, match="must be registered first"), \
            hp.conditional_scope("optimizer", "sgd"):
        pass
    assert Boolean("b").grid(5) == [False, True]

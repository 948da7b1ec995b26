"""Tuning as KerasTuner users write it (issue #15): the documented coarse-to-fine workflow,
``tuner.oracle``, ``Trial.summary()``, ``results_summary()``, ``get_best_hyperparameters``,
KerasTuner's BayesianOptimization arguments, and why a failed trial failed."""

from __future__ import annotations

import numpy as np
import pytest

from nervenet import layers, models, optimizers
from nervenet.tuning import HyperParameters, RandomSearch, coarse_to_fine


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((48, 8)).astype(np.float32)
    return x, x[:, :1] * 2 - x[:, 1:2]


BUILT = []


def build(hp):
    """docs/tuning.md's hypermodel."""
    units = hp.Int("units", 16, 256, sampling="log")
    BUILT.append(units)
    model = models.Sequential([
        layers.Input(shape=(8,)),
        layers.Dense(units, activation="relu"),
        layers.Dense(1)])
    model.compile(optimizer=optimizers.Adam(hp.Float("learning_rate", 1e-4, 1e-1,
                                                     sampling="log")), loss="mse")
    return model


def test_the_documented_coarse_to_fine_workflow_runs(capsys):
    x, y = _data()
    tuner = RandomSearch(build, objective="val_loss", max_trials=4, seed=0)
    tuner.search(x, y, validation_data=(x, y), epochs=2)
    narrowed = coarse_to_fine(tuner)
    fine = RandomSearch(build, max_trials=3, hyperparameters=narrowed, seed=1)
    BUILT.clear()
    fine.search(x, y, validation_data=(x, y), epochs=2)
    assert [t.status for t in fine.trials] == ["COMPLETED"] * 3, [t.message for t in fine.trials]
    coarse = {hp.name: hp for hp in tuner.hyperparameters.space}
    assert any(hp.min_value > coarse[hp.name].min_value or hp.max_value <
               coarse[hp.name].max_value for hp in narrowed.space)          # really narrowed
    for trial in fine.trials:                  # the fine trials stay in the narrowed ranges
        for hp in narrowed.space:
            assert hp.min_value <= trial.hyperparameters[hp.name] <= hp.max_value
    # and the hypermodel built what the trial says (the narrowed range overrides its own)
    assert BUILT[-3:] == [t.hyperparameters["units"] for t in fine.trials]
    assert "defined twice" not in capsys.readouterr().out


def test_redefining_a_hyperparameter_differently_is_still_an_error_without_override():
    hp = HyperParameters()
    hp.Int("units", 16, 256)
    with pytest.raises(ValueError, match="defined twice differently"):
        hp.Int("units", 8, 64)
    given = HyperParameters()
    given.Int("units", 32, 64)
    overriding = given.override()
    assert overriding.Int("units", 16, 256) == 32                       # the given default
    assert overriding.get_config()["predefined"] == ["units"]
    assert HyperParameters.from_config(overriding.get_config()).predefined == {"units"}


def test_new_entries_of_the_hypermodel_with_a_given_space():
    given = HyperParameters()
    given.Int("units", 20, 30)
    tuner = RandomSearch(build, max_trials=1, hyperparameters=given, seed=0, verbose=0)
    assert [hp.name for hp in tuner.hyperparameters.space] == ["units", "learning_rate"]
    fixed = RandomSearch(build, max_trials=1, hyperparameters=given, seed=0, verbose=0,
                         tune_new_entries=False)
    assert type(fixed.hyperparameters._get("learning_rate")).__name__ == "Fixed"
    with pytest.raises(ValueError, match=r"\['learning_rate'\].*allow_new_entries"):
        RandomSearch(build, max_trials=1, hyperparameters=given, allow_new_entries=False)


def test_oracle_trial_summary_and_results_summary(capsys):
    x, y = _data()
    tuner = RandomSearch(build, objective="val_loss", max_trials=3, seed=2, verbose=0)
    tuner.search(x, y, validation_data=(x, y), epochs=2)
    best_trial = tuner.oracle.get_best_trials(num_trials=1)[0]
    text = best_trial.summary()
    assert text.startswith(f"Trial {best_trial.trial_id} summary\nHyperparameters:\nunits: ")
    assert f"Score: {best_trial.score}" in capsys.readouterr().out
    # KerasTuner's metrics tracker: every metric at the best epoch
    assert best_trial.metrics.get_last_value("val_loss") == best_trial.score
    assert best_trial.metrics.exists("loss") and best_trial.metrics.get_last_value("x") is None
    assert list(tuner.oracle.trials) == ["0000", "0001", "0002"]
    assert tuner.oracle.get_trial("0001") is tuner.trials[1]
    assert tuner.oracle.objective.name == "val_loss" and tuner.oracle.max_trials == 3
    top = tuner.get_best_hyperparameters(num_trials=2)
    assert len(top) == 2 and top[0].values == best_trial.hyperparameters.values
    scores = sorted(t.score for t in tuner.trials)
    assert [t.score for t in tuner.get_best_trials(3)] == scores
    summary = tuner.results_summary(num_trials=2)
    assert summary.count("summary\nHyperparameters:") == 2


def test_a_failed_trial_says_why_in_its_printed_line(capsys):
    x, y = _data()
    tuner = RandomSearch(build, objective="val_accuracy", max_trials=1, seed=0)
    tuner.search(x, y, validation_data=(x, y), epochs=1)
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("Trial 0000")]
    assert "FAILED" in line[0] and "not in the fit's history" in line[0]
    assert "not in the fit's history" in tuner.results_summary()
    assert "Failed: ValueError" in tuner.trials[0].summary()


def test_bayesian_optimization_takes_kerastuner_arguments():
    pytest.importorskip("optuna", reason="BayesianOptimization runs on Optuna")
    from nervenet.tuning import BayesianOptimization

    def toy(hp):
        hp.Float("x", -1.0, 1.0)

    class Parabola(BayesianOptimization):
        def run_trial(self, trial, *args, **kwargs):
            return (trial.hyperparameters["x"] - 0.3) ** 2

    tuner = Parabola(toy, objective="loss", max_trials=6, num_initial_points=2, alpha=1e-4,
                     beta=2.6, seed=0, verbose=0)
    tuner.search()
    assert len(tuner.trials) == 6
    assert tuner._make_sampler()._n_startup_trials == 2
    with pytest.warns(UserWarning, match="alpha=0.01 has no effect"):
        Parabola(toy, objective="loss", alpha=0.01, verbose=0)
    with pytest.warns(UserWarning, match="beta=3 has no effect"):
        Parabola(toy, objective="loss", beta=3, verbose=0)
    with pytest.raises(ValueError, match="num_initial_points"):
        Parabola(toy, objective="loss", num_initial_points=-1)

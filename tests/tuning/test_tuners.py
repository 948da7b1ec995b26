"""Tuners: random beats grid when one hyperparameter doesn't matter, saving and resuming,
training real models, Bayesian optimization, Hyperband, coarse-to-fine."""

import concurrent.futures
import json

import numpy as np
import pytest

from nervenet import layers, models, optimizers
from nervenet.tuning import (
    GridSearch,
    Hyperband,
    HyperParameters,
    RandomSearch,
    coarse_to_fine,
)


def space(hp):
    hp.Float("learning_rate", 0.0, 1.0)
    hp.Float("irrelevant", 0.0, 1.0)


def validation_loss(trial):
    # Only the learning rate matters (best at 0.37); the other hyperparameter has no effect.
    return (trial.hyperparameters["learning_rate"] - 0.37) ** 2


class GridToy(GridSearch):
    def run_trial(self, trial):
        return validation_loss(trial)


class RandomToy(RandomSearch):
    def run_trial(self, trial):
        return validation_loss(trial)


def test_random_search_beats_grid_search_when_one_hyperparameter_does_not_matter():
    # 9 trials: the 3 x 3 grid tries only 3 learning rates (0, 0.5, 1), each three times;
    # random search tries 9 different ones (Bergstra & Bengio 2012, the course's argument).
    grid = GridToy(space, objective="val_loss", q=3, verbose=0)
    grid.search()
    assert len(grid.trials) == 9 == grid.hyperparameters.grid_size(3)
    assert len({t.hyperparameters["learning_rate"] for t in grid.trials}) == 3
    wins = 0
    for seed in range(20):
        random = RandomToy(space, objective="val_loss", max_trials=9, seed=seed, verbose=0)
        random.search()
        assert len({t.hyperparameters["learning_rate"] for t in random.trials}) == 9
        wins += random.get_best_trials()[0].score < grid.get_best_trials()[0].score
    # grid's best is (0.5 - 0.37)^2 = 0.0169: random search is closer in 19 of 20 seeds
    assert grid.get_best_trials()[0].score == pytest.approx(0.13 ** 2)
    assert wins >= 18
    seeded = RandomToy(space, objective="val_loss", max_trials=9, seed=0, verbose=0)
    seeded.search()
    assert seeded.get_best_trials()[0].score < grid.get_best_trials()[0].score


def test_trials_are_saved_as_json_and_resumed(tmp_path):
    first = RandomToy(space, objective="val_loss", max_trials=4, seed=3, directory=tmp_path,
                      project_name="toy", verbose=0)
    first.search()
    state = json.loads((tmp_path / "toy" / "trials.json").read_text())
    assert [t["status"] for t in state["trials"]] == ["COMPLETED"] * 4
    resumed = RandomToy(space, objective="val_loss", max_trials=7, seed=3, directory=tmp_path,
                        project_name="toy", verbose=0)
    assert len(resumed.trials) == 4
    resumed.search()                                   # only the 3 missing trials run
    fresh = RandomToy(space, objective="val_loss", max_trials=7, seed=3, verbose=0)
    fresh.search()
    assert [t.hyperparameters.values for t in resumed.trials] == [
        t.hyperparameters.values for t in fresh.trials]
    with pytest.raises(ValueError, match="another space"):
        RandomToy(lambda hp: hp.Int("units", 1, 4), objective="val_loss", directory=tmp_path,
                  project_name="toy", verbose=0)


def test_tuners_sharing_a_directory_save_concurrently_without_clobbering(tmp_path):
    # Parallel workers (n_jobs > 1) each save trials.json; every save needs its own temporary
    # file, or one worker renames away the file another is about to rename (a CI failure).
    tuners = [RandomToy(space, objective="val_loss", max_trials=2, seed=s, directory=tmp_path,
                        project_name="shared", verbose=0) for s in range(4)]

    def save_often(tuner):
        for _ in range(150):
            tuner._save()

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(save_often, tuners))
    assert json.loads((tmp_path / "shared" / "trials.json").read_text())["trials"] == []
    assert [p.name for p in (tmp_path / "shared").iterdir()] == ["trials.json"]


def _regression_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5], dtype=np.float32))[:, None]
    return (x[:120], y[:120]), (x[120:], y[120:])


def build_model(hp):
    model = models.Sequential([layers.Input(shape=(3,)),
                               layers.Dense(hp.Int("units", 2, 8, step=6), activation="tanh"),
                               layers.Dense(1)])
    model.compile(optimizer=optimizers.Adam(hp.Float("learning_rate", 1e-3, 1e-1,
                                                     sampling="log")), loss="mse")
    return model


def test_search_trains_models_and_restores_the_best(tmp_path, capsys):
    (x, y), validation = _regression_data()
    tuner = RandomSearch(build_model, objective="val_loss", max_trials=3, seed=0,
                         directory=tmp_path, verbose=1)
    tuner.search(x, y, validation_data=validation, epochs=5, batch_size=32)
    printed = capsys.readouterr().out
    assert "Search space summary" in printed and "Trial 0002 COMPLETED" in printed
    best_trial = tuner.get_best_trials()[0]
    assert best_trial.score == min(t.score for t in tuner.trials)
    (model,) = tuner.get_best_models()
    # the restored model is the trained one: its validation loss is the trial's last epoch's
    assert model.evaluate(*validation, verbose=0) <= best_trial.score * 1.5 + 1e-6
    hp = tuner.get_best_hyperparameters()[0]
    assert model.layers[0].units == hp["units"]
    assert "Score:" in tuner.results_summary()


def test_missing_objective_is_a_clear_error():
    (x, y), _ = _regression_data()
    tuner = RandomSearch(build_model, objective="val_loss", max_trials=1, verbose=0)
    tuner.search(x, y, epochs=1)                       # no validation data: no val_loss
    assert tuner.trials[0].status == "FAILED"
    assert "not in the fit's history" in tuner.trials[0].message


def test_hyperband_brackets_and_successive_halving():
    tuner = Hyperband(build_model, max_epochs=9, factor=3, seed=0, verbose=0)
    assert tuner.brackets() == [[(9, 1), (3, 3), (1, 9)], [(5, 3), (1, 9)], [(3, 9)]]
    (x, y), validation = _regression_data()
    tuner.search(x, y, validation_data=validation, batch_size=40)
    assert len(tuner.trials) == 9 + 3 + 1 + 5 + 1 + 3
    first = [t.hyperparameters.values for t in tuner.trials[:13]]
    # the 3 promoted from the first round are its best 3, continued from epoch 1 to 3
    round0 = sorted(tuner.trials[:9], key=lambda t: t.score)[:3]
    assert [v["tuner/config"] for v in first[9:12]] == [
        t.hyperparameters["tuner/config"] for t in round0]
    assert all(v["tuner/initial_epoch"] == 1 and v["tuner/epochs"] == 3 for v in first[9:12])


def test_coarse_to_fine_narrows_around_the_best_trials():
    tuner = RandomToy(space, objective="val_loss", max_trials=30, seed=0, verbose=0)
    tuner.search()
    narrowed = coarse_to_fine(tuner, top_k=3, margin=0.25)
    lr = next(hp for hp in narrowed.space if hp.name == "learning_rate")
    assert lr.min_value <= 0.37 <= lr.max_value
    assert lr.max_value - lr.min_value < 0.3
    fine = RandomToy(space, objective="val_loss", max_trials=10, seed=1,
                     hyperparameters=narrowed, verbose=0)
    fine.search()
    assert fine.get_best_trials()[0].score <= tuner.get_best_trials()[0].score * 1.01
    with pytest.raises(ValueError, match="no completed trial"):
        coarse_to_fine(RandomToy(space, objective="val_loss", verbose=0))


def test_bad_arguments():
    with pytest.raises(ValueError, match="hypermodel or override run_trial"):
        RandomSearch(None)
    with pytest.raises(ValueError, match="max_trials"):
        RandomSearch(space, max_trials=0)
    with pytest.raises(ValueError, match="direction"):
        from nervenet.tuning import Objective
        Objective("val_loss", "down")
    with pytest.raises(ValueError, match="factor"):
        Hyperband(build_model, factor=1)
    assert isinstance(HyperParameters(), HyperParameters)


class _Crash(RuntimeError):
    pass


def test_hyperband_resumes_from_its_directory_without_retraining(tmp_path):
    (x, y), validation = _regression_data()
    runs = []

    class Counting(Hyperband):
        crash_after = None

        def run_trial(self, trial, *args, **kwargs):
            if self.crash_after is not None and len(runs) == self.crash_after:
                raise _Crash("the machine went down")
            runs.append(trial.trial_id)
            return super().run_trial(trial, *args, **kwargs)

    first = Counting(build_model, max_epochs=9, factor=3, seed=0, verbose=0,
                     directory=tmp_path, project_name="hb")
    first.crash_after = 11  # in the middle of the first bracket's second round
    with pytest.raises(_Crash):
        first.search(x, y, validation_data=validation, batch_size=40)
    done = [(t.trial_id, t.score, t.hyperparameters.values) for t in first.trials]
    assert len(done) == 11

    second = Counting(build_model, max_epochs=9, factor=3, seed=0, verbose=0,
                      directory=tmp_path, project_name="hb")
    second.search(x, y, validation_data=validation, batch_size=40)
    assert len(second.trials) == 9 + 3 + 1 + 5 + 1 + 3
    assert runs[11:] == [f"{i:04d}" for i in range(11, 22)]  # only the rest was trained
    assert [(t.trial_id, t.score, t.hyperparameters.values)
            for t in second.trials[:11]] == done

"""BayesianOptimization through Optuna: it learns, and workers share one SQLite study."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from nervenet.tuning import BayesianOptimization, RandomSearch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def space(hp):
    hp.Float("x", -5.0, 5.0)
    hp.Float("log_scale", 1e-3, 10.0, sampling="log")
    hp.Choice("kind", ["a", "b"])


def objective(values):
    return (values["x"] - 1.2) ** 2 + (0.0 if values["kind"] == "b" else 1.0)


class BayesToy(BayesianOptimization):
    def run_trial(self, trial):
        return objective(trial.hyperparameters.values)


class RandomToy(RandomSearch):
    def run_trial(self, trial):
        return objective(trial.hyperparameters.values)


def test_tpe_finds_the_minimum_better_than_random():
    bayes = BayesToy(space, objective="val_loss", max_trials=40, seed=0, verbose=0)
    bayes.search()
    assert len(bayes.trials) == 40
    best = bayes.get_best_hyperparameters()[0]
    assert best["kind"] == "b" and abs(best["x"] - 1.2) < 0.3
    random = RandomToy(space, objective="val_loss", max_trials=40, seed=0, verbose=0)
    random.search()
    # TPE spends its later trials near the minimum; random search keeps spreading them
    late_bayes = sum(t.score for t in bayes.trials[20:]) / 20
    late_random = sum(t.score for t in random.trials[20:]) / 20
    assert late_bayes < 0.25 * late_random


def test_bad_sampler_and_parallel_without_storage():
    with pytest.raises(ValueError, match="sampler must be"):
        BayesToy(space, sampler="annealing", verbose=0)
    with pytest.raises(ValueError, match="n_jobs > 1 needs a storage URL or a directory"):
        BayesToy(space, n_jobs=2, verbose=0)


WORKER = textwrap.dedent("""
    import sys, time
    from nervenet.tuning import BayesianOptimization

    ran = 0

    class Toy(BayesianOptimization):
        def run_trial(self, trial):
            global ran
            ran += 1
            time.sleep(0.05)                  # long enough for the workers to interleave
            return (trial.hyperparameters["x"] - 0.5) ** 2

    tuner = Toy(lambda hp: hp.Float("x", 0.0, 1.0), objective="val_loss",
                max_trials=int(sys.argv[2]), storage=sys.argv[1], study_name="shared",
                seed=int(sys.argv[3]), verbose=0)
    tuner.search()
    print(ran)
""")


@pytest.mark.slow
def test_two_processes_share_one_sqlite_study(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    n = 16
    optuna.create_study(storage=storage, study_name="shared")   # created once, up front
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, storage, str(n), str(seed)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
               for seed in (1, 2)]
    ran = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        ran.append(int(out.split()[-1]))
    study = optuna.load_study(study_name="shared", storage=storage)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    # exactly n complete trials, numbered 0..n-1, each run once (no duplicates, no losses)
    assert sorted(t.number for t in complete) == list(range(n))
    assert len({t.params["x"] for t in complete}) == n
    others = [t for t in study.trials if t.state != optuna.trial.TrialState.COMPLETE]
    assert all(t.user_attrs.get("surplus") for t in others)
    # both workers took part, and together they ran each trial once
    assert min(ran) >= 1 and sum(ran) == n


@pytest.mark.slow
def test_n_jobs_runs_workers_on_a_local_sqlite_study(tmp_path):
    tuner = BayesToy(space, objective="val_loss", max_trials=8, seed=0, n_jobs=2,
                     directory=tmp_path, verbose=0)
    tuner.search()
    assert (tmp_path / "tuning" / "study.db").exists()
    assert sorted(t.trial_id for t in tuner.trials) == [f"{i:04d}" for i in range(8)]

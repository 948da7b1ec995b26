"""Data-parallel training under a real ``mpiexec`` (2 and 3 ranks, one BLAS thread each): the
launched programs are in programs.py; the one-process references are computed here."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from nervenet import cli
from nervenet.distributed import data_parallel
from tests.distributed import programs

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _mpiexec() -> str | None:
    beside = pathlib.Path(sys.executable).with_name("mpiexec")
    return str(beside) if beside.exists() else shutil.which("mpiexec")


pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None,
                       reason="mpi4py is not installed (the mpi extra: pip install "
                              "'nervenet[mpi]')"),
    pytest.mark.skipif(_mpiexec() is None, reason="no mpiexec on PATH or beside the Python "
                                                  "(the mpi extra brings mpich's)"),
]


def launch(ranks: int, case: str, out: pathlib.Path, timeout: float = 120):
    """Run programs.py's ``case`` on ``ranks`` processes; returns (completed, seconds)."""
    return run(ranks, ["-m", "tests.distributed.programs", case, str(out)], timeout)


def run(ranks: int, arguments: list[str], timeout: float = 120):
    """``mpiexec -n ranks python arguments...`` with one BLAS thread per rank."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    done = subprocess.run([_mpiexec(), "-n", str(ranks), sys.executable, *arguments],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    return done, time.perf_counter() - start


@pytest.fixture(scope="module")
def references():
    return {(kind, floatx): programs.train(kind, floatx, n)
            for kind, floatx, n in programs.CASES}


@pytest.mark.parametrize("ranks", [2, 3])
def test_fit_on_ranks_equals_one_process(ranks, references, tmp_path):
    out = tmp_path / "results.npz"
    done, _ = launch(ranks, "train", out)
    assert done.returncode == 0, done.stderr[-3000:]
    got = np.load(out)
    assert int(got["size"]) == ranks
    for kind, floatx, n in programs.CASES:
        tolerance = 1e-12 if floatx == "float64" else 1e-5
        reference = references[(kind, floatx)]
        prefix = f"{kind}-{floatx}/"
        # each rank trained on its contiguous slice of every global batch, nothing more
        steps = [min(programs.BATCH, n - s) for s in range(0, n, programs.BATCH)]
        expected = [programs.EPOCHS * sum(len(range(n)[data_parallel.part(m, r, ranks)])
                                          for m in steps) for r in range(ranks)]
        assert got[prefix + "rows"].tolist() == expected
        for key, value in reference.items():
            if key == "rows":
                continue
            np.testing.assert_allclose(got[prefix + key], value, rtol=0, atol=tolerance,
                                       err_msg=f"{ranks} ranks, {kind} {floatx}: {key}")


    # DistributedOptimizer in a loop of one's own: each rank's half-batch gradient, averaged
    loop = programs.custom_loop()
    for key, value in loop.items():
        np.testing.assert_allclose(got[f"loop/{key}"], value, rtol=0, atol=1e-12)
    # BroadcastGlobalVariables: rank 0's weights and Adam moments on every rank
    broadcast = got["broadcast"]
    assert broadcast.shape[0] == ranks and np.all(broadcast == broadcast[0])
    assert float(got["averaged_rank"]) == (ranks - 1) / 2  # MetricAverage: the mean of 0..p-1


def test_a_rank_that_raises_ends_the_job(tmp_path):
    done, _ = launch(2, "raise", tmp_path / "unused", timeout=60)
    ended = time.time()
    assert done.returncode != 0
    raised = float(done.stdout.split("raising at ")[1].split()[0])
    assert ended - raised < 10  # rank 0 was waiting in a collective: aborted, not hung
    assert "rank 1 of 2 failed" in done.stderr
    assert "[rank 1] RuntimeError: deliberate failure on rank 1" in done.stderr


@pytest.mark.parametrize("case, message", [
    ("mismatch-data", "the ranks differ in x (rank 0: (100, 6) float64; rank 1: (100, 7) "
                      "float64)"),
    ("mismatch-model", "the ranks differ in weight count (rank 0: 4 arrays, 83 values; "
                       "rank 1: 6 arrays, 155 values)"),
])
def test_ranks_with_different_data_or_models_fail_at_the_first_step(case, message, tmp_path):
    done, _ = launch(2, case, tmp_path / "unused", timeout=60)
    assert done.returncode != 0
    assert message in done.stderr



def test_nervenet_train_under_mpiexec_writes_one_run(tmp_path, capsys):
    arguments = ["train", "--dataset", "iris", "--model", "mlp", "--epochs", "2",
                 "--verbose", "2", "--overwrite", "--out"]  # the run in --out itself
    done, _ = run(2, ["-m", "nervenet", *arguments, str(tmp_path / "two")])
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("saved the model") == 1  # rank 0 alone reports and writes
    assert done.stdout.count("Epoch 2/2") == 1
    assert cli.main([*arguments, str(tmp_path / "one")]) == 0
    capsys.readouterr()
    for name in ("model.nervenet", "run.json", "history.csv"):
        assert (tmp_path / "two" / name).exists()
    two, one = (np.loadtxt(tmp_path / d / "history.csv", delimiter=",", skiprows=1)
                for d in ("two", "one"))
    np.testing.assert_allclose(two, one, rtol=0, atol=1e-5)  # float32: equal to rounding


def test_bayesian_search_under_mpiexec_makes_each_rank_a_worker(tmp_path):
    optuna = pytest.importorskip("optuna")
    done, _ = launch(2, "search", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    study = optuna.load_study(study_name="search",
                              storage=f"sqlite:///{tmp_path / 'search' / 'study.db'}")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.number for t in complete) == list(range(8))  # each trial once
    workers = (tmp_path / "workers.txt").read_text().split()
    assert len(set(workers)) == 2  # both ranks built (and trained) models

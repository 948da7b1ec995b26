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
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    done = subprocess.run([_mpiexec(), "-n", str(ranks), sys.executable, "-m",
                           "tests.distributed.programs", case, str(out)],
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


def test_a_rank_that_raises_ends_the_job(tmp_path):
    done, seconds = launch(2, "raise", tmp_path / "unused", timeout=60)
    assert done.returncode != 0
    assert seconds < 10
    assert "rank 1 of 2 failed" in done.stderr
    assert "[rank 1] RuntimeError: deliberate failure on rank 1" in done.stderr


@pytest.mark.parametrize("case, message", [
    ("mismatch-data", "the ranks differ in x (rank 0: (100, 6) float64; rank 1: (100, 7) "
                      "float64)"),
    ("mismatch-model", "the ranks differ in weight count (rank 0: 4 arrays, 83 values; "
                       "rank 1: 6 arrays, 155 values)"),
])
def test_ranks_with_different_data_or_models_fail_at_the_first_step(case, message, tmp_path):
    done, seconds = launch(2, case, tmp_path / "unused", timeout=60)
    assert done.returncode != 0
    assert seconds < 10
    assert message in done.stderr

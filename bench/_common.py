"""Shared helpers of the benchmarks: a fair environment for each system, data, init, timing.

Every system (nervenet, PyTorch, hand-written NumPy) is measured in a fresh Python process.
Two libraries in one process let one's idle thread pool spin against the other's and can halve
the figures, so the driver of each benchmark starts one worker subprocess per measurement, with
the same environment, the same data, the same initial weights and the same thread count,
interleaving the systems round after round; the table reports medians over rounds.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
#: the 5k MNIST subset: the shared data folder beside the checkout, else the copy nervenet ships
#: (the same file, SHA-256 checked by ``nervenet.data.datasets``)
DATA = ROOT.parent / "shared" / "data" / "mnist_5k.npz"
if not DATA.exists():
    DATA = ROOT / "nervenet" / "data" / "files" / "mnist_5k.npz"
THREADS = 2  # the default: the cores of the reference machine

# NOTE: some machines export OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) to pin OpenBLAS to an
# older kernel; current NumPy wheels then run their sgemm slower than the kernel they would pick
# themselves. Both are removed together, in the benchmark subprocesses only, and every system
# gets the same environment.
_OPENBLAS_PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def worker_env(threads: int = THREADS, keep_openblas_pins: bool = False,
               root: Path = ROOT) -> dict[str, str]:
    """The environment of a worker process: same thread count for every library; nervenet is
    imported from ``root`` (another checkout can serve as a baseline)."""
    env = dict(os.environ)
    if not keep_openblas_pins:
        for name in _OPENBLAS_PINS:
            env.pop(name, None)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def blas_description() -> str:
    """Which BLAS NumPy (and torch, when imported) use, as threadpoolctl reports it."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    parts = []
    for pool in threadpool_info():
        name = pool.get("internal_api", "?")
        arch = pool.get("architecture")
        parts.append(f"{name}{'/' + arch if arch else ''} x{pool.get('num_threads')}")
    return ", ".join(parts)


def compile_options(model, jit_compile) -> dict:
    """``{"jit_compile": jit_compile}``, or nothing for a baseline checkout from before #21
    (its ``compile`` has no such argument: eager is its only mode)."""
    import inspect

    has_it = "jit_compile" in inspect.signature(model.compile).parameters
    return {"jit_compile": jit_compile} if has_it else {}


def run_worker(script: str, args: list[str], threads: int = THREADS,
               keep_openblas_pins: bool = False, root: Path = ROOT) -> dict:
    """Run ``python script --worker args...`` in a fresh process; return its JSON result."""
    command = [sys.executable, str(Path(__file__).resolve().parent / script), "--worker", *args]
    done = subprocess.run(command, env=worker_env(threads, keep_openblas_pins, root),
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker {' '.join(args)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def cpu_snapshot() -> tuple[float, float, float] | None:
    """(busy CPU seconds of the whole machine, CPU seconds of this process, wall seconds);
    ``None`` where /proc/stat does not exist."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(v) for v in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal: steal is CPU the hypervisor gave others
    busy = sum(ticks) - ticks[3] - ticks[4]
    return busy / os.sysconf("SC_CLK_TCK"), time.process_time(), time.perf_counter()


def foreign_share(before, after) -> float:
    """Share of the machine's CPU capacity that other processes (or other virtual machines)
    used between two snapshots: 0 on a quiet machine, 0.5 when one of 2 cores was taken."""
    if before is None or after is None:
        return 0.0
    busy, own, wall = (a - b for a, b in zip(after, before))
    return max(0.0, busy - own) / (wall * (os.cpu_count() or 1))


def measure_interleaved(systems, run, rounds: int, max_foreign: float, retries: int = 30):
    """Run ``run(system) -> dict`` for every system, round after round.

    A round in which another process took more than ``max_foreign`` of the CPUs during any
    measurement is thrown away and run again (at most ``retries`` times in all), so that the
    table measures the libraries and not the neighbours. Returns ({system: [results]},
    number of rounds thrown away).
    """
    results = {system: [] for system in systems}
    discarded = 0
    while len(next(iter(results.values()))) < rounds:
        this_round = {system: run(system) for system in systems}
        if discarded < retries and any(r["foreign"] > max_foreign for r in this_round.values()):
            discarded += 1
            time.sleep(5)  # let the neighbour finish
            continue
        for system, result in this_round.items():
            results[system].append(result)
    return results, discarded


def add_run_arguments(parser, clock_help: str) -> None:
    """The options every timing driver shares: threads, clock, OpenBLAS pins, the rerun
    threshold and the raw output. ``resolve_max_foreign`` completes ``--max-foreign``."""
    parser.add_argument("--threads", type=int, default=THREADS,
                        help=f"threads of every library (default {THREADS})")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall", help=clock_help)
    parser.add_argument("--keep-openblas-pins", action="store_true",
                        help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE from the environment")
    parser.add_argument("--max-foreign", type=float, default=None,
                        help="rerun a round when other processes took more than this share of "
                             "the CPUs (default 0.1 with the wall clock, 0.5 with the CPU clock)")
    parser.add_argument("--raw", metavar="PATH", help="also write every round's results (JSON)")


def resolve_max_foreign(args) -> None:
    if args.max_foreign is None:
        args.max_foreign = 0.1 if args.clock == "wall" else 0.5


def load_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The 5k MNIST subset as float32 pixels in [0, 1], shape (5000, 784), and int64 labels."""
    with np.load(DATA) as data:
        images = data["images"].reshape(len(data["images"]), -1).astype(np.float32) / 255
        labels = data["labels"].astype(np.int64)
    return images, labels


def mlp_init(sizes=(784, 300, 100, 10), seed: int = 0) -> list[np.ndarray]:
    """He-uniform weights (in, out) and zero biases, float32, identical for every system."""
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        limit = np.sqrt(6.0 / n_in)
        params.append(rng.uniform(-limit, limit, size=(n_in, n_out)).astype(np.float32))
        params.append(np.zeros(n_out, dtype=np.float32))
    return params


def batch_order(n: int, epochs: int, seed: int = 1) -> list[np.ndarray]:
    """One shuffled permutation of range(n) per epoch, identical for every system."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(n) for _ in range(epochs)]


def machine_description() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, " \
           f"NumPy {np.__version__}"


def today() -> str:
    return datetime.date.today().isoformat()


def median(values) -> float:
    return statistics.median(values)


def median_ratio(values, bases) -> float:
    """The median over rounds of values[i] / bases[i] (two systems measured in one round)."""
    return statistics.median(v / b for v, b in zip(values, bases))

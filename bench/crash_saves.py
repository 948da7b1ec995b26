"""Crash-safe saves, the long version of tests/test_saving.py's kill harness.

Each round sets every weight of a model to the round number, starts a process that saves it
to one target in a loop, SIGKILLs that process at a random moment, and loads the target: it
must be exactly one of the models saved so far (all weights equal to one earlier round number,
or to the first save's -1). At the end one more save must remove every temporary file the
killed processes left.

    python bench/crash_saves.py [--kills 2000] [--units 256] [--max-delay 0.03]
                                [--spawn] [--dir DIR]

``--spawn`` starts a fresh interpreter per kill (slow: about one import per kill) instead of
forking this one; ``--dir`` picks the file system to test (default: a temporary directory).
Prints the kills, how many landed inside a save (a temporary file was left), how many distinct
models were seen, and the time taken; exits with status 1 on the first torn file.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nervenet import layers, models  # noqa: E402

SAVER = """
import sys
from nervenet import layers, models
model = models.Sequential([layers.Input(shape=({units},)), layers.Dense({units}),
                           layers.Dense(8)])
for w in model.weights:
    w.data[...] = float(sys.argv[2])
print("ready", flush=True)
while True:
    model.save(sys.argv[1])
"""


def build(units: int):
    return models.Sequential([layers.Input(shape=(units,)), layers.Dense(units),
                              layers.Dense(8)])


def start_saver(model, target: Path, value: float, spawn: bool, units: int) -> int:
    """Start a process saving ``model`` (weights ``value``) to ``target`` forever."""
    if spawn:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        process = subprocess.Popen([sys.executable, "-c", SAVER.format(units=units),
                                    str(target), str(value)], stdout=subprocess.PIPE,
                                   text=True, env=env)
        assert process.stdout.readline().strip() == "ready"
        process.stdout.close()
        return process.pid
    pid = os.fork()
    if pid == 0:
        try:
            while True:
                model.save(target)
        finally:
            os._exit(1)
    return pid


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=2000)
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--max-delay", type=float, default=0.03)
    parser.add_argument("--spawn", action="store_true")
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    directory = Path(args.dir or tempfile.mkdtemp(prefix="crash_saves."))
    target = directory / "model.nervenet"
    model = build(args.units)
    for w in model.weights:
        w.data[...] = -1.0
    model.save(target)
    rng = np.random.default_rng(0)
    seen, torn, start = {-1.0}, 0, time.perf_counter()
    for attempt in range(args.kills):
        for w in model.weights:
            w.data[...] = attempt
        pid = start_saver(model, target, float(attempt), args.spawn, args.units)
        time.sleep(rng.uniform(0.0, args.max_delay))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        torn += any(name.endswith(".tmp") for name in os.listdir(directory))
        loaded = models.load_model(target)
        values = {float(v) for w in loaded.weights for v in np.unique(w.data)}
        if len(values) != 1 or not values <= seen | {float(attempt)}:
            print(f"kill {attempt}: the target holds weights {sorted(values)[:5]}: torn")
            return 1
        seen |= values
    model.save(target)
    left = sorted(name for name in os.listdir(directory) if name != "model.nervenet")
    print(f"{args.kills} kills in {time.perf_counter() - start:.1f} s: {torn} inside a save, "
          f"{len(seen)} distinct models seen, never torn; left after the next save: {left}")
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())

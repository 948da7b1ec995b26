"""Would a second thread speed up NumPy's elementwise kernels? (issue #21)

NumPy runs a ufunc on one thread; PyTorch spreads its elementwise kernels over the cores. NumPy
releases the GIL inside a ufunc's loop, so a helper thread could take half of each large
array. This times, on the largest arrays of bench/cnn.py and bench/mlp.py, each kernel on the
whole array in the calling thread against the same kernel split in two halves, one of them
handed to a helper thread that waits on a lock (the cheapest handoff Python has), and the
handoff alone. Each is timed twice: alone, and right after a matrix product on OpenBLAS's
threads, as in a training step, where every elementwise kernel follows a product (OpenBLAS's
worker thread then still spins on the other core for a while, waiting for the next product).

    python bench/threads.py [--rounds 200]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402

from nervenet import kernels  # noqa: E402
from nervenet.kernels import ConvGeometry  # noqa: E402


class Helper:
    """One thread that runs the job it is handed, then releases ``done``."""

    def __init__(self):
        self.go, self.done = threading.Lock(), threading.Lock()
        self.go.acquire()
        self.done.acquire()
        self.job = None
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            self.go.acquire()
            self.job()
            self.done.release()

    def both(self, first, second):
        """Run ``second`` on the helper while this thread runs ``first``; wait for both."""
        self.job = second
        self.go.release()
        first()
        self.done.acquire()


def _median_us(function, rounds: int, before=lambda: None) -> float:
    """The median time of ``function()``, each call after an untimed ``before()``."""
    function()
    times = []
    for _ in range(rounds):
        before()
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e6


def _cases(rng):
    """(name, whole(), halves(helper)) for each kernel, on the benchmarks' largest arrays."""
    x = rng.standard_normal((64, 26, 26, 32)).astype(np.float32)  # cnn.py: conv 1's output
    y = np.empty_like(x)
    geometry = ConvGeometry.build(x.shape, (2, 2), (2, 2), "valid", "bench")
    half = ConvGeometry.build((32,) + x.shape[1:], (2, 2), (2, 2), "valid", "bench")
    _, picked = kernels.max_and_argmax(x, geometry, True)
    gy = rng.standard_normal(picked.shape).astype(np.float32)
    weights = rng.standard_normal((784, 300)).astype(np.float32)  # mlp.py: the first layer
    grad = rng.standard_normal((784, 300)).astype(np.float32)
    lr = np.float32(0.01)

    def update(w, g):
        np.multiply(g, lr, out=g)
        np.subtract(w, g, out=w)

    return [
        ("relu, 64x26x26x32", lambda: kernels.relu(x, out=y),
         lambda h: h.both(lambda: kernels.relu(x[:32], out=y[:32]),
                          lambda: kernels.relu(x[32:], out=y[32:]))),
        ("max pool 2x2 forward", lambda: kernels.max_and_argmax(x, geometry, True),
         lambda h: h.both(lambda: kernels.max_and_argmax(x[:32], half, True),
                          lambda: kernels.max_and_argmax(x[32:], half, True))),
        ("max pool 2x2 backward", lambda: kernels.scatter(gy, picked, geometry),
         lambda h: h.both(lambda: kernels.scatter(gy[:32], picked[:32], half),
                          lambda: kernels.scatter(gy[32:], picked[32:], half))),
        ("SGD update, 784x300", lambda: update(weights, grad),
         lambda h: h.both(lambda: update(weights[:392], grad[:392]),
                          lambda: update(weights[392:], grad[392:]))),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    helper = Helper()
    print(f"# One thread against two halves on two threads\n{_common.today()}; "
          f"{_common.machine_description()}; median of {args.rounds} calls each\n")
    product = np.ones((512, 512), np.float32)
    print("| kernel | when | one thread us | two threads us | two / one |\n"
          "|---|---|---:|---:|---:|")
    handoff = _median_us(lambda: helper.both(lambda: None, lambda: None), args.rounds)
    print(f"| handoff (nothing to do) | alone | - | {handoff:.1f} | - |")
    for name, whole, halves in _cases(np.random.default_rng(0)):
        for when, before in (("alone", lambda: None), ("after a product", lambda: product @
                                                                           product)):
            one = _median_us(whole, args.rounds, before)
            two = _median_us(lambda halves=halves: halves(helper), args.rounds, before)
            print(f"| {name} | {when} | {one:.1f} | {two:.1f} | {two / one:.2f} |")


if __name__ == "__main__":
    main()

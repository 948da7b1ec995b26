"""MLPRegressor on California housing: nervenet.sklearn against scikit-learn.

The course's setting: scikit-learn's eight features, ``train_test_split(random_state=42)``
twice (train / validation / test), a ``StandardScaler`` pipeline and hidden layers
(50, 50, 50), every other argument at scikit-learn's default (Adam, batch 200, alpha 1e-4,
``tol=1e-4`` with ``n_iter_no_change=10``). Each library fits in a fresh process (see
``_common.run_worker``), the rounds interleave the libraries, and the table reports medians of
the fit time, the epochs run and the validation MSE.

scikit-learn trains in the dtype of its input, float64 after ``StandardScaler`` (the course's
setting); nervenet trains in ``nervenet.backend.floatx()`` (float32) and predicts in float64.

Usage:
    python bench/housing.py [--rounds 3] [--seeds 42]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402

SYSTEMS = ("nervenet", "sklearn")


def split():
    """The course's split of California housing: (x_train, y_train), (x_valid, y_valid)."""
    from sklearn.model_selection import train_test_split

    from nervenet.data.datasets import load_california_housing

    x, y, _ = load_california_housing()
    x_train_full, _, y_train_full, _ = train_test_split(x, y, random_state=42)
    x_train, x_valid, y_train, y_valid = train_test_split(x_train_full, y_train_full,
                                                          random_state=42)
    return (x_train, y_train), (x_valid, y_valid)


def worker(system: str, seed: int) -> dict:
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import mean_squared_error
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if system == "nervenet":
        from nervenet.sklearn import MLPRegressor
    else:
        from sklearn.neural_network import MLPRegressor
    (x_train, y_train), (x_valid, y_valid) = split()
    mlp = MLPRegressor(hidden_layer_sizes=(50, 50, 50), random_state=seed)
    pipeline = make_pipeline(StandardScaler(), mlp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        pipeline.fit(x_train, y_train)
        seconds = time.perf_counter() - start
    mse = mean_squared_error(y_valid, pipeline.predict(x_valid))
    return {"system": system, "seconds": seconds, "epochs": int(mlp.n_iter_),
            "val_mse": float(mse)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, metavar=("SYSTEM", "SEED"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--threads", type=int, default=_common.THREADS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]))))
        return
    results = {system: [] for system in SYSTEMS}
    for _ in range(args.rounds):
        for seed in args.seeds:
            for system in SYSTEMS:
                result = _common.run_worker("housing.py", [system, str(seed)], args.threads)
                results[system].append(result)
                print(f"  {system:12s} seed {seed}: {result['seconds']:6.2f} s, "
                      f"{result['epochs']:3d} epochs, val MSE {result['val_mse']:.4f}",
                      flush=True)
    print(f"\n{_common.machine_description()}, {args.threads} threads, {_common.today()}")
    print(f"{'system':12s} {'fit s':>7s} {'epochs':>7s} {'ms/epoch':>9s} {'val MSE':>8s}")
    for system, rows in results.items():
        seconds = _common.median(r["seconds"] for r in rows)
        epochs = _common.median(r["epochs"] for r in rows)
        per_epoch = _common.median(r["seconds"] / r["epochs"] * 1e3 for r in rows)
        mse = _common.median(r["val_mse"] for r in rows)
        print(f"{system:12s} {seconds:7.2f} {epochs:7.0f} {per_epoch:9.1f} {mse:8.4f}")


if __name__ == "__main__":
    main()

"""Loading and building in threads: a load's budgets are per thread, layer names are handed out
under a lock, so loads and builds running together in 8 threads never fail. CI runs it for
2.5 s; ``NERVENET_THREAD_SECONDS=10`` runs the issue's 10 s."""

from __future__ import annotations

import os
import threading
import time

import numpy as np

from nervenet import layers, models

SECONDS = float(os.environ.get("NERVENET_THREAD_SECONDS", "2.5"))


def build_and_predict() -> None:
    model = models.Sequential([layers.Input(shape=(6,)), layers.Dense(16, activation="relu"),
                               layers.BatchNormalization(), layers.Dense(3)])
    assert model.predict(np.ones((2, 6), np.float32), verbose=0).shape == (2, 3)
    assert len(model.named_weights()) == 8  # two Dense, BN gamma, beta, moving stats


def test_loads_and_builds_in_eight_threads_never_fail(tmp_path):
    model = models.Sequential([layers.Input(shape=(6,)), layers.Dense(64, activation="relu"),
                               layers.Dense(3)])
    model.compile("adam", "mse")
    model.fit(np.ones((8, 6), np.float32), np.zeros((8, 3), np.float32), verbose=0)
    path = tmp_path / "m.nervenet"
    model.save(path)
    expected = model.predict(np.ones((2, 6), np.float32))
    failures: list[str] = []
    counts = [0] * 8
    deadline = time.monotonic() + SECONDS

    def work(index: int) -> None:
        # at least one operation each: under the GIL a thread that waits on file reads can
        # get its first turn late while the building threads run (CPython's convoy effect)
        while time.monotonic() < deadline or (counts[index] == 0 and not failures):
            try:
                if index % 2:
                    loaded = models.load_model(path)
                    np.testing.assert_array_equal(loaded.predict(np.ones((2, 6), np.float32)),
                                                  expected)
                else:
                    build_and_predict()
                counts[index] += 1
            except Exception as error:  # noqa: BLE001  (every failure is reported)
                failures.append(f"thread {index}: {type(error).__name__}: {error}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, f"{len(failures)} failures, first: {failures[:3]}"
    assert all(counts), counts  # every thread did loads or builds

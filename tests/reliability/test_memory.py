"""Memory stays flat: the graph of each step is freed after backward and metrics keep Python
floats, so training for many steps does not grow the process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

TRAIN_50000_STEPS = """
import numpy as np, nervenet
from nervenet import layers, models, optimizers

def rss_mib():
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    import os
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20

nervenet.utils.set_random_seed(0)
rng = np.random.default_rng(0)
x = rng.standard_normal((5000, 8)).astype(np.float32)
y = (x[:, 0] > 0).astype(np.int64)
model = models.Sequential([layers.Input(shape=(8,)), layers.Dense(16, activation="relu"),
                           layers.Dense(2, activation="softmax")])
model.compile(optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy",
              metrics=["accuracy"])
model.fit(x, y, epochs=2, batch_size=1, verbose=0)    # warm-up: 10,000 steps
before = rss_mib()
model.fit(x, y, epochs=10, batch_size=1, verbose=0)   # 50,000 steps
print(rss_mib() - before)
"""


@pytest.mark.slow
def test_fifty_thousand_training_steps_grow_rss_by_less_than_16_mib():
    result = subprocess.run([sys.executable, "-c", TRAIN_50000_STEPS], capture_output=True,
                            text=True, check=True, cwd=ROOT, timeout=600)
    growth = float(result.stdout.strip().splitlines()[-1])
    assert growth < 16.0, f"RSS grew by {growth:.1f} MiB over 50,000 steps"

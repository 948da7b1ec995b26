"""Determinism: all randomness flows from explicit Generators seeded by set_random_seed, so
the same seed gives bit-identical training in two fresh processes."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "nervenet"

#: numpy.random names that do not touch the global random state
ALLOWED = {"default_rng", "Generator", "SeedSequence", "BitGenerator", "PCG64", "RandomState"}


def global_random_uses(source: str, label: str) -> list[str]:
    """Every use of numpy's global random functions or of the ``random`` module in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr not in ALLOWED:
            inner = node.value
            if (isinstance(inner, ast.Attribute) and inner.attr == "random"
                    and isinstance(inner.value, ast.Name) and inner.value.id in ("np", "numpy")):
                found.append(f"{label}:{node.lineno}: np.random.{node.attr}")
        elif isinstance(node, ast.Import) and any(a.name == "random" for a in node.names):
            found.append(f"{label}:{node.lineno}: import random")
        elif isinstance(node, ast.ImportFrom) and node.module == "random":
            found.append(f"{label}:{node.lineno}: from random import ...")
    return found


def test_no_library_code_uses_the_global_random_state():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        label = str(path.relative_to(PACKAGE.parent))
        if label != "nervenet/utils.py":  # set_random_seed seeds the random module
            offenders += global_random_uses(path.read_text(), label)
    assert not offenders, "global random state used:\n" + "\n".join(offenders)


def test_the_check_finds_global_random_use():
    source = ("import random\nimport numpy as np\nx = np.random.rand(3)\n"
              "rng = np.random.default_rng()\nnp.random.seed(0)\n")
    assert global_random_uses(source, "bad.py") == [
        "bad.py:1: import random", "bad.py:3: np.random.rand", "bad.py:5: np.random.seed"]


TRAIN_1000_STEPS = """
import hashlib, numpy as np, nervenet
from nervenet import layers, models, optimizers
nervenet.utils.set_random_seed(1234)
rng = np.random.default_rng(0)
x = rng.standard_normal((400, 8)).astype(np.float32)
y = (x[:, :3].sum(1) > 0).astype(np.int64)
model = models.Sequential([layers.Input(shape=(8,)), layers.Dense(16, activation="relu"),
                           layers.Dense(2, activation="softmax")])
model.compile(optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
model.fit(x, y, epochs=40, batch_size=16, verbose=0)   # 40 epochs x 25 steps = 1,000 steps
digest = hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()
print(digest)
"""


def test_same_seed_in_two_fresh_processes_gives_bit_identical_weights():
    digests = [subprocess.run([sys.executable, "-c", TRAIN_1000_STEPS], capture_output=True,
                              text=True, check=True, cwd=PACKAGE.parent).stdout.strip()
               for _ in range(2)]
    assert digests[0] == digests[1] and len(digests[0]) == 64

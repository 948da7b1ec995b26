"""The example scripts run, as a user would start them, and do what they promise.

``make demo`` runs examples/xor_functional.py: a 2-4-1 network trained by hand-written gradient
descent must solve XOR from its fixed seed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str) -> str:
    env = dict(os.environ)
    # The checkout first, so the script runs against this tree even without an install.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    completed = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *args],
        capture_output=True, text=True, timeout=300, env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def test_xor_demo_converges():
    out = _run("xor_functional.py")
    # " 0  1     1     0.982": the two inputs, the target and the network's output
    rows = re.findall(r"^ ([01])  ([01])     ([01])     (\d\.\d{3})$", out, flags=re.MULTILINE)
    assert [(x1, x2) for x1, x2, _, _ in rows] == [("0", "0"), ("0", "1"), ("1", "0"),
                                                    ("1", "1")], out
    for x1, x2, target, output in rows:
        assert target == str(int(x1) ^ int(x2)), out
        # right side of 0.5, with a margin: a converged network is confident
        assert abs(float(output) - int(target)) < 0.1, out
    first, last = map(float, re.search(r"^loss: first (\S+), last (\S+)$", out,
                                       flags=re.MULTILINE).groups())
    assert first > 0.5  # about ln 2 at the start: the untrained output is near 0.5
    assert last < 0.02, out

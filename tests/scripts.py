"""Load a script of the repository (examples/, bench/) as a module, so tests can call its
functions; run code in a fresh interpreter to see what it imports."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def load_script(path: Path, name: str):
    """Execute the script at ``path`` as a new module called ``name`` and return it."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_example(name: str):
    """examples/<name>.py as a module."""
    return load_script(EXAMPLES / f"{name}.py", name)


def modules_left_imported(code: str, packages: tuple[str, ...]) -> list[str]:
    """Run ``code`` in a fresh interpreter (from the repository root) and return, sorted, the
    modules of ``packages`` (each a package or module name, with its submodules) that are in
    ``sys.modules`` afterwards; fails with the interpreter's error if the code raises."""
    script = (f"{code}\nimport json, sys\nprint(json.dumps(sorted(k for k in sys.modules if "
              f"any(k == p or k.startswith(p + '.') for p in {list(packages)!r}))))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])

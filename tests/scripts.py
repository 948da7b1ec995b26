"""Load a script of the repository (examples/, bench/) as a module, so tests can call its
functions."""

from __future__ import annotations

import importlib.util
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

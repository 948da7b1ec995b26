"""docs/optimizers.md's examples run, and examples/optimizer_paths.py computes what the page
says (without matplotlib: the paths only)."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import numpy as np
import pytest

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "optimizers.md"
EXAMPLE = ROOT / "examples" / "optimizer_paths.py"


def test_page_examples_run():
    text = PAGE.read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) >= 4
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    globs: dict = {}
    for number, block in enumerate(blocks):
        test = parser.get_doctest(block, globs, f"optimizers.md block {number}", str(PAGE), 0)
        assert test.examples, f"block {number} has no examples"
        runner.run(test, clear_globs=False)
        globs = test.globs                      # one namespace for the page, as a reader's
    assert runner.failures == 0, "docs/optimizers.md has failing examples (see output)"


def test_page_shows_the_generated_image():
    text = PAGE.read_text(encoding="utf-8")
    assert "](images/optimizer_paths.png)" in text
    assert (ROOT / "docs" / "images" / "optimizer_paths.png").stat().st_size > 10_000


@pytest.fixture(scope="module")
def example():
    return load_script(EXAMPLE, "optimizer_paths")


def test_example_imports_matplotlib_only_in_main():
    source = EXAMPLE.read_text(encoding="utf-8")
    before_main = source[:source.index("def main(")]
    assert "matplotlib" not in before_main.replace("needs matplotlib", "")


def test_example_paths_match_the_page(example):
    paths = example.compute_paths()
    rosenbrock, saddle = paths["Rosenbrock"], paths["saddle"]
    for name in example.SECOND_ORDER:
        np.testing.assert_allclose(rosenbrock[name][-1], [1.0, 1.0], atol=1e-6)
        np.testing.assert_allclose(np.abs(saddle[name][-1]), [0.0, 2 ** 0.5], atol=1e-6)
    assert len(rosenbrock["Newton"]) - 1 == 21
    assert len(rosenbrock["BFGS"]) - 1 == len(rosenbrock["L-BFGS"]) - 1 == 37
    np.testing.assert_allclose(rosenbrock["SGD"][-1], [0.60, 0.36], atol=0.01)
    np.testing.assert_allclose(rosenbrock["Adam"][-1], [0.997, 0.993], atol=0.002)
    for name in ("Momentum", "RMSprop"):
        x, y = rosenbrock[name][-1]
        assert 0.84 < x < 0.93 and 0.71 < y < 0.87
    # the saddle: SGD has barely left the ridge, momentum and adaptive methods have escaped
    assert abs(saddle["SGD"][-1][1]) < 0.5
    for name in ("Momentum", "Nesterov", "Adagrad", "RMSprop", "Adam"):
        assert abs(abs(saddle[name][-1][1]) - 2 ** 0.5) < 0.01, name
    # Newton leaves the ridge at its first step; the others go to the saddle point first
    assert abs(saddle["Newton"][1][1]) > 0.5
    for name in ("CG (Polak-Ribiere)", "BFGS", "L-BFGS"):
        assert np.linalg.norm(saddle[name], axis=1).min() < 0.01, name
    assert "Rosenbrock" in example.summarize(paths)

"""The documentation is tested: its numbers are nervenet's numbers, and its examples run.

* docs/engine.md: the table of the worked example (for every tensor: how it was made, its
  generation, its value and its gradient) is parsed, the graph is rebuilt from the table's own
  expressions, and every cell is compared exactly (the numbers are binary fractions, float64);
  so are the visit order of backward and the fan-out contribution the text states. The
  gradients are also derived independently in NumPy, so that a table and an engine that agree
  on a wrong number would still fail.
* The ``>>>`` examples inside fenced code blocks of README.md and docs/engine.md run as doctests,
  block after block in one namespace per file, as a reader would type them.
"""

from __future__ import annotations

import ast
import doctest
import io
import re
from pathlib import Path

import numpy as np
import pytest

import nervenet

ROOT = Path(__file__).resolve().parents[1]
ENGINE_MD = ROOT / "docs" / "engine.md"
DOCUMENTS = [ROOT / "README.md", ENGINE_MD] + [
    ROOT / "docs" / name for name in
    ("perceptron.md", "mlp_backprop.md", "activations.md", "losses.md", "regularization.md",
     "optimizers.md", "cnn.md")]

TABLE_HEADER = "| tensor | made by | generation | value | gradient dL/d(tensor) |"


def _fenced_blocks(text: str):
    """Yield (line number, body) for every ``` fenced block of a Markdown text."""
    lines = text.splitlines()
    start = None
    for number, line in enumerate(lines):
        if line.startswith("```"):
            if start is None:
                start = number + 1
            else:
                yield start, "\n".join(lines[start:number]) + "\n"
                start = None
    assert start is None, "unclosed code fence"


def _literal(cell: str) -> np.ndarray:
    return np.array(ast.literal_eval(cell.strip().strip("`")), dtype=np.float64)


def _parse_table(text: str) -> list[dict]:
    lines = text.splitlines()
    assert TABLE_HEADER in lines, f"docs/engine.md lost its table header {TABLE_HEADER!r}"
    rows = []
    for line in lines[lines.index(TABLE_HEADER) + 2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert len(cells) == 5, f"malformed row: {line!r}"
        tensor = cells[0].strip("`")
        name, _, expression = (part.strip() for part in tensor.partition("="))
        rows.append({
            "name": name,
            "expression": expression or None,
            "made_by": cells[1],
            "generation": int(cells[2]),
            "value": _literal(cells[3]),
            "grad": None if cells[4].startswith("none") else _literal(cells[4]),
        })
    return rows


@pytest.fixture(scope="module")
def engine_text() -> str:
    return ENGINE_MD.read_text(encoding="utf-8")


def _build_graph(rows):
    """Leaves from the table's values, the other tensors by evaluating the table's expressions."""
    namespace: dict[str, nervenet.Tensor] = {}
    order: list[str] = []  # "Name (generation)" of each Function, in the order visited
    for row in rows:
        if row["expression"] is None:
            assert row["made_by"] == "leaf"
            namespace[row["name"]] = nervenet.Tensor(
                row["value"], requires_grad=row["grad"] is not None)
        else:
            tensor = eval(row["expression"], {}, dict(namespace))  # the doc's own expression
            tensor.retain_grad()
            creator = tensor.creator
            label = f"{type(creator).__name__} ({creator.generation})"
            # The engine calls backward_array where the op has one (a first-order pass), else
            # backward: wrap both, as instance attributes.
            for method in ("backward", "backward_array"):
                original = getattr(creator, method)
                if original is None:
                    continue

                def recording(*grads, _original=original, _label=label):
                    order.append(_label)
                    return _original(*grads)

                setattr(creator, method, recording)
            namespace[row["name"]] = tensor
    return namespace, order


def test_worked_example_table_is_what_nervenet_computes(engine_text):
    rows = _parse_table(engine_text)
    assert [row["name"] for row in rows] == ["X", "w", "b", "y", "z", "s", "d", "q", "L"]
    tensors, order = _build_graph(rows)
    loss = tensors[rows[-1]["name"]]
    loss.backward()
    for row in rows:
        tensor = tensors[row["name"]]
        where = f"row {row['name']} of the table in docs/engine.md"
        made_by = "leaf" if tensor.creator is None else type(tensor.creator).__name__
        assert made_by == row["made_by"], where
        assert tensor.generation == row["generation"], where
        assert tensor.dtype == np.float64, where
        np.testing.assert_array_equal(tensor.data, row["value"], err_msg=where)
        if row["grad"] is None:
            assert tensor.grad is None, where
        else:
            assert tensor.grad.shape == tensor.shape, where
            np.testing.assert_array_equal(tensor.grad, row["grad"], err_msg=where)

    stated = re.search(r"the visit order is: ((?:\w+ \(\d\)(?:, )?)+)\.", engine_text)
    assert stated, "docs/engine.md no longer states the visit order"
    assert ", ".join(order) == stated.group(1)


def test_worked_example_gradients_by_hand(engine_text):
    """The same gradients from the formulas of the text, in NumPy, without the engine."""
    rows = {row["name"]: row for row in _parse_table(engine_text)}
    X, w, b, y = (rows[name]["value"] for name in "Xwby")
    d = X @ w + b - y
    loss = np.mean(d * d)
    grad_d = 2 * d / d.size  # d(mean(d²))/dd: the two fan-out contributions d/2 + d/2
    np.testing.assert_array_equal(loss, rows["L"]["value"])
    np.testing.assert_array_equal(grad_d, rows["d"]["grad"])
    np.testing.assert_array_equal(X.T @ grad_d, rows["w"]["grad"])
    np.testing.assert_array_equal(grad_d.sum(axis=0), rows["b"]["grad"])  # undo the broadcast

    # The text's "both inputs are d, so d receives two contributions, dq * d = ...".
    stated = re.search(r"contributions,\s+`dq \* d = (\[\[.*?\]\])`", engine_text)
    assert stated, "docs/engine.md no longer states the fan-out contribution"
    np.testing.assert_array_equal(rows["q"]["grad"] * d, _literal(stated.group(1)))


def test_broadcast_bias_is_summed_back_by_the_engine(engine_text):
    """Section 5's claim, checked against the engine itself: sum_to over the broadcast axis."""
    rows = {row["name"]: row for row in _parse_table(engine_text)}
    z = nervenet.Tensor(rows["z"]["value"])
    b = nervenet.Tensor(rows["b"]["value"], requires_grad=True)
    upstream = rows["s"]["grad"]
    (z + b).backward(upstream)
    assert b.grad.shape == (1,)
    np.testing.assert_array_equal(b.grad, upstream.sum(axis=0))


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: path.name)
def test_examples_in_document_run(path):
    text = path.read_text(encoding="utf-8")
    parser = doctest.DocTestParser()
    blocks = [(line, body) for line, body in _fenced_blocks(text) if ">>>" in body]
    assert blocks, f"{path.name} has no examples to run"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = io.StringIO()
    namespace: dict = {}
    attempted = failed = 0
    for line, body in blocks:
        # A DocTest copies its globals: hand each block the names the previous ones defined.
        test = parser.get_doctest(body, namespace, f"{path.name}:{line}", str(path), line)
        result = runner.run(test, out=report.write, clear_globs=False)
        namespace = test.globs
        attempted, failed = attempted + result.attempted, failed + result.failed
    assert attempted > 0
    assert failed == 0, report.getvalue()


def test_the_index_lists_every_guide():
    index = (ROOT / "docs" / "index.md").read_text()
    listed = set(re.findall(r"\]\(([\w.-]+\.md)\)", index))
    guides = {path.name for path in (ROOT / "docs").glob("*.md")} - {"index.md"}
    assert guides <= listed, f"docs/index.md does not list {sorted(guides - listed)}"
    assert listed <= guides, f"docs/index.md links missing guides {sorted(listed - guides)}"

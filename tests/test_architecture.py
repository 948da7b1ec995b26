"""The import picture of docs/architecture.md section 1, checked on the source (``ast``, nothing
is imported): every module has a floor, no import runs back up the floors, no import cycle
outside the engine's operator knot, and no function longer than the house style allows.

Imports inside functions count as much as those at the top: a deferred import is still a
dependency. Importing ``a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py`` first, so those
packages count as imported too (the package root ``nervenet`` excepted: every import runs it).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "nervenet"

# The floors of docs/architecture.md section 1, by module or package (the longest prefix
# wins). A module may import from its own floor and from the floors below it.
FLOORS = {
    # 0: the ground floor: arrays, kernels, string ids, seeding, the version, the MPI world
    "nervenet.backend": 0, "nervenet.kernels": 0, "nervenet.registry": 0, "nervenet.utils": 0,
    "nervenet._version": 0, "nervenet.world": 0, "nervenet.checks": 0,
    "nervenet.fake_device": 0,  # the fake test device's arrays and module, beside the backend
    "nervenet.nest": 0, "nervenet.loading": 0,  # nested structures; the load guard's slot
    # 1: the engine and the public op namespace
    "nervenet.autograd": 1, "nervenet.functional": 1,
    # 2: the pieces a model is built from, and the data
    "nervenet.layers": 2, "nervenet.optimizers": 2, "nervenet.losses": 2, "nervenet.metrics": 2,
    "nervenet.activations": 2, "nervenet.regularizers": 2, "nervenet.constraints": 2,
    "nervenet.initializers": 2, "nervenet.diagnostics": 2, "nervenet.data": 2,
    "nervenet.datasets": 2,
    # 3: models and what trains, logs and saves them
    "nervenet.models": 3, "nervenet.callbacks": 3, "nervenet.saving": 3, "nervenet.progbar": 3,
    "nervenet.summary": 3, "nervenet.distributed": 3,
    # 4: tools built on models
    "nervenet.sklearn": 4, "nervenet.tuning": 4, "nervenet.ensemble": 4, "nervenet.viz": 4,
    "nervenet.onnx": 4, "nervenet.linear": 4,
    # 5: the command line and the apps (the package root `nervenet` counts as this floor)
    "nervenet": 5, "nervenet.__main__": 5, "nervenet.cli": 5, "nervenet.recipes": 5,
    "nervenet.runs": 5, "nervenet.playground": 5,
}

# The engine's operator knot: a Tensor's `+` is an op and an op makes Tensors, so these
# modules import each other (docs/architecture.md section 1). No other cycle is allowed.
KNOT = ("nervenet.autograd.tensor", "nervenet.autograd.function", "nervenet.autograd.engine",
        "nervenet.autograd.ops.")

MAX_LINES = 60
RULE_MAX_LINES = 40  # every `backward` and `Function.__call__`: the chain rule, read at once


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def floor_of(module: str) -> int | None:
    """The floor of a module: that of the longest FLOORS key that is it or a package above it."""
    while module:
        if module in FLOORS:
            return FLOORS[module]
        module = module.rpartition(".")[0]
    return None


def _imports(module: str) -> set[str]:
    """The nervenet modules `module` imports by name, anywhere in its source."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: climb from this module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:  # `from a import b` imports module a.b where there is one
                sub = f"{source}.{alias.name}"
                found.add(sub if sub in MODULES else source)
    return {name for name in found if name in MODULES and name != module}


def _runs(imported: str) -> set[str]:
    """What importing `imported` runs: it and the packages above it, except the root."""
    parts = imported.split(".")
    return {".".join(parts[:i]) for i in range(2, len(parts) + 1)}


IMPORTS = {module: _imports(module) for module in MODULES}


def test_every_module_has_a_floor():
    assert [m for m in MODULES if floor_of(m) is None] == []


def _upward(imports: dict[str, set[str]]) -> list[str]:
    """Every import in ``imports`` (module -> what it imports) that runs up a floor."""
    upward = []
    for module, imported in imports.items():
        for target in sorted(set().union(*map(_runs, imported)) if imported else ()):
            if target == "nervenet" or not target.startswith("nervenet"):
                continue
            if floor_of(target) > floor_of(module):
                upward.append(f"{module} (floor {floor_of(module)}) imports {target} "
                              f"(floor {floor_of(target)})")
    return upward


def test_no_import_runs_back_up():
    assert _upward(IMPORTS) == []


def test_an_import_through_a_package_above_is_caught():
    """Before the world moved to the ground floor, a layer imported it through the
    distributed package, whose __init__ runs training and callbacks (floor 3)."""
    found = _upward({"nervenet.layers.normalization": {"nervenet.distributed.world"}})
    assert found == [f"nervenet.layers.normalization (floor 2) imports {name} (floor 3)"
                     for name in ("nervenet.distributed", "nervenet.distributed.world")]


def test_the_package_root_is_imported_only_from_the_top_floor():
    """``import nervenet`` runs every floor; below the top, take what you need from its
    floor (the version from ``nervenet._version``)."""
    top = max(FLOORS.values())
    below = [m for m, imported in IMPORTS.items() if "nervenet" in imported and floor_of(m) < top]
    assert below == []


def _cycles() -> list[list[str]]:
    """The strongly connected components of the import graph with more than one module
    (Tarjan's algorithm, iterative)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []
    for root in IMPORTS:
        if root in index:
            continue
        work = [(root, iter(sorted(IMPORTS[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(IMPORTS[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return components


def test_no_import_cycle_outside_the_operator_knot():
    outside = [c for c in _cycles() if not all(m.startswith(KNOT) for m in c)]
    assert outside == []


def test_the_cycle_finder_finds_cycles():
    """The test above cannot pass by finding nothing."""
    knot = [c for c in _cycles() if "nervenet.autograd.tensor" in c]
    assert knot and "nervenet.autograd.ops.arith" in knot[0]


def _functions(path: Path):
    """(qualified name, name, line count from `def` to the last line) of every function."""
    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                qualified = f"{prefix}{child.name}"
                yield qualified, child.name, child.end_lineno - child.lineno + 1
                yield from visit(child, f"{qualified}.")
            elif isinstance(child, ast.ClassDef):
                yield from visit(child, f"{prefix}{child.name}.")
            else:
                yield from visit(child, prefix)
    yield from visit(ast.parse(path.read_text(), str(path)), "")


def _too_long() -> list[tuple[str, str, int]]:
    found = []
    for path in MODULES.values():
        relative = path.relative_to(PACKAGE.parent).as_posix()
        for qualified, name, lines in _functions(path):
            rule = name == "backward" or qualified == "Function.__call__"
            if lines > (RULE_MAX_LINES if rule else MAX_LINES):
                found.append((relative, qualified, lines))
    return found


def test_no_function_too_long():
    assert _too_long() == []


def test_the_length_check_measures_from_def_to_the_last_line(tmp_path):
    body = "".join(f"        x{i} = {i}\n" for i in range(59))
    source = ("class Function:\n    def __call__(self):\n" + body + "\n"
              "def backward():\n" + "".join(f"    y{i} = {i}\n" for i in range(40)))
    path = tmp_path / "sample.py"
    path.write_text(source)
    assert list(_functions(path)) == [("Function.__call__", "__call__", 60),
                                      ("backward", "backward", 41)]

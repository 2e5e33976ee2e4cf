"""The layering of ncc's packages: dependencies run one way,
core -> passes -> runtime_harness -> targets -> compiler -> study -> cli,
and no module imports a package above its own."""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAYERS = {"core": 0, "passes": 1, "runtime_harness": 2, "targets": 3, "compiler": 4, "study": 5, "cli": 6}


def _imports(path: str) -> set:
    """The ncc packages a module imports (top-level name after `ncc.`), lazy imports included."""
    with open(path) as handle:
        tree = ast.parse(handle.read(), path)
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found |= {name.split(".")[1] for name in names if name.startswith("ncc.") and name.count(".") >= 1}
    return found


def _edges() -> dict:
    edges = {}
    for package in LAYERS:
        for folder, _dirs, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    edges[os.path.relpath(path, ROOT)] = _imports(path) - {package}
    return edges


def test_every_package_is_scanned():
    edges = _edges()
    assert {path.split(os.sep)[0] for path in edges} == set(LAYERS)


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_imports_go_down_only(package):
    upward = {path: sorted(p for p in imported if LAYERS.get(p, -1) >= LAYERS[package])
              for path, imported in _edges().items() if path.startswith(package + os.sep)}
    assert {path: bad for path, bad in upward.items() if bad} == {}


def test_core_is_a_leaf():
    assert {path: imported for path, imported in _edges().items()
            if path.startswith("core" + os.sep) and imported} == {}


def test_no_cycle_between_packages():
    graph = {package: set() for package in LAYERS}
    for path, imported in _edges().items():
        graph[path.split(os.sep)[0]] |= imported & set(LAYERS)
    visiting, done = set(), set()

    def visit(package, trail):
        assert package not in visiting, f"import cycle: {' -> '.join(trail + [package])}"
        if package in done:
            return
        visiting.add(package)
        for imported in sorted(graph[package]):
            visit(imported, trail + [package])
        visiting.discard(package)
        done.add(package)

    for package in sorted(graph):
        visit(package, [])

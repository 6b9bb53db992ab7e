"""The package's shape: one import package, layers whose imports point down only, no import circles.

Every import statement counts, module-level or inside a function (a lazy import still ties the
modules together), read from the source with `ast`, so the test needs nothing imported.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "explainbench"
CORE = f"{PACKAGE}.core"
METHODS = (f"{PACKAGE}.models", f"{PACKAGE}.explainers", f"{PACKAGE}.metrics")
HARNESS = f"{PACKAGE}.bench"


def _package_dirs() -> dict[str, Path]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return {name: ROOT / folder for name, folder in config["package-dir"].items()}


def _modules() -> dict[str, Path]:
    """Every module of the installed package, by dotted name."""
    modules = {}
    for package, folder in _package_dirs().items():
        if package == PACKAGE:
            modules[PACKAGE] = folder / "__init__.py"
            continue
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path}: use absolute imports"
                if node.module not in modules:
                    continue
                for alias in node.names:  # `from explainbench import models` imports the module
                    sub = f"{node.module}.{alias.name}"
                    edges.add(sub if sub in modules else node.module)
        graph[name] = edges - {name}
    return graph


def _layer(module: str) -> str:
    if module == PACKAGE:
        return "top"
    if module.startswith(CORE):
        return "core"
    if module.startswith(METHODS):
        return "methods"
    assert module.startswith(HARNESS), module
    return "harness"


def test_the_walk_sees_the_whole_package():
    graph = import_graph()
    assert {"explainbench.core.tasks", "explainbench.bench.cli", "explainbench.metrics.road",
            "explainbench.explainers.gradients", "explainbench.models.zoo"} <= set(graph)
    # lazy imports inside functions count: the runner imports the Ray backend only when asked
    assert "explainbench.bench.ray_backend" in graph["explainbench.bench.runner"]


def test_imports_point_down_only():
    allowed = {"top": set(), "core": {"top", "core"}, "methods": {"top", "core", "methods"},
               "harness": {"top", "core", "methods", "harness"}}
    wrong = [f"{a} -> {b}" for a, edges in import_graph().items() for b in edges
             if _layer(b) not in allowed[_layer(a)]]
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def test_there_are_no_import_circles():
    graph = import_graph()
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"


def test_outside_the_checkout_only_explainbench_is_importable(tmp_path):
    """From another folder, with nothing on PYTHONPATH, the installed distribution provides
    `explainbench` and its sub-packages, and no top-level `bench`, `models`, `metrics`,
    `explainers` or `core`."""
    code = (
        "import importlib.util as u\n"
        "import explainbench.bench.cli, explainbench.explainers, explainbench.metrics\n"
        "print([n for n in ('bench', 'models', 'metrics', 'explainers', 'core') if u.find_spec(n)])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_tests_and_benchmarks_import_the_package_by_its_name():
    """pytest puts the checkout on sys.path (for `tests.*`), where the bare folder names would
    import too: the tests must use the names a user has."""
    bare = {"bench", "models", "metrics", "explainers", "core"}
    found = []
    for folder in ("tests", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
                found += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in bare]
    assert not found, "\n".join(found)

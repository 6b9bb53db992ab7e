"""The package's shape: one import package, layers whose imports point down only, no import circles,
and inside the harness, stages whose imports point down too (docs/ARCHITECTURE.md).

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
    assert "explainbench.bench.run.ray_backend" in graph["explainbench.bench.run.runner"]


def test_imports_point_down_only():
    allowed = {"top": set(), "core": {"top", "core"}, "methods": {"top", "core", "methods"},
               "harness": {"top", "core", "methods", "harness"}}
    wrong = [f"{a} -> {b}" for a, edges in import_graph().items() for b in edges
             if _layer(b) not in allowed[_layer(a)]]
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


# The harness's stages, highest first. A module may import its own stage and the stages below;
# never one above, never a sibling (run and report read each other's files, not each other's code;
# cells and present share nothing).
STAGES = {
    "main": 6, "cli": 5, "run": 4, "report": 4, "studies": 3, "cells": 2, "present": 2,
    "store": 1, "package": 0,
}


def _stage(module: str) -> str:
    parts = module.split(".")
    if parts[:2] != [PACKAGE, "bench"]:
        return ""
    if len(parts) == 2:
        return "package"
    return {"__main__": "main", "suites": "package"}.get(parts[2], parts[2])


def test_the_harness_is_grouped_by_stage():
    """Every harness module is in a stage package (or is the run folder's format, store.py)."""
    stages = {_stage(m) for m in import_graph() if m.startswith(HARNESS)}
    assert stages <= set(STAGES), stages - set(STAGES)
    assert {"cli", "run", "report", "studies", "cells", "present", "store"} <= stages


def test_harness_stages_import_downwards_only():
    wrong = []
    for a, edges in import_graph().items():
        for b in edges:
            sa, sb = _stage(a), _stage(b)
            if not sa or not sb or sa == sb:
                continue
            if STAGES[sb] >= STAGES[sa] and sb != "package":
                wrong.append(f"{a} ({sa}) -> {b} ({sb})")
    assert not wrong, "imports against the stages:\n" + "\n".join(sorted(wrong))


def test_the_report_reads_run_folders_and_studies_never_import_the_report():
    graph = import_graph()
    report_to_run = [f"{a} -> {b}" for a, e in graph.items() for b in e
                     if _stage(a) == "report" and _stage(b) == "run"]
    studies_up = [f"{a} -> {b}" for a, e in graph.items() for b in e
                  if _stage(a) == "studies" and _stage(b) in ("report", "run", "cli")]
    assert not report_to_run and not studies_up, report_to_run + studies_up


def test_no_report_module_names_a_study():
    """A study's report side is its own (REPORT, collected through the study registry): no report
    module imports a particular study, so adding one touches no report file."""
    named = [f"{a} -> {b}" for a, e in import_graph().items() for b in e
             if _stage(a) == "report" and _stage(b) == "studies"
             and b not in (f"{HARNESS}.studies", f"{HARNESS}.studies.contribution")]
    assert not named, named


def test_metrics_never_import_explainers():
    graph = import_graph()
    wrong = [f"{a} -> {b}" for a, e in graph.items() for b in e
             if a.startswith(f"{PACKAGE}.metrics") and b.startswith(f"{PACKAGE}.explainers")]
    assert not wrong, wrong


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

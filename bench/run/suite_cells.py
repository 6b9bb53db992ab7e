"""A suite's cells, in a fixed order: per experiment, its scores cells, then its studies' cells
(each kind's own `plan`, bench/studies/). `bench plan` forecasts them (forecast.py); the runner
executes them (runner.py)."""

from __future__ import annotations

from explainbench.bench import studies
from explainbench.bench.cells.cell import Cell
from explainbench.bench.cells.spec import Suite
from explainbench.core.errors import BenchError


def plan(suite: Suite) -> list[Cell]:
    """Every cell of a suite in a fixed order: per experiment, its scores cells, then its studies."""
    cells: list[Cell] = []
    for exp in suite.experiments:
        cells += studies.module("scores").plan(suite, exp)
        for name, options in exp.study_options().items():
            cells += studies.module(name).plan(suite, exp, options)
    ids = [c.id for c in cells]
    if len(set(ids)) != len(ids):
        raise BenchError(f"suite {suite.name} plans the same cell twice; make experiment names unique")
    return cells

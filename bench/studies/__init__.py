"""Kinds of cells beyond plain scoring, each a study that owns its whole path. A study module provides

    validate(options: dict, experiment, where: str) -> dict   # normalised options, one-line errors
    plan(suite, experiment, options: dict) -> list[Cell]
    demands(cell) -> Demands                                   # what `bench plan` counts
    execute(cell, suite, ctx) -> CellOutput
    REPORT: Contribution                                       # its tables, findings, figures, section

and is named in a suite experiment's `studies:` mapping. `scores` (explain, then every metric) is
the kind every experiment with metrics gets; it is not named in `studies:`. Adding a study: its
module here and one line in the registry below; the run stage plans and executes it and the
report collects its `REPORT` through `contributions()`.
"""

from __future__ import annotations

import importlib

from explainbench.core.registry import Registry

STUDIES: Registry = Registry("study")
# name -> module (registered lazily: a study module is imported only when a suite uses it)
for _name in ("stability", "background", "sanity", "agreement"):
    STUDIES.add(_name, f"explainbench.bench.studies.{_name}:execute")


def module(kind: str):
    """The module that plans and executes cells of `kind` ("scores" or a registered study)."""
    if kind == "scores":
        return importlib.import_module("explainbench.bench.studies.scores")
    STUDIES.check(kind)
    return importlib.import_module(STUDIES.entry(kind).target.partition(":")[0])


def contributions() -> list:
    """[(study name, Contribution)] of every registered study that declares one."""
    out = []
    for name in STUDIES.names():
        report = getattr(module(name), "REPORT", None)
        if report is not None:
            out.append((name, report))
    return out

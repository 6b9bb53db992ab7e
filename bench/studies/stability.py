"""Stability study: the same inputs explained under K seeds, scored per sample (Spearman, top-k
intersection, sign agreement, coefficient of variation; see metrics/stability.py), optionally as a
function of the explainer's sampling budget.

    studies:
      stability:
        explainers: [lime, kernel_shap]   # default: every stochastic explainer of the experiment
        seeds: 10                         # K; default: the experiment's seeds if >= 2, else 5
        budgets: {lime: {n_samples: [100, 250, 500, 1000]}}   # optional sweeps
        k: 0.1                            # top-k share of features
        controls: true                    # deterministic explainers under two seeds: must be 1 / 0

Rows: `stability_*` metrics with seed -1 (computed across seeds); metric_params hold the seeds, k
and, for a budget sweep, `budget_param` (the swept parameter, whose value is in `params`).
Explainers that choose a set (Anchor's features: its `chosen_record`) also get
`stability_jaccard`; explanation by example, named in `explainers`, gets only that, over its ids.
What the report shows of it (tables, findings, the budget figure, a section, and the explanation
styles side by side) is in stability_results.py and styles.py, declared in REPORT at the end.
"""

from __future__ import annotations

import time

import pandas as pd

from explainbench.bench.cells.cell import Cell, Demands, chunks, unsupported_reason
from explainbench.bench.cells.context import CellOutput, cost_record, explain_chunk, load_chunk, score_rows
from explainbench.bench.cells.spec import Component, thaw
from explainbench.bench.studies import stability_results
from explainbench.bench.studies.common import EXPLAINER_NAMES
from explainbench.bench.studies.contribution import Contribution, Section
from explainbench.core.errors import BenchError
from explainbench.core.params import Any_, Bool, Float, Int

PARAMETERS = {"explainers": EXPLAINER_NAMES, "seeds": Int(None, 2, 1000, nullable=True),
              "budgets": Any_({}), "k": Float(0.1, 0, 1, low_open=True), "controls": Bool(True)}
ACROSS_SEEDS = -1  # the `seed` of a row computed across seeds


def _settings(options: dict, exp, where: str = "stability") -> list[tuple[Component, tuple, str | None]]:
    """(explainer with parameters, seeds, budget parameter) for every cell group."""
    from explainbench import explainers

    from explainbench.bench.studies.common import resolve_explainers

    comps = resolve_explainers(options["explainers"], exp, where=where, attribution_only=False,
                               predicate=None if options["explainers"] else (lambda c: c.stochastic))
    K = options["seeds"] or (len(exp.seeds) if len(exp.seeds) >= 2 else 5)
    seeds = tuple(exp.seeds[:K]) if len(exp.seeds) >= K else tuple(range(K))
    out = []
    for comp in comps:
        stochastic = explainers.get_class(comp.name).stochastic
        used = seeds if stochastic else seeds[:2]
        out.append((comp, used, None))
        for param, values in (options["budgets"].get(comp.name) or {}).items():
            for value in values:
                params = {**comp.params, param: value}
                out.append((Component(comp.name, tuple(sorted(params.items()))), used, param))
    if options["controls"] and options["explainers"] is None:
        for comp in exp.explainers:
            cls = explainers.get_class(comp.name)
            if not cls.stochastic and cls.output == "attribution":
                out.append((comp, seeds[:2], None))
    return out


def validate(options: dict, exp, where: str) -> dict:
    from explainbench import explainers

    from explainbench.bench.studies.common import check_options

    options = check_options(options, PARAMETERS, where)
    if not isinstance(options["budgets"], dict):
        raise BenchError(f"{where}: 'budgets' maps explainer names to {{parameter: [values]}}")
    for name, sweep in options["budgets"].items():
        try:
            cls = explainers.get_class(name)
        except BenchError as exc:
            raise BenchError(f"{where}.budgets: {exc}") from None
        for param, values in (sweep or {}).items():
            if param not in cls.defaults:
                raise BenchError(f"{where}.budgets.{name}: unknown parameter {param!r}; valid "
                                 f"parameters: {', '.join(sorted(cls.defaults)) or 'none'}")
            if not isinstance(values, list) or not values:
                raise BenchError(f"{where}.budgets.{name}.{param}: expected a list of values")
            for value in values:  # each value of the sweep within the parameter's range
                cls.parameters[param].check(value, param, f"{where}.budgets.{name}")
    if not _settings(options, exp, where):
        raise BenchError(f"{where}: no explainer to study (no stochastic explainer in the experiment; "
                         "name them with 'explainers')")
    return options


def plan(suite, exp, options: dict) -> list[Cell]:
    cells = []
    for model in exp.models:
        for comp, seeds, budget_param in _settings(options, exp):
            if unsupported_reason(model, comp):
                continue
            for chunk, start, stop in chunks(exp):
                cells.append(Cell("stability", exp, model, comp, ACROSS_SEEDS, chunk, start, stop,
                                  (("budget_param", budget_param), ("k", options["k"]),
                                   ("seeds", seeds))))
    return cells


def demands(cell: Cell) -> Demands:
    return Demands(cached=[(cell.explainer, s) for s in thaw(cell.option("seeds"))])


def execute(cell: Cell, suite, ctx) -> CellOutput:
    import torch

    from explainbench import explainers
    from explainbench.metrics.stability import (STABILITY_METRICS, padded_sets, seed_stability,
                                                set_jaccard)

    started = time.perf_counter()
    model = ctx.model(cell.model)
    chunk = load_chunk(cell, ctx)
    seeds = thaw(cell.option("seeds"))
    cls = explainers.get_class(cell.explainer.name)
    if cls.output == "examples":
        sets, costs, explainer = _example_sets(cell, ctx, model, chunk, seeds)
        scores = {"stability_jaccard": set_jaccard(padded_sets(sets))}
    else:
        stack, sets, costs = [], [], []
        for seed in seeds:
            records: dict = {}
            attributions, explainer, cost = explain_chunk(ctx, cell.model, cell.explainer, seed,
                                                          chunk, records=records)
            stack.append(attributions)
            if cls.chosen_record:  # Anchor: the features it chose
                sets.append(records[cls.chosen_record])
            costs.append(cost_record(cell, explainer, cost, seed))
        scores = seed_stability(torch.stack(stack), chunk.task.feature_mask(chunk.inputs),
                                k_fraction=float(cell.option("k")))
        if sets:
            scores["stability_jaccard"] = set_jaccard(padded_sets(sets))
    metric_params = {"seeds": list(seeds), "k": cell.option("k"),
                     "budget_param": cell.option("budget_param")}
    frames = [score_rows(suite, cell, chunk, model_sha256=model.card["checkpoint_sha256"],
                         explainer_name=explainer.name, params=explainer.params,
                         params_hash=explainer.params_hash, metric=name,
                         metric_params=metric_params, category="stability",
                         higher_is_better=STABILITY_METRICS[name], values=values)
              for name, values in scores.items()]
    return CellOutput(pd.concat(frames, ignore_index=True), None, costs, time.perf_counter() - started)


def _example_sets(cell: Cell, ctx, model, chunk, seeds):
    """The example ids explanation by example returns under each seed (it has no map to cache)."""
    from explainbench import explainers

    explainer = explainers.get(cell.explainer.name,
                               batch_size=ctx.batch_for(chunk.task, chunk.model),
                               **cell.explainer.params)
    sets, costs = [], []
    for seed in seeds:
        t0 = time.perf_counter()
        found = explainer.explain(model, chunk.task, chunk.inputs, chunk.targets, seed=seed,
                                  sample_ids=chunk.part.ids)
        cost = {"seconds_per_explanation": (time.perf_counter() - t0) / cell.n_samples,
                "forward_passes_per_explanation": 1.0}
        sets.append(found.ids)
        costs.append(cost_record(cell, explainer, cost, seed))
    return sets, costs, explainer


REPORT = Contribution(
    tables=stability_results.tables,
    findings=((40, stability_results.budget_findings), (41, stability_results.settling_findings),
              (42, stability_results.least_stable),
              (90, stability_results.styles_findings)),
    glance={"stable": (3, "least stable across seeds"), "settling": (3.5, "top features settle at")},
    figures=stability_results.figures,
    section=Section(40, "stability", "Stability", stability_results.section),
)

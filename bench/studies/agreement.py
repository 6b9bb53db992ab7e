"""Agreement study: do two explainers agree on why? Pairwise Spearman rank correlation and top-k
intersection between every pair of explainers on the same samples, per (model, chunk).

    studies:
      agreement:
        explainers: null      # default: every attribution explainer of the experiment (and random)
        k: 0.1

Rows: `agreement_spearman` and `agreement_topk` with the first explainer in `explainer` (and its
matrix label in metric_params `self`) and the second's label in metric_params `other`;
tables.agreement_matrices turns them into square matrices.
Explanations come from the cache the scores cells filled (same model, parameters and seed).
"""

from __future__ import annotations

import itertools
import time

import pandas as pd

from explainbench.bench.cells import (Cell, CellOutput, Demands, cost_record, explain_chunk,
                                     load_chunk, score_rows, unsupported_reason)
from explainbench.bench.studies.common import EXPLAINER_NAMES
from explainbench.core.errors import BenchError
from explainbench.core.params import Float
from explainbench.bench.spec import Component, freeze, thaw

PARAMETERS = {"explainers": EXPLAINER_NAMES, "k": Float(0.1, 0, 1, low_open=True)}
METRICS = {"agreement_spearman": True, "agreement_topk": True}


def _components(options: dict, exp, where: str = "agreement") -> list[Component]:
    from explainbench import explainers

    from explainbench.bench.studies.common import resolve_explainers

    comps = resolve_explainers(options["explainers"], exp, where=where)
    if options["explainers"] is None and exp.floor and "random" in explainers.REGISTRY \
            and "random" not in {c.name for c in comps}:
        comps.append(Component("random"))
    return comps


def validate(options: dict, exp, where: str) -> dict:
    from explainbench.bench.studies.common import check_options

    options = check_options(options, PARAMETERS, where)
    if len(_components(options, exp, where)) < 2:
        raise BenchError(f"{where}: agreement needs at least two attribution explainers")
    return options


def plan(suite, exp, options: dict) -> list[Cell]:
    comps = freeze([[c.name, c.params_items] for c in _components(options, exp)])
    cells = []
    for model in exp.models:
        for chunk, start in enumerate(range(0, exp.slice.size, exp.chunk_size)):
            stop = min(exp.slice.size, start + exp.chunk_size)
            cells.append(Cell("agreement", exp, model, None, exp.seeds[0], chunk, start, stop,
                              (("explainers", comps), ("k", options["k"]))))
    return cells


def demands(cell: Cell) -> Demands:
    comps = [Component(name, tuple(tuple(i) for i in items))
             for name, items in thaw(cell.option("explainers"))]
    return Demands(cached=[(c, cell.seed) for c in comps if not unsupported_reason(cell.model, c)])


def execute(cell: Cell, suite, ctx) -> CellOutput:
    from explainbench.metrics import similarity

    started = time.perf_counter()
    model = ctx.model(cell.model)
    chunk = load_chunk(cell, ctx)
    valid = chunk.task.feature_mask(chunk.inputs)
    explained, costs = [], []
    for name, items in thaw(cell.option("explainers")):
        comp = Component(name, tuple(tuple(i) for i in items))
        if unsupported_reason(cell.model, comp):
            continue  # e.g. attention on the LSTM: no map to compare
        attributions, explainer, cost = explain_chunk(ctx, cell.model, comp, cell.seed, chunk)
        explained.append((comp, explainer, attributions))
        costs.append(cost_record(cell, explainer, cost, cell.seed))
    # matrix labels: the registry name, with the parameters only where a name appears twice
    names = [c.name for c, _, _ in explained]
    explained = [(c.name if names.count(c.name) == 1 else c.label, e, a) for c, e, a in explained]
    frames = []
    k = float(cell.option("k"))
    for (label_a, exp_a, a), (label_b, _, b) in itertools.combinations(explained, 2):
        values = {"agreement_spearman": similarity.spearman(a, b, valid),
                  "agreement_topk": similarity.top_k_intersection(a, b, valid, k_fraction=k)}
        for metric, v in values.items():
            frames.append(score_rows(suite, cell, chunk, model_sha256=model.card["checkpoint_sha256"],
                                     explainer_name=exp_a.name, params=exp_a.params,
                                     params_hash=exp_a.params_hash, metric=metric,
                                     metric_params={"self": label_a, "other": label_b, "k": k},
                                     category="agreement", higher_is_better=METRICS[metric],
                                     values=v))
    if not frames:
        raise BenchError(f"agreement on {cell.model}: fewer than two explainers support this model")
    return CellOutput(pd.concat(frames, ignore_index=True), None, costs, time.perf_counter() - started)


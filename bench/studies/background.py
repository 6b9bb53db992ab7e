"""Background-set ablation: how large must a SHAP background (or baseline distribution) be, and
how should it be chosen?

    studies:
      background:
        explainers: null               # default: every explainer of the experiment that needs one
        sizes: [1, 5, 10, 50, 100, 500]
        strategies: [random, kmeans, stratified, zeros, blur]   # zeros and blur have size 1 only
        seeds: [0, 1, 2]
        metrics: null                  # default: the experiment's deletion/insertion settings

Per (model, explainer, strategy, size, seed, chunk) the explainer runs with parameters
`background` = strategy and `background_size` = size. Rows: `background_convergence` (Spearman
rank correlation to the explanation with the largest random background, same seed), plus the
deletion/insertion scores; the cost per explanation goes to costs.csv. background.csv puts them
side by side with the change in deletion and insertion against the reference.
"""

from __future__ import annotations

import time

import pandas as pd

from explainbench.bench.cells import (Cell, CellOutput, Demands, cost_record, explain_chunk,
                                     load_chunk, score_rows, unsupported_reason)
from explainbench.bench.studies.common import EXPLAINER_NAMES
from explainbench.core.errors import BenchError
from explainbench.core.params import Any_, Choice, Int, Seq
from explainbench.bench.spec import Component, freeze, thaw

STRATEGIES = ("random", "kmeans", "stratified", "zeros", "blur")
SIZE_ONE = ("zeros", "blur")
PARAMETERS = {
    "explainers": EXPLAINER_NAMES,
    "sizes": Seq([1, 5, 10, 50, 100, 500], Int(1, 1, 60_000)),
    "strategies": Seq(list(STRATEGIES), Choice("random", STRATEGIES)),
    "seeds": Seq([0, 1, 2], Int(0, 0)),
    "metrics": Any_(None, doc="metric names or {name, params}; null: deletion and insertion"),
}


def _components(options: dict, exp, where: str = "background") -> list[Component]:
    from explainbench.bench.studies.common import resolve_explainers

    from explainbench import explainers

    def samples_a_background(comp: Component) -> bool:
        cls = explainers.get_class(comp.name)
        return cls.needs_background or comp.params.get("baseline") == "background"

    comps = resolve_explainers(options["explainers"], exp, where=where)
    if options["explainers"] is None:
        return [c for c in comps if samples_a_background(c)]
    for comp in comps:
        if not {"background", "background_size"} <= set(explainers.get_class(comp.name).defaults):
            raise BenchError(f"{where}: explainer {comp.name!r} takes no background set "
                             "(parameters 'background' and 'background_size')")
    return comps


def _metric_components(options: dict, exp) -> list[Component]:
    if options["metrics"] is not None:
        return [Component(m) if isinstance(m, str) else Component(m["name"], tuple(sorted((m.get("params") or {}).items())))
                for m in options["metrics"]]
    chosen = [m for m in exp.metrics if m.name in ("deletion", "insertion")]
    return chosen or [Component("deletion"), Component("insertion")]


def validate(options: dict, exp, where: str) -> dict:
    from explainbench import metrics

    from explainbench.bench.studies.common import check_options

    options = check_options(options, PARAMETERS, where)
    if not _components(options, exp, where):
        raise BenchError(f"{where}: no explainer of the experiment takes a background set; "
                         "name them with 'explainers'")
    for m in _metric_components(options, exp):
        try:
            metrics.get(m.name, **m.params)
        except BenchError as exc:
            raise BenchError(f"{where}.metrics: {exc}") from None
    return options


def configurations(options: dict) -> list[tuple[str, int]]:
    configs = [(s, n) for s in options["strategies"] if s not in SIZE_ONE for n in options["sizes"]]
    configs += [(s, 1) for s in options["strategies"] if s in SIZE_ONE]
    return configs


def reference_size(options: dict) -> int:
    return max(options["sizes"])


def plan(suite, exp, options: dict) -> list[Cell]:
    cells = []
    metric_items = freeze([[m.name, m.params_items] for m in _metric_components(options, exp)])
    for model in exp.models:
        for comp in _components(options, exp):
            if unsupported_reason(model, comp):
                continue
            for strategy, size in configurations(options):
                params = {**comp.params, "background": strategy, "background_size": size}
                config = Component(comp.name, tuple(sorted(params.items())))
                for seed in options["seeds"]:
                    for chunk, start in enumerate(range(0, exp.slice.size, exp.chunk_size)):
                        stop = min(exp.slice.size, start + exp.chunk_size)
                        cells.append(Cell("background", exp, model, config, seed, chunk, start, stop,
                                          (("reference_size", reference_size(options)),
                                           ("metrics", metric_items))))
    return cells


def demands(cell: Cell) -> Demands:
    reference = {**cell.explainer.params, "background": "random",
                 "background_size": cell.option("reference_size")}
    metrics = [Component(name, tuple(tuple(i) for i in items))
               for name, items in thaw(cell.option("metrics"))]
    return Demands(cached=[(cell.explainer, cell.seed),
                           (Component(cell.explainer.name, tuple(sorted(reference.items()))),
                            cell.seed)], metrics=metrics)


def execute(cell: Cell, suite, ctx) -> CellOutput:
    from explainbench import metrics
    from explainbench.metrics import similarity

    started = time.perf_counter()
    model = ctx.model(cell.model)
    chunk = load_chunk(cell, ctx)
    attributions, explainer, cost = explain_chunk(ctx, cell.model, cell.explainer, cell.seed, chunk)
    ref_params = {**cell.explainer.params, "background": "random",
                  "background_size": cell.option("reference_size")}
    reference, _, _ = explain_chunk(ctx, cell.model, Component(cell.explainer.name,
                                                                tuple(sorted(ref_params.items()))),
                                    cell.seed, chunk)
    common = dict(model_sha256=model.card["checkpoint_sha256"], explainer_name=explainer.name,
                  params=explainer.params, params_hash=explainer.params_hash)
    valid = chunk.task.feature_mask(chunk.inputs)
    frames = [score_rows(suite, cell, chunk, metric="background_convergence",
                         metric_params={"reference": ref_params}, category="background",
                         higher_is_better=True, values=similarity.spearman(attributions, reference, valid),
                         **common)]
    shared: dict = {}
    for name, items in thaw(cell.option("metrics")):
        metric = metrics.get(name, **dict(tuple(i) for i in items))
        result = metric(model, chunk.task, chunk.inputs, attributions, chunk.targets, seed=cell.seed,
                        explainer=explainer, batch_size=ctx.batch_for(chunk.task), shared=shared)
        for output, higher, values, _ in result.outputs(metric.spec):
            frames.append(score_rows(suite, cell, chunk, metric=output, metric_params=metric.params,
                                     category="background", higher_is_better=higher,
                                     family=metric.spec.family,
                                     values=values, **common))
    return CellOutput(pd.concat(frames, ignore_index=True), None,
                      [cost_record(cell, explainer, cost, cell.seed)], time.perf_counter() - started)


def table(scores: pd.DataFrame, costs: pd.DataFrame | None) -> pd.DataFrame:
    """background.csv: per (task, model, explainer, strategy, size): convergence with its CI, the
    deletion and insertion means and their change against the reference configuration, and the
    seconds per explanation."""
    import json

    from explainbench.bench import tables

    rows = scores[scores["study"] == "background"]
    if rows.empty:
        return pd.DataFrame()
    params = rows["params"].map(json.loads)
    # the convergence's `reference` is each explainer's own largest background, not a setting to
    # tell apart: label without it, or explainers with different parameters split its column
    unreferenced = rows["metric_params"].map(
        lambda p: json.dumps({k: v for k, v in json.loads(p).items() if k != "reference"}, sort_keys=True))
    rows = rows.assign(strategy=[p.get("background") for p in params],
                       size=[p.get("background_size") for p in params],
                       metric_label=tables.metric_labels(rows.assign(metric_params=unreferenced)))
    keys = ["task", "model", "explainer", "strategy", "size"]
    per = rows.groupby(keys + ["params_hash", "metric_label", "sample_id"])["value"].mean().reset_index()
    out = []
    for key, g in per.groupby(keys + ["params_hash"], sort=True):
        row = dict(zip(keys, key[:-1]))
        for metric, m in g.groupby("metric_label"):
            values = m["value"].to_numpy()
            row[f"{metric}_mean"] = values.mean()
            if metric == "background_convergence":
                row["convergence_ci_low"], row["convergence_ci_high"] = tables.bootstrap_ci(values)
        if costs is not None and not costs.empty:
            c = costs[(costs["model"] == key[1]) & (costs["params_hash"] == key[-1])]
            if len(c):
                row["seconds_per_explanation"] = (c["seconds_per_explanation"] * c["samples"]).sum() / c["samples"].sum()
        out.append(row)
    table = pd.DataFrame(out)
    for metric in [c[:-5] for c in table.columns if c.endswith("_mean") and c != "background_convergence_mean"]:
        ref = table[(table["strategy"] == "random") & (table["size"] == table["size"].max())]
        ref = ref.set_index(["task", "model", "explainer"])[f"{metric}_mean"]
        table[f"{metric}_change"] = [
            r[f"{metric}_mean"] - ref.get((r["task"], r["model"], r["explainer"]), float("nan"))
            for _, r in table.iterrows()]
    return table

"""The plain cell: explain one chunk once (or read the cache), then score it with every metric."""

from __future__ import annotations

import time

import pandas as pd

from explainbench.bench.cells.cell import Cell, Demands, chunks, unsupported_reason
from explainbench.bench.cells.context import (CellOutput, cost_record, explain_chunk,
                                              explained_classes, load_chunk, score_rows)
from explainbench.bench.cells.spec import Component, bound_metric

FLOOR = "random"  # the control every explainer must beat; added to every scored experiment
TIED = "tied_feature_share"  # per sample: the share of features in the largest group of equal values


def plan(suite, exp) -> list[Cell]:
    from explainbench import explainers

    if not exp.metrics:
        return []
    components = list(exp.explainers)
    if exp.floor and FLOOR in explainers.REGISTRY and FLOOR not in {c.name for c in components}:
        components.append(Component(FLOOR))
    cells = []
    for model in exp.models:
        for comp in components:
            cls = explainers.get_class(comp.name)
            if unsupported_reason(model, comp):
                continue  # e.g. attention on an LSTM
            for seed in exp.seeds if cls.stochastic else exp.seeds[:1]:
                for chunk, start, stop in chunks(exp):
                    cells.append(Cell("scores", exp, model, comp, seed, chunk, start, stop))
    return cells


def demands(cell: Cell) -> Demands:
    from explainbench import explainers

    if explainers.get_class(cell.explainer.name).output == "examples":
        return Demands(uncached=[(cell.explainer, 1)])  # its own scores, no feature metrics
    return Demands(cached=[(cell.explainer, cell.seed)], metrics=list(cell.experiment.metrics))


def execute(cell: Cell, suite, ctx) -> CellOutput:
    from explainbench import explainers
    from explainbench.metrics.ordering import tied_share

    started = time.perf_counter()
    model = ctx.model(cell.model)
    chunk = load_chunk(cell, ctx)
    if explainers.get_class(cell.explainer.name).output == "examples":
        return _example_scores(cell, suite, ctx, model, chunk, started)
    records: dict = {}
    attributions, explainer, cost = explain_chunk(ctx, cell.model, cell.explainer, cell.seed, chunk,
                                                  records=records)
    frames, curves = [], []
    shared: dict = {}  # evaluations the metrics of this explanation share (e.g. removal curves)
    common = dict(model_sha256=model.card["checkpoint_sha256"], explainer_name=explainer.name,
                  params=explainer.params, params_hash=explainer.params_hash)
    for comp in cell.experiment.metrics:
        metric = bound_metric(comp)
        result = metric(model, chunk.task, chunk.inputs, attributions, chunk.targets,
                        seed=cell.seed, explainer=explainer,
                        batch_size=ctx.batch_for(chunk.task, chunk.model), shared=shared)
        for name, higher, values, curve in result.outputs(metric.spec):
            frames.append(score_rows(suite, cell, chunk, metric=name, metric_params=metric.params,
                                     category=metric.category, higher_is_better=higher,
                                     family=metric.spec.family,
                                     values=values, **common))
            if curve is not None:
                curves.append(_curve_rows(frames[-1], curve, result.extras.get("fractions")))
    # how much of the map only a tie-break can order (the leaderboard's `tied_share`)
    frames.append(score_rows(suite, cell, chunk, metric=TIED, metric_params={}, category="ties",
                             higher_is_better=False, family=TIED, **common,
                             values=tied_share(attributions, chunk.task.feature_mask(chunk.inputs))))
    # the explainer's own per-sample estimates (Anchor's precision, coverage and size)
    for name, higher in type(explainer).record_scores.items():
        frames.append(score_rows(suite, cell, chunk, model_sha256=model.card["checkpoint_sha256"],
                                 explainer_name=explainer.name, params=explainer.params,
                                 params_hash=explainer.params_hash, metric=name, metric_params={},
                                 category="rules", higher_is_better=higher, values=records[name],
                                 family=name))
    extras = {}
    if cell.chunk == 0 and cell.seed == cell.experiment.seeds[0]:
        from explainbench.bench.cells import gallery

        extras["gallery.safetensors"] = gallery.encode(
            chunk.task.name, cell.model, cell.explainer.label, chunk.inputs, attributions,
            chunk.part.ids, chunk.targets)
    return CellOutput(pd.concat(frames, ignore_index=True),
                      pd.concat(curves, ignore_index=True) if curves else None,
                      [cost_record(cell, explainer, cost, cell.seed)],
                      time.perf_counter() - started, extras)


def _curve_rows(rows: pd.DataFrame, curve, fractions=None) -> pd.DataFrame:
    """One row per (sample, step) with the key columns of its score row; `fraction` is the share
    of the features removed (inserted) at each step: the metric's own where it says (ROAD's
    percentages, AOPC's regions), else equal steps from 0 to 1."""
    import numpy as np

    values = curve.detach().double().cpu().numpy()
    steps = values.shape[1]
    fractions = (np.linspace(0.0, 1.0, steps) if fractions is None
                 else np.asarray(fractions.detach().cpu(), dtype=np.float64))
    keep = ["suite", "experiment", "study", "task", "model", "explainer", "params_hash", "metric",
            "metric_params", "seed", "sample_id", "correct", "cell_id"]
    frame = rows[keep].loc[rows.index.repeat(steps)].reset_index(drop=True)
    frame["step"] = np.tile(np.arange(steps), len(rows))
    frame["fraction"] = np.tile(fractions, len(rows))
    frame["value"] = values.reshape(-1)
    return frame


def _example_scores(cell: Cell, suite, ctx, model, chunk, started: float) -> CellOutput:
    """Explanation by example has no feature map for the removal metrics; its own scores
    (metrics/examples.py) are the examples' similarity, whether the nearest unfiltered example
    disagrees with the explained class, their true-label agreement where the filter leaves it
    open, and their overlap with the examples of the experiment's other models of the task."""
    from explainbench import explainers, models
    from explainbench.metrics.examples import EXAMPLE_METRICS, example_scores

    explainer = explainers.get(cell.explainer.name,
                               batch_size=ctx.batch_for(chunk.task, chunk.model),
                               **cell.explainer.params)
    t0 = time.perf_counter()
    found = explainer.explain(model, chunk.task, chunk.inputs, chunk.targets, seed=cell.seed,
                              sample_ids=chunk.part.ids)
    seconds = time.perf_counter() - t0
    others = []
    for name in cell.experiment.models:
        if name == cell.model or models.task_of(name).name != chunk.task.name:
            continue
        other = ctx.model(name)
        batch = ctx.batch_for(chunk.task, name)
        preds = chunk.task.probabilities(other, chunk.inputs, batch).argmax(1)
        targets = explained_classes(cell.experiment.target, preds, chunk.labels)
        others.append(explainer.explain(other, chunk.task, chunk.inputs, targets, seed=cell.seed,
                                        sample_ids=chunk.part.ids).ids)
    _, train_labels = chunk.task.train_split()
    values = example_scores(found, chunk.targets, train_labels, explainer.params["label_filter"],
                            others)
    frames = [score_rows(suite, cell, chunk, model_sha256=model.card["checkpoint_sha256"],
                         explainer_name=explainer.name, params=explainer.params,
                         params_hash=explainer.params_hash, metric=name,
                         metric_params={"k": explainer.params.get("k")}, category="examples",
                         higher_is_better=EXAMPLE_METRICS[name], values=v)
              for name, v in values.items()]
    cost = {"seconds_per_explanation": seconds / cell.n_samples,
            "forward_passes_per_explanation": 1.0}
    return CellOutput(pd.concat(frames, ignore_index=True), None,
                      [cost_record(cell, explainer, cost, cell.seed)], time.perf_counter() - started)

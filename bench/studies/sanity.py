"""Sanity study: model-parameter randomisation (cascading, from the output layer down) and the
random-logit test, per (model, explainer, chunk).

    studies:
      sanity:
        explainers: [saliency, integrated_gradients]   # default: the experiment's attribution explainers
        granularity: layer        # or block (transformer layers grouped); default: layer for images,
                                  # block for text
        seed: 42                  # randomisation seed (Quantus's default)
        max_depth: null           # stop the cascade after this many steps
        random_logit: true

Rows: `mprt_spearman` / `mprt_ssim` with metric_params {layer, depth, granularity}, and
`random_logit_spearman` / `random_logit_ssim`. Lower similarity is better: the explanation should
change when the model does. An explainer whose mean Spearman at the deepest randomisation stays
above FLAG_THRESHOLD is flagged in sanity.csv.
"""

from __future__ import annotations

import functools
import time

import pandas as pd

from explainbench.bench.cells import (Cell, CellOutput, Demands, cost_record, explain_chunk,
                                     load_chunk, score_rows, unsupported_reason)
from explainbench.bench.studies.common import EXPLAINER_NAMES
from explainbench.core.params import Bool, Choice, Int
from explainbench.bench.spec import Component, freeze, thaw

PARAMETERS = {"explainers": EXPLAINER_NAMES,
              "granularity": Choice(None, ("layer", "block"), nullable=True),
              "seed": Int(42, 0), "max_depth": Int(None, 1, nullable=True),
              "random_logit": Bool(True)}
FLAG_THRESHOLD = 0.5


def _study_explainers(options, exp, where: str = "sanity") -> list[Component]:
    from explainbench.bench.studies.common import resolve_explainers

    return resolve_explainers(options.get("explainers"), exp, attribution_only=True, where=where)


def validate(options: dict, exp, where: str) -> dict:
    from explainbench.bench.studies.common import check_options

    options = check_options(options, PARAMETERS, where)
    _study_explainers(options, exp, where)
    return options


def plan(suite, exp, options: dict) -> list[Cell]:
    cells = []
    for model in exp.models:
        for comp in _study_explainers(options, exp):
            if unsupported_reason(model, comp):
                continue
            for chunk, start in enumerate(range(0, exp.slice.size, exp.chunk_size)):
                stop = min(exp.slice.size, start + exp.chunk_size)
                cells.append(Cell("sanity", exp, model, comp, exp.seeds[0], chunk, start, stop,
                                  (("settings", freeze(options)),)))
    return cells


@functools.lru_cache(maxsize=None)
def cascade_steps(model_name: str, granularity: str) -> int:
    """Randomisation steps of a model's cascade, counted on an untrained instance."""
    from explainbench import models
    from explainbench.metrics.sanity import _blocks, randomisable_layers

    layers = randomisable_layers(models.zoo.build(model_name))[::-1]
    return len(_blocks(layers)) if granularity == "block" else len(layers)


def demands(cell: Cell) -> Demands:
    """The original explanation (cached) and one per randomisation step and the random logit,
    never cached: the cascade's steps are counted on an untrained instance of the architecture."""
    from explainbench import models

    options = thaw(cell.option("settings"))
    text = models.spec(cell.model).task == "imdb"
    granularity = options["granularity"] or ("block" if text else "layer")
    steps = cascade_steps(cell.model, granularity)
    if options["max_depth"]:
        steps = min(steps, options["max_depth"])
    return Demands(cached=[(cell.explainer, cell.seed)],
                   uncached=[(cell.explainer, steps + int(bool(options["random_logit"])))])


def execute(cell: Cell, suite, ctx) -> CellOutput:
    from explainbench.metrics.sanity import (SANITY_METRICS, cascading_randomisation,
                                             explanation_similarity, random_other_class)

    started = time.perf_counter()
    options = thaw(cell.option("settings"))
    model = ctx.model(cell.model)
    chunk = load_chunk(cell, ctx)
    valid = chunk.task.feature_mask(chunk.inputs)
    original, explainer, cost = explain_chunk(ctx, cell.model, cell.explainer, cell.seed, chunk)
    granularity = options["granularity"] or ("layer" if chunk.task.modality == "image" else "block")
    common = dict(model_sha256=model.card["checkpoint_sha256"], explainer_name=explainer.name,
                  params=explainer.params, params_hash=explainer.params_hash)
    frames = []

    def add(scores: dict, metric_params: dict):
        for metric, values in scores.items():
            frames.append(score_rows(suite, cell, chunk, metric=metric, metric_params=metric_params,
                                     category="sanity", higher_is_better=SANITY_METRICS[metric],
                                     values=values, **common))

    for depth, layer, randomised in cascading_randomisation(model, options["seed"], granularity):
        if options["max_depth"] and depth > options["max_depth"]:
            break
        other, _, _ = explain_chunk(ctx, cell.model, cell.explainer, cell.seed, chunk,
                                    model=randomised, use_cache=False)
        add(explanation_similarity(original, other, valid, chunk.task.modality, "mprt"),
            {"layer": layer, "depth": depth, "granularity": granularity, "seed": options["seed"]})
    if options["random_logit"]:
        import torch

        generator = torch.Generator().manual_seed(options["seed"])
        others = random_other_class(chunk.targets, chunk.task.num_classes, generator)
        other, _, _ = explain_chunk(ctx, cell.model, cell.explainer, cell.seed, chunk,
                                    targets=others, use_cache=False)
        add(explanation_similarity(original, other, valid, chunk.task.modality, "random_logit"),
            {"seed": options["seed"]})
    return CellOutput(pd.concat(frames, ignore_index=True), None,
                      [cost_record(cell, explainer, cost, cell.seed)], time.perf_counter() - started)


def table(scores: pd.DataFrame) -> pd.DataFrame:
    """sanity.csv: per (task, model, explainer, metric, depth): mean similarity with its CI, and
    whether the explainer is flagged (its map barely changes under full randomisation)."""
    import json

    from explainbench.bench import tables

    rows = scores[scores["study"] == "sanity"]
    if rows.empty:
        return pd.DataFrame()
    params = rows["metric_params"].map(json.loads)
    rows = rows.assign(depth=[p.get("depth", -1) for p in params],
                       layer=[p.get("layer", "random logit") for p in params],
                       explainer_label=tables.explainer_labels(rows))
    per = (rows.groupby(["task", "model", "explainer_label", "metric", "depth", "layer", "sample_id"])
           ["value"].mean().reset_index())
    out = []
    for key, g in per.groupby(["task", "model", "explainer_label", "metric", "depth", "layer"]):
        low, high = tables.bootstrap_ci(g["value"].to_numpy())
        out.append(dict(zip(["task", "model", "explainer", "metric", "depth", "layer"], key),
                        mean=g["value"].mean(), ci_low=low, ci_high=high, n=len(g)))
    table = pd.DataFrame(out)
    deepest = (table[table["metric"] == "mprt_spearman"].sort_values("depth")
               .groupby(["task", "model", "explainer"]).tail(1))
    flagged = {(r.task, r.model, r.explainer) for r in deepest.itertuples() if r.mean > FLAG_THRESHOLD}
    table["flagged"] = [(r.task, r.model, r.explainer) in flagged for r in table.itertuples()]
    return table

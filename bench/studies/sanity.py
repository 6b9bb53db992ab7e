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

Rows: `mprt_spearman` (absolute, as Quantus), `mprt_spearman_signed`, `mprt_spearman_untied` (ties
in random order: metrics/sanity.py) and `mprt_ssim` with metric_params {layer, depth,
granularity}, and the same four for `random_logit_`. Lower similarity is better: the explanation
should change when the model does. The verdict is over the whole cascade, as Adebayo et al. read
it (guided backprop stays alike while the top layers are randomised): an explainer whose mean
`VERDICT_MEASURE` over the cascade's steps (the area under its curve, per step) stays above
FLAG_THRESHOLD is flagged in sanity.csv (`cascade_mean`, per explainer and measure). The trained
and the randomised model are explained with the same seed, so a stochastic explainer (RISE) sees
the same masks under both: the comparison isolates the model, and a map whose structure comes
from its masks more than from the model stays alike, which is what the check should find; the report gets that table, a finding, the cascade's
figure and a section (REPORT, at the end).
"""

from __future__ import annotations

import functools
import time

import pandas as pd

from explainbench.bench.cells.cell import Cell, Demands, chunks, unsupported_reason
from explainbench.bench.cells.context import CellOutput, cost_record, explain_chunk, load_chunk, score_rows
from explainbench.bench.cells.spec import Component, freeze, thaw
from explainbench.bench.present import html
from explainbench.bench.present.finding import (Finding, interval, is_control, names, num, plural,
                                                primary_measure)
from explainbench.bench.studies.common import EXPLAINER_NAMES
from explainbench.bench.studies.contribution import Contribution, Section
from explainbench.core.params import Bool, Choice, Int

PARAMETERS = {"explainers": EXPLAINER_NAMES,
              "granularity": Choice(None, ("layer", "block"), nullable=True),
              "seed": Int(42, 0), "max_depth": Int(None, 1, nullable=True),
              "random_logit": Bool(True)}
FLAG_THRESHOLD = 0.5
VERDICT_MEASURE = "mprt_spearman_untied"  # |attributions|, ties not counted as agreement


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
            for chunk, start, stop in chunks(exp):
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


# ---------------------------------------------------------------------------- report


def table(scores: pd.DataFrame) -> pd.DataFrame:
    """sanity.csv: per (task, model, explainer, metric, depth): mean similarity with its CI, and
    whether the explainer is flagged (its map barely changes under full randomisation)."""
    from explainbench.bench.present.stats import aggregate, explainer_labels
    from explainbench.bench.store import setting

    rows = scores[scores["study"] == "sanity"]
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(depth=setting(rows["metric_params"], "depth", -1),
                       layer=setting(rows["metric_params"], "layer", "random logit"))
    keys = ["task", "model", "explainer_label", "metric", "depth", "layer"]
    per = (rows.assign(explainer_label=explainer_labels(rows))
           .groupby(keys + ["sample_id"])["value"].mean().reset_index())
    table = aggregate(per, keys, ["task", "model", "explainer", "metric", "depth", "layer"])
    cascade = table[table["depth"] >= 0].groupby(["task", "model", "explainer", "metric"])["mean"]
    table = table.merge(cascade.mean().rename("cascade_mean").reset_index(),
                        on=["task", "model", "explainer", "metric"], how="left")
    table.loc[table["depth"] < 0, "cascade_mean"] = float("nan")
    verdict = VERDICT_MEASURE if (table["metric"] == VERDICT_MEASURE).any() else "mprt_spearman"
    judged = table[table["metric"] == verdict].drop_duplicates(["task", "model", "explainer"])
    flagged = {(r.task, r.model, r.explainer) for r in judged.itertuples()
               if r.cascade_mean > FLAG_THRESHOLD}
    table["flagged"] = [(r.task, r.model, r.explainer) in flagged for r in table.itertuples()]
    return table


Q_SANITY = "Which explainers fail the model-parameter randomisation sanity check?"


def findings(folder) -> list[Finding]:
    table = folder.table("sanity.csv")
    if table.empty or "flagged" not in table.columns:
        return [Finding("sanity", Q_SANITY, "This run has no data for this question: it has no "
                        "sanity study.", "sanity.csv")]
    out = []
    for (task, model), g in table.groupby(["task", "model"], sort=True):
        cascade = g[g["depth"] >= 0]
        lead = (VERDICT_MEASURE if (cascade["metric"] == VERDICT_MEASURE).any() else
                primary_measure(cascade["metric"]) if len(cascade) else primary_measure(g["metric"]))
        curve = cascade[cascade["metric"] == lead].sort_values("depth")
        deepest = curve.groupby("explainer").tail(1).set_index("explainer")
        by_area = (curve.groupby("explainer")["mean"].mean().sort_values(ascending=False)
                   if "cascade_mean" not in curve else
                   curve.groupby("explainer")["cascade_mean"].first().sort_values(ascending=False))
        flagged = set(g[g["flagged"].astype(bool)]["explainer"])

        def item(explainer):
            tag = " (a control that ignores the model)" if is_control(explainer) else ""
            last = deepest.loc[explainer]
            return (f"{explainer} {num(by_area[explainer])} over the cascade, "
                    f"{interval(last['mean'], last['ci_low'], last['ci_high'])} at its end{tag}")

        fail = [item(e) for e in by_area.index if e in flagged]
        ok = [item(e) for e in by_area.index if e not in flagged]
        layer = curve["layer"].iloc[-1] if len(curve) else "?"
        text = (f"Judged over the whole cascade, from the output layer down to {layer}: an "
                f"explainer fails when the mean over the randomisation steps of its maps' {lead} "
                f"with the trained model's map stays above {num(FLAG_THRESHOLD)}: "
                + (f"{len(fail)} of {len(by_area)} fail: {names(fail, 6)}; pass: {names(ok, 6)}."
                   if fail else f"none of the {len(by_area)} fails ({names(ok, 6)})."))
        real = sorted(e for e in flagged if not is_control(e))
        controls = len(flagged) - len(real)
        short = (names(real, 3) if real else "none") + (f" (and {plural(controls, 'control')})" if controls else "")
        out.append(Finding("sanity", Q_SANITY, text, "sanity.csv", task, model,
                           short=short if flagged else "none fail"))
    return out


def figures(folder) -> list:
    """Cascading randomisation: one panel per similarity measure, one line per explainer, from the
    intact model (left) to every layer randomised (right); flagged explainers dashed."""
    from explainbench.bench.present.figure import errorbars, pyplot, save

    table = folder.table("sanity.csv")
    if table.empty:
        return []
    table = table[table["depth"] >= 0]
    plt, sns = pyplot()
    out = []
    for (task, model), g in table.groupby(["task", "model"], sort=True):
        measures = sorted(g["metric"].unique())
        explainers = sorted(g["explainer"].unique())
        colours = dict(zip(explainers, sns.color_palette("tab10", len(explainers))))
        flagged = set(g[g["flagged"].astype(bool)]["explainer"]) if "flagged" in g.columns else set()
        fig, axes = plt.subplots(1, len(measures), figsize=(3.6 * len(measures), 3.1), squeeze=False)
        for ax, measure in zip(axes[0], measures):
            m = g[g["metric"] == measure]
            for explainer in explainers:
                e = m[m["explainer"] == explainer]
                label = explainer + (" (fails)" if explainer in flagged else "")
                errorbars(ax, e, "depth", label, colours[explainer],
                          linestyle="--" if explainer in flagged else "-")
            layers = m.groupby("depth")["layer"].first()
            ax.set_xticks(layers.index, layers.values, rotation=35, ha="right", fontsize=7)
            if measure == VERDICT_MEASURE:
                ax.axhline(FLAG_THRESHOLD, color="#cf222e", lw=0.8, ls=":")
            ax.set(xlabel="randomised from the output down to", ylabel="similarity to the original map",
                   title=measure)
            ax.title.set_fontsize(8.5)
        axes[0, -1].legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1))
        fig.suptitle(f"{model}: model-parameter randomisation, cascading (red line: the flag threshold)",
                     fontsize=9, y=1.02)
        fig.tight_layout()
        out += save(fig, folder.root / "plots", f"sanity-{task}-{model}")
    return out


def section(folder) -> str:
    table_ = folder.table("sanity.csv")
    figs = html.figures(folder.root, "sanity-", css="figs")
    if table_.empty and not figs:
        return html.note("This run has no sanity study.")
    parts = ["<p>Does the explanation depend on the model's weights? The model's layers are "
             "randomised one by one from the output down (Adebayo et al. 2018); a faithful "
             "explanation should change, so lower similarity is better. The check is judged over "
             f"the whole cascade: the mean of {VERDICT_MEASURE} over its steps (the red line in "
             "its panel is the threshold).</p>", figs]
    for (task, model), g in table_.groupby(["task", "model"], sort=True) if len(table_) else []:
        last = g[g["depth"] >= 0].sort_values("depth").groupby(["explainer", "metric"]).tail(1)
        logit = g[g["depth"] < 0]
        columns = [("all randomised: " + m, last[last["metric"] == m]) for m in sorted(last["metric"].unique())]
        columns += [(m, logit[logit["metric"] == m]) for m in sorted(logit["metric"].unique())]
        flagged = set(g[g["flagged"].astype(bool)]["explainer"]) if "flagged" in g.columns else set()
        rows = []
        for e in sorted(g["explainer"].unique(), key=lambda e: (e not in flagged, e)):
            verdict = g[(g["explainer"] == e) & (g["metric"] == VERDICT_MEASURE)]
            area = verdict["cascade_mean"].iloc[0] if len(verdict) and "cascade_mean" in g else None
            row = [html.cell(e, css="control" if is_control(e) else ""),
                   html.cell("fails" if e in flagged else "passes", float(e in flagged),
                             "below" if e in flagged else ""),
                   html.cell("" if area is None or pd.isna(area) else f"{area:.3g}", area)]
            for _, c in columns:
                hit = c[c["explainer"] == e]
                row.append(html.interval_cell(hit.iloc[0]) if len(hit) else html.cell(""))
            rows.append(row)
        parts.append(f"<h3>{html.esc(model)}</h3>"
                     + html.table(["explainer", "check", html.breakable(f"cascade mean: {VERDICT_MEASURE}")]
                                  + [html.breakable(n) for n, _ in columns], rows))
    parts.append(f'<p class="note">Table: {html.link(folder.root, "sanity.csv")}.</p>')
    return "".join(parts)


REPORT = Contribution(
    tables=lambda scores, costs: {"sanity.csv": table(scores)},
    findings=((80, findings),),
    glance={"sanity": (4, "fail the randomisation check")},
    figures=figures,
    section=Section(60, "sanity", "Sanity", section),
)

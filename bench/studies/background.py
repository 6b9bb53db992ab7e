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
`background` = strategy and `background_size` = size; every size is its own draw (not a prefix of
the reference: explainers/background.py). Rows: `background_convergence` (Spearman rank
correlation to the explanation with the largest random background, same seed),
`background_seed_agreement` (Spearman to the same configuration under the study's next seed: the
explainer's own seed-to-seed noise at that size, against which a convergence is read), plus the
deletion/insertion scores; the cost per explanation goes to costs.csv. background.csv puts them
side by side with the change in deletion and insertion against the reference; the report gets
that table, a finding per explainer, a figure and a section (REPORT, at the end).
"""

from __future__ import annotations

import time

import pandas as pd

import numpy as np

from explainbench.bench.cells.cell import Cell, Demands, chunks, unsupported_reason
from explainbench.bench.cells.context import CellOutput, cost_record, explain_chunk, load_chunk, score_rows
from explainbench.bench.cells.spec import Component, bound_metric, freeze, thaw
from explainbench.bench.present import html
from explainbench.bench.present.finding import Finding, interval, names, num
from explainbench.bench.studies.common import EXPLAINER_NAMES
from explainbench.bench.studies.contribution import Contribution, Section
from explainbench.core.errors import BenchError
from explainbench.core.params import Any_, Choice, Int, Seq

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
    from explainbench.bench.studies.common import check_options

    options = check_options(options, PARAMETERS, where)
    if not _components(options, exp, where):
        raise BenchError(f"{where}: no explainer of the experiment takes a background set; "
                         "name them with 'explainers'")
    for m in _metric_components(options, exp):
        try:
            bound_metric(m)
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
                seeds = list(options["seeds"])
                for i, seed in enumerate(seeds):
                    partner = seeds[(i + 1) % len(seeds)] if len(seeds) > 1 else None
                    for chunk, start, stop in chunks(exp):
                        cells.append(Cell("background", exp, model, config, seed, chunk, start, stop,
                                          (("reference_size", reference_size(options)),
                                           ("metrics", metric_items),
                                           ("partner_seed", partner))))
    return cells


def demands(cell: Cell) -> Demands:
    reference = {**cell.explainer.params, "background": "random",
                 "background_size": cell.option("reference_size")}
    metrics = [Component(name, tuple(tuple(i) for i in items))
               for name, items in thaw(cell.option("metrics"))]
    partner = cell.option("partner_seed")
    return Demands(cached=[(cell.explainer, cell.seed),
                           (Component(cell.explainer.name, tuple(sorted(reference.items()))),
                            cell.seed)] + ([(cell.explainer, partner)] if partner is not None else []),
                   metrics=metrics)


def execute(cell: Cell, suite, ctx) -> CellOutput:
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
    partner = cell.option("partner_seed")
    if partner is not None:  # the explainer's own seed noise at this size: the yardstick
        other, _, _ = explain_chunk(ctx, cell.model, cell.explainer, partner, chunk)
        frames.append(score_rows(suite, cell, chunk, metric="background_seed_agreement",
                                 metric_params={"other_seed": partner}, category="background",
                                 higher_is_better=True, **common,
                                 values=similarity.spearman(attributions, other, valid)))
    shared: dict = {}
    for name, items in thaw(cell.option("metrics")):
        metric = bound_metric(Component(name, tuple(tuple(i) for i in items)))
        result = metric(model, chunk.task, chunk.inputs, attributions, chunk.targets, seed=cell.seed,
                        explainer=explainer, batch_size=ctx.batch_for(chunk.task, chunk.model),
                        shared=shared)
        for output, higher, values, _ in result.outputs(metric.spec):
            frames.append(score_rows(suite, cell, chunk, metric=output, metric_params=metric.params,
                                     category="background", higher_is_better=higher,
                                     family=metric.spec.family,
                                     values=values, **common))
    return CellOutput(pd.concat(frames, ignore_index=True), None,
                      [cost_record(cell, explainer, cost, cell.seed)], time.perf_counter() - started)


# ---------------------------------------------------------------------------- report


def table(scores: pd.DataFrame, costs: pd.DataFrame | None) -> pd.DataFrame:
    """background.csv: per (task, model, explainer, strategy, size): convergence with its CI, the
    deletion and insertion means and their change against the reference configuration, and the
    seconds per explanation."""
    from explainbench.bench.present.stats import bootstrap_ci, metric_labels
    from explainbench.bench.store import decode_params, encode_params, setting

    rows = scores[scores["study"] == "background"]
    if rows.empty:
        return pd.DataFrame()
    # the convergence's `reference` is each explainer's own largest background and the seed
    # agreement's `other_seed` the next seed, not settings to tell apart: label without them, or
    # explainers with different parameters (or seeds) split their columns
    unreferenced = rows["metric_params"].map(
        lambda p: encode_params({k: v for k, v in decode_params(p).items()
                                 if k not in ("reference", "other_seed")}))
    rows = rows.assign(strategy=setting(rows["params"], "background"),
                       size=setting(rows["params"], "background_size"),
                       metric_label=metric_labels(rows.assign(metric_params=unreferenced)))
    keys = ["task", "model", "explainer", "strategy", "size"]
    per = rows.groupby(keys + ["params_hash", "metric_label", "sample_id"])["value"].mean().reset_index()
    out = []
    for key, g in per.groupby(keys + ["params_hash"], sort=True):
        row = dict(zip(keys, key[:-1]))
        for metric, m in g.groupby("metric_label"):
            values = m["value"].to_numpy()
            row[f"{metric}_mean"] = values.mean()
            if metric == "background_convergence":
                row["convergence_ci_low"], row["convergence_ci_high"] = bootstrap_ci(values)
            if metric == "background_seed_agreement":
                row["seed_agreement_ci_low"], row["seed_agreement_ci_high"] = bootstrap_ci(values)
        if costs is not None and not costs.empty:
            c = costs[(costs["model"] == key[1]) & (costs["params_hash"] == key[-1])]
            if len(c):
                row["seconds_per_explanation"] = (c["seconds_per_explanation"] * c["samples"]).sum() / c["samples"].sum()
        out.append(row)
    table = pd.DataFrame(out)
    for metric in [c[:-5] for c in table.columns if c.endswith("_mean")
                   and c not in ("background_convergence_mean", "background_seed_agreement_mean")]:
        ref = table[(table["strategy"] == "random") & (table["size"] == table["size"].max())]
        ref = ref.set_index(["task", "model", "explainer"])[f"{metric}_mean"]
        table[f"{metric}_change"] = [
            r[f"{metric}_mean"] - ref.get((r["task"], r["model"], r["explainer"]), float("nan"))
            for _, r in table.iterrows()]
    return table


Q_BACKGROUND = "How do SHAP explanations depend on the background's size and selection?"


def findings(folder) -> list[Finding]:
    table = folder.table("background.csv")
    conv = "background_convergence_mean"
    if table.empty or conv not in table.columns:
        return [Finding("background", Q_BACKGROUND, "This run has no data for this question: it "
                        "has no background study.", "background.csv")]
    out = []
    for (task, model, explainer), g in table.groupby(["task", "model", "explainer"], sort=True):
        rand = g[g["strategy"] == "random"].sort_values("size")
        ref = int(rand["size"].max()) if len(rand) else int(g["size"].max())

        noise = "background_seed_agreement_mean"

        def at(r) -> str:
            text = interval(r[conv], r.get("convergence_ci_low"), r.get("convergence_ci_high"))
            if noise in r and not pd.isna(r[noise]):  # beside its own seed noise at that size
                text += f" (seeds: {num(r[noise])})"
            return text

        answer, details = [], []
        below = rand[rand["size"] < ref]
        if len(below):
            steps = [f"{at(r)} at size {int(r['size'])}" for _, r in below.iterrows()]
            answer.append(f"With a random background, the Spearman correlation of {explainer}'s "
                          f"explanation with the one from the largest random background ({ref}, "
                          f"an independent draw) is {names(steps, 8)}"
                          + ("; in brackets, its correlation with itself under another seed at "
                             "the same size, the noise a selection must exceed to matter."
                             if noise in g.columns else "."))
        # selections compared at the same size: the largest size below the reference that several
        # strategies share, and size 1 for the one-row backgrounds (all zeros, blurred input)
        shared = g[g["size"] < ref].groupby("size")["strategy"].nunique()
        sizes = sorted({int(shared[shared > 1].index.max())} | ({1} if 1 in shared.index else set())
                       if (shared > 1).any() else set())
        for size in sizes:
            s = g[g["size"] == size].sort_values(conv, ascending=False)
            listed = [f"{r['strategy']} {at(r)}" for _, r in s.iterrows()]
            details.append(f"At size {size}: {names(listed, 8)}.")
            if size == sizes[0] and len(s) > 1:
                top, low = s.iloc[0], s.iloc[-1]
                apart = top.get("convergence_ci_low", np.nan) > low.get("convergence_ci_high", np.nan)
                answer.append(f"At size {size} {'the selection matters' if apart else 'the intervals overlap'}: "
                              f"{top['strategy']} comes closest ({at(top)}), {low['strategy']} least "
                              f"close ({at(low)}).")
        full = g[(g["size"] == ref) & (g["strategy"] != "random")]
        if len(full):
            details.append(f"At size {ref} other selections still give a different explanation: "
                           + names([f"{r['strategy']} {num(r[conv])}" for _, r in full.iterrows()]) + ".")
        changes = []
        for col in sorted(c for c in g.columns if c.endswith("_change")):
            values = g[col].dropna()
            if len(values):
                worst = g.loc[values.abs().idxmax()]
                changes.append(f"{col[:-len('_change')]} by at most {num(abs(worst[col]))} "
                               f"({worst['strategy']}, size {int(worst['size'])})")
        if changes:
            answer.append(f"Against the reference background, faithfulness changes: {names(changes)}.")
        if "seconds_per_explanation" in g.columns and g["seconds_per_explanation"].notna().any():
            s = rand if len(rand) else g
            details.append(f"Cost per explanation: {num(s['seconds_per_explanation'].min())} s to "
                           f"{num(s['seconds_per_explanation'].max())} s.")
        smallest = below.iloc[0] if len(below) else g.iloc[0]
        out.append(Finding("background", Q_BACKGROUND, " ".join(answer), "background.csv", task, model,
                           short=f"{explainer}: ρ {num(smallest[conv])} at size {int(smallest['size'])}",
                           details=tuple(details), subject=explainer))
    return out


def figures(folder) -> list:
    """Rows: convergence to the largest random background, then each faithfulness metric's mean;
    columns: explainers; x: background size; one line per selection strategy (single-row
    strategies, all zeros and the blurred input, are single points at size 1)."""
    from explainbench.bench.present.figure import errorbars, pyplot, save

    table = folder.table("background.csv")
    if table.empty or "background_convergence_mean" not in table.columns:
        return []
    plt, sns = pyplot()
    out = []
    measures = ["background_convergence"] + sorted(
        c[:-5] for c in table.columns if c.endswith("_mean") and c != "background_convergence_mean")
    strategies = sorted(table["strategy"].unique(), key=lambda s: (s != "random", s))
    colours = dict(zip(strategies, sns.color_palette("tab10", len(strategies))))
    for (task, model), g in table.groupby(["task", "model"], sort=True):
        explainers = sorted(g["explainer"].unique())
        fig, axes = plt.subplots(len(measures), len(explainers), squeeze=False, sharex=True,
                                 figsize=(2.7 * len(explainers) + 0.6, 2.1 * len(measures)))
        for c, explainer in enumerate(explainers):
            e = g[g["explainer"] == explainer]
            for r, measure in enumerate(measures):
                ax = axes[r, c]
                for strategy in strategies:
                    s = e[e["strategy"] == strategy].sort_values("size")
                    if s.empty:
                        continue
                    if measure == "background_convergence":
                        frame = s.assign(mean=s[f"{measure}_mean"], ci_low=s["convergence_ci_low"],
                                         ci_high=s["convergence_ci_high"])
                        errorbars(ax, frame, "size", strategy, colours[strategy],
                                   marker="o" if len(s) > 1 else "D")
                    else:
                        ax.plot(s["size"], s[f"{measure}_mean"], marker="o" if len(s) > 1 else "D",
                                ms=4, color=colours[strategy], label=strategy)
                ax.set_xscale("log")
                sizes = sorted(g["size"].unique())
                ax.set_xticks(sizes, [str(int(v)) for v in sizes])
                ax.minorticks_off()
                if r == 0:
                    ax.set_title(explainer, fontsize=8.5)
                if c == 0:
                    ax.set_ylabel(measure.replace("background_", ""), fontsize=8)
                if r == len(measures) - 1:
                    ax.set_xlabel("background size")
        axes[0, -1].legend(fontsize=7, frameon=False, title="selection", title_fontsize=7,
                           loc="upper left", bbox_to_anchor=(1.02, 1))
        fig.suptitle(f"{model}: SHAP explanations against the background's size and selection "
                     "(convergence: Spearman to the largest random background, 95% intervals)",
                     fontsize=9, y=1.01)
        fig.tight_layout()
        out += save(fig, folder.root / "plots", f"background-{task}-{model}")
    return out


def section(folder) -> str:
    table_ = folder.table("background.csv")
    figs = html.figures(folder.root, "background-", css="stack")
    if table_.empty and not figs:
        return html.note("This run has no background study.")
    return ("<p>How large must a SHAP background be, and how should it be chosen? Top row: Spearman "
            "correlation of the explanation with the one from the largest random background (same "
            "seed); below: faithfulness. All-zeros and blurred-input backgrounds have one row.</p>"
            + figs + (f"<details><summary>{html.link(folder.root, 'background.csv')} ({len(table_)} rows)</summary>"
                      f"{html.frame_table(table_)}</details>" if len(table_) else ""))


REPORT = Contribution(
    tables=lambda scores, costs: {"background.csv": table(scores, costs)},
    findings=((50, findings),),
    figures=figures,
    section=Section(50, "background", "Background", section),
)

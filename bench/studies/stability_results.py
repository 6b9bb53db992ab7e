"""What the stability study shows: stability.csv and stability_budget.csv, the findings on seed
variance (per sampling budget, and the least stable explainers), the budget figure and the page's
stability section. Declared in stability.py's REPORT; see bench/studies/contribution.py."""

from __future__ import annotations

import numpy as np
import pandas as pd

from explainbench.bench.present import html
from explainbench.bench.present.finding import (Finding, direction, interval, is_control, names,
                                                num, primary_measure)
from explainbench.bench.present.stats import ALPHA, aggregate, per_sample
from explainbench.bench.store import setting
from explainbench.bench.studies import budget_sweeps, styles
from explainbench.bench.studies.budget_sweeps import by_budget, effort_order

Q_LIME = "How much does LIME's explanation move when only the seed changes, per sampling budget?"
Q_BUDGET = "How much does {name}'s explanation move when only the seed changes, per sampling budget?"
Q_STABLE = "Which stochastic explainers are the least stable across seeds?"
Q_SETTLE = "At what sampling budget do an explainer's top features stop moving between seeds?"

SETTLED = 0.9  # mean pairwise top-k intersection between seeds at which the top features have settled
SETTLE_MEASURE = "stability_topk"
# when a step to the next budget separates the two (budget_sweeps.steps' `separated`)
SEPARATES = (f"the 95% interval of the change excludes 0 and Wilcoxon's p, Holm-adjusted over "
             f"the sweep, is below {num(ALPHA)}")


def tables(scores: pd.DataFrame, costs) -> dict[str, pd.DataFrame]:
    budget = by_budget(scores, costs)
    return {"stability.csv": stability_table(scores), "stability_budget.csv": budget,
            "stability_budget_steps.csv": budget_sweeps.steps(scores, budget),
            "stability_settling.csv": settling(budget, scores),
            "explanation_styles.csv": styles.table(scores)}


def stability_table(scores: pd.DataFrame, study: str = "stability") -> pd.DataFrame:
    """Per (task, model, explainer setting, metric setting): mean, std, 95% CI, n over samples."""
    rows = scores[scores["study"] == study]
    if rows.empty:
        return pd.DataFrame()
    # a study's metric settings (its seeds, k) are not alternatives to tell apart: plain names
    samples = per_sample(rows.assign(metric_params="{}"))
    keys = ["task", "model", "explainer_label", "metric_label", "higher_is_better"]
    return aggregate(samples, keys, ["task", "model", "explainer", "metric", "higher_is_better"],
                     spread=True)


def settling(budget: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """Per swept (task, model, explainer, budget parameter): the smallest budget tried from which
    the mean pairwise top-k intersection between seeds is at least SETTLED at that budget and at
    every larger one tried (`settles_at`), and the same for its 95% interval's low end
    (`settles_at_surely`, the firmer claim); blank when the largest budget tried does not reach it.
    With the top-k agreement at the settling budget and at the largest, and k (a share of the
    features below 1, a count from 1) as the study ran it."""
    if budget.empty or SETTLE_MEASURE not in set(budget["metric"]):
        return pd.DataFrame()
    rows = scores[(scores["study"] == "stability") & (scores["metric"] == SETTLE_MEASURE)]
    k_of = {(t, m, e): k for t, m, e, k in zip(rows["task"], rows["model"], rows["explainer"],
                                               setting(rows["metric_params"], "k"))}
    out = []
    keys = ["task", "model", "explainer", "budget_param"]
    for key, g in budget[budget["metric"] == SETTLE_MEASURE].groupby(keys, sort=True):
        g = effort_order(g)
        row = dict(zip(keys, key), k=k_of.get(key[:3]), threshold=SETTLED,
                   settles_at=_first_settled(g, g["mean"]),
                   settles_at_surely=_first_settled(g, g["ci_low"]))
        at = g[g["budget"] == row["settles_at"]]
        last = g.iloc[-1]
        spent = at.get("forward_passes_per_explanation", pd.Series(dtype=float))
        row.update(mean_at_settling=at["mean"].iloc[0] if len(at) else np.nan,
                   forward_passes_at_settling=spent.iloc[0] if len(spent) else np.nan,
                   largest_budget=last["budget"], mean_at_largest=last["mean"],
                   ci_low_at_largest=last["ci_low"], ci_high_at_largest=last["ci_high"],
                   budgets=len(g), seeds=int(g["seeds"].max()), n=int(g["n"].min()))
        out.append(row)
    return pd.DataFrame(out)


def _first_settled(g: pd.DataFrame, values: pd.Series) -> float:
    """The least-effort budget from which `values` (in effort order) stay >= SETTLED; NaN if the
    largest budget's does not."""
    below = np.flatnonzero(~(values >= SETTLED).to_numpy())  # NaN counts as below
    first = below[-1] + 1 if len(below) else 0
    return float(g["budget"].iloc[first]) if first < len(g) else np.nan


def top_k_words(k) -> str:
    if k is None or (isinstance(k, float) and np.isnan(k)):
        return "top-k features"
    return f"top-{num(100 * k)} % features" if k < 1 else f"top-{int(k)} features"


def settling_findings(folder) -> list[Finding]:
    table = folder.table("stability_settling.csv")
    if table.empty:
        return [Finding("settling", Q_SETTLE, "This run has no data for this question: it has no "
                        "stability study over sampling budgets measuring top-k agreement.",
                        "stability_settling.csv")]
    out = []
    for (task, model), g in table.groupby(["task", "model"], sort=True):
        settled, moving = g[g["settles_at"].notna()], g[g["settles_at"].isna()]
        settled = settled.sort_values(["forward_passes_at_settling", "explainer"])  # least effort first
        parts = [f"{r.explainer} from {r.budget_param} = {num(r.settles_at)}{_notes(r)}"
                 for r in settled.itertuples()]
        unsettled = [f"{r.explainer} ({interval(r.mean_at_largest, r.ci_low_at_largest, r.ci_high_at_largest)} "
                     f"at {r.budget_param} = {num(r.largest_budget)})" for r in moving.itertuples()]
        words = top_k_words(g["k"].iloc[0])
        text = (f"Explained under {int(g['seeds'].max())} seeds, the {words} agree between seeds "
                f"(mean pairwise top-k intersection ≥ {num(SETTLED)}, at that budget and every "
                f"larger one tried; n ≥ {int(g['n'].min())}): ")
        text += f"{names(parts)}" if parts else "no explainer reaches it"
        text += (f"; not within the budgets tried: {names(unsettled)}." if unsettled else ".")
        first = settled.iloc[0] if len(settled) else None
        short = (f"{first['explainer']} from {first['budget_param']} = {num(first['settles_at'])}"
                 if first is not None else "none within the budgets")
        out.append(Finding("settling", Q_SETTLE, text, "stability_settling.csv", task, model,
                           short=short))
    return out


def _notes(r) -> str:
    """In brackets: the settling budget in model evaluations per explanation where that is not
    the budget itself (Anchor's tau), and where the interval's low end settles if not there."""
    notes = []
    spent = getattr(r, "forward_passes_at_settling", np.nan)
    if not pd.isna(spent) and abs(spent - r.settles_at) > 0.5:
        notes.append(f"{num(spent)} model evaluations per explanation")
    if r.settles_at_surely != r.settles_at:
        notes.append(f"its interval's low end never reaches {num(SETTLED)}" if np.isnan(r.settles_at_surely)
                     else f"its interval only from {num(r.settles_at_surely)}")
    return f" ({'; '.join(notes)})" if notes else ""


def budget_findings(folder) -> list[Finding]:
    sweeps = folder.table("stability_budget.csv")
    out = []
    for (task, model, explainer, param), g in (sweeps.groupby(["task", "model", "explainer", "budget_param"],
                                                              sort=True) if len(sweeps) else []):
        lead = primary_measure(g["metric"])
        rows = effort_order(g[g["metric"] == lead])
        steps = [f"{interval(r.mean, r.ci_low, r.ci_high)} at {param} = {num(r.budget)}"
                 for r in rows.itertuples()]
        first, last = rows.iloc[0], rows.iloc[-1]
        text = (f"Explained twice with different seeds, {explainer}'s attributions have a mean pairwise "
                f"{lead} ({direction(bool(first['higher_is_better']))}; 1 = identical) of "
                f"{names(steps, 10)} ({int(rows['seeds'].max())} seeds, n = {int(rows['n'].min())}).")
        details = tuple(f"{m} ({direction(bool(h['higher_is_better'].iloc[0]))}): "
                        + " → ".join(f"{interval(r.mean, r.ci_low, r.ci_high)} at {num(r.budget)}"
                                     for r in effort_order(h).itertuples())
                        for m, h in g[g["metric"] != lead].groupby("metric"))
        paired = _steps_sentence(folder.table("stability_budget_steps.csv"),
                                 (task, model, explainer, param), [lead, SETTLE_MEASURE])
        source = "stability_budget.csv" + (", stability_budget_steps.csv" if paired else "")
        question = Q_LIME if explainer.startswith("lime") else Q_BUDGET.format(name=explainer)
        out.append(Finding("budget", question, text + paired, source, task, model,
                           short=f"{lead} {num(first['mean'])} → {num(last['mean'])}", details=details))
    if not any(f.question == Q_LIME for f in out):
        out.insert(0, Finding("budget", Q_LIME, "This run has no data for this question: it has no "
                              "stability study of LIME over sampling budgets (a `budgets:` sweep "
                              "of lime in the stability study).", "stability_budget.csv"))
    return out


def _steps_sentence(steps: pd.DataFrame, sweep: tuple, measures: list[str]) -> str:
    """Which steps to the next budget separate, paired over the same samples, per measure (the
    lead and the top-k agreement the settling reads), naming those that do not with their change
    (stability_budget_steps.csv; empty where the run folder predates it)."""
    if steps.empty:
        return ""
    keys = ["task", "model", "explainer", "budget_param"]
    mine = steps[(steps[keys] == pd.Series(sweep, index=keys)).all(axis=1)]
    parts = []
    for measure in dict.fromkeys(measures):
        g = mine[mine["metric"] == measure]
        if g.empty:
            continue
        apart = _separated(g)
        words = (f"{int(apart.sum())} of {len(g)}" if apart.sum() < len(g)
                 else {1: "the one step", 2: "both"}.get(len(g), f"all {len(g)}"))
        missed = [f"{num(r.from_budget)} → {num(r.to_budget)}: {_signed(r.mean_difference)} "
                  f"{_bounds(r)}, p = {num(r.p_holm)}"
                  for r in g[~apart].itertuples()]
        parts.append(f"{words} for {measure}" + (f" (not {'; '.join(missed)})" if missed else ""))
    if not parts:
        return ""
    n = int(mine["n"].min())
    return (f" Paired over the same {n} samples, the steps to the next budget that separate "
            f"({SEPARATES}): {'; '.join(parts)}.")


def _signed(x) -> str:
    return num(x) if pd.isna(x) or x <= 0 else f"+{num(x)}"


def _bounds(r) -> str:
    """A step's interval of the paired change, signed: [+0.08, +0.122]."""
    return f"[{_signed(r.ci_low)}, {_signed(r.ci_high)}]"


def _separated(steps: pd.DataFrame) -> pd.Series:
    """The `separated` column as booleans, however the CSV reader typed it."""
    return steps["separated"].astype(str).str.lower().eq("true")


def least_stable(folder) -> list[Finding]:
    table = folder.table("stability.csv")
    if table.empty:
        return [Finding("stable", Q_STABLE, "This run has no data for this question: it has no "
                        "stability study.", "stability.csv")]
    out = []
    for (task, model), g in (table.groupby(["task", "model"], sort=True) if len(table) else []):
        lead = primary_measure(g["metric"])
        rows = g[g["metric"] == lead]
        higher = bool(rows["higher_is_better"].iloc[0])
        exact = 1.0 if higher else 0.0
        deterministic = rows[np.isclose(rows["mean"], exact) & np.isclose(rows["ci_low"], rows["ci_high"])]
        controls = rows[rows["explainer"].map(is_control) & ~rows.index.isin(deterministic.index)]
        moving = rows[~rows.index.isin(deterministic.index) & ~rows.index.isin(controls.index)]
        moving = moving.sort_values("mean", ascending=higher)
        if moving.empty:
            text = f"No stochastic explainer was studied on {model}."
            out.append(Finding("stable", Q_STABLE, text, "stability.csv", task, model, short="n/a"))
            continue
        listed = [f"{r.explainer} {interval(r.mean, r.ci_low, r.ci_high)}" for r in moving.head(3).itertuples()]
        most = moving.iloc[-1]
        text = (f"Least stable by mean pairwise {lead} between seeds ({direction(higher)}): "
                f"{names(listed)}")
        text += (f"; most stable: {most['explainer']} {interval(most['mean'], most['ci_low'], most['ci_high'])}."
                 if len(moving) > len(listed) else ".")
        for r in controls.itertuples():
            text += f" The {r.explainer} control: {interval(r.mean, r.ci_low, r.ci_high)}."
        if len(deterministic):
            text += (f" {len(deterministic)} deterministic explainers score exactly {num(exact)}, "
                     "as they must.")
        out.append(Finding("stable", Q_STABLE, text, "stability.csv", task, model,
                           short=f"{moving.iloc[0]['explainer']} ({lead.replace('stability_', '')} "
                                 f"{num(moving.iloc[0]['mean'])} between seeds)"))
    return out


def styles_findings(folder) -> list[Finding]:
    return styles.findings(folder)


def figures(folder) -> list:
    """Stability against the sampling budget: one panel per stability measure, one line per swept
    explainer, mean over samples with its 95% interval; on the top-k panel the settling threshold
    and, per explainer, a ring where its top features settle (stability_settling.csv)."""
    from explainbench.bench.present.figure import errorbars, pyplot, save

    table = folder.table("stability_budget.csv")
    if table.empty:
        return []
    settle = folder.table("stability_settling.csv")
    settles_at = (settle.set_index(["task", "model", "explainer", "budget_param"])["settles_at"].dropna()
                  if len(settle) else pd.Series(dtype=float))
    plt, sns = pyplot()
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator

    out = []
    for (task, model), g in table.groupby(["task", "model"], sort=True):
        measures = sorted(g["metric"].unique())
        fig, axes = plt.subplots(1, len(measures), figsize=(2.9 * len(measures), 2.8), squeeze=False)
        lines = sorted(g.groupby(["explainer", "budget_param"]).groups)
        # one effort axis for every sweep (n_samples, n_masks and tau alike) where costs say it
        spent = g.get("forward_passes_per_explanation")
        x = ("forward_passes_per_explanation" if spent is not None and spent.notna().all()
             else "budget")
        colours = sns.color_palette("colorblind", len(lines))
        for ax, measure in zip(axes[0], measures):
            m = g[g["metric"] == measure]
            for colour, (explainer, param) in zip(colours, lines):
                e = m[(m["explainer"] == explainer) & (m["budget_param"] == param)]
                errorbars(ax, e, x, f"{explainer} ({param})", colour)
                at = e[e["budget"] == settles_at.get((task, model, explainer, param))]
                if measure == SETTLE_MEASURE and len(at):  # a ring where the top features settle
                    ax.scatter(at[x], at["mean"], s=90, facecolors="none", edgecolors=colour,
                               lw=1.4, zorder=5)
            if measure == SETTLE_MEASURE:
                ax.axhline(SETTLED, color="0.45", lw=0.8, ls=":", zorder=0)
                ax.annotate(f"settled ≥ {num(SETTLED)}", (0.02, SETTLED), xycoords=("axes fraction", "data"),
                            textcoords="offset points", xytext=(0, 2), fontsize=6.5, color="0.35")
            higher = bool(m["higher_is_better"].iloc[0])
            ax.set(xscale="log", title=f"{measure} ({'↑' if higher else '↓'})",
                   xlabel="model evaluations per explanation" if x != "budget" else "sampling budget")
            if x == "budget":  # the budgets tried
                ax.set_xticks(sorted(m["budget"].unique()))
            elif m[x].max() < 10 * m[x].min():  # within a decade (one sweep): a few plain ticks
                ax.xaxis.set_major_locator(MaxNLocator(nbins=3))
            else:  # 1, 2 and 5 per decade
                ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            # 1k, 2k: full numbers of neighbouring budgets on a log axis run into each other
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}k" if v >= 1000
                                                       else f"{v:g}"))
            ax.minorticks_off()
            ax.title.set_fontsize(8.5)
        axes[0, -1].legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1))
        settled = any(k[:2] == (task, model) for k in settles_at.index)
        fig.suptitle(f"{model}: stability across seeds against the sampling budget (95% intervals)"
                     + ("\nring: the budget from which the top features stay settled" if settled else ""),
                     fontsize=9, y=1.03 + 0.04 * bool(settled))
        fig.tight_layout()
        out += save(fig, folder.root / "plots", f"budget-{task}-{model}")
    return out


def section(folder) -> str:
    run_dir = folder.root
    table_ = folder.table("stability.csv")
    budget = html.figures(run_dir, "budget-", css="stack")
    if table_.empty and not budget and not any(run_dir.rglob("*styles*.csv")):
        return html.note("This run has no stability study.")
    parts = ["<p>How much does an explanation move when only the seed changes? Per sample, over the "
             "seeds: mean pairwise Spearman, top-k intersection and sign agreement (1 = identical) "
             "and the per-feature coefficient of variation (0 = identical); mean over samples "
             "[95% interval]. Least stable first.</p>"]
    for (task, model), g in table_.groupby(["task", "model"], sort=True) if len(table_) else []:
        higher = g.drop_duplicates("metric").set_index("metric")["higher_is_better"].astype(bool)
        lead = next((m for m in sorted(higher.index) if "spearman" in m), sorted(higher.index)[0])
        measures = sorted(higher.index, key=lambda m: (m != lead, not higher[m], m))
        wide = g.set_index(["explainer", "metric"])
        exact = g[(g["ci_low"] == g["ci_high"]) & g["metric"].eq(lead) & g["mean"].eq(1.0)]["explainer"]
        moving = g[g["metric"].eq(lead) & ~g["explainer"].isin(exact)].sort_values("mean")["explainer"]
        rows = [[html.cell(e, css="control" if is_control(e) else "")]
                + [html.interval_cell(wide.loc[(e, m)]) if (e, m) in wide.index else html.cell("") for m in measures]
                for e in moving]
        parts.append(f"<h3>{html.esc(model)}</h3>")
        head = [f"{html.breakable(m)} {'↑' if higher[m] else '↓'}" for m in measures]
        parts.append(html.table(["explainer"] + head, rows))
        if len(exact):
            parts.append(html.note(f"Deterministic, identical under every seed (as they must be): "
                              f"{', '.join(sorted(exact))}."))
    settle = folder.table("stability_settling.csv")
    if len(settle):
        parts.append("<h3>Where the top features settle</h3>" + _settling_table(settle))
    if budget:
        parts.append("<h3>Against the sampling budget</h3>" + budget)
    steps = folder.table("stability_budget_steps.csv")
    if len(steps):
        parts.append("<h3>From one budget to the next, paired</h3>" + _steps_table(steps))
    for path in sorted(run_dir.rglob("*styles*.csv")):  # the explanation-styles study's tables
        rel = path.relative_to(run_dir).as_posix()
        parts.append(f"<h3>Explanation styles ({html.link(run_dir, rel)})</h3>"
                     + _styles_tables(folder.table(rel)))
    parts.append(f"<p class=\"note\">Tables: {html.link(run_dir, 'stability.csv')}, "
                 f"{html.link(run_dir, 'stability_budget.csv')}, "
                 f"{html.link(run_dir, 'stability_budget_steps.csv')}, "
                 f"{html.link(run_dir, 'stability_settling.csv')}.</p>")
    return "".join(parts)


def _settling_table(settle: pd.DataFrame) -> str:
    """Per model and swept explainer: the budget from which the top-k agreement between seeds
    stays at or above the threshold (by its mean, and by its interval's low end), and where it
    stands at the largest budget tried."""
    words = top_k_words(settle["k"].iloc[0])
    rows = [[html.cell(r.model), html.cell(r.explainer), html.cell(r.budget_param),
             html.cell("–" if pd.isna(r.settles_at) else num(r.settles_at)),
             html.cell("–" if pd.isna(r.settles_at_surely) else num(r.settles_at_surely)),
             html.cell(f"{interval(r.mean_at_largest, r.ci_low_at_largest, r.ci_high_at_largest)} "
                       f"at {num(r.largest_budget)}")]
            for r in settle.sort_values(["task", "model", "explainer", "budget_param"]).itertuples()]
    return (html.note(f"The least-effort budget from which the {words} agree between seeds at mean "
                      f"pairwise top-k intersection ≥ {num(SETTLED)} at every larger budget tried "
                      f"(more model evaluations per explanation: Anchor's smaller tau; – : not within "
                      f"the budgets tried); the ring on the figure's top-k panel.")
            + html.table(["model", "explainer", "parameter", "settles at (mean)",
                          "settles at (interval)", "top-k agreement at the largest"], rows))


def _steps_table(steps: pd.DataFrame) -> str:
    """Per model, swept explainer and measure (Spearman and the top-k agreement the settling
    reads), one column per step to the next budget: the mean paired change [95% interval],
    shaded where it separates the two budgets."""
    shown = steps[steps["metric"].str.contains("spearman") | steps["metric"].eq(SETTLE_MEASURE)]
    groups = list(shown.groupby(["task", "model", "explainer", "budget_param", "metric"], sort=True))
    width = max((len(g) for _, g in groups), default=0)
    rows = []
    for (task, model, explainer, param, measure), g in groups:
        apart = _separated(g)
        cells = [html.cell(f"<small>{num(r.from_budget)} → {num(r.to_budget)}</small><br>"
                           f"{_signed(r.mean_difference)} <small>{_bounds(r)}</small>",
                           r.mean_difference, css="apart" if a else "", raw=True)
                 for r, a in zip(g.itertuples(), apart)]
        rows.append([html.cell(model), html.cell(explainer), html.cell(measure),
                     html.cell(f"{int(apart.sum())} of {len(g)}")]
                    + cells + [html.cell("")] * (width - len(cells)))
    return (html.note("Every budget explains the same samples, so the change from one budget to the "
                      "next is measured per sample: mean paired change [95% interval], shaded where "
                      f"it separates the two budgets ({SEPARATES}).")
            + html.table(["model", "explainer", "measure", "steps that separate"]
                         + [f"step {i + 1}" for i in range(width)], rows))


def _styles_tables(styles: pd.DataFrame) -> str:
    """Per model, one measure per row and one style per column, mean [95% interval] (the long
    table, hundreds of rows, is the CSV)."""
    if styles.empty or not {"style", "measure", "mean"} <= set(styles.columns):
        return html.frame_table(styles)
    parts = []
    for (task, model), g in styles.groupby(["task", "model"], sort=True):
        styles_ = list(dict.fromkeys(g["style"]))
        wide = g.set_index(["measure", "style"])
        rows = [[html.cell(measure)] + [html.interval_cell(wide.loc[(measure, s)])
                                        if (measure, s) in wide.index else html.cell("")
                                        for s in styles_]
                for measure in sorted(g["measure"].unique())]
        low, high = (int(g["n"].min()), int(g["n"].max())) if "n" in g.columns else (0, 0)
        parts.append(f"<h4>{html.esc(model)} (n = {low}{'' if low == high else f' to {high}'})</h4>"
                     + html.table(["measure"] + [html.esc(s) for s in styles_], rows))
    return "".join(parts)


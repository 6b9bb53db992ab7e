"""The evidence sections of report.html: overview heat maps, leaderboards, curves and the studies.
Each is driven by the columns of the run's tables, never by metric names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from explainbench.bench.findings import is_control, mean_ranks
from explainbench.bench.html_parts import (breakable, cell, esc, figure, figures, frame_table, link, note,
                                           short, table)


def _boards(run_dir: Path) -> list[tuple[Path, pd.DataFrame]]:
    return [(p, pd.read_csv(p, comment="#")) for p in sorted((run_dir / "leaderboard").glob("*.csv"))]


def overview_section(run_dir: Path) -> str:
    parts = []
    for path, board in _boards(run_dir):
        fig = figure(run_dir / "plots" / f"overview-{path.stem}")
        if fig:
            parts.append(f'<h3>{esc(board["model"].iloc[0])}</h3><div class="fig1">{fig}</div>')
    if not parts:
        return note("No overview: this run has no leaderboard.")
    return ("<p>Every explainer (rows, by mean faithfulness rank; controls last, in italics) on every "
            "metric (columns, grouped). Colour: the explainer's mean rescaled so that the random "
            "control is 0 and the best explainer 1 (red: worse than random); number: its rank.</p>"
            + "".join(parts))


def leaderboard_section(run_dir: Path) -> str:
    boards = _boards(run_dir)
    if not boards:
        return note("No leaderboard: this run scored no faithfulness metrics.")
    parts = ['<p>Mean over samples, rank as superscript; hover a cell for its 95% bootstrap interval '
             'and the Holm-corrected Wilcoxon p against the best. <span class="best">Bold green</span>: '
             'best; <span class="same">light green</span>: not significantly different from the best; '
             '<span class="below">grey</span>: worse than the random control. Click a column to sort.</p>']
    for path, board in boards:
        rel = f"leaderboard/{path.name}"
        parts.append(f"<h3>{esc(board['model'].iloc[0])} <small>({link(run_dir, rel, 'full CSV')})</small></h3>")
        parts.append(_leaderboard_table(board))
        parts.append(_single_explainer_metrics(board))
    return "".join(parts)


def _single_explainer_metrics(board: pd.DataFrame) -> str:
    """Metrics only one explainer has (the example metrics of explanation by example): a note, not
    a column of one value."""
    from explainbench.bench.plots_overview import comparable

    alone = board[~board.index.isin(comparable(board).index)]
    if alone.empty:
        return ""
    items = [f"{r.explainer}: {r.metric} {r.mean:.3g} [{r.ci_low:.3g}, {r.ci_high:.3g}]"
             for r in alone.sort_values(["explainer", "metric"]).itertuples()]
    return note("Scored by one explainer only: " + "; ".join(items) + ".")


def _leaderboard_table(board: pd.DataFrame) -> str:
    from explainbench.bench.plots_overview import column_order, comparable, row_order

    board = comparable(board)
    cols = column_order(board)
    ranks = mean_ranks(board)
    by = {(r.explainer, r.metric): r for r in board.itertuples()}
    arrows = board.drop_duplicates("metric").set_index("metric")["higher_is_better"]
    head = (["explainer", "mean faithfulness rank"]
            + [f"{breakable(m)} {'↑' if arrows[m] else '↓'}" for _, m in cols]
            + ["s / expl.", "forward passes / expl."])
    groups = [("", 2)]
    for g, _ in cols:
        if groups[-1][0] == g:
            groups[-1] = (g, groups[-1][1] + 1)
        else:
            groups.append((g, 1))
    groups.append(("cost", 2))
    rows = []
    for name in row_order(board):
        first = board[board["explainer"] == name].iloc[0]
        rank = ranks.get(name, np.nan)
        row = [cell(name, css="control" if is_control(name) else ""),
               cell("" if pd.isna(rank) else f"{rank:.1f}", rank)]
        for _, metric in cols:
            r = by.get((name, metric))
            if r is None:
                row.append(cell("", None))
                continue
            css = ("best" if r.best else "same" if not r.different_from_best else
                   "below" if getattr(r, "better_than_floor_by", 0) < 0 else "")
            p = getattr(r, "p_vs_best_holm", np.nan)
            title = (f"{metric}: {r.mean:.4g} [{r.ci_low:.4g}, {r.ci_high:.4g}], rank {int(r.rank)}, n {int(r.n)}"
                     + ("" if pd.isna(p) else f", Holm p vs best {p:.3g}")
                     + (f", {int(r.n_excluded)} excluded" if getattr(r, "n_excluded", 0) else ""))
            row.append(cell(f"{short(r.mean)}<sup>{int(r.rank)}</sup>", r.mean, css, title, raw=True))
        for col in ("seconds_per_explanation", "forward_passes_per_explanation"):
            value = first.get(col, np.nan)
            row.append(cell("" if pd.isna(value) else short(value), value))
        rows.append(row)
    return table(head, rows, "sortable board", [(g.replace("_", " "), n) for g, n in groups])


def curves_section(run_dir: Path) -> str:
    figs = figures(run_dir, "curves-", css="stack")
    if not figs:
        return note("No deletion/insertion curves in this run.")
    return ("<p>Each panel: every explainer's mean curve over samples in grey, the three best on that "
            "metric (by the leaderboard) in colour with a 95% band, the random (dashed) and edge "
            "(dotted) controls in black. Deletion and LeRF: lower is better; insertion and MoRF: "
            "higher.</p>" + figs)


def _read(run_dir: Path, name: str) -> pd.DataFrame:
    path = run_dir / name
    return pd.read_csv(path) if path.is_file() and path.stat().st_size > 1 else pd.DataFrame()


def _interval_cell(r) -> str:
    return cell(f"{r['mean']:.3g} <small>[{r['ci_low']:.3g}, {r['ci_high']:.3g}]</small>", r["mean"], raw=True)


def stability_section(run_dir: Path) -> str:
    table_ = _read(run_dir, "stability.csv")
    budget = figures(run_dir, "budget-", css="stack")
    if table_.empty and not budget and not any(run_dir.rglob("*styles*.csv")):
        return note("This run has no stability study.")
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
        rows = [[cell(e, css="control" if is_control(e) else "")]
                + [_interval_cell(wide.loc[(e, m)]) if (e, m) in wide.index else cell("") for m in measures]
                for e in moving]
        parts.append(f"<h3>{esc(model)}</h3>")
        head = [f"{breakable(m)} {'↑' if higher[m] else '↓'}" for m in measures]
        parts.append(table(["explainer"] + head, rows))
        if len(exact):
            parts.append(note(f"Deterministic, identical under every seed (as they must be): "
                              f"{', '.join(sorted(exact))}."))
    if budget:
        parts.append("<h3>Against the sampling budget</h3>" + budget)
    for path in sorted(run_dir.rglob("*styles*.csv")):  # the explanation-styles study's tables
        rel = path.relative_to(run_dir).as_posix()
        parts.append(f"<h3>Explanation styles ({link(run_dir, rel)})</h3>"
                     + frame_table(pd.read_csv(path, comment="#")))
    parts.append(f"<p class=\"note\">Tables: {link(run_dir, 'stability.csv')}, "
                 f"{link(run_dir, 'stability_budget.csv')}.</p>")
    return "".join(parts)


def background_section(run_dir: Path) -> str:
    table_ = _read(run_dir, "background.csv")
    figs = figures(run_dir, "background-", css="stack")
    if table_.empty and not figs:
        return note("This run has no background study.")
    return ("<p>How large must a SHAP background be, and how should it be chosen? Top row: Spearman "
            "correlation of the explanation with the one from the largest random background (same "
            "seed); below: faithfulness. All-zeros and blurred-input backgrounds have one row.</p>"
            + figs + (f"<details><summary>{link(run_dir, 'background.csv')} ({len(table_)} rows)</summary>"
                      f"{frame_table(table_)}</details>" if len(table_) else ""))


def sanity_section(run_dir: Path) -> str:
    table_ = _read(run_dir, "sanity.csv")
    figs = figures(run_dir, "sanity-", css="figs")
    if table_.empty and not figs:
        return note("This run has no sanity study.")
    parts = ["<p>Does the explanation depend on the model's weights? The model's layers are "
             "randomised one by one from the output down (Adebayo et al. 2018); a faithful "
             "explanation should change, so lower similarity is better.</p>", figs]
    for (task, model), g in table_.groupby(["task", "model"], sort=True) if len(table_) else []:
        last = g[g["depth"] >= 0].sort_values("depth").groupby(["explainer", "metric"]).tail(1)
        logit = g[g["depth"] < 0]
        columns = [("all randomised: " + m, last[last["metric"] == m]) for m in sorted(last["metric"].unique())]
        columns += [(m, logit[logit["metric"] == m]) for m in sorted(logit["metric"].unique())]
        flagged = set(g[g["flagged"].astype(bool)]["explainer"]) if "flagged" in g.columns else set()
        rows = []
        for e in sorted(g["explainer"].unique(), key=lambda e: (e not in flagged, e)):
            row = [cell(e, css="control" if is_control(e) else ""),
                   cell("fails" if e in flagged else "passes", float(e in flagged),
                        "below" if e in flagged else "")]
            for _, c in columns:
                hit = c[c["explainer"] == e]
                row.append(_interval_cell(hit.iloc[0]) if len(hit) else cell(""))
            rows.append(row)
        parts.append(f"<h3>{esc(model)}</h3>"
                     + table(["explainer", "check"] + [breakable(n) for n, _ in columns], rows))
    parts.append(f'<p class="note">Table: {link(run_dir, "sanity.csv")}.</p>')
    return "".join(parts)


def agreement_section(run_dir: Path) -> str:
    figs = figures(run_dir, "agreement-", css="figs")
    if not figs:
        return note("This run has no agreement study.")
    files = sorted((run_dir / "agreement").glob("*.csv")) if (run_dir / "agreement").is_dir() else []
    links = ", ".join(link(run_dir, f"agreement/{p.name}") for p in files)
    return ("<p>Do two explainers agree on why? Mean over samples of the rank correlation (Spearman) "
            "and the top-k intersection between every pair of explainers.</p>" + figs
            + f'<p class="note">Matrices: {links}; with intervals: {link(run_dir, "agreement_pairs.csv")}.</p>')


def correct_vs_wrong_section(run_dir: Path) -> str:
    table_ = _read(run_dir, "correct_vs_wrong.csv")
    table_ = table_[table_["n_wrong"] > 0] if not table_.empty else table_
    if table_.empty:
        return note("Every explained prediction in this run was correct: nothing to split.")
    return ("<p>Are explanations as faithful when the model is wrong? Each score's mean over correctly "
            "and wrongly predicted samples, their difference and a two-sided Mann-Whitney U test.</p>"
            f"<details><summary>{len(table_)} rows</summary>{frame_table(table_)}</details>")

"""The evidence sections of report.html: overview heat maps, leaderboards, curves, correct vs wrong
(each study's section is the study's own). Each is driven by the columns of the run's tables,
never by metric names."""

from __future__ import annotations

import numpy as np
import pandas as pd

from explainbench.bench.present.finding import is_control, mean_ranks
from explainbench.bench.present.html import (breakable, cell, esc, figure, figures, frame_table,
                                             link, note, short, table)


def overview_section(folder) -> str:
    parts = []
    for stem, board in folder.boards:
        fig = figure(folder.root / "plots" / f"overview-{stem}")
        if fig:
            parts.append(f'<h3>{esc(board["model"].iloc[0])}</h3><div class="fig1">{fig}</div>')
    if not parts:
        return note("No overview: this run has no leaderboard.")
    return ("<p>Every explainer (rows, by mean faithfulness rank; controls last, in italics) on every "
            "metric (columns, grouped). Colour: the explainer's mean rescaled so that the random "
            "control is 0 and the best explainer 1 (red: worse than random); number: its rank.</p>"
            + "".join(parts))


def leaderboard_section(folder) -> str:
    run_dir = folder.root
    boards = folder.boards
    if not boards:
        return note("No leaderboard: this run scored no faithfulness metrics.")
    parts = ['<p>Mean over samples, rank as superscript; hover a cell for its 95% bootstrap interval '
             'and the Holm-corrected Wilcoxon p against the best. <span class="best">Bold green</span>: '
             'best; <span class="same">light green</span>: not significantly different from the best; '
             '<span class="below">grey</span>: worse than the random control. Click a column to sort.</p>']
    agreement = folder.table("metric_agreement.csv")
    for stem, board in boards:
        rel = f"leaderboard/{stem}.csv"
        parts.append(f"<h3>{esc(board['model'].iloc[0])} <small>({link(run_dir, rel, 'full CSV')})</small></h3>")
        parts.append(_leaderboard_table(board))
        parts.append(_single_explainer_metrics(board))
        parts.append(_family_agreement(agreement, board))
    return "".join(parts)


def _family_agreement(agreement: pd.DataFrame, board: pd.DataFrame) -> str:
    """One line: how far the faithfulness families agree on this leaderboard's order."""
    if agreement.empty or board.empty:
        return ""
    mine = agreement[(agreement["task"] == board["task"].iloc[0])
                     & (agreement["model"] == board["model"].iloc[0])]
    w = mine[mine["measure"] == "kendall_w"]
    if w.empty:
        return ""
    pairs = mine[mine["measure"] == "spearman"].sort_values("value").head(3)
    listed = "; ".join(f"{r.family} vs {r.other}: {r.value:.2f}" for r in pairs.itertuples())
    return note(f"Agreement of the {int(w['m'].iloc[0])} faithfulness families on the order: "
                f"Kendall's W {w['value'].iloc[0]:.2f} (1 = the same order). Least concordant "
                f"(Spearman): {listed}. Table: metric_agreement.csv.")


def _single_explainer_metrics(board: pd.DataFrame) -> str:
    """Metrics only one explainer has (the example metrics of explanation by example): a note, not
    a column of one value."""
    from explainbench.bench.report.overview_figures import comparable

    alone = board[~board.index.isin(comparable(board).index)]
    if alone.empty:
        return ""
    items = [f"{r.explainer}: {r.metric} {r.mean:.3g} [{r.ci_low:.3g}, {r.ci_high:.3g}]"
             for r in alone.sort_values(["explainer", "metric"]).itertuples()]
    return note("Scored by one explainer only: " + "; ".join(items) + ".")


def _leaderboard_table(board: pd.DataFrame) -> str:
    from explainbench.bench.report.overview_figures import column_order, comparable, row_order

    board = comparable(board)
    cols = column_order(board)
    ranks = mean_ranks(board)
    by = {(r.explainer, r.metric): r for r in board.itertuples()}
    arrows = board.drop_duplicates("metric").set_index("metric")["higher_is_better"]
    head = (["explainer", "mean faithfulness rank"]
            + [f"{breakable(m)} {'↑' if arrows[m] else '↓'}" for _, m in cols]
            + ["largest tie", "s / expl.", "forward passes / expl."])
    groups = [("", 2)]
    for g, _ in cols:
        if groups[-1][0] == g:
            groups[-1] = (g, groups[-1][1] + 1)
        else:
            groups.append((g, 1))
    groups += [("ties", 1), ("cost", 2)]
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
        tied = first.get("tied_share", np.nan)
        row.append(cell("" if pd.isna(tied) else f"{100 * tied:.0f} %", tied,
                        title="share of the map's features in its largest group of equal values: "
                              "removal metrics order them at random"))
        for col in ("seconds_per_explanation", "forward_passes_per_explanation"):
            value = first.get(col, np.nan)
            row.append(cell("" if pd.isna(value) else short(value), value))
        rows.append(row)
    return table(head, rows, "sortable board", [(g.replace("_", " "), n) for g, n in groups])


def curves_section(folder) -> str:
    figs = figures(folder.root, "curves-", css="stack")
    if not figs:
        return note("No deletion/insertion curves in this run.")
    return ("<p>Each panel: every explainer's mean curve over samples in grey, the three best on that "
            "metric (by the leaderboard) in colour with a 95% band, the random (dashed) and edge "
            "(dotted) controls in black. Deletion and LeRF: lower is better; insertion and MoRF: "
            "higher.</p>" + figs)


def correct_vs_wrong_section(folder) -> str:
    table_ = folder.table("correct_vs_wrong.csv")
    table_ = table_[table_["n_wrong"] > 0] if not table_.empty else table_
    if table_.empty:
        return note("Every explained prediction in this run was correct: nothing to split.")
    return ("<p>Are explanations as faithful when the model is wrong? Each score's mean over correctly "
            "and wrongly predicted samples, their difference and a two-sided Mann-Whitney U test.</p>"
            f"<details><summary>{len(table_)} rows</summary>{frame_table(table_)}</details>")

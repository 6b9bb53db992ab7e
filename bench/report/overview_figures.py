"""The overview of one leaderboard: explainers x metrics as one heat map.

Each cell is the explainer's mean score on the metric rescaled so that the random control is 0 and
the best explainer is 1 (direction-aware: 1 is best whether higher or lower is better; below 0 is
worse than random, clipped at -1); where a metric has no random control, the worst explainer is 0.
The number in the cell is the explainer's rank on the metric. Columns are grouped by the
leaderboard's `family` column when it has one, else by `category`; rows are sorted by mean
faithfulness rank, with the controls last, below a line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from explainbench.bench.present.finding import is_control, mean_ranks
from explainbench.bench.present.stats import FLOOR

CATEGORY_ORDER = ("faithfulness", "robustness", "complexity", "ground_truth", "examples")


def normalised(board: pd.DataFrame) -> pd.Series:
    """Per leaderboard row, (mean - random) / (best - random), or against the worst without a floor."""
    out = pd.Series(np.nan, index=board.index)
    for metric, m in board.groupby("metric"):
        best = m.loc[m["best"].astype(bool), "mean"]
        if best.empty:
            continue
        floor = m.loc[m["explainer"] == FLOOR, "mean"]
        higher = bool(m["higher_is_better"].iloc[0])
        zero = floor.iloc[0] if len(floor) else (m["mean"].min() if higher else m["mean"].max())
        span = best.iloc[0] - zero
        if span != 0 and np.isfinite(span):
            out[m.index] = ((m["mean"] - zero) / span).clip(-1, 1)
    return out


def comparable(board: pd.DataFrame) -> pd.DataFrame:
    """The metrics at least two explainers have (a column of one compares nothing: the example
    metrics of nearest_examples), then the explainers left with a score."""
    counts = board.groupby("metric")["explainer"].nunique()
    return board[board["metric"].isin(counts[counts >= 2].index)]


def column_order(board: pd.DataFrame) -> list[tuple[str, str]]:
    """[(group, metric)] with the faithfulness group first, metrics by name within a group."""
    group = "family" if "family" in board.columns and board["family"].notna().any() else "category"
    pairs = board.drop_duplicates("metric")[list(dict.fromkeys([group, "category", "metric"]))]
    rank = {c: i for i, c in enumerate(CATEGORY_ORDER)}
    pairs = pairs.assign(order=pairs["category"].map(lambda c: rank.get(c, len(rank))))
    pairs = pairs.sort_values(["order", group, "metric"])
    return [(str(g), str(m)) for g, m in zip(pairs[group], pairs["metric"])]


def row_order(board: pd.DataFrame) -> list[str]:
    ranks = mean_ranks(board)
    everyone = sorted(board["explainer"].unique())
    ordered = [e for e in ranks.index if e in everyone] + [e for e in everyone if e not in ranks.index]
    return [e for e in ordered if not is_control(e)] + [e for e in ordered if is_control(e)]


def heatmap(board: pd.DataFrame, title: str):
    from explainbench.bench.present.figure import pyplot

    plt, sns = pyplot()
    board = comparable(board)
    cols = column_order(board)
    rows = row_order(board)
    board = board.assign(norm=normalised(board))
    values = board.pivot_table(index="explainer", columns="metric", values="norm", aggfunc="first")
    ranks = board.pivot_table(index="explainer", columns="metric", values="rank", aggfunc="first")
    metrics = [m for _, m in cols]
    values = values.reindex(index=rows, columns=metrics)
    ranks = ranks.reindex(index=rows, columns=metrics)
    labels = ranks.map(lambda r: "" if pd.isna(r) else str(int(r)))
    arrows = {m: "↑" if h else "↓" for m, h in board.drop_duplicates("metric")
              .set_index("metric")["higher_is_better"].items()}
    fig, ax = plt.subplots(figsize=(2.2 + 0.58 * len(metrics), 1.3 + 0.26 * len(rows)))
    sns.heatmap(values, cmap="RdBu", vmin=-1, vmax=1, center=0, annot=labels, fmt="",
                annot_kws={"size": 6.5}, linewidths=0.4, linecolor="white", ax=ax,
                cbar_kws={"label": "0 = random control, 1 = best", "shrink": 0.6, "pad": 0.02})
    ax.set_xticks(np.arange(len(metrics)) + 0.5, [f"{m} {arrows[m]}" for m in metrics],
                  rotation=40, ha="right", fontsize=7)
    ax.set_yticks(np.arange(len(rows)) + 0.5, rows, rotation=0, fontsize=7)
    for tick, name in zip(ax.get_yticklabels(), rows):
        if is_control(name):
            tick.set_fontstyle("italic")
            tick.set_color("#57606a")
    ax.set(xlabel="", ylabel="")
    controls = sum(is_control(e) for e in rows)
    if 0 < controls < len(rows):
        ax.axhline(len(rows) - controls, color="#1f2328", lw=1.2)
    # group labels above the columns, separated by vertical lines
    start = 0
    groups = [g for g, _ in cols]
    for i in range(1, len(groups) + 1):
        if i == len(groups) or groups[i] != groups[start]:
            if start:
                ax.axvline(start, color="#1f2328", lw=1.2)
            label = groups[start].replace("_", " ")
            narrow = i - start == 1
            # a one-column group named like its metric is named by its tick label already; a
            # label wider than its column would run into its neighbours' ("insertioncomplexity")
            if not (narrow and label == metrics[start].replace("_", " ")):
                ax.text((start + i) / 2, -0.4, label.replace(" ", "\n") if narrow else label,
                        ha="center", va="bottom", fontsize=6 if narrow else 7.5,
                        fontweight="bold")
            start = i
    ax.set_title(title, fontsize=9, pad=26, loc="left")
    return fig


def figures(folder) -> list[Path]:
    from explainbench.bench.present.figure import save, slug

    out = []
    for stem, board in folder.boards:
        if board.empty:
            continue
        model = board["model"].iloc[0]
        n = int(board["n"].median())
        fig = heatmap(board, f"{model} (n = {n})")
        out += save(fig, folder.root / "plots", f"overview-{slug(stem)}")
    return out

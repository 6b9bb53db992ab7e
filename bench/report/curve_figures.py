"""The deletion/insertion (and MIF, LIF, AOPC, ROAD) curves of every leaderboard, from
curves.parquet: one row of panels per (task, model), saved under RUN_DIR/plots/."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from explainbench.bench.present.figure import pyplot, save
from explainbench.bench.present.stats import CONTROLS, FLOOR, bootstrap_band, metric_labels

CURVE_METRICS = ("deletion", "insertion", "mif", "lif", "aopc", "road_morf", "road_lerf")


def curve_bands(curves: np.ndarray, resamples: int = 1000, seed: int = 0):
    """Mean curve and its 95% bootstrap band over samples; curves (n, S)."""
    low, high = bootstrap_band(curves, resamples, seed)
    return curves.mean(axis=0), low, high


def _curve_ranking(folder, task: str, model: str, metric: str) -> dict[str, int]:
    """{explainer label: rank} on `metric` from the leaderboard, {} when it has no such metric."""
    board = folder.board(task, model)
    if board is None:
        return {}
    board = board[board["metric"] == metric]
    return dict(zip(board["explainer"], board["rank"].astype(int)))


PER_ROW = 4


def figures(folder, highlight: int = 3) -> list[Path]:
    """Per (task, model) one row of panels, one per curve metric: every explainer's mean curve in
    grey, the `highlight` best of the leaderboard in colour with their 95% bootstrap band, and the
    controls in black (random dashed, edge dotted)."""
    curves = folder.curves
    if curves is None:
        return []
    curves = curves[(curves["study"] == "scores") & curves["metric"].isin(CURVE_METRICS)]
    if curves.empty:
        return []
    plt, sns = pyplot()
    colours = sns.color_palette("colorblind", highlight)
    out = []
    curves = curves.assign(metric_label=metric_labels(curves))
    for (task, model), tm in curves.groupby(["task", "model"], sort=True):
        metrics = sorted(tm["metric_label"].unique(), key=lambda m: (CURVE_METRICS.index(m.split("[")[0]), m))
        # at most four panels a row: seven in one made the text unreadable at 1400 px
        ncols = min(PER_ROW, len(metrics))
        nrows = -(-len(metrics) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 4.0 * nrows), squeeze=False,
                                 layout="constrained")
        for ax in axes.flat[len(metrics):]:
            ax.set_visible(False)
        for ax, metric in zip(axes.flat, metrics):
            g = tm[tm["metric_label"] == metric]
            ranking = _curve_ranking(folder, task, model, metric)
            ranked = sorted((r, e) for e, r in ranking.items() if e.split("[")[0] not in CONTROLS)
            top = [e for _, e in ranked[:highlight]]
            fractions = g.groupby("step")["fraction"].first().to_numpy()
            for explainer, e in g.groupby("explainer", sort=True):
                wide = e.groupby(["sample_id", "step"])["value"].mean().unstack("step").to_numpy()
                if explainer in CONTROLS:
                    ax.plot(fractions, wide.mean(0), "--" if explainer == FLOOR else ":",
                            color="black", lw=1.4, label=f"{explainer} (control)", zorder=3)
                elif explainer in top:
                    mean, low, high = curve_bands(wide)
                    colour = colours[top.index(explainer)]
                    ax.plot(fractions, mean, color=colour, lw=2, zorder=4,
                            label=f"{ranking[explainer]}. {explainer}")
                    ax.fill_between(fractions, low, high, color=colour, alpha=0.15, lw=0, zorder=2)
                else:
                    ax.plot(fractions, wide.mean(0), color="#afb8c1", lw=0.8, zorder=1)
            ax.plot([], [], color="#afb8c1", lw=0.8, label="every other explainer")
            handles, labels = ax.get_legend_handles_labels()
            order = sorted(range(len(labels)), key=lambda i: (not labels[i][0].isdigit(), labels[i]))
            ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=7,
                      frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
            removed = "inserted" if metric.startswith("insertion") else "removed"
            # a curve over the first few steps only (AOPC's top-k) is drawn over its own range,
            # not crushed into the left tenth of [0, 1]
            right = 1.0 if fractions.max() > 0.5 else float(fractions.max())
            ax.set(xlabel=f"fraction of features {removed}", title=metric, xlim=(0, right),
                   ylim=(0, 1.02))
            ax.title.set_fontsize(9)
        for row in axes:
            row[0].set_ylabel("target-class probability")
        fig.suptitle(f"{model}: mean curves over samples; the three best by the leaderboard in colour "
                     "(band: 95% bootstrap interval)", fontsize=9)
        out += save(fig, folder.root / "plots", f"curves-{task}-{model}")
    return out

"""The studies' figures, each drawn from the study table the report also shows (so picture, table
and findings agree): stability against the sampling budget, SHAP's background, the cascading
randomisation and the agreement matrices. One figure per (task, model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from explainbench.bench import tables
from explainbench.bench.figures import _plt, _save, _slug


def _read(run_dir: Path, name: str) -> pd.DataFrame:
    path = run_dir / name
    return pd.read_csv(path) if path.is_file() and path.stat().st_size > 1 else pd.DataFrame()


def _errorbars(ax, frame: pd.DataFrame, x: str, label: str, colour, marker="o", linestyle="-"):
    frame = frame.sort_values(x)
    yerr = np.vstack([frame["mean"] - frame["ci_low"], frame["ci_high"] - frame["mean"]])
    ax.errorbar(frame[x], frame["mean"], yerr=np.clip(yerr, 0, None), label=label, color=colour,
                marker=marker, ms=4, lw=1.5, capsize=2.5, linestyle=linestyle)


def budget_figures(run_dir: Path) -> list[Path]:
    """Stability against the sampling budget: one panel per stability measure, one line per swept
    explainer, mean over samples with its 95% interval."""
    table = _read(run_dir, "stability_budget.csv")
    if table.empty:
        return []
    plt, sns = _plt()
    out = []
    for (task, model), g in table.groupby(["task", "model"], sort=True):
        measures = sorted(g["metric"].unique())
        fig, axes = plt.subplots(1, len(measures), figsize=(2.9 * len(measures), 2.8), squeeze=False)
        lines = sorted(g.groupby(["explainer", "budget_param"]).groups)
        colours = sns.color_palette("colorblind", len(lines))
        for ax, measure in zip(axes[0], measures):
            m = g[g["metric"] == measure]
            for colour, (explainer, param) in zip(colours, lines):
                e = m[(m["explainer"] == explainer) & (m["budget_param"] == param)]
                _errorbars(ax, e, "budget", f"{explainer} ({param})", colour)
            higher = bool(m["higher_is_better"].iloc[0])
            budgets = sorted(m["budget"].unique())
            ax.set(xscale="log", xlabel="sampling budget", title=f"{measure} ({'↑' if higher else '↓'})")
            ax.set_xticks(budgets, [f"{int(b):,}" for b in budgets])
            ax.minorticks_off()
            ax.title.set_fontsize(8.5)
        axes[0, -1].legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1))
        fig.suptitle(f"{model}: stability across seeds against the sampling budget (95% intervals)",
                     fontsize=9, y=1.03)
        fig.tight_layout()
        out += _save(fig, run_dir / "plots", f"budget-{task}-{model}")
    return out


def background_figures(run_dir: Path) -> list[Path]:
    """Rows: convergence to the largest random background, then each faithfulness metric's mean;
    columns: explainers; x: background size; one line per selection strategy (single-row
    strategies, all zeros and the blurred input, are single points at size 1)."""
    table = _read(run_dir, "background.csv")
    if table.empty or "background_convergence_mean" not in table.columns:
        return []
    plt, sns = _plt()
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
                        _errorbars(ax, frame, "size", strategy, colours[strategy],
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
        out += _save(fig, run_dir / "plots", f"background-{task}-{model}")
    return out


def sanity_figures(run_dir: Path) -> list[Path]:
    """Cascading randomisation: one panel per similarity measure, one line per explainer, from the
    intact model (left) to every layer randomised (right); flagged explainers dashed."""
    from explainbench.bench.studies.sanity import FLAG_THRESHOLD

    table = _read(run_dir, "sanity.csv")
    if table.empty:
        return []
    table = table[table["depth"] >= 0]
    plt, sns = _plt()
    out = []
    for (task, model), g in table.groupby(["task", "model"], sort=True):
        measures = sorted(g["metric"].unique())
        explainers = sorted(g["explainer"].unique())
        colours = dict(zip(explainers, sns.color_palette("tab10", len(explainers))))
        flagged = set(g[g["flagged"].astype(bool)]["explainer"]) if "flagged" in g.columns else set()
        fig, axes = plt.subplots(1, len(measures), figsize=(4.2 * len(measures), 3.1), squeeze=False)
        for ax, measure in zip(axes[0], measures):
            m = g[g["metric"] == measure]
            for explainer in explainers:
                e = m[m["explainer"] == explainer]
                label = explainer + (" (fails)" if explainer in flagged else "")
                _errorbars(ax, e, "depth", label, colours[explainer],
                           linestyle="--" if explainer in flagged else "-")
            layers = m.groupby("depth")["layer"].first()
            ax.set_xticks(layers.index, layers.values, rotation=35, ha="right", fontsize=7)
            if "spearman" in measure:
                ax.axhline(FLAG_THRESHOLD, color="#cf222e", lw=0.8, ls=":")
            ax.set(xlabel="randomised from the output down to", ylabel="similarity to the original map",
                   title=measure)
            ax.title.set_fontsize(8.5)
        axes[0, -1].legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1))
        fig.suptitle(f"{model}: model-parameter randomisation, cascading (red line: the flag threshold)",
                     fontsize=9, y=1.02)
        fig.tight_layout()
        out += _save(fig, run_dir / "plots", f"sanity-{task}-{model}")
    return out


def agreement_figures(run_dir: Path, scores: pd.DataFrame) -> list[Path]:
    out = []
    matrices = tables.agreement_matrices(scores)
    if not matrices:
        return out
    plt, sns = _plt()
    for (task, model, metric), matrix in matrices.items():
        n = len(matrix)
        fig, ax = plt.subplots(figsize=(0.3 * n + 2.2, 0.28 * n + 1.6))
        sns.heatmap(matrix, vmin=-1 if "spearman" in metric else 0, vmax=1, cmap="RdBu_r",
                    center=0, annot=n <= 14, fmt=".1f", annot_kws={"size": 5}, ax=ax, square=True,
                    cbar_kws={"shrink": 0.6})
        ax.tick_params(labelsize=6.5)
        ax.set_title(f"{model}: {metric}", fontsize=8.5)
        out += _save(fig, run_dir / "plots", f"agreement-{task}-{model}-{_slug(metric)}")
    return out

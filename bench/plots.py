"""The report's figures (seaborn), each saved as PNG and SVG under RUN_DIR/plots/.

Every figure is a query over the run's files: curves.parquet for the deletion/insertion curves,
scores.parquet for the study rows, parts/*.gallery.safetensors for the example heatmaps.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from explainbench.bench import tables

CURVE_METRICS = ("deletion", "insertion", "mif", "lif", "aopc", "road_morf", "road_lerf")


def _plt():
    import warnings

    import matplotlib

    # seaborn 0.13 calls matplotlib APIs that 3.11 deprecates; the figures are unaffected.
    warnings.filterwarnings("ignore", module="seaborn")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    return plt, sns


def _save(fig, folder: Path, name: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in ("png", "svg"):
        path = folder / f"{name}.{ext}"
        # SVGs embed a date unless told not to: keep reruns byte-identical.
        fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Date": None} if ext == "svg" else None)
        out.append(path)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return out


def curve_bands(curves: np.ndarray, resamples: int = 1000, seed: int = 0):
    """Mean curve and its 95% bootstrap band over samples; curves (n, S)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(curves), size=(resamples, len(curves)))
    means = curves[idx].mean(axis=1)
    return curves.mean(axis=0), np.percentile(means, 2.5, axis=0), np.percentile(means, 97.5, axis=0)


def curve_figures(run_dir: Path) -> list[Path]:
    path = run_dir / "curves.parquet"
    if not path.is_file():
        return []
    curves = pd.read_parquet(path)
    curves = curves[(curves["study"] == "scores") & curves["metric"].isin(CURVE_METRICS)]
    if curves.empty:
        return []
    plt, sns = _plt()
    out = []
    curves = curves.assign(metric_label=tables.metric_labels(curves))
    for (task, model, metric), g in curves.groupby(["task", "model", "metric_label"], sort=True):
        fig, ax = plt.subplots(figsize=(6, 4))
        palette = sns.color_palette("tab20", g["explainer"].nunique())
        for colour, (explainer, e) in zip(palette, g.groupby("explainer", sort=True)):
            # average seeds per sample, then one row per sample
            wide = e.groupby(["sample_id", "step"])["value"].mean().unstack("step")
            fractions = e.groupby("step")["fraction"].first().to_numpy()
            mean, low, high = curve_bands(wide.to_numpy())
            style = "--" if explainer == tables.FLOOR else "-"
            ax.plot(fractions, mean, style, color=colour, label=explainer, lw=1.5)
            ax.fill_between(fractions, low, high, color=colour, alpha=0.15, lw=0)
        ax.set(xlabel="fraction of features removed" if "insertion" not in metric
               else "fraction of features inserted", ylabel="target-class probability",
               title=f"{metric} — {model}", xlim=(0, 1), ylim=(0, 1.02))
        ax.legend(fontsize=7, ncol=2, frameon=False)
        out += _save(fig, run_dir / "plots", f"curves-{task}-{model}-{_slug(metric)}")
    return out


def study_box_figures(run_dir: Path, scores: pd.DataFrame, study: str) -> list[Path]:
    """Distribution over samples of each study metric per explainer (box plots)."""
    rows = scores[scores["study"] == study]
    if rows.empty:
        return []
    plt, sns = _plt()
    samples = tables.per_sample(rows.assign(metric_params="{}"))  # a study's settings are not alternatives
    out = []
    for (task, model, metric), g in samples.groupby(["task", "model", "metric_label"], sort=True):
        order = sorted(g["explainer_label"].unique())
        fig, ax = plt.subplots(figsize=(max(5, 0.45 * len(order) + 2), 3.8))
        sns.boxplot(data=g, x="explainer_label", y="value", order=order, ax=ax, color="#9ecae1",
                    fliersize=2)
        ax.set(xlabel="", ylabel=metric, title=f"{study}: {metric} — {model}")
        ax.tick_params(axis="x", rotation=60, labelsize=7)
        out += _save(fig, run_dir / "plots", f"{study}-{task}-{model}-{_slug(metric)}")
    return out


def budget_figures(run_dir: Path, scores: pd.DataFrame) -> list[Path]:
    """Stability against the sampling budget (the explainer parameter the study varies)."""
    rows = scores[(scores["study"] == "stability")]
    if rows.empty:
        return []
    params = rows["params"].map(json.loads)
    budget_key = rows["metric_params"].map(lambda p: json.loads(p).get("budget_param"))
    rows = rows.assign(budget=[p.get(k) if k else None for p, k in zip(params, budget_key)])
    rows = rows[rows["budget"].notna()]
    if rows.empty:
        return []
    plt, sns = _plt()
    out = []
    for (task, model, metric), g in rows.groupby(["task", "model", "metric"], sort=True):
        per = g.groupby(["explainer", "budget", "sample_id"])["value"].mean().reset_index()
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        sns.lineplot(data=per, x="budget", y="value", hue="explainer", marker="o", ax=ax,
                     errorbar=("ci", 95), n_boot=500, seed=0)
        ax.set(xscale="log", xlabel="sampling budget", ylabel=metric,
               title=f"{metric} vs budget — {model}")
        out += _save(fig, run_dir / "plots", f"budget-{task}-{model}-{_slug(metric)}")
    return out


def background_figures(run_dir: Path, scores: pd.DataFrame) -> list[Path]:
    rows = scores[(scores["study"] == "background")]
    if rows.empty:
        return []
    params = rows["params"].map(json.loads)
    rows = rows.assign(size=[p.get("background_size") for p in params],
                       strategy=[p.get("background") for p in params])
    rows = rows[rows["size"].notna()]
    if rows.empty:
        return []
    plt, sns = _plt()
    out = []
    for (task, model, metric), g in rows.groupby(["task", "model", "metric"], sort=True):
        per = g.groupby(["explainer", "strategy", "size", "sample_id"])["value"].mean().reset_index()
        grid = sns.relplot(data=per, x="size", y="value", hue="strategy", col="explainer",
                           kind="line", marker="o", errorbar=("ci", 95), n_boot=500, seed=0,
                           col_wrap=min(3, per["explainer"].nunique()), height=3, aspect=1.2)
        grid.set(xscale="log")
        grid.set_axis_labels("background size", metric)
        grid.figure.suptitle(f"background: {metric} — {model}", y=1.02)
        out += _save(grid.figure, run_dir / "plots", f"background-{task}-{model}-{_slug(metric)}")
    return out


def sanity_figures(run_dir: Path, scores: pd.DataFrame) -> list[Path]:
    rows = scores[(scores["study"] == "sanity")]
    if rows.empty:
        return []
    mp = rows["metric_params"].map(json.loads)
    rows = rows.assign(depth=[p.get("depth") for p in mp], layer=[p.get("layer") for p in mp])
    rows = rows[rows["depth"].notna()]
    if rows.empty:
        return []
    plt, sns = _plt()
    out = []
    for (task, model, metric), g in rows.groupby(["task", "model", "metric"], sort=True):
        per = g.groupby(["explainer", "depth", "layer", "sample_id"])["value"].mean().reset_index()
        fig, ax = plt.subplots(figsize=(6, 4))
        sns.lineplot(data=per, x="depth", y="value", hue="explainer", marker="o", ax=ax,
                     errorbar=("ci", 95), n_boot=500, seed=0)
        layers = per.groupby("depth")["layer"].first()
        ax.set_xticks(layers.index, layers.values, rotation=45, fontsize=7)
        ax.set(xlabel="randomised down to layer (cascading from the output)", ylabel=metric,
               title=f"model-parameter randomisation: {metric} — {model}")
        ax.legend(fontsize=7, ncol=2, frameon=False)
        out += _save(fig, run_dir / "plots", f"sanity-{task}-{model}-{_slug(metric)}")
    return out


def agreement_figures(run_dir: Path, scores: pd.DataFrame) -> list[Path]:
    out = []
    matrices = tables.agreement_matrices(scores)
    if not matrices:
        return out
    plt, sns = _plt()
    for (task, model, metric), matrix in matrices.items():
        n = len(matrix)
        fig, ax = plt.subplots(figsize=(0.45 * n + 2.5, 0.4 * n + 2))
        sns.heatmap(matrix, vmin=-1 if "spearman" in metric else 0, vmax=1, cmap="RdBu_r",
                    center=0, annot=n <= 14, fmt=".2f", annot_kws={"size": 6}, ax=ax, square=True)
        ax.set_title(f"{metric} — {model}")
        out += _save(fig, run_dir / "plots", f"agreement-{task}-{model}-{_slug(metric)}")
    return out


def gallery_figures(run_dir: Path) -> list[Path]:
    """MNIST heatmaps (rows: samples, columns: explainers) from the cells' gallery files."""
    from explainbench.bench import gallery

    entries = gallery.load(run_dir)
    out = []
    for (task, model), items in entries.items():
        if task != "mnist":
            continue
        plt, _ = _plt()
        explainers_ = sorted(items)
        first = items[explainers_[0]]
        n = min(6, len(first["sample_ids"]))
        fig, axes = plt.subplots(n, len(explainers_) + 1, figsize=(1.3 * (len(explainers_) + 1), 1.35 * n),
                                 squeeze=False)
        for r in range(n):
            axes[r, 0].imshow(first["inputs"][r, 0], cmap="gray", vmin=0, vmax=1)
            axes[r, 0].set_ylabel(f"id {int(first['sample_ids'][r])}", fontsize=6)
            for c, name in enumerate(explainers_, start=1):
                a = items[name]["attributions"][r]
                bound = float(np.abs(a).max()) or 1.0
                axes[r, c].imshow(first["inputs"][r, 0], cmap="gray", vmin=0, vmax=1, alpha=0.35)
                axes[r, c].imshow(a, cmap="RdBu_r", vmin=-bound, vmax=bound, alpha=0.85)
                if r == 0:
                    axes[r, c].set_title(name, fontsize=6, rotation=30)
        axes[0, 0].set_title("input", fontsize=6)
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle(f"attributions — {model} (red: for the target class, blue: against)", fontsize=8)
        out += _save(fig, run_dir / "plots", f"gallery-{task}-{model}")
    return out


def write_all(run_dir: Path, scores: pd.DataFrame) -> list[Path]:
    run_dir = Path(run_dir)
    # Figures are derived files: drop the previous report's, so none outlives its data.
    for old in (run_dir / "plots").glob("*.*") if (run_dir / "plots").is_dir() else []:
        if old.suffix in (".png", ".svg"):
            old.unlink()
    out = curve_figures(run_dir)
    out += study_box_figures(run_dir, scores, "stability")
    out += budget_figures(run_dir, scores)
    out += background_figures(run_dir, scores)
    out += sanity_figures(run_dir, scores)
    out += agreement_figures(run_dir, scores)
    out += gallery_figures(run_dir)
    return out


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text).strip("_")

"""The leaderboards and the tables over every scored explainer: queries over the tidy rows of
scores.parquet (statistics: bench/present/stats.py; the studies' own tables live with each study).

A NaN score is a sample the metric is undefined for (e.g. faithfulness correlation where the
output never changes): it is excluded from the means and counted in `n_excluded`.
"Significantly different from the best" is a paired Wilcoxon signed-rank test over the samples
both explainers scored, Holm-corrected across the explainers compared within one metric.

`mean_faithfulness_rank` (the leaderboard's aggregate) is the mean, over the faithfulness
families an explainer was ranked in, of its mean rank within the family: each family counts
once however many metrics it has (MIF, LIF and SRG are pixel flipping; ROAD's five outputs are
ROAD; comprehensiveness and sufficiency are ERASER; every other metric is its own family).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from explainbench.bench.present.stats import (ALPHA, CONTROLS, FLOOR, bootstrap_ci, holm,
                                              per_sample, wilcoxon_p)

LEADERBOARD_CATEGORIES = ("faithfulness", "robustness", "complexity", "ground_truth", "examples",
                          "rules")

def leaderboard_samples(scores: pd.DataFrame) -> pd.DataFrame:
    """`per_sample` of the leaderboard's rows (the scores study, leaderboard categories): what
    every ranking, control comparison and correct/wrong split is computed from."""
    scores = scores[(scores["study"] == "scores") & scores["category"].isin(LEADERBOARD_CATEGORIES)]
    return per_sample(scores) if not scores.empty else pd.DataFrame()


def leaderboards(scores: pd.DataFrame, costs: pd.DataFrame | None = None) -> dict[tuple, pd.DataFrame]:
    """{(task, model): leaderboard}: one row per explainer and metric."""
    samples = leaderboard_samples(scores)
    if samples.empty:
        return {}
    cost = _cost_table(costs)
    boards = {}
    for (task, model), group in samples.groupby(["task", "model"], sort=True):
        rows = []
        for (metric_label, higher), m in group.groupby(["metric_label", "higher_is_better"], sort=True):
            rows += _metric_rows(m, metric_label, bool(higher))
        board = pd.DataFrame(rows)
        board = board.merge(mean_faithfulness_rank(board), on="explainer", how="left")
        if cost is not None:
            board = board.merge(cost[cost["model"] == model].drop(columns="model"),
                                on=["explainer_name", "params_hash"], how="left")
        board.insert(0, "model", model)
        board.insert(0, "task", task)
        boards[(task, model)] = board.sort_values(["metric", "rank", "explainer"]).reset_index(drop=True)
    return boards


def mean_faithfulness_rank(board: pd.DataFrame) -> pd.Series:
    """Per explainer: the mean over faithfulness families of its mean rank within each family
    (see the module docstring)."""
    faith = board[board["category"] == "faithfulness"]
    by_family = faith.groupby(["explainer", "family"])["rank"].mean()
    return by_family.groupby("explainer").mean().rename("mean_faithfulness_rank")


def _metric_rows(m: pd.DataFrame, metric_label: str, higher: bool) -> list[dict]:
    wide = m.pivot_table(index="sample_id", columns="explainer_label", values="value")
    stats = {}
    for label, g in m.groupby("explainer_label"):
        every = g["value"].to_numpy()
        values = every[~np.isnan(every)]
        low, high = bootstrap_ci(values)
        stats[label] = dict(
            explainer=label, explainer_name=g["explainer"].iloc[0], params_hash=g["params_hash"].iloc[0],
            metric=metric_label, category=g["category"].iloc[0], family=g["family"].iloc[0],
            higher_is_better=higher, mean=values.mean() if len(values) else np.nan,
            std=values.std(ddof=1) if len(values) > 1 else 0.0,
            ci_low=low, ci_high=high, n=len(values), n_excluded=int(len(every) - len(values)),
            seeds=int(g["seeds"].max()),
        )
    stats = {k: v for k, v in stats.items() if v["n"] > 0}  # undefined for every sample: no rank
    if not stats:
        return []
    means = pd.Series({k: v["mean"] for k, v in stats.items()})
    ranks = means.rank(ascending=not higher, method="min")
    best = means.idxmax() if higher else means.idxmin()
    others = [k for k in stats if k != best]
    p_raw = []
    for other in others:
        both = wide[[best, other]].dropna()
        p_raw.append(wilcoxon_p(both[best].to_numpy(), both[other].to_numpy()))
    p_adj = dict(zip(others, holm(p_raw))) if others else {}
    p_raw = dict(zip(others, p_raw))
    floor = next((k for k in stats if stats[k]["explainer_name"] == FLOOR), None)
    rows = []
    for label, row in stats.items():
        sign = 1.0 if higher else -1.0
        row.update(
            rank=int(ranks[label]), best=label == best,
            p_vs_best=p_raw.get(label, np.nan), p_vs_best_holm=p_adj.get(label, np.nan),
            different_from_best=bool(p_adj.get(label, 1.0) < ALPHA) if label != best else False,
            floor_mean=stats[floor]["mean"] if floor else np.nan,
            better_than_floor_by=sign * (row["mean"] - stats[floor]["mean"]) if floor else np.nan,
        )
        rows.append(row)
    return rows


def _cost_table(costs: pd.DataFrame | None) -> pd.DataFrame | None:
    if costs is None or costs.empty:
        return None
    weighted = costs.assign(
        s=costs["seconds_per_explanation"] * costs["samples"],
        f=costs["forward_passes_per_explanation"] * costs["samples"],
    )
    table = weighted.groupby(["model", "explainer", "params_hash"]).agg(
        s=("s", "sum"), f=("f", "sum"), n=("samples", "sum")).reset_index()
    table["seconds_per_explanation"] = table["s"] / table["n"]
    table["forward_passes_per_explanation"] = table["f"] / table["n"]
    return table.rename(columns={"explainer": "explainer_name"})[
        ["model", "explainer_name", "params_hash", "seconds_per_explanation",
         "forward_passes_per_explanation"]]


def summary(scores: pd.DataFrame) -> pd.DataFrame:
    """The simple table of every (task, model, study, explainer, metric): mean, std and n over
    samples (a stochastic explainer's seeds averaged per sample first), and the samples excluded
    because the metric is undefined for them."""
    cols = ["task", "model", "study", "explainer", "metric", "higher_is_better"]
    if scores.empty:
        return pd.DataFrame(columns=cols + ["mean", "std", "n", "n_excluded"])
    samples = (per_sample(scores, extra_keys=("study",)).drop(columns=["explainer", "metric"])
               .rename(columns={"explainer_label": "explainer", "metric_label": "metric"}))
    grouped = samples.groupby(cols, sort=True)["value"]
    table = grouped.agg(mean="mean", std="std", n="count").reset_index()
    table["n_excluded"] = grouped.apply(lambda v: int(v.isna().sum())).to_numpy()
    return table


def correct_vs_wrong(scores: pd.DataFrame) -> pd.DataFrame:
    """Every leaderboard score split by whether the model's prediction on the sample was correct:
    the means, counts, difference and a two-sided Mann-Whitney U test (independent samples)."""
    from scipy.stats import mannwhitneyu

    samples = leaderboard_samples(scores)
    if samples.empty:
        return pd.DataFrame()
    out = []
    keys = ["task", "model", "explainer_label", "metric_label", "higher_is_better"]
    for key, g in samples.groupby(keys, sort=True):
        defined = g.dropna(subset=["value"])
        right, wrong = defined[defined["correct"]]["value"], defined[~defined["correct"]]["value"]
        p = (float(mannwhitneyu(right, wrong).pvalue) if len(right) and len(wrong)
             and not np.allclose(np.r_[right, wrong], right.iloc[0]) else np.nan)
        out.append(dict(zip(["task", "model", "explainer", "metric", "higher_is_better"], key),
                        mean_correct=right.mean(), n_correct=len(right), mean_wrong=wrong.mean(),
                        n_wrong=len(wrong), difference=right.mean() - wrong.mean(), p_mannwhitney=p))
    return pd.DataFrame(out)



def versus_controls(scores: pd.DataFrame, controls: tuple[str, ...] = CONTROLS) -> pd.DataFrame:
    """Every leaderboard explainer against each control, per (task, model, metric): the paired
    difference over the samples both scored (signed so that > 0 is better than the control), its
    95% bootstrap CI, the Wilcoxon signed-rank p and its Holm correction across the explainers
    compared with that control on that metric; `better` / `worse` when the corrected p < ALPHA."""
    samples = leaderboard_samples(scores)
    if samples.empty:
        return pd.DataFrame()
    out = []
    keys = ["task", "model", "metric_label", "category", "higher_is_better"]
    for (task, model, metric, category, higher), m in samples.groupby(keys, sort=True):
        wide = m.pivot_table(index="sample_id", columns="explainer_label", values="value")
        names = dict(zip(m["explainer_label"], m["explainer"]))
        sign = 1.0 if higher else -1.0
        for control in [c for c in wide.columns if names.get(c) in controls]:
            rows = []
            for label in wide.columns:
                if names[label] in controls:
                    continue
                both = wide[[label, control]].dropna()
                diff = sign * (both[label] - both[control]).to_numpy()
                low, high = bootstrap_ci(diff)
                rows.append(dict(task=task, model=model, metric=metric, category=category,
                                 higher_is_better=bool(higher), explainer=label, control=control,
                                 n=len(diff), mean=both[label].mean(), control_mean=both[control].mean(),
                                 difference=diff.mean() if len(diff) else np.nan,
                                 diff_ci_low=low, diff_ci_high=high,
                                 p=wilcoxon_p(both[label].to_numpy(), both[control].to_numpy())))
            for row, p_adj in zip(rows, holm([r["p"] for r in rows]) if rows else []):
                row["p_holm"] = p_adj
                row["better"] = bool(p_adj < ALPHA and row["difference"] > 0)
                row["worse"] = bool(p_adj < ALPHA and row["difference"] < 0)
            out += rows
    return pd.DataFrame(out)

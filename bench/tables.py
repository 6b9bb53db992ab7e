"""Leaderboards and study tables: queries over the tidy rows of scores.parquet.

Statistics are over samples, the unit of independence: a stochastic explainer's seeds are first
averaged per sample. Confidence intervals are 95% percentile bootstraps over samples (2,000
resamples, fixed seed, so a table is a deterministic function of the scores). "Significantly
different from the best" is a paired Wilcoxon signed-rank test over the samples both explainers
scored, Holm-corrected across the explainers compared within one metric.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

BOOTSTRAP_RESAMPLES = 2000
ALPHA = 0.05
LEADERBOARD_CATEGORIES = ("faithfulness", "robustness", "complexity", "ground_truth", "examples",
                          "rules")
FLOOR = "random"


def bootstrap_ci(values: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0):
    """95% percentile bootstrap interval of the mean (vectorised)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return np.nan, np.nan
    if len(values) == 1:
        return values[0], values[0]
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone)."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p)
    adjusted = np.empty_like(p)
    running = 0.0
    m = len(p)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def wilcoxon_p(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import wilcoxon

    diff = np.asarray(a) - np.asarray(b)
    if len(diff) < 2 or np.allclose(diff, 0):
        return 1.0
    return float(wilcoxon(a, b, zero_method="zsplit").pvalue)


def _setting_labels(scores: pd.DataFrame, name_col: str, params_col: str) -> pd.Series:
    """`name` where a name runs with one setting on a task, else `name[k=v,...]` naming the
    parameters that differ between its settings."""
    labels = pd.Series(scores[name_col], index=scores.index, dtype=object)
    for (_, name), group in scores.groupby(["task", name_col]):
        settings = group[params_col].unique()
        if len(settings) < 2:
            continue
        parsed = {s: json.loads(s) for s in settings}
        keys = sorted({k for p in parsed.values() for k in p})
        varying = [k for k in keys if len({json.dumps(p.get(k)) for p in parsed.values()}) > 1]
        for setting, params in parsed.items():
            tag = ",".join(f"{k}={params.get(k)}" for k in varying)
            labels[group.index[group[params_col] == setting]] = f"{name}[{tag}]"
    return labels


def metric_labels(scores: pd.DataFrame) -> pd.Series:
    """`deletion` when a metric runs with one setting on a task, else `deletion[substrate=blur]`."""
    return _setting_labels(scores, "metric", "metric_params")


def explainer_labels(scores: pd.DataFrame) -> pd.Series:
    """The explainer's name, with its differing parameters when it appears with several."""
    return _setting_labels(scores, "explainer", "params")


def per_sample(scores: pd.DataFrame) -> pd.DataFrame:
    """One value per (task, model, explainer setting, metric setting, sample): seeds averaged."""
    frame = scores.assign(metric_label=metric_labels(scores), explainer_label=explainer_labels(scores))
    keys = ["task", "model", "explainer_label", "explainer", "params_hash", "metric_label",
            "metric", "category", "higher_is_better", "sample_id"]
    return (frame.groupby(keys, sort=True)
            .agg(value=("value", "mean"), seeds=("seed", "nunique"), correct=("correct", "first"))
            .reset_index())


def leaderboards(scores: pd.DataFrame, costs: pd.DataFrame | None = None) -> dict[tuple, pd.DataFrame]:
    """{(task, model): leaderboard}: one row per explainer and metric."""
    scores = scores[(scores["study"] == "scores") & scores["category"].isin(LEADERBOARD_CATEGORIES)]
    if scores.empty:
        return {}
    samples = per_sample(scores)
    cost = _cost_table(costs)
    boards = {}
    for (task, model), group in samples.groupby(["task", "model"], sort=True):
        rows = []
        for (metric_label, higher), m in group.groupby(["metric_label", "higher_is_better"], sort=True):
            rows += _metric_rows(m, metric_label, bool(higher))
        board = pd.DataFrame(rows)
        faith = board[board["category"] == "faithfulness"]
        mean_rank = faith.groupby("explainer")["rank"].mean().rename("mean_faithfulness_rank")
        board = board.merge(mean_rank, on="explainer", how="left")
        if cost is not None:
            board = board.merge(cost[cost["model"] == model].drop(columns="model"),
                                on=["explainer_name", "params_hash"], how="left")
        board.insert(0, "model", model)
        board.insert(0, "task", task)
        boards[(task, model)] = board.sort_values(["metric", "rank", "explainer"]).reset_index(drop=True)
    return boards


def _metric_rows(m: pd.DataFrame, metric_label: str, higher: bool) -> list[dict]:
    wide = m.pivot_table(index="sample_id", columns="explainer_label", values="value")
    stats = {}
    for label, g in m.groupby("explainer_label"):
        values = g["value"].to_numpy()
        low, high = bootstrap_ci(values)
        stats[label] = dict(
            explainer=label, explainer_name=g["explainer"].iloc[0], params_hash=g["params_hash"].iloc[0],
            metric=metric_label, category=g["category"].iloc[0], higher_is_better=higher,
            mean=values.mean(), std=values.std(ddof=1) if len(values) > 1 else 0.0,
            ci_low=low, ci_high=high, n=len(values), seeds=int(g["seeds"].max()),
        )
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
    """The simple table of every (task, model, explainer, metric): mean, std, n."""
    cols = ["task", "model", "study", "explainer", "metric", "higher_is_better"]
    if scores.empty:
        return pd.DataFrame(columns=cols + ["mean", "std", "n"])
    frame = scores.assign(metric=metric_labels(scores), explainer=explainer_labels(scores))
    return (frame.groupby(cols, sort=True)["value"].agg(mean="mean", std="std", n="count")
            .reset_index())


def correct_vs_wrong(scores: pd.DataFrame) -> pd.DataFrame:
    """Every leaderboard score split by whether the model's prediction on the sample was correct:
    the means, counts, difference and a two-sided Mann-Whitney U test (independent samples)."""
    from scipy.stats import mannwhitneyu

    scores = scores[(scores["study"] == "scores") & scores["category"].isin(LEADERBOARD_CATEGORIES)]
    if scores.empty:
        return pd.DataFrame()
    samples = per_sample(scores)
    out = []
    keys = ["task", "model", "explainer_label", "metric_label", "higher_is_better"]
    for key, g in samples.groupby(keys, sort=True):
        right, wrong = g[g["correct"]]["value"], g[~g["correct"]]["value"]
        p = (float(mannwhitneyu(right, wrong).pvalue) if len(right) and len(wrong)
             and not np.allclose(np.r_[right, wrong], right.iloc[0]) else np.nan)
        out.append(dict(zip(["task", "model", "explainer", "metric", "higher_is_better"], key),
                        mean_correct=right.mean(), n_correct=len(right), mean_wrong=wrong.mean(),
                        n_wrong=len(wrong), difference=right.mean() - wrong.mean(), p_mannwhitney=p))
    return pd.DataFrame(out)


def study_table(scores: pd.DataFrame, study: str) -> pd.DataFrame:
    """Per (task, model, explainer setting, metric setting): mean, std, 95% CI, n over samples."""
    rows = scores[scores["study"] == study]
    if rows.empty:
        return pd.DataFrame()
    # a study's metric settings (its seeds, k) are not alternatives to tell apart: plain names
    samples = per_sample(rows.assign(metric_params="{}"))
    out = []
    keys = ["task", "model", "explainer_label", "metric_label", "higher_is_better"]
    for key, g in samples.groupby(keys, sort=True):
        values = g["value"].to_numpy()
        low, high = bootstrap_ci(values)
        out.append(dict(zip(["task", "model", "explainer", "metric", "higher_is_better"], key),
                        mean=values.mean(), std=values.std(ddof=1) if len(values) > 1 else 0.0,
                        ci_low=low, ci_high=high, n=len(values)))
    return pd.DataFrame(out)


def agreement_matrices(scores: pd.DataFrame) -> dict[tuple, pd.DataFrame]:
    """{(task, model, metric): square explainer x explainer matrix of mean agreement}.

    Agreement rows name the two explainers in the metric's `self` and `other` parameters (see
    bench/studies/agreement.py)."""
    rows = scores[scores["study"] == "agreement"]
    out = {}
    if rows.empty:
        return out
    params = [json.loads(p) for p in rows["metric_params"]]
    rows = rows.assign(explainer=[p.get("self", e) for p, e in zip(params, rows["explainer"])],
                       other=[p.get("other") for p in params])
    for (task, model, metric), g in rows.groupby(["task", "model", "metric"], sort=True):
        mean = g.groupby(["explainer", "other"])["value"].mean().reset_index()
        names = sorted(set(mean["explainer"]) | set(mean["other"]))
        matrix = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
        for r in mean.itertuples():
            matrix.loc[r.explainer, r.other] = r.value
            matrix.loc[r.other, r.explainer] = r.value
        out[(task, model, metric)] = matrix
    return out

"""Leaderboards and study tables: queries over the tidy rows of scores.parquet.

Statistics are over samples, the unit of independence: a stochastic explainer's seeds are first
averaged per sample, everywhere (leaderboard.csv too), so n counts samples and the spread mixes
no seed noise into the sample variation. A NaN score is a sample the metric is undefined for
(e.g. faithfulness correlation where the output never changes): it is excluded from the means
and counted in `n_excluded`. Confidence intervals are 95% percentile bootstraps over samples
(2,000 resamples, fixed seed, so a table is a deterministic function of the scores).
"Significantly different from the best" is a paired Wilcoxon signed-rank test over the samples
both explainers scored, Holm-corrected across the explainers compared within one metric.

`mean_faithfulness_rank` (the leaderboard's aggregate) is the mean, over the faithfulness
families an explainer was ranked in, of its mean rank within the family: each family counts
once however many metrics it has (MIF, LIF and SRG are pixel flipping; ROAD's five outputs are
ROAD; comprehensiveness and sufficiency are ERASER; every other metric is its own family).
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


IDENTICAL_RELATIVE = 1e-9  # differences below this share of the metric's scale are rounding


def wilcoxon_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided paired Wilcoxon signed-rank p-value; 1 where the two are identical up to
    rounding, judged relative to the scores' own scale (infidelity of a linear model lives at
    1e-6..1e-9, where an absolute tolerance would call real differences equal)."""
    from scipy.stats import wilcoxon

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    diff = a - b
    scale = max(float(np.abs(a).max(initial=0.0)), float(np.abs(b).max(initial=0.0)))
    if len(diff) < 2 or np.all(np.abs(diff) <= IDENTICAL_RELATIVE * scale):
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


def per_sample(scores: pd.DataFrame, extra_keys: tuple[str, ...] = ()) -> pd.DataFrame:
    """One value per (task, model, explainer setting, metric setting, sample): the mean over the
    seeds where the metric is defined (NaN where it is defined for none)."""
    frame = scores.assign(metric_label=metric_labels(scores), explainer_label=explainer_labels(scores))
    if "family" not in frame.columns:  # runs written before families were recorded
        frame = frame.assign(family=frame["metric"])
    keys = ["task", "model", "explainer_label", "explainer", "params_hash", "metric_label",
            "metric", "category", "family", "higher_is_better", *extra_keys, "sample_id"]
    return (frame.groupby(keys, sort=True, dropna=False)
            .agg(value=("value", "mean"), seeds=("seed", "nunique"), correct=("correct", "first"))
            .reset_index())


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
        every = g["value"].to_numpy()
        values = every[~np.isnan(every)]
        low, high = bootstrap_ci(values)
        out.append(dict(zip(["task", "model", "explainer", "metric", "higher_is_better"], key),
                        mean=values.mean() if len(values) else np.nan,
                        std=values.std(ddof=1) if len(values) > 1 else 0.0,
                        ci_low=low, ci_high=high, n=len(values),
                        n_excluded=int(len(every) - len(values))))
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


# ------------------------------------------------------------------ queries for the report

CONTROLS = ("random", "edge")  # model-independent explainers every real method should beat


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


def stability_by_budget(scores: pd.DataFrame) -> pd.DataFrame:
    """The stability rows of a budget sweep (metric_params `budget_param`), per (task, model,
    explainer, budget parameter, budget value, measure): mean, 95% CI and n over samples."""
    rows = scores[scores["study"] == "stability"]
    if rows.empty:
        return pd.DataFrame()
    param = rows["metric_params"].map(lambda p: json.loads(p).get("budget_param"))
    rows = rows.assign(budget_param=param)[param.notna()]
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(budget=[json.loads(p).get(k) for p, k in zip(rows["params"], rows["budget_param"])])
    rows = rows.assign(seeds=rows["metric_params"].map(lambda p: len(json.loads(p).get("seeds") or [])))
    keys = ["task", "model", "explainer", "budget_param", "budget", "metric", "higher_is_better"]
    per = (rows.groupby(keys + ["sample_id"], sort=True)
           .agg(value=("value", "mean"), seeds=("seeds", "max")).reset_index())
    out = []
    for key, g in per.groupby(keys, sort=True):
        values = g["value"].to_numpy()
        low, high = bootstrap_ci(values)
        out.append(dict(zip(keys, key), mean=values.mean(), ci_low=low, ci_high=high, n=len(values),
                        seeds=int(g["seeds"].max())))
    return pd.DataFrame(out)


def agreement_pairs(scores: pd.DataFrame) -> pd.DataFrame:
    """The agreement study in long form with intervals: per (task, model, metric, explainer,
    other) the mean agreement over samples, its 95% bootstrap CI and n."""
    rows = scores[scores["study"] == "agreement"]
    if rows.empty:
        return pd.DataFrame()
    params = [json.loads(p) for p in rows["metric_params"]]
    rows = rows.assign(explainer=[p.get("self", e) for p, e in zip(params, rows["explainer"])],
                       other=[p.get("other") for p in params])
    keys = ["task", "model", "metric", "explainer", "other"]
    per = rows.groupby(keys + ["sample_id"], sort=True)["value"].mean().reset_index()
    out = []
    for key, g in per.groupby(keys, sort=True):
        values = g["value"].to_numpy()
        low, high = bootstrap_ci(values)
        out.append(dict(zip(keys, key), mean=values.mean(), ci_low=low, ci_high=high, n=len(values)))
    return pd.DataFrame(out)

"""The stability study's budget sweeps as tables: per budget (stability_budget.csv) and per step
between neighbouring budgets, paired over the same samples (stability_budget_steps.csv). The
findings, figure and page section that read them are in stability_results.py."""

from __future__ import annotations

import numpy as np
import pandas as pd

from explainbench.bench.present.stats import (ALPHA, PRECISION, aggregate, bootstrap_ci, holm,
                                              wilcoxon_p)
from explainbench.bench.store import decode_params, setting

KEYS = ["task", "model", "explainer", "budget_param", "budget", "metric", "higher_is_better"]
SWEEP = ["task", "model", "explainer", "budget_param", "metric", "higher_is_better"]


def budget_samples(scores: pd.DataFrame) -> pd.DataFrame:
    """The stability rows of a budget sweep (metric_params `budget_param`) as one value per
    (task, model, explainer, budget parameter, budget, measure, sample) with the seeds it was
    measured over, and the explainer settings behind each budget (`params_hash`, for costs)."""
    rows = scores[scores["study"] == "stability"]
    if rows.empty:
        return pd.DataFrame()
    param = pd.Series(setting(rows["metric_params"], "budget_param"), index=rows.index)
    rows = rows.assign(budget_param=param)
    swept = rows[param.notna()]
    if swept.empty:
        return pd.DataFrame()
    # the explainer's own setting is one more point of each of its sweeps, at its value of the
    # swept parameter (lime at its default 1,000 beside a sweep of 100 and 300); where a sweep
    # has that value too, both are the same explanations and count once per sample below
    group = ["task", "model", "explainer"]
    sweeps = swept[group + ["budget_param"]].drop_duplicates()
    own = rows[param.isna()].drop(columns="budget_param").merge(sweeps, on=group)
    rows = pd.concat([swept, own], ignore_index=True)
    params = [decode_params(p) for p in rows["params"]]
    return rows.assign(budget=[p.get(k) for p, k in zip(params, rows["budget_param"])],
                       seeds=[len(s or []) for s in setting(rows["metric_params"], "seeds")])


def by_budget(scores: pd.DataFrame, costs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per (task, model, explainer, budget parameter, budget value, measure): mean, 95% CI and n
    over samples, and the model evaluations an explanation took at that budget (costs.csv's
    mean): the one effort scale every sweep shares (n_samples, n_masks and Anchor's tau, whose
    smaller values cost more)."""
    rows = budget_samples(scores)
    if rows.empty:
        return pd.DataFrame()
    out = aggregate(_per_sample(rows), KEYS, extra={"seeds": lambda g: int(g["seeds"].max())})
    return out.merge(_passes(rows, costs), on=KEYS[:5], how="left")


def _per_sample(rows: pd.DataFrame) -> pd.DataFrame:
    return (rows.groupby(KEYS + ["sample_id"], sort=True)
            .agg(value=("value", "mean"), seeds=("seeds", "max")).reset_index())


def _passes(rows: pd.DataFrame, costs: pd.DataFrame | None) -> pd.DataFrame:
    """Mean forward passes per explanation per (task, model, explainer, budget parameter,
    budget), over every explanation costs.csv timed at that setting (NaN without costs)."""
    keys = KEYS[:5]
    settings = rows[keys + ["params_hash"]].drop_duplicates()
    if costs is None or costs.empty:
        return settings[keys].drop_duplicates().assign(forward_passes_per_explanation=np.nan)
    spent = (costs.groupby(["model", "explainer", "params_hash"])["forward_passes_per_explanation"]
             .mean().reset_index())
    return (settings.merge(spent, on=["model", "explainer", "params_hash"], how="left")
            .groupby(keys, sort=True)["forward_passes_per_explanation"].mean().reset_index())


def effort_order(g: pd.DataFrame) -> pd.DataFrame:
    """A sweep's rows from the least to the most effort: by forward passes per explanation where
    every setting has them (Anchor's tau: 0.5 before 0.15), else by the budget's value."""
    spent = g.get("forward_passes_per_explanation")
    if spent is not None and spent.notna().all():
        return g.sort_values(["forward_passes_per_explanation", "budget"])
    return g.sort_values("budget")


def steps(scores: pd.DataFrame, budget: pd.DataFrame) -> pd.DataFrame:
    """Per sweep and measure, each step from a budget to the next larger one (in effort order,
    `budget`'s rows): the mean over samples of the paired per-sample difference (the larger
    budget's value minus the smaller's), its 95% bootstrap interval and n, the two-sided paired
    Wilcoxon p Holm-adjusted over the sweep's steps, and whether the step separates the two
    budgets: the interval excludes 0 and the adjusted p is below ALPHA. Paired because every
    budget explains the same samples: the per-budget intervals of stability_budget.csv carry the
    spread between samples, which the difference does not."""
    if budget.empty:
        return pd.DataFrame()
    values = _per_sample(budget_samples(scores)).set_index(KEYS + ["sample_id"])["value"]
    out = []
    for key, g in budget.groupby(SWEEP, sort=True):
        order = list(effort_order(g)["budget"])
        sweep = values.xs(key, level=SWEEP)  # indexed by (budget, sample_id)
        rows = []
        for low, high in zip(order, order[1:]):
            a, b = sweep.xs(low, level="budget"), sweep.xs(high, level="budget")
            a, b = a.align(b, join="inner")
            keep = ~(np.isnan(a.to_numpy()) | np.isnan(b.to_numpy()))
            a, b = a.to_numpy()[keep], b.to_numpy()[keep]
            change = b - a
            # the same number to the precision it was computed in is no change (stats.PRECISION)
            change[np.abs(change) <= PRECISION * np.maximum(np.abs(a), np.abs(b))] = 0.0
            ci_low, ci_high = bootstrap_ci(change)
            rows.append(dict(zip(SWEEP, key), from_budget=low, to_budget=high,
                             mean_difference=change.mean() if len(a) else np.nan,
                             ci_low=ci_low, ci_high=ci_high, n=len(a), p=wilcoxon_p(b, a)))
        for row, adjusted in zip(rows, holm([r.pop("p") for r in rows]) if rows else []):
            row["p_holm"] = adjusted
            row["separated"] = bool(adjusted < ALPHA and (row["ci_low"] > 0 or row["ci_high"] < 0))
        out += rows
    return pd.DataFrame(out)

"""The leaderboards and the tables over every scored explainer: queries over the tidy rows of
scores.parquet (statistics: bench/present/stats.py; the studies' own tables live with each study).

A NaN score is a sample the metric is undefined for (e.g. faithfulness correlation where the
output never changes): it is excluded from the means and counted in `n_excluded`.
"Significantly different from the best" is a paired Wilcoxon signed-rank test over the samples
both explainers scored, Holm-corrected across the explainers compared within one metric.

`mean_faithfulness_rank` (the leaderboard's aggregate) is the mean, over the faithfulness
families an explainer was ranked in, of its mean rank within the family: each family counts
once however many metrics it has (MIF, LIF and SRG are pixel flipping; ROAD's five outputs are
ROAD; comprehensiveness and sufficiency are ERASER; every other metric is its own family), and
families that measure the same thing on a task are one (`measurement_families`: on text,
deletion and MIF are one curve, so deletion and pixel flipping count once).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from explainbench.bench.present.stats import (ALPHA, CONTROLS, FLOOR, bootstrap_ci, holm,
                                              metric_labels, per_sample, precision_ranks,
                                              wilcoxon_p)

from explainbench.core.tasks import TASKS  # noqa: E402  (light: no model code)

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
    ties = tied_shares(scores)
    lb_rows = scores[(scores["study"] == "scores") & scores["category"].isin(LEADERBOARD_CATEGORIES)]
    boards = {}
    for (task, model), group in samples.groupby(["task", "model"], sort=True):
        rows = []
        for (metric_label, higher), m in group.groupby(["metric_label", "higher_is_better"], sort=True):
            rows += _metric_rows(m, metric_label, bool(higher))
        board = pd.DataFrame(rows)
        scored = lb_rows[(lb_rows["task"] == task) & (lb_rows["model"] == model)]
        modality = TASKS[task].modality if task in TASKS else "image"
        board["family"] = board["family"].map(measurement_families(scored, board, modality))
        board = board.merge(mean_faithfulness_rank(board), on="explainer", how="left")
        if ties is not None:
            mine = ties[(ties["task"] == task) & (ties["model"] == model)]
            board = board.merge(mine[["explainer", "tied_share"]], on="explainer", how="left")
        if cost is not None:
            board = board.merge(cost[cost["model"] == model].drop(columns="model"),
                                on=["explainer_name", "params_hash"], how="left")
        board.insert(0, "model", model)
        board.insert(0, "task", task)
        boards[(task, model)] = board.sort_values(["metric", "rank", "explainer"]).reset_index(drop=True)
    return boards


def tied_shares(scores: pd.DataFrame) -> pd.DataFrame | None:
    """Per (task, model, explainer label): the mean over samples of the share of its features in
    the largest group of equal values (only a random tie-break orders them: metrics/ordering.py),
    from the scores cells' `tied_feature_share` rows; None for runs without them."""
    rows = scores[(scores["study"] == "scores") & (scores["category"] == "ties")]
    if rows.empty:
        return None
    samples = per_sample(rows)
    return (samples.groupby(["task", "model", "explainer_label"])["value"].mean()
            .rename("tied_share").reset_index().rename(columns={"explainer_label": "explainer"}))


def measurement_families(scores: pd.DataFrame, board: pd.DataFrame, modality: str) -> dict[str, str]:
    """{family: the family it is counted as}: families joined where two of their metrics evaluate
    the same removal curve on this modality (metrics/removal.py: `measurements`). On text,
    deletion and MIF both remove words by decreasing attribution into [MASK], so deletion and
    pixel flipping become one family, `deletion+pixel_flipping`: one curve counts once in the
    mean rank and in "beats the controls on half of the families"."""
    from explainbench.bench.store import decode_params
    from explainbench.metrics.removal import measurements

    labelled = scores.assign(metric_label=metric_labels(scores)).drop_duplicates("metric_label")
    curves = {r.metric_label: measurements(r.metric, decode_params(r.metric_params), modality)
              for r in labelled.itertuples()}
    family_of = dict(zip(board["metric"], board["family"]))
    parent = {f: f for f in family_of.values()}

    def root(f):
        while parent[f] != f:
            f = parent[f]
        return f

    metrics_ = sorted(m for m in family_of if curves.get(m))
    for i, a in enumerate(metrics_):
        for b in metrics_[i + 1:]:
            if curves[a] & curves[b]:
                fa, fb = root(family_of[a]), root(family_of[b])
                parent[max(fa, fb)] = min(fa, fb)
    groups: dict[str, list[str]] = {}
    for f in parent:
        groups.setdefault(root(f), []).append(f)
    return {f: "+".join(sorted(groups[root(f)])) for f in parent}


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
    ranks = precision_ranks(means, wide, higher)
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
            # + 0.0: the floor against itself is 0, not -0
            better_than_floor_by=sign * (row["mean"] - stats[floor]["mean"]) + 0.0 if floor else np.nan,
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


AGREE_ENOUGH = 0.5  # Kendall's W at or above which the faithfulness families' rankings agree


def family_ranks(board: pd.DataFrame) -> pd.DataFrame:
    """Explainers x faithfulness families: each explainer's mean rank within each family (the
    explainers every family ranked)."""
    faith = board[board["category"] == "faithfulness"]
    return faith.groupby(["explainer", "family"])["rank"].mean().unstack("family").dropna()


def kendall_w(ranks: pd.DataFrame) -> float:
    """Kendall's coefficient of concordance of the columns' rankings of the rows (each column
    re-ranked 1..n, ties averaged, with the tie correction): 1 when every family ranks the
    explainers alike, 0 when their rankings cancel out."""
    from scipy.stats import rankdata

    n, m = ranks.shape
    if n < 2 or m < 2:
        return np.nan
    r = np.column_stack([rankdata(ranks[c]) for c in ranks.columns])
    s = ((r.sum(axis=1) - m * (n + 1) / 2) ** 2).sum()
    ties = sum(((counts ** 3) - counts).sum()
               for counts in (np.unique(r[:, j], return_counts=True)[1] for j in range(m)))
    denominator = m * m * (n ** 3 - n) - m * ties
    return float(12 * s / denominator) if denominator > 0 else np.nan


def metric_agreement(boards: dict) -> pd.DataFrame:
    """metric_agreement.csv, per (task, model): how much the faithfulness families agree on the
    explainers' order (LATEC, NeurIPS 2024, warns that metric conflicts make an aggregate rank
    unreliable). Rows by `measure`:
      kendall_w      over every family (family "all"), with n explainers and m families
      spearman       between two families' rankings (family, other)
      rank_without   the mean-rank place of each of the three leading explainers with one
                     family left out (family: the one left out; explainer; value: its place)"""
    from scipy.stats import spearmanr

    out = []
    for (task, model), board in boards.items():
        ranks = family_ranks(board)
        if ranks.shape[1] < 2 or len(ranks) < 2:
            continue
        out.append(dict(task=task, model=model, measure="kendall_w", family="all", other="",
                        explainer="", value=kendall_w(ranks), n=len(ranks), m=ranks.shape[1]))
        families = list(ranks.columns)
        for i, a in enumerate(families):
            for b in families[i + 1:]:
                rho = spearmanr(ranks[a], ranks[b]).statistic
                out.append(dict(task=task, model=model, measure="spearman", family=a, other=b,
                                explainer="", value=float(rho), n=len(ranks), m=2))
        overall = ranks.mean(axis=1).rank(method="min")
        leaders = list(overall.sort_values(kind="stable").index[:3])
        for left in families:
            without = ranks.drop(columns=left).mean(axis=1).rank(method="min")
            for e in leaders:
                out.append(dict(task=task, model=model, measure="rank_without", family=left,
                                other="", explainer=e, value=float(without[e]), n=len(ranks),
                                m=ranks.shape[1] - 1))
    return pd.DataFrame(out)

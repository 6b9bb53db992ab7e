"""Statistics over the tidy rows of scores.parquet: what every table, finding and figure of the
report and of the studies computes its numbers with.

Statistics are over samples, the unit of independence: a stochastic explainer's seeds are first
averaged per sample (`per_sample`), so n counts samples and the spread mixes no seed noise into
the sample variation. A NaN score is a sample the metric is undefined for: excluded from the means
and counted. Confidence intervals are 95% percentile bootstraps over samples (2,000 resamples,
fixed seed, so a table is a deterministic function of the scores). "Significantly different" is a
paired Wilcoxon signed-rank test over the samples both explainers scored, Holm-corrected across the
explainers compared.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from explainbench.bench.store import decode_params

BOOTSTRAP_RESAMPLES = 2000
ALPHA = 0.05
FLOOR = "random"  # the control every explainer must beat
CONTROLS = ("random", "edge")  # model-independent explainers every real method should beat


def bootstrap_ci(values: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0):
    """95% percentile bootstrap interval of the mean (vectorised)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return np.nan, np.nan
    if len(values) == 1:
        return values[0], values[0]
    low, high = bootstrap_band(values, resamples, seed)
    return float(low), float(high)


def bootstrap_band(values: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0):
    """(low, high): the 95% percentile bootstrap interval of the mean over the first axis, for
    every column at once (curves (n, steps) give a band per step), from one set of resamples."""
    values = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    return np.percentile(means, 2.5, axis=0), np.percentile(means, 97.5, axis=0)


def aggregate(samples: pd.DataFrame, keys: list[str], names: list[str] | None = None, *,
              spread: bool = False, extra: dict | None = None) -> pd.DataFrame:
    """The one way a table summarises per-sample values: per group of `keys` (columns renamed to
    `names`), the mean over the samples where the value is defined, its 95% bootstrap interval and
    n; with `spread`, also the standard deviation and the samples excluded (NaN: undefined);
    `extra` adds {column: function of the group's rows}. `samples` holds one `value` per sample
    and group (see `per_sample`), so n counts samples, the unit of independence."""
    out = []
    for key, g in samples.groupby(keys, sort=True):
        every = g["value"].to_numpy(dtype=np.float64)
        values = every[~np.isnan(every)]
        low, high = bootstrap_ci(values)
        row = dict(zip(names or keys, key if isinstance(key, tuple) else (key,)))
        row["mean"] = values.mean() if len(values) else np.nan
        if spread:
            row["std"] = values.std(ddof=1) if len(values) > 1 else 0.0
        row.update(ci_low=low, ci_high=high, n=len(values))
        if spread:
            row["n_excluded"] = int(len(every) - len(values))
        for column, function in (extra or {}).items():
            row[column] = function(g)
        out.append(row)
    return pd.DataFrame(out)


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


# Scores are computed from float32 maps and model outputs, and some maps are differences of
# float32 logits (feature ablation, occlusion: f(x) - f(x'), which loses the logit's leading
# digits), so one map computed along two paths agrees only to about 1e-5 relative, and so do its
# scores: on mnist_logreg, feature_ablation's and deeplift's maps both equal W·x, and their
# per-sample scores differ by up to 2.5e-6 (faithfulness correlation) and 3.8e-6 (infidelity)
# relative. Values within 2^-14 of each other, relative, are the same number; explainers that
# differ do so by far more on some sample.
PRECISION = 2.0**-14  # ~6.1e-5 relative


def equal_to_precision(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two paired score vectors agree, sample by sample, to the precision they were
    computed in (relative to each pair's own size, so infidelity's 1e-9 scale is judged as
    finely as a probability's). Such explainers share a rank and are never "different"."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = np.maximum(np.abs(a), np.abs(b))
    return bool(np.all(np.abs(a - b) <= PRECISION * scale))


def smallest_wilcoxon_p(n: int) -> float:
    """The smallest two-sided p an exact Wilcoxon signed-rank test can give with n pairs: every
    difference of one sign, 2 / 2**n."""
    return min(1.0, 2.0 ** (1 - n)) if n >= 1 else 1.0


def wilcoxon_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided paired Wilcoxon signed-rank p-value; 1 where the two agree to precision
    (`equal_to_precision`) or there are fewer than two pairs."""
    from scipy.stats import wilcoxon

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2 or equal_to_precision(a, b):
        return 1.0
    return float(wilcoxon(a, b, zero_method="zsplit").pvalue)


def precision_ranks(means: pd.Series, wide: pd.DataFrame, higher: bool) -> pd.Series:
    """Competition ranks (1, 1, 3, ...) by mean, where an explainer whose mean equals, or whose
    paired per-sample scores agree to precision with, the one ranked just before it shares its
    rank."""
    order = means.sort_values(ascending=not higher, kind="stable").index
    ranks, previous = {}, None
    for place, label in enumerate(order, start=1):
        if previous is not None:
            both = wide[[previous, label]].dropna()
            if means[label] == means[previous] or (
                    len(both) and equal_to_precision(both[previous], both[label])):
                ranks[label] = ranks[previous]
                previous = label
                continue
        ranks[label] = place
        previous = label
    return pd.Series(ranks).reindex(means.index)


def _setting_labels(scores: pd.DataFrame, name_col: str, params_col: str) -> pd.Series:
    """`name` where a name runs with one setting on a task, else `name[k=v,...]` naming the
    parameters that differ between its settings."""
    labels = pd.Series(scores[name_col], index=scores.index, dtype=object)
    for (_, name), group in scores.groupby(["task", name_col]):
        settings = group[params_col].unique()
        if len(settings) < 2:
            continue
        parsed = {s: decode_params(s) for s in settings}
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

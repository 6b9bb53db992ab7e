"""explanation_styles.csv: the six explanation styles of Jeyakumar et al. 2020 side by side (the
`explanation-styles` suite): for each style, its run-to-run stability, its faithfulness, its rule
precision and coverage, and explanation by example's own scores.

One row per (task, model, style, measure): the mean over samples, a 95% percentile bootstrap
interval over samples (bench.tables.bootstrap_ci: 2,000 resamples, fixed seed) and the number of
samples n. A stochastic explainer's scores are averaged over its seeds per sample first, as on
the leaderboard; a stability measure is one value per sample computed across the seeds.

Measures: the stability study's (`stability_spearman`, `_topk`, `_sign`, `_cv`, and
`stability_jaccard` of the chosen features or example ids), every faithfulness metric the suite
scores, `rule_precision` / `rule_coverage` (and Anchor's own `anchor_precision`,
`anchor_coverage`, `anchor_size`), and the `example_*` scores. Stability rows of a budget sweep
are left out: the table compares the styles at the settings the experiment gives them. A style
that two explainers of a run implement (lime and lime_batched) is named with the explainer,
`LIME (lime_batched)`.
"""

from __future__ import annotations

import json

import pandas as pd

# explainer -> the style it implements, in the order the table lists them
STYLES = {
    "lime": "LIME", "lime_batched": "LIME",
    "anchor": "Anchor",
    "kernel_shap": "SHAP (kernel)", "kernel_shap_batched": "SHAP (kernel)",
    "shap_kernel": "SHAP (kernel)",
    "shap_partition": "SHAP (partition)",
    "saliency": "saliency",
    "grad_cam_pp": "Grad-CAM++",
    "nearest_examples": "explanation by example",
}
ORDER = list(dict.fromkeys(STYLES.values()))
CATEGORIES = ("stability", "faithfulness", "rules", "examples")
COLUMNS = ["task", "model", "style", "measure", "mean", "ci_low", "ci_high", "n"]


def _not_swept(rows: pd.DataFrame) -> pd.Series:
    return rows["metric_params"].map(lambda p: json.loads(p).get("budget_param") is None)


def table(scores: pd.DataFrame) -> pd.DataFrame:
    """explanation_styles.csv (COLUMNS); empty when the run scored none of the styles."""
    from explainbench.bench import tables

    rows = scores[scores["explainer"].isin(list(STYLES)) & scores["category"].isin(CATEGORIES)
                  & scores["study"].isin(["scores", "stability"])]
    stability = rows[rows["study"] == "stability"]
    stability = stability[_not_swept(stability)].assign(metric_params="{}")  # seeds, k: no setting
    rows = pd.concat([rows[rows["study"] == "scores"], stability])
    if rows.empty:
        return pd.DataFrame(columns=COLUMNS)
    samples = tables.per_sample(rows)
    shared = samples.groupby(["task", "model"])["explainer_label"].apply(
        lambda labels: pd.Series([STYLES[n.split("[")[0]] for n in labels.unique()]).value_counts())
    out = []
    for (task, model, label, name, measure), g in samples.groupby(
            ["task", "model", "explainer_label", "explainer", "metric_label"], sort=True):
        style = STYLES[name]
        if shared.get((task, model, style), 1) > 1:
            style = f"{style} ({label})"
        values = g["value"].to_numpy()
        low, high = tables.bootstrap_ci(values)
        out.append({"task": task, "model": model, "style": style, "measure": measure,
                    "mean": values.mean(), "ci_low": low, "ci_high": high, "n": len(values),
                    "_order": ORDER.index(STYLES[name])})
    frame = pd.DataFrame(out).sort_values(["task", "model", "_order", "style", "measure"])
    return frame[COLUMNS].reset_index(drop=True)

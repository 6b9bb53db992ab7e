"""explanation_styles.csv: the six explanation styles of Jeyakumar et al. 2020 side by side (the
`explanation-styles` suite): for each style, its run-to-run stability, its faithfulness, its rule
precision and coverage, and explanation by example's own scores.

One row per (task, model, style, measure): the mean over samples, a 95% percentile bootstrap
interval over samples (bench/present/stats.py: 2,000 resamples, fixed seed) and the number of
samples n. A stochastic explainer's scores are averaged over its seeds per sample first, as on
the leaderboard; a stability measure is one value per sample computed across the seeds.

Measures: the stability study's (`stability_spearman`, `_topk`, `_sign`, `_cv`, and
`stability_jaccard` of the chosen features or example ids), every faithfulness metric the suite
scores, `rule_precision` / `rule_coverage` (and Anchor's own `anchor_precision`,
`anchor_coverage`, `anchor_size`), and the `example_*` scores. Stability rows of a budget sweep
are left out: the table compares the styles at the settings the experiment gives them. A style
that two explainers of a run implement (lime and lime_batched) is named with the explainer,
`LIME (lime_batched)`. The finding on it ("are LIME and Anchor the least stable styles?") is
here too; the stability study declares both (stability.py's REPORT).
"""

from __future__ import annotations

import pandas as pd

from explainbench.bench.present.finding import Finding, direction, interval, names, num, primary_measure
from explainbench.bench.store import setting

# explainer -> the style it implements, in the order the table lists them
STYLES = {
    "lime": "LIME", "lime_batched": "LIME",
    "anchor": "Anchor",
    "kernel_shap": "SHAP (kernel)", "kernel_shap_batched": "SHAP (kernel)",
    "shap_kernel": "SHAP (kernel)",
    "shap_gradient": "SHAP (gradient)",  # Jeyakumar et al.'s SHAP for images (GradientExplainer)
    "shap_partition": "SHAP (partition)",
    "saliency": "saliency",
    "grad_cam_pp": "Grad-CAM++",
    "nearest_examples": "explanation by example",
}
ORDER = list(dict.fromkeys(STYLES.values()))
CATEGORIES = ("stability", "faithfulness", "rules", "examples")
COLUMNS = ["task", "model", "style", "measure", "mean", "ci_low", "ci_high", "n"]


def _not_swept(rows: pd.DataFrame) -> list[bool]:
    return [p is None for p in setting(rows["metric_params"], "budget_param")]


def table(scores: pd.DataFrame) -> pd.DataFrame:
    """explanation_styles.csv (COLUMNS); empty when the run scored none of the styles."""
    from explainbench.bench.present.stats import aggregate, per_sample

    rows = scores[scores["explainer"].isin(list(STYLES)) & scores["category"].isin(CATEGORIES)
                  & scores["study"].isin(["scores", "stability"])]
    stability = rows[rows["study"] == "stability"]
    stability = stability[_not_swept(stability)].assign(metric_params="{}")  # seeds, k: no setting
    rows = pd.concat([rows[rows["study"] == "scores"], stability])
    if rows.empty:
        return pd.DataFrame(columns=COLUMNS)
    samples = per_sample(rows)
    shared = samples.groupby(["task", "model"])["explainer_label"].apply(
        lambda labels: pd.Series([STYLES[n.split("[")[0]] for n in labels.unique()]).value_counts())
    keys = ["task", "model", "explainer_label", "explainer", "metric_label"]
    frame = aggregate(samples, keys, ["task", "model", "label", "name", "measure"])

    def style(r) -> str:
        own = STYLES[r["name"]]
        return f"{own} ({r['label']})" if shared.get((r["task"], r["model"], own), 1) > 1 else own

    frame = frame.assign(style=frame.apply(style, axis=1),
                         _order=frame["name"].map(lambda n: ORDER.index(STYLES[n])))
    frame = frame.sort_values(["task", "model", "_order", "style", "measure"])
    return frame[COLUMNS].reset_index(drop=True)


Q_STYLES = "Are LIME and Anchor the least stable explanation styles?"


def _style_key(style: str) -> str:
    """'LIME', 'LIME (lime_batched)', 'lime' -> 'lime': the style a row is, for the claim."""
    return str(style).split("[")[0].split(" (")[0].strip().lower()


def _verdict(rows: pd.DataFrame, who: str, higher: bool, ci: bool) -> tuple[str, str]:
    """(sentence, short) on "LIME and Anchor are the two least stable styles", from the rows of
    one stability measure sorted least stable first. Judged only where both and a third style
    were measured; decided only where the intervals say so (one style is less stable than
    another when its whole interval lies on the worse side of the other's)."""
    keys = [_style_key(s) for s in rows[who]]
    if not {"lime", "anchor"} <= set(keys) or len(set(keys)) < 3:
        return (f"The published claim cannot be judged here: it sets LIME and Anchor against the "
                f"other styles, and this table measures {names(sorted(set(keys)))}.", "not judged")

    def below(r, s) -> bool:  # r less stable than s, beyond their intervals
        return bool(r["ci_high"] < s["ci_low"]) if higher else bool(r["ci_low"] > s["ci_high"])

    claimed = [r for (_, r), k in zip(rows.iterrows(), keys) if k in ("lime", "anchor")]
    others = [r for (_, r), k in zip(rows.iterrows(), keys) if k not in ("lime", "anchor")]
    two = sorted(list(dict.fromkeys(keys))[:2])  # the two least stable styles (lime_batched is LIME)
    if set(two) == {"lime", "anchor"}:
        if not ci or all(below(c, o) for c in claimed for o in others):
            return "The published claim holds here: LIME and Anchor are the two least stable.", "holds"
        close = next(o for o in others if not all(below(c, o) for c in claimed))
        return (f"LIME and Anchor are the two least stable by their means, as published, but their "
                f"intervals overlap with {close[who]}'s: not decided at this sample size.", "undecided")
    if not ci or any(below(o, c) for o in others for c in claimed):
        return (f"The published claim does not hold here: the two least stable are "
                f"{names(two)}.", "does not hold")
    return (f"By their means the two least stable are {names(two)}, not LIME and Anchor, but the "
            f"intervals overlap: the published claim is not decided at this sample size.", "undecided")


def findings(folder) -> list[Finding]:
    """Reads the explanation-styles table (explanation_styles.csv, `table` above: task,
    model, style, measure, mean, ci_low, ci_high, n) or any other *styles*.csv in that long
    format (a `metric` column in place of `measure`, `explainer` in place of `style`), one finding
    per (task, model)."""
    run_dir = folder.root
    paths = sorted(p for p in run_dir.rglob("*styles*.csv"))
    out = []
    for path in paths:
        table = folder.table(path.relative_to(run_dir).as_posix())
        if "measure" in table.columns and "metric" not in table.columns:
            table = table.rename(columns={"measure": "metric"})
        who = "style" if "style" in table.columns else "explainer"
        if not {who, "metric", "mean"} <= set(table.columns) or table.empty:
            continue
        scope = [c for c in ("task", "model") if c in table.columns] or (
            ["modality"] if "modality" in table.columns else [])
        for key, g in (table.groupby(scope, sort=True) if scope else [("", table)]):
            key = " ".join(map(str, key)) if isinstance(key, tuple) else key
            stab = g[g["metric"].astype(str).str.contains("stability")]
            if stab.empty:
                continue
            lead = primary_measure(stab["metric"])
            rows = stab[stab["metric"] == lead]
            higher = (bool(rows["higher_is_better"].iloc[0]) if "higher_is_better" in rows
                      else not lead.endswith("_cv"))  # the coefficient of variation: lower
            rows = rows.sort_values("mean", ascending=higher)
            ci = {"ci_low", "ci_high"} <= set(rows.columns)
            listed = [f"{r[who]} " + (interval(r["mean"], r["ci_low"], r["ci_high"]) if ci else num(r["mean"]))
                      for _, r in rows.iterrows()]
            verdict, short = _verdict(rows, who, higher, {"ci_low", "ci_high"} <= set(rows.columns))
            text = (f"From least to most stable by {lead} across seeds ({direction(higher)}): "
                    f"{names(listed, 10)}. {verdict}")
            out.append(Finding("styles", Q_STYLES, text, path.relative_to(run_dir).as_posix(),
                               str(key), str(key), short=short))
    if not out:
        out.append(Finding("styles", Q_STYLES, "This run has no data for this question: it has no "
                           "explanation-styles table (the explanation-styles suite).", "*styles*.csv"))
    return out

"""The agreement study's report on Jain & Wallace 2019 ("Attention is not Explanation"): their
Kendall tau between attention, gradient importance (`jw_gradient`) and leave-one-out
(`leave_one_out`) per review, set beside their own numbers, and their permutation test
(attention_permutation.csv). The rows come from the agreement study (`measures: [kendall]`,
`permutations: N`); this module only reads them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from explainbench.bench.present.finding import Finding, interval, names, num

# Their published numbers for IMDB with the BiLSTM and tanh attention, from their repository
# (github.com/successar/AttentionExplanation, graph_outputs/*/imdb+lstm+tanh.csv): mean and
# standard deviation over test reviews of Kendall's tau (scipy's tau-b), and the model's accuracy
# (graph_outputs/evaluate/imdb+lstm+tanh.json). The paper's Table 2 rounds the first to 0.44.
SOURCE = "Jain & Wallace 2019, github.com/successar/AttentionExplanation graph_outputs"
THEIRS = {  # (our pair of explainers) -> (their mean, their sd, their file)
    ("attention", "jw_gradient"): (0.437, 0.061, "GradientPval_kendalltau"),
    ("attention", "leave_one_out"): (0.341, 0.070, "CorrStats_kendalltau (ag)"),
    ("jw_gradient", "leave_one_out"): (0.517, 0.100, "CorrStats_kendalltau (gl)"),
}
THEIR_ACCURACY = 0.898
PERMUTATION = "attention_permutation"
Q = "Is attention an explanation? Jain & Wallace 2019 reproduced"
SMALL_CHANGE = 0.05  # a permutation that moves p by less than this leaves the decision alone


def permutation_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Per (task, model): over reviews, the per-review median |p_permuted - p| (mean with its
    interval, median, share below SMALL_CHANGE) and the permutations per review."""
    from explainbench.bench.present.stats import aggregate
    from explainbench.bench.store import setting

    rows = scores[(scores["study"] == "agreement") & (scores["metric"] == PERMUTATION)]
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(permutations=setting(rows["metric_params"], "permutations"))
    per = rows.groupby(["task", "model", "permutations", "sample_id"], sort=True)["value"] \
        .mean().reset_index()
    return aggregate(per, ["task", "model", "permutations"], extra={
        "median": lambda g: float(np.median(g["value"])),
        f"share_below_{SMALL_CHANGE}": lambda g: float((g["value"] < SMALL_CHANGE).mean()),
    })


def _pair(pairs: pd.DataFrame, a: str, b: str):
    hit = pairs[((pairs["explainer"] == a) & (pairs["other"] == b))
                | ((pairs["explainer"] == b) & (pairs["other"] == a))]
    return hit.iloc[0] if len(hit) else None


def findings(folder) -> list[Finding]:
    pairs = folder.table("agreement_pairs.csv")
    if pairs.empty:
        return []
    permuted = folder.table("attention_permutation.csv")
    out = []
    kendall = pairs[pairs["metric"].isin(["agreement_kendall", "agreement_kendall_abs"])]
    for (task, model), both in kendall.groupby(["task", "model"], sort=True):
        # attention, jw_gradient and leave_one_out are unsigned: both variants give them the
        # same tau; against signed maps only the magnitudes' (_abs) compare like with like
        signed = both[both["metric"] == "agreement_kendall"]
        g = signed if len(signed) else both
        magnitudes = both[both["metric"] == "agreement_kendall_abs"]
        main = _pair(g, "attention", "jw_gradient")
        if main is None:
            continue
        lines = [f"Kendall τ between attention and gradients (|∂p/∂e · e|, attention held "
                 f"constant) on {model}, over n = {int(main['n'])} reviews: ours "
                 f"{interval(main['mean'], main['ci_low'], main['ci_high'])}, Jain & Wallace "
                 f"{THEIRS[('attention', 'jw_gradient')][0]:.2f} (sd "
                 f"{THEIRS[('attention', 'jw_gradient')][1]:.3f} over their reviews)."]
        others = []
        for (a, b), (mean, sd, _) in THEIRS.items():
            hit = _pair(g, a, b)
            if (a, b) != ("attention", "jw_gradient") and hit is not None:
                others.append(f"{a} against {b}: ours {interval(hit['mean'], hit['ci_low'], hit['ci_high'])}, "
                              f"theirs {mean:.2f}")
        if others:
            lines.append("; ".join(others).capitalize() + ".")
        lines.append(_verdict(g))
        details = []
        if len(permuted) and ((permuted["task"] == task) & (permuted["model"] == model)).any():
            p = permuted[(permuted["task"] == task) & (permuted["model"] == model)].iloc[0]
            details.append(
                f"Permuting the attention weights over the words ({int(p['permutations'])} "
                f"permutations a review) moves the predicted probability by a median "
                f"{num(p['median'])} (mean {interval(p['mean'], p['ci_low'], p['ci_high'])}); "
                f"for {num(100 * p[f'share_below_{SMALL_CHANGE}'])} % of the reviews by less "
                f"than {SMALL_CHANGE} (Jain & Wallace: for most IMDB reviews the output barely "
                "moves).")
        details += _relations(magnitudes if len(magnitudes) else g, magnitude=len(magnitudes) > 0)
        details.append(
            "Why ours may differ: the embedding is trained from scratch here (theirs starts from "
            "pretrained vectors), on our tokenizer and our slice of the test split (theirs: "
            "4,356 reviews), [CLS] in place of their <SOS> and no <EOS>, rows padded not packed; "
            f"their model's accuracy was {THEIR_ACCURACY}, ours is on its model card.")
        out.append(Finding("jain_wallace", Q, " ".join(lines), "agreement_pairs.csv", task, model,
                           short=f"τ(attention, gradients) {num(main['mean'])} vs "
                                 f"{THEIRS[('attention', 'jw_gradient')][0]:.2f}",
                           details=tuple(details)))
    return out


def _verdict(g: pd.DataFrame) -> str:
    hit = _pair(g, "attention", "jw_gradient")
    theirs = THEIRS[("attention", "jw_gradient")][0]
    if hit["ci_high"] < theirs:
        return (f"Our interval lies below their {theirs:.2f}: attention agrees with gradients "
                "even less here.")
    if hit["ci_low"] > theirs:
        return (f"Our interval lies above their {theirs:.2f}: attention agrees with gradients "
                "more here, yet still far from 1.")
    return f"Our interval holds their {theirs:.2f}: the reproduction agrees."


def _relations(g: pd.DataFrame, magnitude: bool = False) -> list[str]:
    """How every other explainer ranks tokens against attention and against leave-one-out (the
    closest to what the model uses: the output without the token), and attention rollout;
    `magnitude`: the maps' absolute values were compared (signed maps against unsigned ones)."""
    out = []
    what = "Kendall τ of |map|" if magnitude else "Kendall τ"
    everyone = sorted(set(g["explainer"]) | set(g["other"]))
    for anchor in ("leave_one_out", "attention"):
        if anchor not in everyone:
            continue
        found = [(e, _pair(g, anchor, e)) for e in everyone if e != anchor]
        found = sorted([(e, h) for e, h in found if h is not None], key=lambda x: -x[1]["mean"])
        if found:
            n = int(min(h["n"] for _, h in found))
            out.append(f"{what} with {anchor} (n = {n} reviews), highest first: " + names(
                [f"{e} {interval(h['mean'], h['ci_low'], h['ci_high'])}" for e, h in found],
                limit=12) + ".")
    return out

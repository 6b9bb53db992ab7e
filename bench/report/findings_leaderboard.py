"""The findings read off the leaderboards beyond the most faithful explainer: the metrics that
cannot tell real explainers from the random control, the explainers whose ranks rest on their
ties, the logistic model's exact attributions, and the explainers a model does not support. See
findings.py for what a finding is and the order they are shown in."""

from __future__ import annotations

import pandas as pd

from explainbench.bench.present.finding import (Finding, base_name, direction, faithfulness_rows,
                                                interval, is_control, names, num)
from explainbench.bench.present.stats import ALPHA, FLOOR as FLOOR_NAME, smallest_wilcoxon_p


Q_SEPARATE = "Which metrics cannot tell the real explainers from the random control?"
Q_UNSUPPORTED = "Which explainers does a model not support, and why?"


def separation(boards: dict, versus: pd.DataFrame) -> list[Finding]:
    """Metrics on which at most half of the real explainers beat the random control (paired
    Wilcoxon, Holm): there the metric, not the explainers, may be what the ranking measures."""
    out = []
    for (task, model), _ in boards.items():
        rows = versus[(versus["task"] == task) & (versus["model"] == model)
                      & (versus["control"] == FLOOR_NAME)] if len(versus) else versus
        if rows.empty:
            continue
        # where no Holm-corrected test can be significant at this n, the intervals decide
        n = int(rows["n"].min()) if "n" in rows else 0
        testable = smallest_wilcoxon_p(n) * rows.groupby("metric").size().max() < ALPHA if n else True
        weak = []
        for metric, m in rows.groupby("metric", sort=True):
            better = m["better"] if testable else m["diff_ci_low"] > 0
            worse = m["worse"] if testable else m["diff_ci_high"] < 0
            if int(better.sum()) * 2 <= len(m):
                weak.append(f"{metric} ({int(better.sum())} of {len(m)} better, {int(worse.sum())} worse)")
        source = "versus_controls.csv"
        how = ("Holm-corrected" if testable else f"by the 95% interval of the paired difference: "
               f"no corrected test can be significant with n = {n}")
        if weak:
            text = (f"On {len(weak)} metrics at most half of the real explainers beat the random "
                    f"control ({how}): {names(weak, 8)}. Their rankings say little about the "
                    "explainers here: the metric barely tells a map from noise.")
        else:
            text = "On every metric most real explainers beat the random control."
        out.append(Finding("separation", Q_SEPARATE, text, source, task, model,
                           short=f"{len(weak)} metrics" if weak else "none"))
    return out


def unsupported(manifest: dict) -> list[Finding]:
    pairs = manifest.get("unsupported") or []
    by_model: dict[str, list[str]] = {}
    for p in pairs:
        by_model.setdefault(p["model"], []).append(f"{p['explainer']} ({p['reason']})")
    return [Finding("unsupported", Q_UNSUPPORTED,
                    f"Left out of {model}'s leaderboard: {names(sorted(set(items)), 8)}.",
                    "manifest.json", "", model) for model, items in sorted(by_model.items())]


Q_EXAMPLES = "Do the explanation-by-example scores tell examples apart on each model?"
FLAT = 1e-3  # a similarity whose spread over samples is below this does not discriminate


def examples(boards: dict) -> list[Finding]:
    """Where the examples' similarity hardly varies (cosine of uncentred [CLS] states on the
    transformer: 0.99994 +- 0.00004), the similarity says nothing about the examples; where no
    other model returns any of the same examples, the agreement says nothing either."""
    out = []
    for (task, model), board in boards.items():
        rows = board[board["metric"].astype(str).str.startswith("example_")].set_index("metric")
        if "example_similarity" not in rows.index:
            continue
        sim = rows.loc["example_similarity"]
        flat = float(sim["std"]) < FLAT
        text = (f"example_similarity is {num(sim['mean'])} ± {num(sim['std'])} over {int(sim['n'])} "
                "samples: " + ("it does not discriminate here (the cosine of these activations is "
                               "near 1 for any example), so it says nothing about the examples."
                               if flat else "it varies across samples."))
        if "example_model_agreement" in rows.index:
            agree = rows.loc["example_model_agreement"]
            if float(agree["mean"]) == 0:
                text += (" No other model of the task returned any of the same examples on any "
                         "sample (example_model_agreement 0): uninformative here too.")
        out.append(Finding("examples", Q_EXAMPLES, text, f"leaderboard/{task}-{model}.csv", task,
                           model, short="uninformative" if flat else "discriminates"))
    return out


Q_TIES = "Which explainers' ranks rest mostly on features their maps tie?"
TIED_MOSTLY = 0.5  # more than half of a map's features in one group of equal values


def ties(boards: dict) -> list[Finding]:
    """Explainers whose maps tie on most features (e.g. exact zeros on the black background):
    removal metrics order those features at random (drawn per seed and sample, never by
    position), so where a curve reaches them the explainer's score is a random order's."""
    out = []
    for (task, model), board in boards.items():
        if "tied_share" not in board.columns or board["tied_share"].isna().all():
            continue
        shares = board.groupby("explainer")["tied_share"].first().dropna()
        real = shares[[not is_control(e) for e in shares.index]].sort_values(ascending=False)
        mostly = real[real > TIED_MOSTLY]
        source = f"leaderboard/{task}-{model}.csv"
        if mostly.empty:
            text = (f"No explainer's map has more than half of its features at one value "
                    f"(largest: {real.index[0]} {num(100 * real.iloc[0])} %)." if len(real) else
                    "No explainer's map was scored.")
            out.append(Finding("ties", Q_TIES, text, source, task, model, short="none"))
            continue
        listed = [f"{e} ({num(100 * v)} %)" for e, v in mostly.items()]
        text = (f"{names(listed, 8)}: more than half of their features share one value (the "
                f"share in the largest group of equal attributions, e.g. exact zeros on the "
                f"background). The removal metrics order tied features at random, per seed and "
                f"sample, so once a curve reaches that group these explainers score like a random "
                f"order: their ranks rest mostly on how the ties fall, not on the map. A map of "
                f"one constant value ranks like the random control.")
        out.append(Finding("ties", Q_TIES, text, source, task, model,
                           short=names(list(mostly.index), 3)))
    return out


Q_LINEAR = ("Do explanations of the logistic model match its exact attributions, and do they "
            "differ from the CNN's?")


def _is_ground_truth(metric: str) -> bool:
    return base_name(metric) == "linear_ground_truth"


def linear_ground_truth(boards: dict) -> list[Finding]:
    out = []
    for (task, model), board in boards.items():
        rows = board[board["metric"].map(_is_ground_truth)]
        if rows.empty:
            continue
        metric = rows["metric"].iloc[0]
        rows = rows[rows["metric"] == metric].sort_values(["rank", "mean"], ascending=[True, False],
                                                          kind="stable")
        real = rows[~rows["explainer"].map(is_control)]
        # explainers that share the best rank (equal to the precision they were computed in) are
        # all the closest: naming one of them would make a tie look like a winner
        best = real[real["rank"] == real["rank"].min()]
        listed = [f"{r.explainer} {interval(r.mean, r.ci_low, r.ci_high)}"
                  for r in real.head(max(3, len(best))).itertuples()]
        close = real[real["ci_low"] > 0.9]
        tied = "(tied: equal to the precision computed) " if len(best) > 1 else ""
        text = (f"Agreement with the exact attributions W·x ({metric}, {direction(True)}, 1 = the "
                f"same ranking): closest {tied}{names(listed)}; {len(close)} of {len(real)} explainers "
                f"have an interval above 0.9; farthest {real.iloc[-1]['explainer']} "
                f"{interval(real.iloc[-1]['mean'], real.iloc[-1]['ci_low'], real.iloc[-1]['ci_high'])}.")
        for r in rows[rows["explainer"].map(is_control)].itertuples():
            text += f" Control {r.explainer}: {interval(r.mean, r.ci_low, r.ci_high)}."
        text += " " + _compare_models(boards, task, model)
        out.append(Finding("linear", Q_LINEAR, text.strip(), f"leaderboard/{task}-{model}.csv", task, model,
                           short=f"{names(list(best['explainer']), 4)} ({num(real.iloc[0]['mean'])})"))
    if not out:
        out.append(Finding("linear", Q_LINEAR, "This run has no data for this question: no "
                           "leaderboard has the linear_ground_truth metric (the logistic model).",
                           "leaderboard/"))
    return out


def _compare_models(boards: dict, task: str, model: str) -> str:
    """How the explainers' faithfulness ranking on `model` compares with the other models of its task."""
    from scipy.stats import spearmanr

    mine = faithfulness_rows(boards[(task, model)])
    sentences = []
    for (t, other), board in boards.items():
        if t != task or other == model:
            continue
        theirs = faithfulness_rows(board)
        shared = sorted(set(mine["metric"]) & set(theirs["metric"]))
        if not shared:
            continue
        a = mine[mine["metric"].isin(shared)].groupby("explainer")["rank"].mean()
        b = theirs[theirs["metric"].isin(shared)].groupby("explainer")["rank"].mean()
        both = pd.concat([a.rename("a"), b.rename("b")], axis=1).dropna()
        if len(both) < 3:
            continue
        rho = spearmanr(both["a"], both["b"]).statistic
        place_a, place_b = both["a"].rank(method="min"), both["b"].rank(method="min")
        moves = (place_b - place_a).abs().sort_values(ascending=False, kind="stable").head(3)
        listed = [f"{e} {int(place_a[e])} → {int(place_b[e])}" for e in moves.index if moves[e] > 0]
        sentences.append(
            f"Its explainers' places by mean rank on the {len(shared)} faithfulness metrics it shares "
            f"with {other} ({names(shared, 4)}) correlate with {other}'s at Spearman {num(rho)} over "
            f"{len(both)} explainers" + (f"; the largest moves ({model} → {other}): {names(listed)}."
                                         if listed else "."))
    return " ".join(sentences) or f"No other {task} model shares a faithfulness metric with {model}."

"""The findings of the studies: stability across seeds and budgets, SHAP's background, the logistic
model's exact attributions, attention against gradients, the randomisation sanity check and the
explanation styles. See bench/findings.py for what a finding is."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from explainbench.bench.findings_common import (Finding, direction, faithfulness_rows, interval,
                                                is_control, names, num, plural, read_csv)

Q_LIME = "How much does LIME's explanation move when only the seed changes, per sampling budget?"
Q_BUDGET = "How much does {name}'s explanation move when only the seed changes, per sampling budget?"
Q_STABLE = "Which stochastic explainers are the least stable across seeds?"
Q_BACKGROUND = "How do SHAP explanations depend on the background's size and selection?"
Q_LINEAR = ("Do explanations of the logistic model match its exact attributions, and do they "
            "differ from the CNN's?")
Q_ATTENTION = "Does attention agree with gradients on the transformer?"
Q_SANITY = "Which explainers fail the model-parameter randomisation sanity check?"
Q_STYLES = "Are LIME and Anchor the least stable explanation styles?"

# Jain & Wallace 2019 (NAACL), Table 2: mean Kendall tau between attention and gradient
# importance for a BiLSTM with attention on IMDB. The literature's number, not one of ours.
JAIN_WALLACE_TAU = 0.44


def base_name(label: str) -> str:
    return str(label).split("[")[0]


def primary_measure(metrics) -> str:
    """The stability or similarity measure a sentence leads with: a Spearman one where there is."""
    metrics = sorted(set(metrics))
    return next((m for m in metrics if "spearman" in m), metrics[0])


def kendall_to_spearman(tau: float) -> float:
    """Spearman's rho that goes with Kendall's tau for bivariate-normal data (Greiner's relation
    r = sin(pi tau / 2), then rho_s = 6/pi arcsin(r / 2))."""
    r = math.sin(math.pi * tau / 2)
    return 6 / math.pi * math.asin(r / 2)


def _scopes(frame: pd.DataFrame):
    return frame.groupby(["task", "model"], sort=True) if len(frame) else []


# ---------------------------------------------------------------------------- stability


def budget_stability(run_dir: Path) -> list[Finding]:
    sweeps = read_csv(run_dir, "stability_budget.csv")
    out = []
    for (task, model, explainer, param), g in (sweeps.groupby(["task", "model", "explainer", "budget_param"],
                                                              sort=True) if len(sweeps) else []):
        lead = primary_measure(g["metric"])
        rows = g[g["metric"] == lead].sort_values("budget")
        steps = [f"{interval(r.mean, r.ci_low, r.ci_high)} at {param} = {num(r.budget)}"
                 for r in rows.itertuples()]
        first, last = rows.iloc[0], rows.iloc[-1]
        text = (f"Explained twice with different seeds, {explainer}'s attributions have a mean pairwise "
                f"{lead} ({direction(bool(first['higher_is_better']))}; 1 = identical) of "
                f"{names(steps, 10)} ({int(rows['seeds'].max())} seeds, n = {int(rows['n'].min())}).")
        details = tuple(f"{m} ({direction(bool(h['higher_is_better'].iloc[0]))}): "
                        + " → ".join(f"{interval(r.mean, r.ci_low, r.ci_high)} at {num(r.budget)}"
                                     for r in h.sort_values("budget").itertuples())
                        for m, h in g[g["metric"] != lead].groupby("metric"))
        question = Q_LIME if explainer.startswith("lime") else Q_BUDGET.format(name=explainer)
        out.append(Finding("budget", question, text, "stability_budget.csv", task, model,
                           short=f"{lead} {num(first['mean'])} → {num(last['mean'])}", details=details))
    if not any(f.question == Q_LIME for f in out):
        out.insert(0, Finding("budget", Q_LIME, "This run has no data for this question: it has no "
                              "stability study of LIME over sampling budgets (a `budgets:` sweep "
                              "of lime in the stability study).", "stability_budget.csv"))
    return out


def least_stable(run_dir: Path) -> list[Finding]:
    table = read_csv(run_dir, "stability.csv")
    if table.empty:
        return [Finding("stable", Q_STABLE, "This run has no data for this question: it has no "
                        "stability study.", "stability.csv")]
    out = []
    for (task, model), g in _scopes(table):
        lead = primary_measure(g["metric"])
        rows = g[g["metric"] == lead]
        higher = bool(rows["higher_is_better"].iloc[0])
        exact = 1.0 if higher else 0.0
        deterministic = rows[np.isclose(rows["mean"], exact) & np.isclose(rows["ci_low"], rows["ci_high"])]
        controls = rows[rows["explainer"].map(is_control) & ~rows.index.isin(deterministic.index)]
        moving = rows[~rows.index.isin(deterministic.index) & ~rows.index.isin(controls.index)]
        moving = moving.sort_values("mean", ascending=higher)
        if moving.empty:
            text = f"No stochastic explainer was studied on {model}."
            out.append(Finding("stable", Q_STABLE, text, "stability.csv", task, model, short="n/a"))
            continue
        listed = [f"{r.explainer} {interval(r.mean, r.ci_low, r.ci_high)}" for r in moving.head(3).itertuples()]
        most = moving.iloc[-1]
        text = (f"Least stable by mean pairwise {lead} between seeds ({direction(higher)}): "
                f"{names(listed)}")
        text += (f"; most stable: {most['explainer']} {interval(most['mean'], most['ci_low'], most['ci_high'])}."
                 if len(moving) > len(listed) else ".")
        for r in controls.itertuples():
            text += f" The {r.explainer} control: {interval(r.mean, r.ci_low, r.ci_high)}."
        if len(deterministic):
            text += (f" {len(deterministic)} deterministic explainers score exactly {num(exact)}, "
                     "as they must.")
        out.append(Finding("stable", Q_STABLE, text, "stability.csv", task, model,
                           short=f"{moving.iloc[0]['explainer']} ({num(moving.iloc[0]['mean'])})"))
    return out


# ---------------------------------------------------------------------------- background


def background(run_dir: Path) -> list[Finding]:
    table = read_csv(run_dir, "background.csv")
    conv = "background_convergence_mean"
    if table.empty or conv not in table.columns:
        return [Finding("background", Q_BACKGROUND, "This run has no data for this question: it "
                        "has no background study.", "background.csv")]
    out = []
    for (task, model, explainer), g in table.groupby(["task", "model", "explainer"], sort=True):
        rand = g[g["strategy"] == "random"].sort_values("size")
        ref = int(rand["size"].max()) if len(rand) else int(g["size"].max())

        def at(r) -> str:
            return interval(r[conv], r.get("convergence_ci_low"), r.get("convergence_ci_high"))

        answer, details = [], []
        below = rand[rand["size"] < ref]
        if len(below):
            steps = [f"{at(r)} at size {int(r['size'])}" for _, r in below.iterrows()]
            answer.append(f"With a random background, the Spearman correlation of {explainer}'s "
                          f"explanation with the one from the largest random background ({ref}) is "
                          f"{names(steps, 8)}.")
        # selections compared at the same size: the largest size below the reference that several
        # strategies share, and size 1 for the one-row backgrounds (all zeros, blurred input)
        shared = g[g["size"] < ref].groupby("size")["strategy"].nunique()
        sizes = sorted({int(shared[shared > 1].index.max())} | ({1} if 1 in shared.index else set())
                       if (shared > 1).any() else set())
        for size in sizes:
            s = g[g["size"] == size].sort_values(conv, ascending=False)
            listed = [f"{r['strategy']} {at(r)}" for _, r in s.iterrows()]
            details.append(f"At size {size}: {names(listed, 8)}.")
            if size == sizes[0] and len(s) > 1:
                top, low = s.iloc[0], s.iloc[-1]
                apart = top.get("convergence_ci_low", np.nan) > low.get("convergence_ci_high", np.nan)
                answer.append(f"At size {size} {'the selection matters' if apart else 'the intervals overlap'}: "
                              f"{top['strategy']} comes closest ({at(top)}), {low['strategy']} least "
                              f"close ({at(low)}).")
        full = g[(g["size"] == ref) & (g["strategy"] != "random")]
        if len(full):
            details.append(f"At size {ref} other selections still give a different explanation: "
                           + names([f"{r['strategy']} {num(r[conv])}" for _, r in full.iterrows()]) + ".")
        changes = []
        for col in sorted(c for c in g.columns if c.endswith("_change")):
            values = g[col].dropna()
            if len(values):
                worst = g.loc[values.abs().idxmax()]
                changes.append(f"{col[:-len('_change')]} by at most {num(abs(worst[col]))} "
                               f"({worst['strategy']}, size {int(worst['size'])})")
        if changes:
            answer.append(f"Against the reference background, faithfulness changes: {names(changes)}.")
        if "seconds_per_explanation" in g.columns and g["seconds_per_explanation"].notna().any():
            s = rand if len(rand) else g
            details.append(f"Cost per explanation: {num(s['seconds_per_explanation'].min())} s to "
                           f"{num(s['seconds_per_explanation'].max())} s.")
        smallest = below.iloc[0] if len(below) else g.iloc[0]
        out.append(Finding("background", Q_BACKGROUND, " ".join(answer), "background.csv", task, model,
                           short=f"{explainer}: ρ {num(smallest[conv])} at size {int(smallest['size'])}",
                           details=tuple(details), subject=explainer))
    return out


# ---------------------------------------------------------------------------- linear model


def _is_ground_truth(metric: str) -> bool:
    return base_name(metric) == "linear_ground_truth"


def linear_ground_truth(boards: dict) -> list[Finding]:
    out = []
    for (task, model), board in boards.items():
        rows = board[board["metric"].map(_is_ground_truth)]
        if rows.empty:
            continue
        metric = rows["metric"].iloc[0]
        rows = rows[rows["metric"] == metric].sort_values("mean", ascending=False)
        real = rows[~rows["explainer"].map(is_control)]
        listed = [f"{r.explainer} {interval(r.mean, r.ci_low, r.ci_high)}" for r in real.head(3).itertuples()]
        close = real[real["ci_low"] > 0.9]
        text = (f"Agreement with the exact attributions W·x ({metric}, {direction(True)}, 1 = the "
                f"same ranking): closest {names(listed)}; {len(close)} of {len(real)} explainers "
                f"have an interval above 0.9; farthest {real.iloc[-1]['explainer']} "
                f"{interval(real.iloc[-1]['mean'], real.iloc[-1]['ci_low'], real.iloc[-1]['ci_high'])}.")
        for r in rows[rows["explainer"].map(is_control)].itertuples():
            text += f" Control {r.explainer}: {interval(r.mean, r.ci_low, r.ci_high)}."
        text += " " + _compare_models(boards, task, model)
        out.append(Finding("linear", Q_LINEAR, text.strip(), f"leaderboard/{task}-{model}.csv", task, model,
                           short=f"{real.iloc[0]['explainer']} ({num(real.iloc[0]['mean'])})"))
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


# ---------------------------------------------------------------------------- attention


def _needs_gradients(name: str) -> bool:
    from explainbench import explainers

    try:
        return bool(explainers.get_class(name).needs_gradients)
    except Exception:  # an explainer of a plugin the report cannot import
        return False


def attention(run_dir: Path) -> list[Finding]:
    pairs = read_csv(run_dir, "agreement_pairs.csv")
    out = []
    threshold = kendall_to_spearman(JAIN_WALLACE_TAU)
    for (task, model), g in _scopes(pairs):
        lead = primary_measure(g["metric"])
        g = g[g["metric"] == lead]
        everyone = set(g["explainer"]) | set(g["other"])
        attn = sorted(e for e in everyone if base_name(e).startswith("attention"))
        grads = sorted(e for e in everyone if e not in attn and not is_control(e)
                       and _needs_gradients(base_name(e)))
        if not attn or not grads:
            continue
        sentences, below, above, total, means = [], 0, 0, 0, []
        for a in attn:
            hits = []
            for gr in grads:
                hit = g[((g["explainer"] == a) & (g["other"] == gr))
                        | ((g["explainer"] == gr) & (g["other"] == a))]
                if len(hit):
                    hits.append((gr, hit.iloc[0]))
            if not hits:
                continue
            hits.sort(key=lambda h: h[1]["mean"])
            lo, hi = hits[0], hits[-1]
            mean = float(np.mean([h[1]["mean"] for h in hits]))
            means.append((a, mean))
            below += sum(h[1]["ci_high"] < threshold for h in hits)
            above += sum(h[1]["ci_low"] > threshold for h in hits)
            total += len(hits)
            sentences.append(
                f"{a} against the {len(hits)} gradient explainers: from "
                f"{interval(lo[1]['mean'], lo[1]['ci_low'], lo[1]['ci_high'])} ({lo[0]}) to "
                f"{interval(hi[1]['mean'], hi[1]['ci_low'], hi[1]['ci_high'])} ({hi[0]}), mean {num(mean)}")
        if not sentences:
            continue
        n = int(g["n"].min())
        text = (f"Mean {lead} over n = {n} samples, {'; '.join(sentences)}. Jain & Wallace (2019) "
                f"report a Kendall τ of about {JAIN_WALLACE_TAU} between attention and gradients for "
                f"a BiLSTM with attention on IMDB; we measure Spearman's ρ, on {model}, and ρ runs "
                f"larger than τ for the same association (τ = {JAIN_WALLACE_TAU} goes with ρ ≈ "
                f"{num(threshold)} for bivariate-normal scores). Of our {total} pairs, {below} have "
                f"an interval below {num(threshold)} and {above} above it: ")
        if below and above:
            text += "it depends on the gradient explainer, weaker than theirs for some, stronger for others."
        elif below > total / 2:
            text += "agreement weaker than theirs."
        elif above > total / 2:
            text += "agreement stronger than theirs."
        else:
            text += "not clearly different from theirs at this sample size."
        out.append(Finding("attention", Q_ATTENTION, text, "agreement_pairs.csv", task, model,
                           short="mean ρ " + ", ".join(f"{a} {num(m)}" for a, m in means)))
    if not out:
        out.append(Finding("attention", Q_ATTENTION, "This run has no data for this question: no "
                           "agreement study with attention and gradient explainers on one model.",
                           "agreement_pairs.csv"))
    return out


# ---------------------------------------------------------------------------- sanity


def sanity(run_dir: Path) -> list[Finding]:
    from explainbench.bench.studies.sanity import FLAG_THRESHOLD

    table = read_csv(run_dir, "sanity.csv")
    if table.empty or "flagged" not in table.columns:
        return [Finding("sanity", Q_SANITY, "This run has no data for this question: it has no "
                        "sanity study.", "sanity.csv")]
    out = []
    for (task, model), g in _scopes(table):
        cascade = g[g["depth"] >= 0]
        lead = primary_measure(cascade["metric"]) if len(cascade) else primary_measure(g["metric"])
        deepest = (cascade[cascade["metric"] == lead].sort_values("depth")
                   .groupby("explainer").tail(1).sort_values("mean", ascending=False))
        flagged = set(g[g["flagged"].astype(bool)]["explainer"])

        def item(r):
            tag = " (a control that ignores the model)" if is_control(r.explainer) else ""
            return f"{r.explainer} {interval(r.mean, r.ci_low, r.ci_high)}{tag}"

        fail = [item(r) for r in deepest.itertuples() if r.explainer in flagged]
        ok = [item(r) for r in deepest.itertuples() if r.explainer not in flagged]
        layer = deepest["layer"].iloc[0] if len(deepest) else "?"
        text = (f"An explainer fails when its map for the model with every layer randomised (from the "
                f"output down to {layer}) still has a mean {lead} above {num(FLAG_THRESHOLD)} with "
                f"its map for the trained model: "
                + (f"{len(fail)} of {len(deepest)} fail: {names(fail, 6)}; pass: {names(ok, 6)}."
                   if fail else f"none of the {len(deepest)} fails ({names(ok, 6)})."))
        real = sorted(e for e in flagged if not is_control(e))
        controls = len(flagged) - len(real)
        short = (names(real, 3) if real else "none") + (f" (and {plural(controls, 'control')})" if controls else "")
        out.append(Finding("sanity", Q_SANITY, text, "sanity.csv", task, model,
                           short=short if flagged else "none fail"))
    return out


# ---------------------------------------------------------------------------- explanation styles


def _style_key(style: str) -> str:
    """'LIME', 'LIME (lime_batched)', 'lime' -> 'lime': the style a row is, for the claim."""
    return base_name(style).split(" (")[0].strip().lower()


def styles(run_dir: Path) -> list[Finding]:
    """Reads the explanation-styles table (explanation_styles.csv, bench/styles_table.py: task,
    model, style, measure, mean, ci_low, ci_high, n) or any other *styles*.csv in that long
    format (a `metric` column in place of `measure`, `explainer` in place of `style`), one finding
    per (task, model)."""
    paths = sorted(p for p in run_dir.rglob("*styles*.csv"))
    out = []
    for path in paths:
        table = pd.read_csv(path, comment="#")
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
            two = {_style_key(s) for s in rows[who].head(2)}
            holds = two == {"lime", "anchor"}
            verdict = ("The published claim holds here: LIME and Anchor are the two least stable."
                       if holds else f"The published claim does not hold here: the two least stable "
                       f"are {names(sorted(two))}.")
            if holds and ci and len(rows) > 2:
                third = rows.iloc[2]
                worst_of_two = rows.iloc[1]
                overlap = (worst_of_two["ci_high"] >= third["ci_low"] if higher
                           else worst_of_two["ci_low"] <= third["ci_high"])
                if overlap:
                    verdict += f" Their intervals overlap with the next, {third[who]}."
            text = (f"From least to most stable by {lead} across seeds ({direction(higher)}): "
                    f"{names(listed, 10)}. {verdict}")
            out.append(Finding("styles", Q_STYLES, text, path.relative_to(run_dir).as_posix(),
                               str(key), str(key), short="holds" if holds else "does not hold"))
    if not out:
        out.append(Finding("styles", Q_STYLES, "This run has no data for this question: it has no "
                           "explanation-styles table (the explanation-styles suite).", "*styles*.csv"))
    return out

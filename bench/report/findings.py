"""The answers a reader came for, generated from a run folder's tables: one list of findings that
the report's summary renders and `bench report` also writes as RUN_DIR/FINDINGS.md, so the page and
the file never disagree.

A finding is a question, a short answer built from the numbers (mean and 95% interval, the test
that decides it) and the run file it comes from. Nothing here names a result: every explainer,
metric and number in a sentence is read from the tables; where a run has no data for a question
the answer says so. Metric names come from the tables too: a metric's role is read from its
leaderboard `category` (or `family`, when a leaderboard has one) and its direction from
`higher_is_better`.

    RUN_DIR/leaderboard/<task>-<model>.csv   best, not different from the best, mean ranks, the
                                             logistic model's exact attributions
    RUN_DIR/versus_controls.csv              each explainer against the random and edge controls

and each study's own findings (its REPORT in bench/studies/: stability, budgets and styles,
background, attention against gradients, sanity), placed among these by their declared places.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from explainbench.bench.present.finding import (FAITHFULNESS, Finding, direction,
                                                faithfulness_rows, group_column, interval,
                                                is_control, mean_ranks, names, num, plural)
from explainbench.bench.present.stats import ALPHA, CONTROLS, smallest_wilcoxon_p
from explainbench.bench.report.tables import AGREE_ENOUGH
from explainbench.bench.store import describe_commits

Q_EVIDENCE = "How much can this run tell apart?"
Q_CONTROLS = "Which explainers beat the random and edge controls on faithfulness?"
Q_BEST = "Which explainers are the most faithful here, and which are not significantly different from the best?"


def evidence(boards: dict) -> list[Finding]:
    out = []
    for (task, model), board in boards.items():
        faith = faithfulness_rows(board)
        rows = faith if len(faith) else board
        n = int(rows["n"].median())
        compared = rows["explainer"].nunique() - 1
        p_min = smallest_wilcoxon_p(n)
        holm_min = min(1.0, p_min * max(compared, 1))
        unit = "images" if task == "mnist" else "reviews" if task == "imdb" else "samples"
        text = (f"{n} {unit} per explainer and metric: a two-sided Wilcoxon signed-rank test on "
                f"{n} pairs cannot give p below {num(p_min)}, and Holm's correction over the "
                f"{plural(compared, 'explainer')} compared with the best raises that to {num(holm_min)}")
        text += (": no two explainers can differ significantly here (α = 0.05); read the intervals."
                 if holm_min >= ALPHA else ", below α = 0.05: differences can be significant.")
        if "n_excluded" in board.columns and board["n_excluded"].fillna(0).gt(0).any():
            worst = board.loc[board["n_excluded"].idxmax()]
            text += (f" Samples excluded (NaN scores): up to {int(worst['n_excluded'])}, "
                     f"for {worst['explainer']} on {worst['metric']}.")
        out.append(Finding("evidence", Q_EVIDENCE, text, f"leaderboard/{task}-{model}.csv", task, model,
                           short=f"n = {n}, min Holm p {num(holm_min)}"))
    return out


def beats_controls(boards: dict, versus: pd.DataFrame) -> list[Finding]:
    out = []
    for (task, model), board in boards.items():
        source = "versus_controls.csv"
        rows = versus[(versus["task"] == task) & (versus["model"] == model)
                      & (versus["category"] == FAITHFULNESS)] if len(versus) else versus
        if rows.empty:
            out.append(Finding("controls", Q_CONTROLS, "This run has no data for this question: "
                               "its leaderboard has no random or edge control on a faithfulness "
                               "metric.", source, task, model, short="no controls"))
            continue
        controls = sorted(rows["control"].unique(), key=lambda c: CONTROLS.index(c)
                          if c in CONTROLS else 99)
        groups = _metric_groups(board, rows["metric"].unique())
        unit = "metric families" if group_column(board) == "family" else "faithfulness metrics"
        tally = []
        for explainer, e in rows.groupby("explainer"):
            sig = _units_beaten(e, groups, "better", controls)
            ci = _units_beaten(e.assign(ci_better=e["diff_ci_low"] > 0), groups, "ci_better", controls)
            tally.append((explainer, sig, ci, _strongest(e)))
        tally.sort(key=lambda t: (-t[1], -t[2], t[0]))
        total = len(groups)
        half = (total + 1) // 2
        winners = [t for t in tally if t[1] >= half]
        against = " and ".join(controls)
        test = f"paired Wilcoxon, Holm-corrected, α = {ALPHA}"
        if winners:
            listed = [f"{t[0]} ({t[1]}/{total}{t[3]})" for t in winners]
            text = (f"{len(winners)} of {len(tally)} explainers beat {against} on at least half of "
                    f"the {total} {unit} ({test}): {names(listed, 6)}.")
            losers = [t[0] for t in tally if t[1] == 0]
            if losers:
                text += f" Not better than the controls on any: {names(losers, 6)}."
        else:
            text = f"No explainer beats {against} significantly on half of the {total} {unit} ({test})."
            by_ci = [t for t in tally if t[2] >= half]
            if by_ci:
                listed = [f"{t[0]} ({t[2]}/{total})" for t in by_ci]
                text += (f" The 95% interval of the paired difference lies on the better side of "
                         f"{'both controls' if len(controls) == 2 else 'the ' + against + ' control'} "
                         f"for {names(listed, 6)} on at least half (not corrected for multiple "
                         "comparisons).")
            none = [t[0] for t in tally if t[2] == 0]
            if none:
                text += f" No interval clears the controls for {names(none, 6)}."
        short = (f"{len(winners)} of {len(tally)} beat {against}" if winners else
                 f"none significantly; {sum(t[2] >= half for t in tally)} of {len(tally)} by interval")
        details = tuple(_control_detail(rows, metric, controls) for metric in sorted(rows["metric"].unique()))
        out.append(Finding("controls", Q_CONTROLS, text, source, task, model, short, details))
    return out


def _metric_groups(board: pd.DataFrame, metrics) -> dict[str, list[str]]:
    """{unit: its metrics}: each metric its own unit, or one unit per family when there are families."""
    if group_column(board) != "family":
        return {m: [m] for m in sorted(metrics)}
    family = board.drop_duplicates("metric").set_index("metric")["family"]
    groups: dict[str, list[str]] = {}
    for m in sorted(metrics):
        groups.setdefault(str(family.get(m, m)), []).append(m)
    return groups


def _units_beaten(e: pd.DataFrame, groups: dict, column: str, controls: list[str]) -> int:
    """Units in which the explainer beats every control on at least half of the unit's metrics."""
    beaten = 0
    for metrics in groups.values():
        wins = 0
        for m in metrics:
            hit = e[e["metric"] == m]
            if len(hit) and all(hit[hit["control"] == c][column].any() for c in controls):
                wins += 1
        beaten += wins * 2 >= len(metrics) and wins > 0
    return beaten


def _strongest(e: pd.DataFrame) -> str:
    """'; deletion better than random by 0.2 [0.1, 0.3]': the explainer's clearest win."""
    wins = e[e["diff_ci_low"] > 0]
    if wins.empty:
        return ""
    r = wins.sort_values(["p_holm", "diff_ci_low"], ascending=[True, False]).iloc[0]
    by = interval(r["difference"], r["diff_ci_low"], r["diff_ci_high"])
    return f"; {r['metric']}: better than {r['control']} by {by}"


def _control_detail(rows: pd.DataFrame, metric: str, controls: list[str]) -> str:
    m = rows[rows["metric"] == metric]
    higher = bool(m["higher_is_better"].iloc[0])
    parts = []
    for c in controls:
        mc = m[m["control"] == c]
        better = sorted(mc[mc["better"]]["explainer"])
        ci = sorted(mc[(mc["diff_ci_low"] > 0) & ~mc["better"]]["explainer"])
        worse = sorted(mc[mc["diff_ci_high"] < 0]["explainer"])
        floor = mc["control_mean"].iloc[0]
        # empty clauses are left out: "worse none" reads as a claim about nothing
        clauses = [f"significantly better {names(better, 5)}"]
        if ci:
            clauses.append(f"better by the interval only (not after Holm) {names(ci, 5)}")
        if worse:
            clauses.append(f"worse {names(worse, 5)}")
        parts.append(f"vs {c} ({num(floor)}): " + ", ".join(clauses))
    return f"{metric} ({direction(higher)}): " + "; ".join(parts) + "."


def _agreement(agreement: pd.DataFrame, task: str, model: str, leader: str) -> tuple[float, str]:
    """(Kendall's W, a sentence) on how far the families agree, from metric_agreement.csv."""
    if agreement.empty:
        return np.nan, ""
    mine = agreement[(agreement["task"] == task) & (agreement["model"] == model)]
    w = mine[mine["measure"] == "kendall_w"]
    if w.empty:
        return np.nan, ""
    w_value, n, m = float(w["value"].iloc[0]), int(w["n"].iloc[0]), int(w["m"].iloc[0])
    pairs = mine[mine["measure"] == "spearman"].sort_values("value")
    worst = [f"{r.family} vs {r.other} (Spearman {num(r.value)})" for r in pairs.head(3).itertuples()]
    places = mine[(mine["measure"] == "rank_without") & (mine["explainer"] == leader)]["value"]
    text = f"Kendall's W over the {m} families and {n} explainers: {num(w_value)}"
    if w_value < AGREE_ENOUGH:
        text += (f", below {num(AGREE_ENOUGH)}: the families disagree on the order, so no "
                 f"explainer is named the most faithful here. Least concordant: {names(worst, 3)}.")
    elif len(places):
        text += (f": the families agree. Leaving out one family at a time, {leader} places "
                 f"{int(places.min())} to {int(places.max())}; least concordant: {names(worst, 2)}.")
    else:
        text += ": the families agree."
    return w_value, text


def best(boards: dict, agreement: pd.DataFrame | None = None) -> list[Finding]:
    agreement = pd.DataFrame() if agreement is None else agreement
    out = []
    for (task, model), board in boards.items():
        faith = faithfulness_rows(board)
        source = f"leaderboard/{task}-{model}.csv"
        if faith.empty:
            out.append(Finding("best", Q_BEST, "This run has no data for this question: no "
                               "faithfulness metric was scored.", source, task, model, short="n/a"))
            continue
        ranks = mean_ranks(board)
        ranks = ranks[[e for e in ranks.index if not is_control(e)]]
        metrics = sorted(faith["metric"].unique())
        family = " (each metric family once)" if group_column(board) == "family" else ""
        # the first three, and every explainer tied with the third (naming three of four equals
        # would pick among them)
        third = ranks.iloc[:3].iloc[-1] if len(ranks) else np.nan
        top = [f"{e} ({num(r)})" for place, (e, r) in enumerate(ranks.items())
               if place < 3 or np.isclose(r, third)]
        wins = faith[faith["best"]].groupby("explainer")["metric"].apply(sorted)
        ties, details = [], []
        for metric in metrics:
            m = faith[faith["metric"] == metric]
            b = m[m["best"]].iloc[0]
            same = sorted(m[~m["best"] & ~m["different_from_best"].astype(bool)]["explainer"])
            ties.append(len(same))
            details.append(f"{metric} ({direction(bool(b['higher_is_better']))}): best {b['explainer']} "
                           f"{interval(b['mean'], b['ci_low'], b['ci_high'])}; not significantly "
                           f"different from it: {len(same)} of {len(m) - 1}"
                           + (f" ({names(same, 6)})" if same else ""))
        leader = wins.map(len).sort_values(ascending=False) if len(wins) else pd.Series(dtype=int)
        text = f"By mean rank over the {plural(len(metrics), 'faithfulness metric')}{family}: {names(top)}."
        if len(leader):
            first = leader.index[0]
            b = faith[(faith["explainer"] == first) & faith["best"]].iloc[0]
            text += (f" {first} is the best on {leader.iloc[0]} of {len(metrics)} "
                     f"({names(wins[first], 4)}; {b['metric']} {interval(b['mean'], b['ci_low'], b['ci_high'])}).")
        others = faith.groupby("metric")["explainer"].nunique() - 1
        if all(t == others[m] for t, m in zip(ties, metrics)):
            spread = "any other explainer: nothing is told apart at this n"
        elif min(ties) == max(ties):
            spread = plural(min(ties), "other explainer")
        else:
            spread = f"{min(ties)} to {max(ties)} other explainers (median {num(float(np.median(ties)))})"
        text += (f" The best on {'the' if len(ties) == 1 else 'a'} metric is not significantly "
                 f"different from {spread}.")
        w, concord = _agreement(agreement, task, model, ranks.index[0] if len(ranks) else "")
        # explainers tied for the best mean rank are all named (one name would pick among equals)
        short = (" = ".join(sorted(ranks.index[np.isclose(ranks.to_numpy(), ranks.iloc[0])]))
                 if len(ranks) else "n/a")
        if concord and w < AGREE_ENOUGH:  # the ranking is shown, not read as a verdict
            text = concord + " " + text.replace("By mean rank over", "For reference, by mean rank over", 1)
            short = f"families disagree (W {num(w)})"
        elif concord:
            text += " " + concord
        out.append(Finding("best", Q_BEST, text, source, task, model,
                           short=short, details=tuple(details)))
    return out


def _reader(folder):
    from explainbench.bench.report.reader import RunFolder

    return folder if isinstance(folder, RunFolder) else RunFolder(folder)


def generate(folder) -> list[Finding]:
    """Every finding of a run folder (a path or its reader, report/reader.py), in the order the
    summary shows them: the report's own and each study's, by their declared places."""
    from explainbench.bench import studies

    folder = _reader(folder)
    boards = folder.leaderboards
    versus = folder.table("versus_controls.csv")
    from explainbench.bench.report.findings_leaderboard import (examples, linear_ground_truth,
                                                                separation, ties, unsupported)

    parts = [(10, lambda: evidence(boards)), (20, lambda: beats_controls(boards, versus)),
             (30, lambda: best(boards, folder.table("metric_agreement.csv"))),
             (35, lambda: ties(boards)), (25, lambda: separation(boards, versus)),
             (95, lambda: unsupported(folder.manifest)), (65, lambda: examples(boards)),
             (60, lambda: linear_ground_truth(boards))]
    for _, contribution in studies.contributions():
        parts += [(place, lambda f=f: f(folder)) for place, f in contribution.findings]
    found = []
    for _, make in sorted(parts, key=lambda p: p[0]):
        found += make()
    return found


def grouped(found: list[Finding]) -> list[tuple[str, list[Finding]]]:
    """[(question, its findings)] in first-appearance order."""
    out: dict[str, list[Finding]] = {}
    for f in found:
        out.setdefault(f.question, []).append(f)
    return list(out.items())


def markdown(found: list[Finding], manifest: dict, run_name: str) -> str:
    suite = manifest.get("suite", {})
    lines = [f"# Findings: {suite.get('name', run_name)}", "",
             f"Generated by `bench report` from the run folder `{run_name}` (suite {suite.get('name')} "
             f"v{suite.get('version')}, git commit {describe_commits(manifest, 12)}, run "
             f"{manifest.get('start_utc')} to {manifest.get('end_utc')}). Every sentence is computed "
             "from the tables named under it (files of the run folder); intervals are 95% "
             "bootstrap intervals over samples. Do not edit by hand: rerun `bench report`.", ""]
    for question, items in grouped(found):
        lines += [f"## {question}", ""]
        for f in items:
            lead = f"**{f.scope}{' · ' + f.subject if f.subject else ''}**: " if f.scope else ""
            lines.append(f"- {lead}{f.answer} *({f.source})*")
            lines += [f"  - {d}" for d in f.details]
        lines.append("")
    return "\n".join(lines)


def write(folder, found: list[Finding] | None = None) -> Path:
    from explainbench.bench.store import atomic_write_bytes

    folder = _reader(folder)
    found = generate(folder) if found is None else found
    path = folder.root / "FINDINGS.md"
    atomic_write_bytes(path, markdown(found, folder.manifest, folder.root.name).encode("utf-8"))
    return path

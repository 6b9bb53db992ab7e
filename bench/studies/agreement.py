"""Agreement study: do two explainers agree on why? Pairwise Spearman rank correlation and top-k
intersection between every pair of explainers on the same samples, per (model, chunk).

    studies:
      agreement:
        explainers: null      # default: every attribution explainer of the experiment (and random)
        k: 0.1

Rows: `agreement_spearman` and `agreement_topk` with the first explainer in `explainer` (and its
matrix label in metric_params `self`) and the second's label in metric_params `other`;
`matrices` turns them into square matrices. The report gets those matrices, the pairs with
intervals, attention against gradients as a finding, heat maps and a section (REPORT, at the end).
Explanations come from the cache the scores cells filled (same model, parameters and seed).
"""

from __future__ import annotations

import itertools
import time

import pandas as pd

import math

import numpy as np

from explainbench.bench.cells.cell import Cell, Demands, chunks, unsupported_reason
from explainbench.bench.cells.context import CellOutput, cost_record, explain_chunk, load_chunk, score_rows
from explainbench.bench.cells.spec import Component, freeze, thaw
from explainbench.bench.present import html
from explainbench.bench.present.finding import (Finding, base_name, interval, is_control, num,
                                                primary_measure)
from explainbench.bench.studies.common import EXPLAINER_NAMES
from explainbench.bench.studies.contribution import Contribution, Section
from explainbench.core.errors import BenchError
from explainbench.core.params import Bool, Choice, Float, Int, Seq

MEASURES = ("spearman", "topk", "kendall")
PARAMETERS = {
    "explainers": EXPLAINER_NAMES, "k": Float(0.1, 0, 1, low_open=True),
    "measures": Seq(["spearman", "topk"], Choice("spearman", MEASURES),
                    doc="spearman, topk (top-k intersection), kendall (Kendall's tau-b)"),
    "permutations": Int(0, 0, 10_000, doc="Jain & Wallace's permutation test on models with "
                        "additive attention: permutations per review (0: off)"),
    "absolute": Bool(False, doc="compare |maps|: how much each feature matters, whatever its "
                     "sign (unsigned measures such as attention or leave-one-out against signed "
                     "maps)"),
}
METRICS = {f"agreement_{m}{suffix}": True for m in ("spearman", "topk", "kendall")
           for suffix in ("", "_abs")}  # _abs: the maps' magnitudes compared (`absolute`)
PERMUTATION = "attention_permutation"  # its rows: the median output change, explainer attention


def _components(options: dict, exp, where: str = "agreement") -> list[Component]:
    from explainbench import explainers

    from explainbench.bench.studies.common import resolve_explainers

    comps = resolve_explainers(options["explainers"], exp, where=where)
    if options["explainers"] is None and exp.floor and "random" in explainers.REGISTRY \
            and "random" not in {c.name for c in comps}:
        comps.append(Component("random"))
    return comps


def validate(options: dict, exp, where: str) -> dict:
    from explainbench.bench.studies.common import check_options

    options = check_options(options, PARAMETERS, where)
    if len(_components(options, exp, where)) < 2:
        raise BenchError(f"{where}: agreement needs at least two attribution explainers")
    return options


def plan(suite, exp, options: dict) -> list[Cell]:
    comps = freeze([[c.name, c.params_items] for c in _components(options, exp)])
    settings = (("explainers", comps), ("k", options["k"]))
    # only settings away from their defaults join the cell's identity: the cells of suites
    # written before them keep their ids (and their finished parts)
    if list(options["measures"]) != PARAMETERS["measures"].default:
        settings += (("measures", freeze(list(options["measures"]))),)
    if options["permutations"]:
        settings += (("permutations", int(options["permutations"])),)
    if options["absolute"]:
        settings += (("absolute", True),)
    cells = []
    for model in exp.models:
        for chunk, start, stop in chunks(exp):
            cells.append(Cell("agreement", exp, model, None, exp.seeds[0], chunk, start, stop,
                              settings))
    return cells


def _option(cell: Cell, name: str):
    value = cell.option(name, PARAMETERS[name].default)
    return thaw(value) if name == "measures" and isinstance(value, tuple) else value


def demands(cell: Cell) -> Demands:
    comps = [Component(name, tuple(tuple(i) for i in items))
             for name, items in thaw(cell.option("explainers"))]
    return Demands(cached=[(c, cell.seed) for c in comps if not unsupported_reason(cell.model, c)])


def execute(cell: Cell, suite, ctx) -> CellOutput:
    from explainbench.metrics import similarity

    started = time.perf_counter()
    model = ctx.model(cell.model)
    chunk = load_chunk(cell, ctx)
    valid = chunk.task.feature_mask(chunk.inputs)
    explained, costs = [], []
    for name, items in thaw(cell.option("explainers")):
        comp = Component(name, tuple(tuple(i) for i in items))
        if unsupported_reason(cell.model, comp):
            continue  # e.g. attention on the LSTM: no map to compare
        attributions, explainer, cost = explain_chunk(ctx, cell.model, comp, cell.seed, chunk)
        explained.append((comp, explainer, attributions))
        costs.append(cost_record(cell, explainer, cost, cell.seed))
    # matrix labels: the registry name, with the parameters only where a name appears twice
    names = [c.name for c, _, _ in explained]
    explained = [(c.name if names.count(c.name) == 1 else c.label, e, a) for c, e, a in explained]
    frames = []
    k = float(cell.option("k"))
    measures = {"spearman": lambda a, b: similarity.spearman(a, b, valid),
                "topk": lambda a, b: similarity.top_k_intersection(a, b, valid, k_fraction=k),
                "kendall": lambda a, b: similarity.kendall_tau(a, b, valid)}
    chosen = _option(cell, "measures")
    magnitude = bool(_option(cell, "absolute"))
    for (label_a, exp_a, a), (label_b, _, b) in itertools.combinations(explained, 2):
        if magnitude:
            a, b = a.abs(), b.abs()
        values = {f"agreement_{m}{'_abs' if magnitude else ''}": measures[m](a, b)
                  for m in MEASURES if m in chosen}
        for metric, v in values.items():
            frames.append(score_rows(suite, cell, chunk, model_sha256=model.card["checkpoint_sha256"],
                                     explainer_name=exp_a.name, params=exp_a.params,
                                     params_hash=exp_a.params_hash, metric=metric,
                                     metric_params={"self": label_a, "other": label_b, "k": k},
                                     category="agreement", higher_is_better=METRICS[metric],
                                     values=v))
    permutations = int(_option(cell, "permutations"))
    attention = [(e, a) for _, e, a in explained if e.name == "attention"]
    if permutations and attention and hasattr(model, "outputs_with_attention"):
        from explainbench.metrics.attention import permutation_effect

        explainer, _ = attention[0]
        values = permutation_effect(model, chunk.inputs, chunk.targets, valid, cell.seed,
                                    permutations)
        frames.append(score_rows(suite, cell, chunk, model_sha256=model.card["checkpoint_sha256"],
                                 explainer_name=explainer.name, params=explainer.params,
                                 params_hash=explainer.params_hash, metric=PERMUTATION,
                                 metric_params={"permutations": permutations},
                                 category="agreement", higher_is_better=False, values=values))
    if not frames:
        raise BenchError(f"agreement on {cell.model}: fewer than two explainers support this model")
    return CellOutput(pd.concat(frames, ignore_index=True), None, costs, time.perf_counter() - started)


# ---------------------------------------------------------------------------- report


def _pairs(scores: pd.DataFrame) -> pd.DataFrame:
    """The agreement rows with both explainers' matrix labels as `explainer` and `other`."""
    from explainbench.bench.store import setting

    rows = scores[(scores["study"] == "agreement") & scores["metric"].isin(list(METRICS))]
    if rows.empty:
        return rows
    selves = setting(rows["metric_params"], "self")
    return rows.assign(explainer=[e if s is None else s for s, e in zip(selves, rows["explainer"])],
                       other=setting(rows["metric_params"], "other"))


def matrices(scores: pd.DataFrame) -> dict[tuple, pd.DataFrame]:
    """{(task, model, metric): square explainer x explainer matrix of mean agreement}.

    Agreement rows name the two explainers in the metric's `self` and `other` parameters."""
    rows = _pairs(scores)
    out = {}
    if rows.empty:
        return out
    for (task, model, metric), g in rows.groupby(["task", "model", "metric"], sort=True):
        mean = g.groupby(["explainer", "other"])["value"].mean().reset_index()
        names = sorted(set(mean["explainer"]) | set(mean["other"]))
        matrix = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
        for r in mean.itertuples():
            matrix.loc[r.explainer, r.other] = r.value
            matrix.loc[r.other, r.explainer] = r.value
        out[(task, model, metric)] = matrix
    return out


def pairs(scores: pd.DataFrame) -> pd.DataFrame:
    """The agreement study in long form with intervals: per (task, model, metric, explainer,
    other) the mean agreement over samples, its 95% bootstrap CI and n."""
    from explainbench.bench.present.stats import aggregate

    rows = _pairs(scores)
    if rows.empty:
        return pd.DataFrame()
    keys = ["task", "model", "metric", "explainer", "other"]
    per = rows.groupby(keys + ["sample_id"], sort=True)["value"].mean().reset_index()
    return aggregate(per, keys)


def tables(scores: pd.DataFrame, costs) -> dict[str, pd.DataFrame]:
    """agreement_pairs.csv and one square matrix per (task, model, metric) under agreement/."""
    from explainbench.bench.studies import jain_wallace

    out = {"agreement_pairs.csv": pairs(scores),
           "attention_permutation.csv": jain_wallace.permutation_table(scores)}
    for (task, model, metric), matrix in matrices(scores).items():
        name = f"{task}-{model}.csv" if metric == "agreement_spearman" else f"{task}-{model}-{metric}.csv"
        out[f"agreement/{name}"] = matrix.reset_index().rename(columns={"index": "explainer"})
    return out


Q_ATTENTION = "Does attention agree with gradients on the transformer?"
# Jain & Wallace 2019 (NAACL), Table 2: mean Kendall tau between attention and gradient
# importance for a BiLSTM with attention on IMDB. The literature's number, not one of ours.
JAIN_WALLACE_TAU = 0.44


def kendall_to_spearman(tau: float) -> float:
    """Spearman's rho that goes with Kendall's tau for bivariate-normal data (Greiner's relation
    r = sin(pi tau / 2), then rho_s = 6/pi arcsin(r / 2))."""
    r = math.sin(math.pi * tau / 2)
    return 6 / math.pi * math.asin(r / 2)


def _needs_gradients(name: str) -> bool:
    from explainbench import explainers

    try:
        return bool(explainers.get_class(name).needs_gradients)
    except Exception:  # an explainer of a plugin the report cannot import
        return False


def findings(folder) -> list[Finding]:
    pairs = folder.table("agreement_pairs.csv")
    out = []
    threshold = kendall_to_spearman(JAIN_WALLACE_TAU)
    for (task, model), g in (pairs.groupby(["task", "model"], sort=True) if len(pairs) else []):
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


def figures(folder) -> list:
    from explainbench.bench.present.figure import pyplot, save, slug

    out = []
    found = matrices(folder.scores)
    if not found:
        return out
    plt, sns = pyplot()
    for (task, model, metric), matrix in found.items():
        n = len(matrix)
        fig, ax = plt.subplots(figsize=(0.3 * n + 2.2, 0.28 * n + 1.6))
        sns.heatmap(matrix, vmin=0 if metric == "agreement_topk" else -1, vmax=1, cmap="RdBu_r",
                    center=0, annot=n <= 14, fmt=".1f", annot_kws={"size": 5}, ax=ax, square=True,
                    cbar_kws={"shrink": 0.6})
        ax.tick_params(labelsize=6.5)
        ax.set_title(f"{model}: {metric}", fontsize=8.5)
        out += save(fig, folder.root / "plots", f"agreement-{task}-{model}-{slug(metric)}")
    return out


def section(folder) -> str:
    run_dir = folder.root
    figs = html.figures(run_dir, "agreement-", css="figs")
    if not figs:
        return html.note("This run has no agreement study.")
    files = sorted((run_dir / "agreement").glob("*.csv")) if (run_dir / "agreement").is_dir() else []
    links = ", ".join(html.link(run_dir, f"agreement/{p.name}") for p in files)
    permutation = ""
    if (run_dir / "attention_permutation.csv").is_file():
        permutation = (" Jain &amp; Wallace's permutation test (the output change when the attention "
                       f"weights are shuffled): {html.link(run_dir, 'attention_permutation.csv')}.")
    return ("<p>Do two explainers agree on why? Mean over samples of the rank correlations "
            "(Spearman; Kendall's τ where the suite asks for it) and the top-k intersection between "
            "every pair of explainers.</p>" + figs
            + f'<p class="note">Matrices: {links}; with intervals: {html.link(run_dir, "agreement_pairs.csv")}.'
            + permutation + '</p>')


def _jain_wallace_findings(folder) -> list[Finding]:
    from explainbench.bench.studies import jain_wallace

    return jain_wallace.findings(folder)


REPORT = Contribution(
    tables=tables,
    findings=((69, _jain_wallace_findings), (70, findings)),
    glance={"attention": (6, "attention vs gradients"),
            "jain_wallace": (7, "Jain & Wallace reproduced")},
    figures=figures,
    section=Section(70, "agreement", "Agreement", section),
)

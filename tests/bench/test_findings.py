"""The findings generator on small synthetic tables with known answers: the sentences must name
what the numbers say and nothing else. Metric names here are made up on purpose: the generator
reads roles from the tables' columns (category, higher_is_better), never from names."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from explainbench.bench.report import findings, tables
from explainbench.bench.studies import agreement, stability_results


def _scores(values: dict[str, dict[str, np.ndarray]], model="m_cnn", task="mnist",
            category="faithfulness") -> pd.DataFrame:
    """Tidy score rows: values[metric][explainer] = per-sample values; metric names ending in
    '_low' are lower-is-better."""
    rows = []
    for metric, by_explainer in values.items():
        for explainer, v in by_explainer.items():
            for i, value in enumerate(v):
                rows.append(dict(study="scores", task=task, model=model, explainer=explainer,
                                 params_hash=f"h{explainer}", params="{}", metric=metric,
                                 metric_params="{}", category=category,
                                 higher_is_better=not metric.endswith("_low"), sample_id=i, seed=0,
                                 correct=True, value=float(value)))
    return pd.DataFrame(rows)


def _write_tables(run_dir, scores: pd.DataFrame) -> None:
    (run_dir / "leaderboard").mkdir(parents=True, exist_ok=True)
    for (task, model), board in tables.leaderboards(scores).items():
        board.to_csv(run_dir / "leaderboard" / f"{task}-{model}.csv", index=False)
    tables.versus_controls(scores).to_csv(run_dir / "versus_controls.csv", index=False)


@pytest.fixture
def separated(tmp_path):
    """20 samples; `strong` is far better than both controls on both metrics, `weak` is the random
    control plus noise, `edge` is random plus noise too."""
    rng = np.random.default_rng(0)
    n = 20
    floor = rng.uniform(0.4, 0.6, n)
    high = {"random": floor, "edge": floor + rng.normal(0, 0.01, n),
            "strong": floor + 0.3 + rng.normal(0, 0.02, n), "weak": floor + rng.normal(0, 0.02, n)}
    low = {k: 1 - v for k, v in high.items()}
    _write_tables(tmp_path, _scores({"zeta_up": high, "omega_low": low}))
    return tmp_path


def _one(found, key, scope=None):
    hits = [f for f in found if f.key == key and (scope is None or f.scope == scope)]
    assert len(hits) == 1, [f.answer for f in hits]
    return hits[0]


def test_explainers_that_beat_the_controls_are_named_and_the_others_are_not(separated):
    found = findings.generate(separated)
    f = _one(found, "controls", "m_cnn")
    beaten, _, rest = f.answer.partition("Not better than the controls on any:")
    assert "1 of 2 explainers beat random and edge" in beaten
    assert "strong (2/2" in beaten and "weak" not in beaten
    assert "weak" in rest and "strong" not in rest
    assert f.source == "versus_controls.csv" and f.short == "1 of 2 beat random and edge"
    # the per-metric details use the direction the table gives
    assert any(d.startswith("omega_low (lower is better)") for d in f.details)


def test_best_explainer_is_reported_with_its_interval(separated):
    board = pd.read_csv(separated / "leaderboard" / "mnist-m_cnn.csv")
    best = board[(board.metric == "zeta_up") & board.best].iloc[0]
    f = _one(findings.generate(separated), "best", "m_cnn")
    assert best["explainer"] == "strong"
    assert f.short == "strong"
    # the leaderboard records each metric's family: the aggregate counts each family once
    assert f.answer.startswith("By mean rank over the 2 faithfulness metrics (each metric family "
                               "once): strong (1)")
    detail = next(d for d in f.details if d.startswith("zeta_up"))
    assert findings.interval(best["mean"], best["ci_low"], best["ci_high"]) in detail
    assert "not significantly different from it: 0 of 3" in detail


def test_evidence_says_when_no_difference_can_be_significant(tmp_path):
    rng = np.random.default_rng(1)
    few = {"random": rng.uniform(size=4), "a": rng.uniform(size=4) + 1, "b": rng.uniform(size=4)}
    _write_tables(tmp_path, _scores({"zeta_up": few}))
    found = findings.generate(tmp_path)
    f = _one(found, "evidence", "m_cnn")
    # 4 pairs: exact two-sided Wilcoxon cannot go below 2/2**4 = 0.125; x2 explainers under Holm
    assert "cannot give p below 0.125" in f.answer and "raises that to 0.25" in f.answer
    assert "no two explainers can differ significantly" in f.answer
    controls = _one(found, "controls", "m_cnn")
    assert controls.answer.startswith("No explainer beats random significantly")
    assert findings.smallest_wilcoxon_p(8) == pytest.approx(0.0078125)


def test_families_group_metrics_when_the_leaderboard_has_them(separated):
    path = separated / "leaderboard" / "mnist-m_cnn.csv"
    board = pd.read_csv(path)
    board["family"] = "removal"  # both metrics one family: counted once
    board.to_csv(path, index=False)
    f = _one(findings.generate(separated), "controls", "m_cnn")
    assert "half of the 1 metric families" in f.answer and "strong (1/1" in f.answer


def _csv(run_dir, name, rows):
    pd.DataFrame(rows).to_csv(run_dir / name, index=False)


def test_stability_per_budget_in_budget_order(tmp_path):
    rows = []
    for budget, mean in [(1000, 0.8), (100, 0.3), (300, 0.55)]:
        for metric, higher, shift in [("stab_spearman", True, 0), ("stab_cv", False, 1)]:
            rows.append(dict(task="mnist", model="m_cnn", explainer="lime", budget_param="n_samples",
                             budget=budget, metric=metric, higher_is_better=higher, mean=mean + shift,
                             ci_low=mean + shift - 0.05, ci_high=mean + shift + 0.05, n=8, seeds=5))
    _csv(tmp_path, "stability_budget.csv", rows)
    f = _one(findings.generate(tmp_path), "budget", "m_cnn")
    assert f.question == stability_results.Q_LIME
    a = f.answer
    assert "mean pairwise stab_spearman" in a and "(5 seeds, n = 8)" in a
    assert a.index("0.3 [0.25, 0.35] at n_samples = 100") < a.index("0.55 [0.5, 0.6] at n_samples = 300") \
        < a.index("0.8 [0.75, 0.85] at n_samples = 1,000")
    assert f.details == ("stab_cv (lower is better): 1.3 [1.25, 1.35] at 100 → 1.55 [1.5, 1.6] at 300 → "
                         "1.8 [1.75, 1.85] at 1,000",)


def _topk_rows(explainer: str, means: dict[int, float], spread: float, n: int = 10, k=0.1,
               swept: str | None = "n_samples"):
    """Stability-study rows of stability_topk for a budget sweep: per budget, n samples whose
    values are the mean plus symmetric offsets of +-spread (swept=None: the explainer's own
    setting, outside the sweep)."""
    offsets = np.linspace(-spread, spread, n)
    return [dict(study="stability", task="mnist", model="m_cnn", explainer=explainer,
                 params_hash=f"{explainer}{budget}", params=json.dumps({"n_samples": budget, "seg": "slic"}),
                 metric="stability_topk", higher_is_better=True, sample_id=i, seed=-1,
                 metric_params=json.dumps({"budget_param": swept, "k": k, "seeds": list(range(10))}),
                 category="stability", correct=True, value=mean + offsets[i])
            for budget, mean in means.items() for i in range(n)]


def test_the_explainers_own_setting_is_a_point_of_its_sweep():
    """lime swept over 100 and 300 beside its own setting (1,000): three budgets; an own setting
    equal to a swept value is the same explanations, counted once per sample; an explainer
    without a sweep stays out."""
    scores = pd.DataFrame(_topk_rows("lime", {100: 0.5, 300: 0.7}, spread=0.01)
                          + _topk_rows("lime", {1000: 0.9}, spread=0.01, swept=None)
                          + _topk_rows("smooth", {4: 0.8}, spread=0.01)
                          + _topk_rows("smooth", {4: 0.8}, spread=0.01, swept=None)
                          + _topk_rows("rise", {500: 0.6}, spread=0.01, swept=None))
    budget = stability_results.by_budget(scores)
    lime = budget[budget["explainer"] == "lime"].sort_values("budget")
    assert list(lime["budget"]) == [100, 300, 1000] and list(lime["mean"].round(6)) == [0.5, 0.7, 0.9]
    smooth = budget[budget["explainer"] == "smooth"]
    assert list(smooth["budget"]) == [4] and list(smooth["n"]) == [10]
    assert "rise" not in set(budget["explainer"])


def test_the_budget_where_top_features_settle(tmp_path):
    """settles_at: the smallest budget from which the mean top-k agreement stays >= 0.9 at every
    larger budget (a dip below it at 1,000 moves lime's to 3,000); settles_at_surely: the same for
    the interval's low end; blank when the largest budget is below."""
    rows = (_topk_rows("lime", {100: 0.70, 300: 0.93, 1000: 0.88, 3000: 0.95}, spread=0.01)
            + _topk_rows("kshap", {100: 0.5, 300: 0.8, 1000: 0.91, 3000: 0.92}, spread=0.2)
            + _topk_rows("rise", {100: 0.3, 300: 0.4, 1000: 0.5, 3000: 0.6}, spread=0.05))
    scores = pd.DataFrame(rows)
    settle = stability_results.settling(stability_results.by_budget(scores), scores).set_index("explainer")
    assert settle.loc["lime", "settles_at"] == 3000 and settle.loc["lime", "settles_at_surely"] == 3000
    assert settle.loc["kshap", "settles_at"] == 1000 and np.isnan(settle.loc["kshap", "settles_at_surely"])
    assert np.isnan(settle.loc["rise", "settles_at"]) and settle.loc["rise", "largest_budget"] == 3000
    assert settle.loc["lime", "mean_at_settling"] == pytest.approx(0.95)
    assert settle.loc["rise", "mean_at_largest"] == pytest.approx(0.6)
    assert (settle["k"] == 0.1).all() and (settle["seeds"] == 10).all() and (settle["n"] == 10).all()
    settle.reset_index().to_csv(tmp_path / "stability_settling.csv", index=False)
    f = _one(findings.generate(tmp_path), "settling", "m_cnn")
    a = f.answer
    assert "the top-10 % features agree between seeds" in a and "10 seeds" in a
    assert a.index("kshap from n_samples = 1,000 (its interval's low end never reaches 0.9)") \
        < a.index("lime from n_samples = 3,000") and "lime from n_samples = 3,000;" in a
    assert "not within the budgets tried: rise (0.6 [" in a and "at n_samples = 3,000)" in a
    assert f.short == "kshap from n_samples = 1,000"


def _anchor_tau_sweep():
    """Anchor's top-k rows at tau 0.5, 0.3 and 0.15 (means 0.80, 0.92, 0.95) and the costs.csv
    that makes them 1,000, 1,500 and 2,300 model evaluations per explanation."""
    rows = []
    for tau, mean in {0.5: 0.80, 0.3: 0.92, 0.15: 0.95}.items():
        for row in _topk_rows("anchor", {tau: mean}, spread=0.01):
            row["params"] = json.dumps({"tau": tau})
            row["metric_params"] = row["metric_params"].replace('"n_samples"', '"tau"')
            rows.append(row)
    costs = pd.DataFrame([dict(model="m_cnn", explainer="anchor", params_hash=f"anchor{tau}",
                               forward_passes_per_explanation=passes)
                          for tau, passes in {0.5: 1000.0, 0.3: 1500.0, 0.15: 2300.0}.items()])
    return rows, costs


def test_a_tolerance_sweep_settles_in_the_order_of_its_cost(tmp_path):
    """Anchor's tau costs more the smaller it is: with costs.csv, the sweep runs 0.5 -> 0.3 ->
    0.15 (1,000, 1,500 and 2,300 model evaluations per explanation), so top-k agreement of 0.80,
    0.92 and 0.95 settles from tau = 0.3, which the finding says in evaluations too."""
    rows, costs = _anchor_tau_sweep()
    scores = pd.DataFrame(rows)
    budget = stability_results.by_budget(scores, costs)
    settle = stability_results.settling(budget, scores).iloc[0]
    assert settle["settles_at"] == 0.3 and settle["forward_passes_at_settling"] == 1500
    assert settle["largest_budget"] == 0.15 and settle["mean_at_largest"] == pytest.approx(0.95)
    # without costs the sweep is read in the order of its values (the older tables' behaviour)
    assert np.isnan(stability_results.settling(stability_results.by_budget(scores), scores)
                    .iloc[0]["settles_at"])
    pd.DataFrame([settle]).to_csv(tmp_path / "stability_settling.csv", index=False)
    a = _one(findings.generate(tmp_path), "settling", "m_cnn").answer
    assert "anchor from tau = 0.3 (1,500 model evaluations per explanation)" in a


def test_neighbouring_budgets_are_compared_paired_over_the_same_samples(tmp_path):
    """Each sample gains exactly 0.2 from 100 to 300 samples and nothing from 300 to 1,000,
    although the 10 samples spread evenly over +-0.3 around 0.4 and 0.6 (per-budget intervals of
    about +-0.1 that nearly touch; the paired change has no spread at all): the first step's
    change is 0.2 [0.2, 0.2], the exact Wilcoxon p of 10 positive pairs is 2 / 2**10, doubled by
    Holm over the sweep's two steps, and it separates; the second is 0 with p = 1 and does not.
    With costs, Anchor's tau is stepped in the order of its effort (0.5 -> 0.3 -> 0.15)."""
    from explainbench.bench.studies import budget_sweeps

    anchor, costs = _anchor_tau_sweep()
    scores = pd.DataFrame(_topk_rows("lime", {100: 0.4, 300: 0.6, 1000: 0.6}, spread=0.3) + anchor)
    steps = budget_sweeps.steps(scores, stability_results.by_budget(scores, costs))
    lime = steps[steps["explainer"] == "lime"].set_index("from_budget")
    assert list(lime["to_budget"]) == [300, 1000] and list(lime["n"]) == [10, 10]
    assert lime.loc[100, "mean_difference"] == pytest.approx(0.2)
    assert lime.loc[100, "ci_low"] == pytest.approx(0.2) and lime.loc[100, "ci_high"] == pytest.approx(0.2)
    assert lime.loc[100, "p_holm"] == pytest.approx(2 * 2 / 2**10) and lime.loc[100, "separated"]
    assert lime.loc[300, "mean_difference"] == 0 and lime.loc[300, "p_holm"] == 1
    assert not lime.loc[300, "separated"]
    anchor = steps[steps["explainer"] == "anchor"]
    assert list(zip(anchor["from_budget"], anchor["to_budget"])) == [(0.5, 0.3), (0.3, 0.15)]
    assert anchor["mean_difference"].tolist() == pytest.approx([0.12, 0.03])

    budget = stability_results.by_budget(scores, costs)
    budget.to_csv(tmp_path / "stability_budget.csv", index=False)
    steps.to_csv(tmp_path / "stability_budget_steps.csv", index=False)
    f = next(f for f in findings.generate(tmp_path) if f.key == "budget" and "lime" in f.answer)
    assert "Paired over the same 10 samples" in f.answer
    assert "1 of 2 for stability_topk (not 300 → 1,000: 0 [0, 0], p = 1)" in f.answer
    assert f.source == "stability_budget.csv, stability_budget_steps.csv"


def test_least_stable_skips_controls_and_deterministic_explainers(tmp_path):
    rows = [dict(explainer=e, mean=m, ci_low=lo, ci_high=hi) for e, m, lo, hi in [
        ("lime", 0.3, 0.2, 0.4), ("rise", 0.6, 0.5, 0.7), ("smoothgrad", 0.9, 0.85, 0.95),
        ("kernel_shap", 0.5, 0.4, 0.6), ("saliency", 1.0, 1.0, 1.0), ("random", 0.01, -0.02, 0.04)]]
    _csv(tmp_path, "stability.csv", [dict(task="mnist", model="m_cnn", metric="stab_spearman",
                                          higher_is_better=True, n=8, **r) for r in rows])
    f = _one(findings.generate(tmp_path), "stable", "m_cnn")
    listed = f.answer.split(";")[0]
    assert listed.index("lime 0.3") < listed.index("kernel_shap 0.5") < listed.index("rise 0.6")
    assert "smoothgrad" not in listed and "most stable: smoothgrad 0.9" in f.answer
    assert "The random control: 0.01" in f.answer and "1 deterministic explainers score exactly 1" in f.answer
    assert f.short == "lime (stab_spearman 0.3 between seeds)"  # says what the number is


def test_background_convergence_by_size_and_selection(tmp_path):
    rows = []
    for strategy, size, conv in [("random", 1, 0.4), ("random", 5, 0.7), ("random", 20, 1.0),
                                 ("kmeans", 1, 0.5), ("kmeans", 5, 0.9), ("zeros", 1, 0.2)]:
        rows.append(dict(task="mnist", model="m_cnn", explainer="gradient_shap", strategy=strategy,
                         size=size, background_convergence_mean=conv, convergence_ci_low=conv - 0.1,
                         convergence_ci_high=min(1, conv + 0.1), alpha_mean=0.5,
                         alpha_change=0.0 if size == 20 else -0.04 * (strategy == "zeros") + 0.01))
    _csv(tmp_path, "background.csv", rows)
    f = _one(findings.generate(tmp_path), "background", "m_cnn")
    a = f.answer
    assert "largest random background (20, an independent draw) is 0.4 [0.3, 0.5] at size 1 and 0.7 [0.6, 0.8] at size 5" in a
    assert "At size 1 the selection matters: kmeans comes closest (0.5 [0.4, 0.6]), zeros least " \
           "close (0.2 [0.1, 0.3])." in a
    assert "alpha by at most 0.03 (zeros, size 1)" in a
    # selections side by side at a size they share, best first
    assert f.details[:2] == ("At size 1: kmeans 0.5 [0.4, 0.6], random 0.4 [0.3, 0.5] and zeros 0.2 [0.1, 0.3].",
                             "At size 5: kmeans 0.9 [0.8, 1] and random 0.7 [0.6, 0.8].")
    # overlapping intervals are not called a difference
    table = pd.read_csv(tmp_path / "background.csv")
    table.loc[table.strategy == "random", ["background_convergence_mean", "convergence_ci_low"]] = [0.45, 0.35]
    table.loc[table.strategy == "zeros", ["background_convergence_mean", "convergence_ci_low",
                                          "convergence_ci_high"]] = [0.45, 0.35, 0.55]
    table.to_csv(tmp_path / "background.csv", index=False)
    assert "At size 1 the intervals overlap: kmeans comes closest" in _one(
        findings.generate(tmp_path), "background", "m_cnn").answer


def test_logistic_model_against_its_exact_attributions_and_the_cnn(tmp_path):
    rng = np.random.default_rng(2)
    n = 12
    gt = {"exact": 0.97 + rng.normal(0, 0.005, n), "rough": 0.4 + rng.normal(0, 0.05, n),
          "random": rng.normal(0, 0.05, n)}
    order_logreg = {"exact": 0.9, "rough": 0.5, "other": 0.6, "random": 0.2}
    order_cnn = {"exact": 0.5, "rough": 0.9, "other": 0.6, "random": 0.2}
    lin = _scores({"linear_ground_truth": gt}, model="m_logreg", category="ground_truth")
    faith_l = _scores({"zeta_up": {k: v + rng.normal(0, 0.01, n) for k, v in order_logreg.items()}}, model="m_logreg")
    faith_c = _scores({"zeta_up": {k: v + rng.normal(0, 0.01, n) for k, v in order_cnn.items()}}, model="m_cnn")
    _write_tables(tmp_path, pd.concat([lin, faith_l, faith_c], ignore_index=True))
    f = _one(findings.generate(tmp_path), "linear", "m_logreg")
    a = f.answer
    assert a.index("closest exact 0.97") < a.index("rough 0.4")
    assert "1 of 2 explainers have an interval above 0.9" in a and "Control random" in a
    assert "with m_cnn (zeta_up) correlate with m_cnn's at Spearman 0.2 over 4 explainers" in a
    # places 1-4 against 3, 2, 1, 4: rho = 1 - 6 * 8 / (4 * 15) = 0.2
    assert "exact 1 → 3" in a and "rough 3 → 1" in a


def test_explainers_equal_to_the_exact_attributions_are_all_named_closest(tmp_path):
    """Four explainers with the same per-sample scores (as deeplift, input_x_gradient,
    integrated_gradients and feature_ablation on a logistic model): all of them are the closest,
    in the sentence and in the summary's short answer, not the first in name order."""
    rng = np.random.default_rng(3)
    n = 12
    exact = 0.74 + rng.normal(0, 0.1, n)
    gt = {"zeta": exact, "alpha": exact.copy(), "mid": exact * (1 + 1e-9), "omega": exact.copy(),
          "rough": 0.4 + rng.normal(0, 0.05, n), "random": rng.normal(0, 0.05, n)}
    _write_tables(tmp_path, _scores({"linear_ground_truth": gt}, model="m_logreg",
                                    category="ground_truth"))
    f = _one(findings.generate(tmp_path), "linear", "m_logreg")
    assert "closest (tied: equal to the precision computed) " in f.answer
    for name in ("zeta", "alpha", "mid", "omega"):
        assert name in f.short and f.answer.index(name) < f.answer.index("rough")
    assert "rough" not in f.short


def test_every_explainer_tied_for_the_lead_is_named(tmp_path):
    """Four explainers with the same scores share the best mean rank: the sentence names all
    four, not the first three in name order."""
    rng = np.random.default_rng(6)
    n = 12
    same = 0.9 + rng.normal(0, 0.02, n)
    values = {e: same.copy() for e in ("dd", "cc", "bb", "aa")}
    values.update(weak=same - 0.3, random=rng.uniform(0.2, 0.4, n))
    _write_tables(tmp_path, _scores({"zeta_up": values}))
    f = _one(findings.generate(tmp_path), "best", "m_cnn")
    lead = f.answer.split(".")[0]
    assert all(f"{e} (" in lead for e in ("aa", "bb", "cc", "dd")) and "weak" not in lead, lead
    assert f.short == "aa = bb = cc = dd"


def test_attention_against_gradients_compared_with_jain_and_wallace(tmp_path):
    rows = [dict(task="imdb", model="imdb_transformer", metric="agree_spearman", explainer=a, other=b,
                 mean=m, ci_low=m - 0.05, ci_high=m + 0.05, n=50)
            for a, b, m in [("attention", "saliency", 0.1), ("integrated_gradients", "attention", 0.3),
                            ("attention", "occlusion", 0.9), ("saliency", "integrated_gradients", 0.7)]]
    _csv(tmp_path, "agreement_pairs.csv", rows)
    f = _one(findings.generate(tmp_path), "attention", "imdb_transformer")
    a = f.answer
    # occlusion takes no gradient: left out; the pair is found in either order
    assert "against the 2 gradient explainers: from 0.1 [0.05, 0.15] (saliency) to 0.3 [0.25, 0.35] " \
           "(integrated_gradients), mean 0.2" in a
    assert "occlusion" not in a and "Kendall τ of about 0.44" in a and "Spearman" in a
    assert "Of our 2 pairs, 2 have an interval below 0.62 and 0 above it" in a and "weaker than theirs" in a
    # one pair clearly above, one clearly below: no single verdict
    rows[0]["mean"], rows[0]["ci_low"], rows[0]["ci_high"] = 0.9, 0.85, 0.95
    _csv(tmp_path, "agreement_pairs.csv", rows)
    mixed = _one(findings.generate(tmp_path), "attention", "imdb_transformer").answer
    assert "Of our 2 pairs, 1 have an interval below 0.62 and 1 above it: it depends on the gradient" in mixed


def test_jain_and_wallace_side_by_side_with_their_numbers(tmp_path):
    """Kendall's tau of attention against their gradient importance and leave-one-out, with our
    interval beside their published 0.437 / 0.341 / 0.517; the permutation test; the other
    explainers against leave-one-out and attention, highest first; a verdict by interval."""
    def pair(a, b, m, metric="agreement_kendall"):
        return dict(task="imdb", model="imdb_bilstm_attention", metric=metric, explainer=a,
                    other=b, mean=m, ci_low=m - 0.03, ci_high=m + 0.03, n=500)

    rows = [pair("attention", "jw_gradient", 0.2), pair("leave_one_out", "attention", 0.25),
            pair("jw_gradient", "leave_one_out", 0.5), pair("saliency", "leave_one_out", 0.3),
            pair("attention", "saliency", 0.1), pair("attention", "jw_gradient", 0.9, "agreement_spearman")]
    _csv(tmp_path, "agreement_pairs.csv", rows)
    _csv(tmp_path, "attention_permutation.csv", [dict(
        task="imdb", model="imdb_bilstm_attention", permutations=100, mean=0.02, ci_low=0.015,
        ci_high=0.025, n=500, median=0.004, **{"share_below_0.05": 0.9})])
    f = _one(findings.generate(tmp_path), "jain_wallace", "imdb_bilstm_attention")
    assert ("Kendall τ between attention and gradients (|∂p/∂e · e|, attention held constant) on "
            "imdb_bilstm_attention, over n = 500 reviews: ours 0.2 [0.17, 0.23], Jain & Wallace 0.44"
            in f.answer)
    assert "Attention against leave_one_out: ours 0.25 [0.22, 0.28], theirs 0.34" in f.answer
    assert "jw_gradient against leave_one_out: ours 0.5 [0.47, 0.53], theirs 0.52" in f.answer
    assert "Our interval lies below their 0.44" in f.answer  # 0.23 < 0.437
    text = " ".join(f.details)
    assert "moves the predicted probability by a median 0.004" in text and "for 90 % of the reviews" in text
    assert ("Kendall τ with leave_one_out (n = 500 reviews), highest first: jw_gradient 0.5 [0.47, 0.53], saliency 0.3 "
            "[0.27, 0.33] and attention 0.25 [0.22, 0.28]") in text
    assert "pretrained vectors" in text
    rows[0].update(mean=0.44, ci_low=0.40, ci_high=0.48)
    _csv(tmp_path, "agreement_pairs.csv", rows)
    again = _one(findings.generate(tmp_path), "jain_wallace", "imdb_bilstm_attention").answer
    assert "Our interval holds their 0.44: the reproduction agrees" in again
    # signed maps against the unsigned measures: the magnitudes' tau, and the text says so
    rows.append(pair("saliency", "leave_one_out", 0.6, "agreement_kendall_abs"))
    _csv(tmp_path, "agreement_pairs.csv", rows)
    text = " ".join(_one(findings.generate(tmp_path), "jain_wallace", "imdb_bilstm_attention").details)
    assert "Kendall τ of |map| with leave_one_out (n = 500 reviews), highest first: saliency 0.6" in text


def test_kendall_to_spearman_conversion():
    assert agreement.kendall_to_spearman(0.0) == 0.0
    assert agreement.kendall_to_spearman(1.0) == pytest.approx(1.0)
    assert agreement.kendall_to_spearman(0.44) == pytest.approx(0.619, abs=1e-3)
    # Spearman's rho is larger than Kendall's tau for a positive association
    assert all(agreement.kendall_to_spearman(t) > t for t in (0.1, 0.3, 0.6, 0.9))
    assert math.isclose(agreement.kendall_to_spearman(-0.44), -agreement.kendall_to_spearman(0.44))


def test_sanity_failures_are_the_flagged_explainers(tmp_path):
    rows = []
    for explainer, deepest, flagged in [("guided_backprop", 0.85, True), ("saliency", 0.1, False),
                                        ("edge", 1.0, True)]:
        for depth, layer in [(0, "fc2"), (1, "conv1")]:
            value = 0.95 if depth == 0 else deepest
            rows.append(dict(task="mnist", model="m_cnn", explainer=explainer, metric="mprt_spearman",
                             depth=depth, layer=layer, mean=value, ci_low=value - 0.05,
                             ci_high=min(1, value + 0.05), n=8, flagged=flagged))
    _csv(tmp_path, "sanity.csv", rows)
    f = _one(findings.generate(tmp_path), "sanity", "m_cnn")
    fail, _, passed = f.answer.partition("pass:")
    # judged over the cascade: its mean, and the end with its interval
    assert "2 of 3 fail" in fail and "guided_backprop 0.9 over the cascade, 0.85 [0.8, 0.9]" in fail
    assert "edge 0.975 over the cascade, 1 [0.95, 1] at its end (a control that ignores the model)" in fail
    assert "saliency" not in fail
    assert "saliency 0.525 over the cascade, 0.1" in passed and "down to conv1" in f.answer
    assert f.short == "guided_backprop (and 1 control)"


@pytest.mark.parametrize("order, verdict", [
    (["lime", "anchor", "shap_kernel", "saliency"], "The published claim holds here"),
    (["saliency", "lime", "anchor", "grad_cam_pp"], "does not hold here: the two least stable are lime and saliency"),
])
def test_explanation_styles_claim(tmp_path, order, verdict):
    rows = [dict(task="mnist", style=s, metric="stability_spearman", higher_is_better=True,
                 mean=0.2 * (i + 1), ci_low=0.2 * (i + 1) - 0.05, ci_high=0.2 * (i + 1) + 0.05)
            for i, s in enumerate(order)]
    rows.append(dict(task="mnist", style="lime", metric="rule_precision", higher_is_better=True,
                     mean=0.0, ci_low=0.0, ci_high=0.0))  # not a stability measure: ignored
    _csv(tmp_path, "explanation_styles-image.csv", rows)
    f = _one(findings.generate(tmp_path), "styles")
    assert verdict in f.answer and f.source == "explanation_styles-image.csv"
    assert f.answer.index(order[0]) < f.answer.index(order[-1])


def test_a_run_without_data_says_so_for_every_question(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"suite": {"name": "empty", "version": 1}}))
    found = findings.generate(tmp_path)
    keys = {f.key for f in found}
    assert {"budget", "stable", "background", "linear", "attention", "sanity", "styles"} <= keys
    assert all(f.answer.startswith("This run has no data for this question") for f in found)
    text = findings.write(tmp_path).read_text()
    assert text.startswith("# Findings: empty")
    for question in {f.question for f in found}:
        assert f"## {question}" in text


def test_findings_md_carries_every_answer_and_detail(separated):
    found = findings.generate(separated)
    text = findings.write(separated, found).read_text()
    for f in found:
        assert f.answer in text
        for d in f.details:
            assert d in text
    assert findings.write(separated, found).read_text() == text  # deterministic


def test_explanation_styles_claim_on_the_styles_tables_own_layout(tmp_path):
    """explanation_styles.csv as bench/studies/styles.py writes it (its COLUMNS: `style` names,
    `measure`, one block per task and model): LIME and Anchor least stable on the CNN only."""
    from explainbench.bench.studies.styles import COLUMNS

    rows = []
    for model, order in (("mnist_cnn", ["Anchor", "LIME (lime)", "SHAP (kernel)", "saliency"]),
                         ("mnist_logreg", ["SHAP (kernel)", "LIME (lime)", "Anchor", "saliency"])):
        for i, style in enumerate(order):
            for measure, value in (("stability_spearman", 0.2 * (i + 1)),
                                   ("stability_cv", 1 - 0.2 * (i + 1))):
                rows.append(dict(task="mnist", model=model, style=style, measure=measure,
                                 mean=value, ci_low=value - 0.05, ci_high=value + 0.05, n=20))
    (tmp_path / "explanation_styles.csv").write_text(pd.DataFrame(rows)[COLUMNS].to_csv(index=False))
    found = [f for f in findings.generate(tmp_path) if f.key == "styles"]
    by_model = {f.scope: f for f in found}
    assert set(by_model) == {"mnist mnist_cnn", "mnist mnist_logreg"}
    assert "The published claim holds here" in by_model["mnist mnist_cnn"].answer
    assert "by stability_spearman" in by_model["mnist mnist_cnn"].answer
    assert "does not hold here" in by_model["mnist mnist_logreg"].answer


def test_control_details_leave_out_empty_clauses():
    rows = pd.DataFrame([
        {"metric": "deletion", "higher_is_better": False, "control": "random", "explainer": e,
         "better": b, "diff_ci_low": lo, "diff_ci_high": hi, "control_mean": 0.6}
        for e, b, lo, hi in [("saliency", True, 0.1, 0.2), ("lime", False, 0.01, 0.3),
                             ("edge", False, -0.1, 0.1)]])
    text = findings._control_detail(rows, "deletion", ["random"])
    assert text == ("deletion (lower is better): vs random (0.6): significantly better saliency, "
                    "better by the interval only (not after Holm) lime.")
    rows = rows[rows["explainer"] != "lime"]
    assert "interval" not in findings._control_detail(rows, "deletion", ["random"])
    assert "worse" not in findings._control_detail(rows, "deletion", ["random"])


@pytest.mark.parametrize("styles, verdict", [
    ({"lime": 0.4}, "cannot be judged here"),  # quick's IMDB: LIME alone
    ({"lime": 0.3, "anchor": 0.35, "saliency": 0.9}, "cannot be judged"),
])
def test_the_styles_claim_is_judged_only_where_it_can_be(tmp_path, styles, verdict):
    rows = [dict(task="imdb", style=s, metric="stability_spearman", higher_is_better=True, mean=v,
                 ci_low=v - 0.05, ci_high=v + 0.05) for s, v in styles.items()]
    if len(styles) == 3:
        rows = [r for r in rows if r["style"] != "anchor"]
    _csv(tmp_path, "explanation_styles.csv", rows)
    f = _one(findings.generate(tmp_path), "styles")
    assert verdict in f.answer and "does not hold" not in f.answer


def test_overlapping_intervals_never_make_the_styles_claim_fail(tmp_path):
    """SHAP's mean is below Anchor's, but Anchor [0.27, 0.76] and LIME [0.46, 0.70] overlap
    SHAP's interval: the claim is not decided, not refuted."""
    rows = [dict(task="imdb", style=s, metric="stability_spearman", higher_is_better=True, mean=m,
                 ci_low=lo, ci_high=hi)
            for s, m, lo, hi in [("SHAP (kernel)", 0.45, 0.40, 0.52), ("Anchor", 0.51, 0.27, 0.76),
                                 ("LIME", 0.58, 0.46, 0.70), ("saliency", 0.98, 0.97, 0.99)]]
    _csv(tmp_path, "explanation_styles.csv", rows)
    f = _one(findings.generate(tmp_path), "styles")
    assert "not decided" in f.answer and "does not hold" not in f.answer and f.short == "undecided"


def test_metrics_that_do_not_separate_real_explainers_from_random_are_named():
    from explainbench.bench.report.findings_leaderboard import separation

    versus = pd.DataFrame([dict(task="mnist", model="m", metric=m, control="random", explainer=e,
                                better=b, worse=w, n=30, diff_ci_low=0.1 if b else -0.1,
                                diff_ci_high=-0.05 if w else 0.2)
                           for m, flags in (("deletion", [(1, 0)] * 4),
                                            ("infidelity", [(1, 0), (0, 1), (0, 1), (0, 0)]))
                           for e, (b, w) in zip("abcd", flags)])
    f = separation({("mnist", "m"): pd.DataFrame()}, versus)[0]
    assert "infidelity (1 of 4 better, 2 worse)" in f.answer and "deletion" not in f.answer
    assert f.short == "1 metrics"


def test_explainers_a_model_does_not_support_are_named_with_the_reason():
    from explainbench.bench.report.findings_leaderboard import unsupported

    manifest = {"unsupported": [{"experiment": "imdb", "model": "imdb_lstm", "explainer": "attention",
                                 "reason": "imdb_lstm has no attention layer"}]}
    f = unsupported(manifest)[0]
    assert f.scope == "imdb_lstm" and "attention (imdb_lstm has no attention layer)" in f.answer


def test_explanation_by_example_that_does_not_discriminate_is_called_uninformative():
    from explainbench.bench.report.findings_leaderboard import examples

    def board(std, agreement):
        return pd.DataFrame([dict(metric="example_similarity", mean=0.99994, std=std, n=100),
                             dict(metric="example_model_agreement", mean=agreement, std=0.0, n=100)])

    flat = examples({("imdb", "imdb_transformer"): board(0.00004, 0.0)})[0]
    assert flat.short == "uninformative" and "does not discriminate" in flat.answer
    assert "uninformative here too" in flat.answer
    varied = examples({("mnist", "mnist_cnn"): board(0.05, 0.4)})[0]
    assert varied.short == "discriminates" and "uninformative" not in varied.answer


def test_the_summary_names_every_explainer_tied_for_the_best_mean_rank(tmp_path):
    """Two explainers with identical scores share the best rank: the at-a-glance cell names
    both, not the first in file order."""
    rng = np.random.default_rng(1)
    n = 20
    floor = rng.uniform(0.4, 0.6, n)
    same = floor + 0.3 + rng.normal(0, 0.02, n)
    high = {"random": floor, "edge": floor + rng.normal(0, 0.01, n), "twin_a": same,
            "twin_b": same.copy(), "weak": floor + 0.1 + rng.normal(0, 0.02, n)}
    _write_tables(tmp_path, _scores({"zeta_up": high, "omega_low": {k: 1 - v for k, v in high.items()}}))
    f = _one(findings.generate(tmp_path), "best", "m_cnn")
    assert f.short == "twin_a = twin_b", f.short

"""The statistics behind every claim, against independent computations on data with known answers:
Holm against statsmodels, the paired Wilcoxon against scipy on pairs whose pairing matters, the
bootstrap interval against a direct percentile computation and its coverage, equal-to-precision
explainers, and a leaderboard's p-values and flags recomputed from its per-sample scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon
from statsmodels.stats.multitest import multipletests

from explainbench.bench.present import stats
from explainbench.bench.report import tables
from tests.bench.test_tables import rows

GOLDEN = Path(__file__).parent / "golden"


def test_holm_matches_statsmodels():
    rng = np.random.default_rng(3)
    for m in (1, 2, 5, 17):
        p = rng.uniform(0, 0.2, m) ** 2
        expected = multipletests(p, alpha=0.05, method="holm")[1]
        np.testing.assert_allclose(stats.holm(list(p)), expected, rtol=1e-12)


def _shuffled(scores: pd.DataFrame, seed: int) -> pd.DataFrame:
    return scores.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def test_the_leaderboard_test_is_paired_by_sample():
    """b is a's sample plus a little: every pair says b is worse, while the two marginal
    distributions are almost the same. A paired test finds it; the same values unpaired do not."""
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, 30)
    b = a + rng.uniform(0.005, 0.01, 30)
    scores = _shuffled(pd.concat([rows("good", "deletion", a), rows("worse", "deletion", b)],
                                 ignore_index=True), seed=1)  # rows in no particular order
    board = tables.leaderboards(scores)[("mnist", "mnist_cnn")].set_index("explainer")
    paired = wilcoxon(a, b, zero_method="zsplit").pvalue
    assert board.loc["worse", "p_vs_best"] == pytest.approx(paired, rel=1e-12)
    assert paired < 1e-5 and bool(board.loc["worse", "different_from_best"])
    assert wilcoxon(a, np.sort(b), zero_method="zsplit").pvalue > 1e-3  # unpaired: no finding


def test_holm_corrects_within_one_metric_on_the_leaderboard_and_versus_the_controls():
    rng = np.random.default_rng(5)
    base = rng.uniform(0, 1, 25)
    shifts = {"best": 0.0, "e1": 0.004, "e2": 0.006, "e3": 0.3}
    scores = pd.concat([rows(e, "deletion", base + s + rng.normal(0, 0.01, 25))
                        for e, s in shifts.items()] + [rows("random", "deletion", base + 0.5)],
                       ignore_index=True)
    board = tables.leaderboards(scores)[("mnist", "mnist_cnn")].set_index("explainer")
    wide = {e: board.loc[e] for e in board.index}
    others = [e for e in board.index if not board.loc[e, "best"]]
    raw = [board.loc[e, "p_vs_best"] for e in others]
    np.testing.assert_allclose([board.loc[e, "p_vs_best_holm"] for e in others],
                               multipletests(raw, method="holm")[1], rtol=1e-12)
    assert wide["best"]["best"]
    versus = tables.versus_controls(scores)
    np.testing.assert_allclose(versus["p_holm"], multipletests(versus["p"], method="holm")[1],
                               rtol=1e-12)


def test_the_bootstrap_interval_is_the_percentiles_of_resampled_means():
    values = np.random.default_rng(2).exponential(size=37)
    rng = np.random.default_rng(0)  # the documented resampling: 2,000 resamples, seed 0
    means = values[rng.integers(0, 37, size=(2000, 37))].mean(axis=1)
    expected = (np.percentile(means, 2.5), np.percentile(means, 97.5))
    assert stats.bootstrap_ci(values) == pytest.approx(expected, rel=1e-12)


def test_the_bootstrap_interval_covers_the_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(11)
    hits = 0
    for _ in range(400):
        low, high = stats.bootstrap_ci(rng.normal(0.3, 1.0, 50))
        hits += low <= 0.3 <= high
    assert 0.90 <= hits / 400 <= 0.98


def test_explainers_equal_to_float32_precision_share_a_rank_and_are_never_different():
    """Four explainers whose per-sample scores are the same float32 numbers computed along
    different paths (a unit in the last place apart): one rank, p = 1, none "different"."""
    base = np.random.default_rng(4).uniform(0.5, 0.9, 40).astype(np.float32)
    up = np.nextafter(base, np.float32(1))
    variants = {"w_x": base, "ig": up, "gxi": np.where(np.arange(40) % 2 == 0, base, up),
                "deeplift": np.nextafter(up, np.float32(1)), "saliency": base - 0.05}
    scores = pd.concat([rows(e, "faithfulness_correlation", v.astype(np.float64), higher=True)
                        for e, v in variants.items()], ignore_index=True)
    board = tables.leaderboards(scores)[("mnist", "mnist_cnn")].set_index("explainer")
    twins = ["w_x", "ig", "gxi", "deeplift"]
    assert (board.loc[twins, "rank"] == 1).all() and board.loc["saliency", "rank"] == 5
    assert not board.loc[twins, "different_from_best"].any()
    assert (board.loc[[e for e in twins if not board.loc[e, "best"]], "p_vs_best"] == 1.0).all()
    assert bool(board.loc["saliency", "different_from_best"])
    # and against each other, through the test every table uses
    assert stats.wilcoxon_p(variants["w_x"], variants["deeplift"]) == 1.0
    assert stats.wilcoxon_p(variants["w_x"], variants["saliency"]) < 1e-6


def test_one_map_computed_along_two_paths_shares_the_rank_of_its_twin():
    """feature_ablation's W·x is a difference of float32 logits: its scores differ from
    deeplift's W·x by a few 1e-6 relative on some samples (measured on mnist_logreg: 2.5e-6 on
    faithfulness correlation, 3.8e-6 on infidelity). That is the same number: shared rank 1,
    p = 1, not different. An explainer 1e-3 away on one sample of 40 is another explainer."""
    rng = np.random.default_rng(5)
    base = rng.uniform(0.4, 0.95, 40)
    wobble = np.where(np.arange(40) % 5 == 0, 1 + 3.8e-6 * rng.choice([-1, 1], 40), 1.0)
    variants = {"deeplift": base, "input_x_gradient": base.copy(), "feature_ablation": base * wobble,
                "near": np.where(np.arange(40) == 7, base - 1e-3, base) - 1e-12, "saliency": base - 0.05}
    scores = pd.concat([rows(e, "faithfulness_correlation", v, higher=True)
                        for e, v in variants.items()], ignore_index=True)
    board = tables.leaderboards(scores)[("mnist", "mnist_cnn")].set_index("explainer")
    twins = ["deeplift", "input_x_gradient", "feature_ablation"]
    assert (board.loc[twins, "rank"] == 1).all(), board["rank"]
    assert not board.loc[twins, "different_from_best"].any()
    assert board.loc["near", "rank"] == 4 and board.loc["saliency", "rank"] == 5
    assert stats.wilcoxon_p(variants["deeplift"], variants["feature_ablation"]) == 1.0
    assert stats.wilcoxon_p(variants["deeplift"], variants["near"]) < 1.0


def test_a_leaderboards_p_values_and_flags_recomputed_from_its_per_sample_scores():
    """The golden run's leaderboard (tests/bench/golden), recomputed from its scores.csv with
    scipy and statsmodels: each explainer's seeds averaged per sample, paired Wilcoxon against the
    best on the samples both scored, Holm across the explainers of the metric."""
    scores = pd.read_csv(GOLDEN / "scores.csv")
    board = pd.read_csv(GOLDEN / "tables" / "leaderboard--mnist-mnist_cnn.csv")
    scores = scores[(scores.study == "scores") & (scores.model == "mnist_cnn")
                    & scores.category.isin(tables.LEADERBOARD_CATEGORIES)]
    checked = 0
    for metric, m in board.groupby("metric"):
        per = (scores[scores.metric == metric].groupby(["explainer", "sample_id"])["value"].mean()
               .unstack("explainer"))
        best = m.loc[m["best"], "explainer"].item()
        others = [e for e in m["explainer"] if e != best]
        raw = []
        for e in others:
            both = per[[best, e]].dropna()
            same = stats.equal_to_precision(both[best], both[e])
            raw.append(1.0 if same else wilcoxon(both[best], both[e], zero_method="zsplit").pvalue)
        adjusted = multipletests(raw, method="holm")[1] if raw else []
        for e, p, q in zip(others, raw, adjusted):
            row = m[m.explainer == e].iloc[0]
            assert row["p_vs_best"] == pytest.approx(p, rel=1e-5), (metric, e)
            assert row["p_vs_best_holm"] == pytest.approx(q, rel=1e-5), (metric, e)
            assert bool(row["different_from_best"]) == (q < 0.05), (metric, e)
            checked += 1
    assert checked >= 12

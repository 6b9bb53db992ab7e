"""Leaderboard statistics on hand-made score rows, checked against scipy and hand computation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon

from explainbench.bench.present import stats
from explainbench.bench.report import tables
from explainbench.bench.store import SCORE_COLUMNS


def rows(explainer, metric, values, *, higher=False, seed=0, params=None, metric_params=None,
         study="scores", category="faithfulness", family=None):
    n = len(values)
    return pd.DataFrame({
        "suite": "t", "suite_version": 1, "suite_hash": "h", "experiment": "e", "study": study,
        "task": "mnist", "model": "mnist_cnn", "model_sha256": "m", "explainer": explainer,
        "params_hash": json.dumps(params or {}), "params": json.dumps(params or {}),
        "metric": metric, "metric_params": json.dumps(metric_params or {"steps": 4}),
        "category": category, "family": family or metric, "seed": seed, "sample_id": np.arange(n),
        "label": 0, "target": 0,
        "pred": 0, "correct": True, "value": np.asarray(values, dtype=float),
        "higher_is_better": higher, "slice": "s", "slice_hash": "x", "cell_id": "c",
        "explainer_version": 1, "metric_version": 1,
    })[SCORE_COLUMNS]


def test_bootstrap_ci_is_deterministic_and_brackets_the_mean():
    values = np.random.default_rng(1).normal(size=50)
    low, high = stats.bootstrap_ci(values)
    assert (low, high) == stats.bootstrap_ci(values)
    assert low < values.mean() < high
    # the interval shrinks like 1/sqrt(n)
    wide = stats.bootstrap_ci(values[:12])
    assert (wide[1] - wide[0]) > (high - low)


def test_holm_matches_hand_computation():
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([0.5]) == [0.5]


def test_leaderboard_ranks_by_direction_and_tests_against_the_best():
    rng = np.random.default_rng(0)
    good = rng.uniform(0.0, 0.2, 30)
    bad = good + rng.uniform(0.2, 0.3, 30)
    close = good + rng.normal(0, 1e-3, 30)
    scores = pd.concat([
        rows("ig", "deletion", good), rows("saliency", "deletion", bad),
        rows("twin", "deletion", close), rows("random", "deletion", bad + 0.1),
        rows("ig", "insertion", 1 - good, higher=True), rows("saliency", "insertion", 1 - bad, higher=True),
        rows("twin", "insertion", 1 - close, higher=True), rows("random", "insertion", 0.2 + 0 * good, higher=True),
    ], ignore_index=True)
    board = tables.leaderboards(scores)[("mnist", "mnist_cnn")]
    deletion = board[board.metric == "deletion"].set_index("explainer")
    best = deletion.index[deletion["best"]].item()
    assert best in ("ig", "twin") and deletion.loc["saliency", "rank"] == 3
    assert deletion.loc["random", "rank"] == 4
    deletion_rows = scores[scores.metric == "deletion"]
    p = wilcoxon(deletion_rows[deletion_rows.explainer == best]["value"].to_numpy(),
                 deletion_rows[deletion_rows.explainer == "saliency"]["value"].to_numpy(),
                 zero_method="zsplit").pvalue
    assert deletion.loc["saliency", "p_vs_best"] == pytest.approx(p)
    assert deletion.loc["saliency", "different_from_best"]
    assert deletion.loc["saliency", "p_vs_best_holm"] >= deletion.loc["saliency", "p_vs_best"]
    # read against the random floor: positive means better than random
    assert deletion.loc["saliency", "better_than_floor_by"] == pytest.approx(0.1)
    insertion = board[board.metric == "insertion"].set_index("explainer")
    assert insertion.loc["saliency", "rank"] == 3
    assert deletion.loc["saliency", "mean_faithfulness_rank"] == 3
    assert deletion.loc["ig", "ci_low"] <= good.mean() <= deletion.loc["ig", "ci_high"]


def test_seeds_are_averaged_per_sample_before_statistics():
    scores = pd.concat([rows("lime", "deletion", [0.1, 0.3], seed=0),
                        rows("lime", "deletion", [0.3, 0.5], seed=1)], ignore_index=True)
    board = tables.leaderboards(scores)[("mnist", "mnist_cnn")]
    assert board["n"].item() == 2 and board["seeds"].item() == 2
    assert board["mean"].item() == pytest.approx(0.3)
    assert board["std"].item() == pytest.approx(np.std([0.2, 0.4], ddof=1))


def test_labels_name_only_the_parameters_that_differ():
    scores = pd.concat([
        rows("lime", "deletion", [0.1], params={"n_samples": 100, "kernel": 0.25},
             metric_params={"steps": 4, "substrate": "zero"}),
        rows("lime", "deletion", [0.2], params={"n_samples": 500, "kernel": 0.25},
             metric_params={"steps": 4, "substrate": "blur"}),
    ], ignore_index=True)
    assert stats.explainer_labels(scores).tolist() == ["lime[n_samples=100]", "lime[n_samples=500]"]
    assert stats.metric_labels(scores).tolist() == ["deletion[substrate=zero]", "deletion[substrate=blur]"]


def test_study_rows_stay_out_of_the_leaderboard():
    scores = pd.concat([rows("ig", "deletion", [0.1, 0.2]),
                        rows("ig", "deletion", [0.9, 0.9], study="background")], ignore_index=True)
    board = tables.leaderboards(scores)[("mnist", "mnist_cnn")]
    assert board["mean"].item() == pytest.approx(0.15)


def test_leaderboard_csv_counts_samples_not_seeds():
    """3 seeds of LIME on 4 images: n = 4, and the std is that of the per-sample means."""
    per_seed = {0: [0.1, 0.2, 0.3, 0.4], 1: [0.3, 0.2, 0.5, 0.2], 2: [0.2, 0.5, 0.1, 0.3]}
    scores = pd.concat([rows("lime", "deletion", v, seed=s) for s, v in per_seed.items()],
                       ignore_index=True)
    summary = tables.summary(scores).set_index("explainer").loc["lime"]
    means = np.mean(list(per_seed.values()), axis=0)  # per sample: 0.2, 0.3, 0.3, 0.3
    assert summary["n"] == 4 and summary["n_excluded"] == 0
    assert summary["mean"] == pytest.approx(means.mean())
    assert summary["std"] == pytest.approx(np.std(means, ddof=1))


def test_undefined_samples_are_excluded_and_counted():
    values = np.array([0.5, np.nan, 0.7, 0.9])  # faithfulness correlation of a constant output
    scores = pd.concat([rows("ig", "faithfulness_correlation", values, higher=True),
                        rows("random", "faithfulness_correlation", [0.0, 0.1, np.nan, 0.1],
                             higher=True)], ignore_index=True)
    board = tables.leaderboards(scores)[("mnist", "mnist_cnn")].set_index("explainer")
    assert board.loc["ig", "n"] == 3 and board.loc["ig", "n_excluded"] == 1
    assert board.loc["ig", "mean"] == pytest.approx(0.7)
    summary = tables.summary(scores).set_index("explainer")
    assert summary.loc["random", "n_excluded"] == 1 and summary.loc["random", "n"] == 3


def test_the_aggregate_rank_counts_each_family_once():
    """a wins pixel flipping's three metrics, b wins deletion and insertion: with each family once,
    a's mean over families is (1 + 2 + 2) / 3 and b's (2 + 1 + 1) / 3; counting metrics, a would
    tie with b at 1.4."""
    lo, hi = np.full(5, 0.1), np.full(5, 0.9)
    scores = pd.concat([
        rows("a", "mif", lo, family="pixel_flipping"), rows("b", "mif", hi, family="pixel_flipping"),
        rows("a", "lif", hi, higher=True, family="pixel_flipping"),
        rows("b", "lif", lo, higher=True, family="pixel_flipping"),
        rows("a", "srg", hi, higher=True, family="pixel_flipping"),
        rows("b", "srg", lo, higher=True, family="pixel_flipping"),
        rows("a", "deletion", hi), rows("b", "deletion", lo),
        rows("a", "insertion", lo, higher=True), rows("b", "insertion", hi, higher=True),
    ], ignore_index=True)
    board = tables.leaderboards(scores)[("mnist", "mnist_cnn")]
    rank = board.groupby("explainer")["mean_faithfulness_rank"].first()
    assert rank["a"] == pytest.approx(5 / 3) and rank["b"] == pytest.approx(4 / 3)


def test_identical_within_rounding_is_judged_on_the_metric_scale():
    """Infidelity of the linear model lives at 1e-9: differences there are real."""
    rng = np.random.default_rng(3)
    a = rng.uniform(1e-9, 2e-9, 30)
    b = a + rng.uniform(0.5e-9, 1e-9, 30)  # b always worse, by half the scale
    assert stats.wilcoxon_p(a, b) == pytest.approx(wilcoxon(a, b, zero_method="zsplit").pvalue)
    assert stats.wilcoxon_p(a, b) < 1e-5
    assert stats.wilcoxon_p(a, a * (1 + 1e-12)) == 1.0  # rounding, relative to the scale


def test_one_measurement_under_two_names_is_one_family():
    """On text, deletion and MIF remove the same words into the same [MASK]: one curve. They are
    one measurement, so deletion and pixel flipping are one family in the mean rank.
    Ranks: deletion, MIF: a 1st; LIF, SRG, insertion: b 1st. Families {deletion, MIF, LIF, SRG}
    and {insertion}: a (1.5 + 2) / 2 = 1.75, b (1.5 + 1) / 2 = 1.25 (counted as three families,
    a would be 1.56 and b 1.44). With the paper's substrates on images (zero, noise) they differ."""
    rng = np.random.default_rng(8)

    def pair(metric, a_wins, higher=False, family=None, substrate="mask"):
        good, bad = rng.uniform(0.1, 0.3, 20), rng.uniform(0.5, 0.7, 20)
        a, b = (good, bad) if a_wins != higher else (bad, good)
        params = {"steps": 4, "substrate": substrate}
        return [rows("a", metric, a, higher=higher, family=family, metric_params=params),
                rows("b", metric, b, higher=higher, family=family, metric_params=params)]

    scores = pd.concat(pair("deletion", True) + pair("mif", True, family="pixel_flipping")
                       + pair("lif", False, True, "pixel_flipping")
                       + pair("srg", False, True, "pixel_flipping") + pair("insertion", False, True),
                       ignore_index=True)
    board = tables.leaderboards(scores)[("mnist", "mnist_cnn")]
    families = board.drop_duplicates("metric").set_index("metric")["family"]
    assert set(families[["deletion", "mif", "lif", "srg"]]) == {"deletion+pixel_flipping"}
    assert families["insertion"] == "insertion"
    ranks = board.groupby("explainer")["mean_faithfulness_rank"].first()
    assert ranks["a"] == pytest.approx(1.75) and ranks["b"] == pytest.approx(1.25)
    # deletion into black and MIF into noise are two measurements
    apart = scores.assign(metric_params=np.where(scores.family == "pixel_flipping",
                                                 '{"steps": 4, "substrate": "noise"}',
                                                 scores.metric_params))
    board = tables.leaderboards(apart)[("mnist", "mnist_cnn")]
    assert set(board["family"]) == {"deletion", "pixel_flipping", "insertion"}


def test_the_sanity_check_is_judged_over_the_whole_cascade():
    """Adebayo et al.'s finding: guided backprop stays alike while the top layers are randomised.
    0.9 after fc2, 0.73 after fc1, 0.357 with every layer randomised: at the end alone it would
    pass (0.357 < 0.5); over the cascade (mean 0.66) it fails. A map that changes at once passes."""
    from explainbench.bench.studies import sanity

    def cascade(explainer, values):
        return pd.concat([rows(explainer, "mprt_spearman_untied", [v] * 6, study="sanity",
                               category="sanity", metric_params={"depth": d, "layer": layer})
                          for d, (layer, v) in enumerate(zip(("fc2", "fc1", "conv1"), values), 1)])

    table = sanity.table(pd.concat([cascade("guided_backprop", (0.9, 0.73, 0.357)),
                                    cascade("saliency", (0.2, 0.1, 0.05))], ignore_index=True))
    verdict = table.groupby("explainer")[["flagged", "cascade_mean"]].first()
    assert bool(verdict.loc["guided_backprop", "flagged"]) and not verdict.loc["saliency", "flagged"]
    assert verdict.loc["guided_backprop", "cascade_mean"] == pytest.approx((0.9 + 0.73 + 0.357) / 3)


def test_kendalls_w_matches_friedmans_statistic_and_names_disagreement():
    """W = chi2_Friedman / (m (n - 1)) (scipy's Friedman test, tie-corrected): three families
    ranking four explainers; then families in perfect agreement (W = 1) and reversed (W = 0)."""
    from scipy.stats import friedmanchisquare

    ranks = pd.DataFrame({"deletion": [1, 2, 3, 4], "insertion": [2, 1, 3, 4],
                          "road": [1, 3, 2, 4]}, index=["a", "b", "c", "d"], dtype=float)
    chi2 = friedmanchisquare(*[ranks.loc[e] for e in ranks.index]).statistic
    assert tables.kendall_w(ranks) == pytest.approx(chi2 / (3 * (4 - 1)))
    same = pd.DataFrame({"x": [1.0, 2, 3], "y": [1.0, 2, 3]}, index=list("abc"))
    assert tables.kendall_w(same) == pytest.approx(1.0)
    opposite = pd.DataFrame({"x": [1.0, 2, 3], "y": [3.0, 2, 1]}, index=list("abc"))
    assert tables.kendall_w(opposite) == pytest.approx(0.0)


def test_metric_agreement_and_the_best_finding_when_families_disagree(tmp_path):
    from explainbench.bench.report import findings

    rng = np.random.default_rng(2)
    base = rng.uniform(0.1, 0.2, 20)
    # deletion orders a < b < c; insertion the reverse (higher is better): the families disagree
    scores = pd.concat([rows(e, "deletion", base + shift) for e, shift in
                        (("a", 0.0), ("b", 0.2), ("c", 0.4))]
                       + [rows(e, "insertion", base + shift, higher=True) for e, shift in
                          (("a", 0.0), ("b", 0.2), ("c", 0.4))], ignore_index=True)
    boards = tables.leaderboards(scores)
    agreement = tables.metric_agreement(boards)
    w = agreement[agreement.measure == "kendall_w"]["value"].item()
    assert w == pytest.approx(0.0)
    pair = agreement[agreement.measure == "spearman"]["value"].item()
    assert pair == pytest.approx(-1.0)
    found = findings.best(boards, agreement)[0]
    assert "the families disagree" in found.answer and "no explainer is named" in found.answer
    assert found.short.startswith("families disagree")

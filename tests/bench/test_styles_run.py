"""Anchor, the rule metrics and explanation by example through the runner on tiny real slices:
records through the cache, their score rows, the Jaccard stability, the examples' agreement
across models and explanation_styles.csv."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from explainbench.bench import report
from explainbench.bench.run import runner, suite as suites

ANCHOR = {"name": "anchor", "params": {"max_anchor_size": 2, "coverage_samples": 500, "tau": 0.5}}
SUITE = {
    "name": "styles-test",
    "version": 1,
    "seeds": [0, 1],
    "chunk_size": 4,
    "experiments": [{
        "name": "mnist",
        "slice": {"name": "mnist-test", "size": 4},
        "models": ["mnist_cnn", "mnist_logreg"],
        "floor": False,
        "explainers": ["saliency", ANCHOR, {"name": "nearest_examples", "params": {"k": 3}}],
        "metrics": [{"name": "deletion", "params": {"steps": 4}},
                    {"name": "rule_precision", "params": {"n_samples": 400}},
                    {"name": "rule_coverage", "params": {"n_samples": 400}}],
        "studies": {"stability": {"explainers": ["anchor", "saliency", "nearest_examples"]}},
    }],
}


@pytest.fixture(scope="module")
def styles_run(tmp_path_factory, real_data):
    out = tmp_path_factory.mktemp("styles") / "run"
    summary = runner.run(suites.parse(copy.deepcopy(SUITE)), out, device="cpu", show_progress=False)
    # the stability cells need Anchor's records for every seed, the score cells for their rows:
    # whichever ran second read them back from the attribution cache
    assert summary.ok, summary.failed
    report.write_all(out, plots=False)
    return out, pd.read_parquet(out / "scores.parquet")


def _values(scores, explainer, metric, model="mnist_cnn"):
    rows = scores[(scores.explainer == explainer) & (scores.metric == metric)
                  & (scores.model == model)]
    return rows.sort_values(["seed", "sample_id"])


def test_anchors_own_estimates_are_rows_and_its_rule_covers_two_to_the_minus_size(styles_run):
    _, scores = styles_run
    size = _values(scores, "anchor", "anchor_size")
    coverage = _values(scores, "anchor", "rule_coverage")
    assert set(size.category) == {"rules"} and len(size) == 8  # 4 images x 2 seeds
    assert ((size.value >= 0) & (size.value <= 2)).all()
    # the rule of an anchor's map is the anchor: its coverage is 2^-size in expectation
    expected = 2.0 ** -size.value.to_numpy()
    sigma = np.sqrt(expected * (1 - expected) / 400)
    assert (np.abs(coverage.value.to_numpy() - expected) <= 4 * sigma + 1e-12).all()
    precision = _values(scores, "anchor", "anchor_precision").value
    assert ((precision >= 0) & (precision <= 1)).all()


def test_jaccard_stability_for_chosen_sets(styles_run):
    _, scores = styles_run
    stability = scores[scores.study == "stability"]
    jaccard = stability[stability.metric == "stability_jaccard"]
    assert set(jaccard.explainer) == {"anchor", "nearest_examples"}
    # explanation by example is deterministic: the same ids under both seeds
    assert (jaccard[jaccard.explainer == "nearest_examples"].value == 1.0).all()
    assert set(stability[stability.explainer == "nearest_examples"].metric) == {"stability_jaccard"}
    assert ((jaccard.value >= 0) & (jaccard.value <= 1)).all()


def test_examples_agreement_across_models_is_symmetric(styles_run):
    _, scores = styles_run
    cnn = _values(scores, "nearest_examples", "example_model_agreement", "mnist_cnn")
    logreg = _values(scores, "nearest_examples", "example_model_agreement", "mnist_logreg")
    assert len(cnn) == len(logreg) == 4
    assert np.array_equal(cnn.value.to_numpy(), logreg.value.to_numpy())
    assert set(_values(scores, "nearest_examples", "example_nearest_other").value) <= {0.0, 1.0}


def test_explanation_styles_table(styles_run):
    out, _ = styles_run
    table = pd.read_csv(out / "explanation_styles.csv")
    assert list(table.columns) == ["task", "model", "style", "measure", "mean", "ci_low",
                                   "ci_high", "n"]
    cnn = table[table.model == "mnist_cnn"]
    assert set(cnn["style"]) == {"Anchor", "saliency", "explanation by example"}
    anchor = set(cnn[cnn["style"] == "Anchor"].measure)
    assert {"stability_spearman", "stability_jaccard", "deletion", "rule_precision",
            "rule_coverage", "anchor_precision"} <= anchor
    saliency = cnn[cnn["style"] == "saliency"].set_index("measure")
    assert saliency.loc["stability_spearman", "mean"] == 1.0  # deterministic
    assert (table.ci_low <= table["mean"] + 1e-12).all() and (table["mean"] <= table.ci_high + 1e-12).all()

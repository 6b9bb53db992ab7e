"""Study cells end to end on tiny real slices: rows in scores.parquet, tables, controls."""

from __future__ import annotations

import copy

import pandas as pd
import pytest

from explainbench.bench import report
from explainbench.bench.run import runner, suite as suites

STUDY_SUITE = {
    "name": "studies",
    "version": 1,
    "seeds": [0, 1],
    "chunk_size": 4,
    "experiments": [{
        "name": "mnist",
        "slice": {"name": "mnist-test", "size": 4},
        "models": ["mnist_cnn"],
        "explainers": ["saliency", {"name": "integrated_gradients", "params": {"n_steps": 8}}],
        "metrics": [{"name": "deletion", "params": {"steps": 4}}, "sparseness"],
        "studies": {
            "stability": {"explainers": ["saliency", "integrated_gradients"], "seeds": 2},
            "agreement": {},
            "sanity": {"explainers": ["saliency"], "max_depth": 2},
        },
    }],
}


@pytest.fixture(scope="module")
def study_run(tmp_path_factory, real_data):
    out = tmp_path_factory.mktemp("studies") / "run"
    summary = runner.run(suites.parse(copy.deepcopy(STUDY_SUITE)), out, device="cpu",
                         show_progress=False)
    assert summary.ok, summary.failed
    report.write_all(out, plots=False)
    return out


def test_deterministic_explainers_are_perfectly_stable(study_run):
    scores = pd.read_parquet(study_run / "scores.parquet")
    stability = scores[scores.study == "stability"]
    assert set(stability.explainer) == {"saliency", "integrated_gradients"}
    assert (stability.seed == -1).all()
    for metric, expected in [("stability_spearman", 1.0), ("stability_topk", 1.0),
                             ("stability_sign", 1.0), ("stability_cv", 0.0)]:
        assert (stability[stability.metric == metric]["value"] == expected).all(), metric
    table = pd.read_csv(study_run / "stability.csv")
    assert set(table.metric) == {"stability_spearman", "stability_topk", "stability_sign", "stability_cv"}


def test_agreement_rows_form_a_symmetric_matrix(study_run):
    scores = pd.read_parquet(study_run / "scores.parquet")
    agreement = scores[scores.study == "agreement"]
    assert set(agreement.metric) == {"agreement_spearman", "agreement_topk"}
    matrix = pd.read_csv(study_run / "agreement" / "mnist-mnist_cnn.csv", index_col=0)
    assert (matrix.values.diagonal() == 1).all()
    assert (abs(matrix.values - matrix.values.T) < 1e-12).all()
    # the control: random attributions agree with nothing (Spearman ~ 0, |r| ~ 1/sqrt(784))
    assert set(matrix.index) == {"saliency", "integrated_gradients", "random"}
    assert abs(matrix.loc["random", "saliency"]) < 0.15
    assert abs(matrix.loc["random", "integrated_gradients"]) < 0.15
    assert matrix.loc["saliency", "integrated_gradients"] > 0.2


def test_sanity_rows_cascade_and_random_logit(study_run):
    scores = pd.read_parquet(study_run / "scores.parquet")
    sanity = scores[scores.study == "sanity"]
    assert set(sanity.metric) == {f"{p}_{m}" for p in ("mprt", "random_logit")
                                  for m in ("spearman", "spearman_signed", "spearman_untied", "ssim")}
    table = pd.read_csv(study_run / "sanity.csv")
    assert set(table[table.metric == "mprt_spearman"].layer) == {"fc2", "fc1"}
    assert "flagged" in table.columns
    # with the classifier randomised, saliency's map changes (Adebayo et al.): not flagged
    assert not table[table.metric == "mprt_spearman"]["flagged"].any()


def test_leaderboard_keeps_study_rows_out_and_complexity_in(study_run):
    board = pd.read_csv(study_run / "leaderboard" / "mnist-mnist_cnn.csv")
    assert set(board.metric) == {"deletion", "sparseness"}
    report.write_all(study_run)
    assert (study_run / "plots").is_dir()
    names = {p.name for p in (study_run / "plots").glob("*.png")}
    assert any(n.startswith("agreement-") for n in names)
    assert any(n.startswith("sanity-") for n in names)
    # stability is a pivot of explainer x measure in the page (a figure only for budget sweeps);
    # explainers identical under every seed are named once, not tabulated
    page = (study_run / "report.html").read_text()
    stability = page[page.index('<section id="stability">'):page.index('<section id="background">')]
    assert "identical under every seed (as they must be): integrated_gradients, saliency." in stability


def test_unknown_study_settings_are_one_line_errors():
    raw = copy.deepcopy(STUDY_SUITE)
    raw["experiments"][0]["studies"]["stability"]["sedes"] = 3
    with pytest.raises(suites.SuiteError, match="unknown setting 'sedes'"):
        suites.parse(raw)
    raw = copy.deepcopy(STUDY_SUITE)
    raw["experiments"][0]["studies"] = {"stabilty": {}}
    with pytest.raises(suites.SuiteError, match="Did you mean 'stability'"):
        suites.parse(raw)
